#include "libgaze/metrics/person_offsets.h"

#include <cmath>

#include "libgaze/core/error.h"

namespace gaze {
namespace {

constexpr double kDegrees = 180.0 / M_PI;

// The smallest rotation taking direction `from` onto `to` (Rodrigues' formula), as a function.
struct Rotation {
  Vec3 axis;  // unit; zero when the directions already agree
  double cos_angle = 1, sin_angle = 0;

  Rotation(const Vec3& from, const Vec3& to) {
    const Vec3 a = normalized(from), b = normalized(to), c = cross(a, b);
    const double s = norm(c);
    cos_angle = dot(a, b);
    sin_angle = s;
    axis = s > 0 ? scale(c, 1.0 / s) : Vec3{};  // opposite means (never in practice): apply() then negates
  }
  double angle_deg() const { return std::atan2(sin_angle, cos_angle) * kDegrees; }
  Vec3 apply(const Vec3& v) const {
    const Vec3 kxv = cross(axis, v);
    const double kv = dot(axis, v) * (1 - cos_angle);
    return {v.x * cos_angle + kxv.x * sin_angle + axis.x * kv, v.y * cos_angle + kxv.y * sin_angle + axis.y * kv,
            v.z * cos_angle + kxv.z * sin_angle + axis.z * kv};
  }
};

}  // namespace

PersonOffsets split_person_offsets(const std::vector<Vec3>& predictions, const std::vector<Vec3>& labels,
                                   const std::vector<int64_t>& participants) {
  if (predictions.size() != labels.size() || predictions.size() != participants.size()) {
    throw Error("person offsets: " + std::to_string(predictions.size()) + " predictions, " +
                std::to_string(labels.size()) + " labels and " + std::to_string(participants.size()) +
                " participants; they must be one per frame");
  }
  if (predictions.empty()) throw Error("person offsets: no frames");
  std::map<int64_t, std::pair<Vec3, Vec3>> sums;  // participant -> (sum of predictions, sum of labels)
  for (size_t i = 0; i < predictions.size(); ++i) {
    auto& [p, l] = sums[participants[i]];
    const Vec3 pu = normalized(predictions[i]), lu = normalized(labels[i]);
    p = {p.x + pu.x, p.y + pu.y, p.z + pu.z};
    l = {l.x + lu.x, l.y + lu.y, l.z + lu.z};
  }
  PersonOffsets out;
  std::map<int64_t, Rotation> rotations;
  for (const auto& [id, s] : sums) {
    const Rotation r(s.first, s.second);
    rotations.emplace(id, r);
    out.offset_deg[id] = r.angle_deg();
    out.mean_offset_deg += r.angle_deg() / double(sums.size());
  }
  std::vector<double> residual(predictions.size());
  for (size_t i = 0; i < predictions.size(); ++i) {
    residual[i] = angular_error_deg(rotations.at(participants[i]).apply(normalized(predictions[i])), labels[i]);
  }
  out.residual = summarize_by_participant(residual, participants);
  return out;
}

}  // namespace gaze
