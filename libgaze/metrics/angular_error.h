// Angular error between gaze directions, and its summary statistics (no dependencies).
//
// err = atan2(|a x b|, a . b) in degrees, computed in double on normalised vectors: unlike
// acos(a . b) it stays accurate for tiny and near-180° angles. Inputs need not be unit length;
// a zero vector has no direction and yields NaN.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "libgaze/metrics/gaze_vector.h"

namespace gaze {

double angular_error_deg(const Vec3& a, const Vec3& b);

struct ErrorStats {
  int64_t count = 0;
  double mean = 0, median = 0, p95 = 0, max = 0;
};

// Mean, median, 95th percentile (linear interpolation) and max; NaNs are an error.
ErrorStats summarize_errors(std::vector<double> errors_deg);

// Per-participant summaries plus the paper's protocol number: the mean over participants of
// each participant's mean error.
struct ParticipantErrors {
  std::map<int64_t, ErrorStats> per_participant;
  ErrorStats all_frames;
  double mean_over_participants = 0;
};
ParticipantErrors summarize_by_participant(const std::vector<double>& errors_deg,
                                           const std::vector<int64_t>& participants);

}  // namespace gaze
