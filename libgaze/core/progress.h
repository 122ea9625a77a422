// Progress reporting for long loops (training steps, rendering, packing).
//
// On a terminal it redraws one line in place ("label [#####.....] 45/100 12.3 it/s eta 4s");
// otherwise (CI, files, pipes) it writes a plain line at most every `plain_interval_s`
// seconds plus one at the end, so logs stay readable. Not thread-safe: tick from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace gaze {

class ProgressBar {
 public:
  enum class Mode { kAuto, kTerminal, kPlain, kSilent };

  // `out` defaults to stderr; kAuto picks kTerminal when `out` is a TTY.
  ProgressBar(std::string label, int64_t total, Mode mode = Mode::kAuto, std::FILE* out = nullptr,
              double plain_interval_s = 10.0);
  ~ProgressBar();

  // Advance by `n` and optionally replace the trailing status text (e.g. "loss 0.231").
  void tick(int64_t n = 1, const std::string& status = "");
  void finish();

  int64_t done() const { return done_; }

 private:
  void draw(bool final_line);

  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  Mode mode_;
  std::FILE* out_;
  double plain_interval_s_;
  std::string status_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace gaze
