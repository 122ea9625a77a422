// End-to-end tests of the `gaze` binary: output, exit codes and one-line errors.
#include <catch2/catch.hpp>

#include "tests/test_util.h"

using namespace gaze::testing;
using Catch::Contains;

namespace {
int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }
}  // namespace

TEST_CASE("gaze info prints the exact parameter counts", "[cli]") {
  const auto student = run_gaze("info");
  CHECK(student.exit_code == 0);
  CHECK_THAT(student.output, Contains("281,174") && Contains("14,434") && Contains("6,680"));
  const auto teacher = run_gaze("info model.arch=teacher --input 96x160");
  CHECK(teacher.exit_code == 0);
  CHECK_THAT(teacher.output, Contains("3,579,104") && Contains("191,704") && Contains("103,520") &&
                                 Contains("input 1x3x96x160") && Contains("320x3x5"));
  const auto json = run_gaze("--log-level off info --json -c " LIBGAZE_SOURCE_DIR "/configs/model/student.yaml");
  CHECK(json.exit_code == 0);
  CHECK_THAT(json.output, Contains("\"params\": 281174") && Contains("\"tunable\": 14434"));
}

TEST_CASE("config errors are one clear line and exit 1", "[cli]") {
  TempDir dir;
  const std::string bad = dir.write("bad.yaml", "model:\n  arch: student\n  dimz: [1,2,3,4]\n");
  const auto r = run_gaze("info -c " + bad);
  CHECK(r.exit_code == 1);
  CHECK(r.output == "gaze: error: " + bad + ":3:3: unknown key 'model.dimz'; did you mean 'model.dims'?\n");
  const auto typed = run_gaze("info run.seed=abc");
  CHECK(typed.exit_code == 1);
  CHECK(count_lines(typed.output) == 1);
  CHECK_THAT(typed.output, Contains("run.seed: expected an integer, got 'abc'"));
  const auto size = run_gaze("info --input 10x");
  CHECK(size.exit_code == 1);
  CHECK_THAT(size.output, Contains("--input: expected HxW"));
}

TEST_CASE("usage errors exit 2 and --help works everywhere", "[cli]") {
  CHECK(run_gaze("").exit_code != 0);
  CHECK(run_gaze("frobnicate").exit_code == 2);
  CHECK(run_gaze("--log-level loud info").exit_code == 1);
  for (const char* cmd : {"--help", "info --help", "config --help", "import-checkpoint --help"}) {
    INFO(cmd);
    const auto r = run_gaze(cmd);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, Contains("Usage"));
  }
}

TEST_CASE("gaze config prints the resolved config, which reads back", "[cli]") {
  TempDir dir;
  const auto r = run_gaze("config model.arch=teacher run.seed=9");
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Contains("dims: [40, 80, 160, 320]") && Contains("seed: 9"));
  const std::string path = dir.write("resolved.yaml", r.output);
  const auto again = run_gaze("config -c " + path);
  CHECK(again.exit_code == 0);
  CHECK(again.output == r.output);
  const auto keys = run_gaze("config --keys run.seed=3");
  CHECK_THAT(keys.output, Contains("run.seed") && Contains("command line 'run.seed=3'"));
}

TEST_CASE("import-checkpoint rejects bad input without writing", "[cli]") {
  TempDir dir;
  const std::string junk = dir.write("junk.pt", "not a zip");
  const auto r = run_gaze("import-checkpoint " + junk + " -o " + dir.file("out.h5"));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Contains("junk.pt: not a torch.save() zip archive"));
  CHECK_FALSE(std::filesystem::exists(dir.file("out.h5")));
}
