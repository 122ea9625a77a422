// Learning-rate schedule: linear warm-up to the peak, then cosine decay to min_lr at the last
// step (no dependencies). A pure function of the step, so a resumed run needs nothing saved.
#pragma once

#include <cmath>
#include <cstdint>

namespace gaze {

inline double cosine_lr(int64_t step, int64_t total_steps, int64_t warmup_steps, double peak, double min_lr) {
  if (warmup_steps > 0 && step < warmup_steps) return peak * double(step + 1) / double(warmup_steps);
  const int64_t decay_steps = total_steps - warmup_steps;
  if (decay_steps <= 1) return peak;
  const double progress = std::fmin(1.0, double(step - warmup_steps) / double(decay_steps - 1));
  return min_lr + 0.5 * (peak - min_lr) * (1.0 + std::cos(M_PI * progress));
}

}  // namespace gaze
