#include "libgaze/metrics/angular_error.h"

#include <algorithm>
#include <cmath>

#include "libgaze/core/error.h"

namespace gaze {

double angular_error_deg(const Vec3& a, const Vec3& b) {
  const double na = norm(a), nb = norm(b);
  if (na == 0.0 || nb == 0.0) return NAN;
  const Vec3 ua = scale(a, 1.0 / na), ub = scale(b, 1.0 / nb);
  return std::atan2(norm(cross(ua, ub)), dot(ua, ub)) * 180.0 / M_PI;
}

ErrorStats summarize_errors(std::vector<double> e) {
  ErrorStats s;
  s.count = static_cast<int64_t>(e.size());
  if (e.empty()) return s;
  for (double v : e) {
    if (!std::isfinite(v)) throw Error("angular error summary: non-finite error value");
  }
  std::sort(e.begin(), e.end());
  double sum = 0;
  for (double v : e) sum += v;
  s.mean = sum / e.size();
  const auto quantile = [&](double q) {
    const double pos = q * (e.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, e.size() - 1);
    return e[lo] + (pos - lo) * (e[hi] - e[lo]);
  };
  s.median = quantile(0.5);
  s.p95 = quantile(0.95);
  s.max = e.back();
  return s;
}

ParticipantErrors summarize_by_participant(const std::vector<double>& errors,
                                           const std::vector<int64_t>& participants) {
  if (errors.size() != participants.size()) {
    throw Error("angular error summary: " + std::to_string(errors.size()) + " errors but " +
                std::to_string(participants.size()) + " participant ids");
  }
  std::map<int64_t, std::vector<double>> groups;
  for (size_t i = 0; i < errors.size(); ++i) groups[participants[i]].push_back(errors[i]);
  ParticipantErrors out;
  out.all_frames = summarize_errors(errors);
  double sum = 0;
  for (auto& [id, values] : groups) {
    out.per_participant[id] = summarize_errors(values);
    sum += out.per_participant[id].mean;
  }
  out.mean_over_participants = groups.empty() ? 0.0 : sum / groups.size();
  return out;
}

}  // namespace gaze
