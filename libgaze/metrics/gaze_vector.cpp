#include "libgaze/metrics/gaze_vector.h"

namespace gaze {

Vec3 aria_direction(YawPitch a) { return normalized({std::tan(a.yaw), std::tan(a.pitch), 1.0}); }

YawPitch aria_angles(const Vec3& d) { return {std::atan2(d.x, d.z), std::atan2(d.y, d.z)}; }

Vec3 aria_point_at_depth(YawPitch angles, double depth_m) { return scale(aria_direction(angles), depth_m); }

Vec3 aria_vergence_direction(double yaw_left, double yaw_right, double pitch, double ipd_m) {
  const double tl = std::tan(yaw_left);
  const double tr = std::tan(yaw_right);
  if (tr - tl == 0.0) return aria_direction({0.5 * (yaw_left + yaw_right), pitch});
  const double z = ipd_m / (tr - tl);
  const double x = 0.5 * ipd_m * (tl + tr) / (tr - tl);
  const double y = z * std::tan(pitch);
  // Diverging rays meet behind the eyes (z < 0): the gaze still points forward.
  const Vec3 p = normalized({x, y, z});
  return z < 0 ? scale(p, -1.0) : p;
}

Vec3 spherical_direction(YawPitch a) {
  return {-std::cos(a.pitch) * std::sin(a.yaw), -std::sin(a.pitch), -std::cos(a.pitch) * std::cos(a.yaw)};
}

YawPitch spherical_angles(const Vec3& direction) {
  const Vec3 d = normalized(direction);
  return {std::atan2(-d.x, -d.z), std::asin(-d.y)};
}

}  // namespace gaze
