#include "libgaze/core/progress.h"

#include <unistd.h>

#include <cmath>

namespace gaze {
namespace {

double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  char buf[32];
  const long s = std::lround(seconds);
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lds", s);
  }
  return buf;
}

}  // namespace

ProgressBar::ProgressBar(std::string label, int64_t total, Mode mode, std::FILE* out, double plain_interval_s)
    : label_(std::move(label)),
      total_(total),
      mode_(mode),
      out_(out ? out : stderr),
      plain_interval_s_(plain_interval_s),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  if (mode_ == Mode::kAuto) mode_ = isatty(fileno(out_)) ? Mode::kTerminal : Mode::kPlain;
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::tick(int64_t n, const std::string& status) {
  done_ += n;
  if (!status.empty()) status_ = status;
  const auto now = std::chrono::steady_clock::now();
  const double since_draw = seconds_between(last_draw_, now);
  const bool due = mode_ == Mode::kTerminal ? since_draw >= 0.1 : since_draw >= plain_interval_s_;
  if (due) draw(false);
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void ProgressBar::draw(bool final_line) {
  if (mode_ == Mode::kSilent) return;
  const auto now = std::chrono::steady_clock::now();
  last_draw_ = now;
  const double elapsed = seconds_between(start_, now);
  const double rate = elapsed > 0 ? done_ / elapsed : 0.0;
  const double eta = rate > 0 ? (total_ - done_) / rate : NAN;
  const double fraction = total_ > 0 ? std::min(1.0, double(done_) / total_) : 0.0;
  char counts[128];
  std::snprintf(counts, sizeof counts, "%lld/%lld %.1f it/s %s %s", (long long)done_, (long long)total_, rate,
                final_line ? "in" : "eta", format_duration(final_line ? elapsed : eta).c_str());
  const std::string status = status_.empty() ? "" : " " + status_;
  if (mode_ == Mode::kTerminal) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    std::string bar(filled, '#');
    bar.append(kWidth - filled, '.');
    std::fprintf(out_, "\r\033[K%s [%s] %s%s%s", label_.c_str(), bar.c_str(), counts, status.c_str(),
                 final_line ? "\n" : "");
  } else {
    std::fprintf(out_, "%s %3.0f%% %s%s\n", label_.c_str(), 100.0 * fraction, counts, status.c_str());
  }
  std::fflush(out_);
}

}  // namespace gaze
