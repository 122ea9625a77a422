#include "libgaze/core/progress.h"

#include <catch2/catch.hpp>
#include <cstdio>

#include "tests/test_util.h"

using namespace gaze;

namespace {
std::string run_bar(ProgressBar::Mode mode, double interval) {
  std::FILE* f = std::tmpfile();
  {
    ProgressBar bar("train", 4, mode, f, interval);
    for (int i = 0; i < 4; ++i) bar.tick(1, "loss 0.5");
  }
  std::rewind(f);
  std::string out;
  char buf[512];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}
}  // namespace

TEST_CASE("plain mode writes whole lines, the last at 100%", "[progress]") {
  const std::string out = run_bar(ProgressBar::Mode::kPlain, 0.0);
  CHECK(out.find('\r') == std::string::npos);
  CHECK(out.find("train 100% 4/4") != std::string::npos);
  CHECK(out.find("loss 0.5") != std::string::npos);
  CHECK(out.back() == '\n');
}

TEST_CASE("plain mode is throttled to its interval", "[progress]") {
  const std::string out = run_bar(ProgressBar::Mode::kPlain, 3600.0);
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);  // only the final line
}

TEST_CASE("terminal mode redraws in place with a bar", "[progress]") {
  const std::string out = run_bar(ProgressBar::Mode::kTerminal, 0.0);
  CHECK(out.find("\r\033[K") != std::string::npos);
  CHECK(out.find("[##############################]") != std::string::npos);
}

TEST_CASE("silent mode writes nothing", "[progress]") { CHECK(run_bar(ProgressBar::Mode::kSilent, 0.0).empty()); }
