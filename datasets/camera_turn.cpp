#include "datasets/camera_turn.h"

#include <cmath>

namespace gaze {

namespace {

// Rotations about one camera axis by `a`, as CameraTurn applies them.
Vec3 yaw_by(const Vec3& v, double a) {
  return {v.x * std::cos(a) + v.z * std::sin(a), v.y, -v.x * std::sin(a) + v.z * std::cos(a)};
}
Vec3 pitch_by(const Vec3& v, double a) {
  return {v.x, v.y * std::cos(a) - v.z * std::sin(a), v.y * std::sin(a) + v.z * std::cos(a)};
}
Vec3 roll_by(const Vec3& v, double a) {
  return {v.x * std::cos(a) - v.y * std::sin(a), v.x * std::sin(a) + v.y * std::cos(a), v.z};
}

}  // namespace

Vec3 CameraTurn::apply(const Vec3& v) const { return roll_by(pitch_by(yaw_by(v, yaw), pitch), roll); }
Vec3 CameraTurn::undo(const Vec3& v) const { return yaw_by(pitch_by(roll_by(v, -roll), -pitch), -yaw); }

CameraTurn camera_turn_for_shift(double shift_x, double shift_y, double roll, double focal_px) {
  // The yaw takes (0, 0, 1) to (-shift_x, 0, hypot(shift_y, focal_px)) (normalised), the pitch
  // then lifts it to (-shift_x, shift_y, focal_px).
  return {-std::atan2(shift_x, std::hypot(shift_y, focal_px)), -std::atan2(shift_y, focal_px), roll};
}

Vec3 CameraTilt::apply(const Vec3& d) const {
  if (level()) return d;
  const double cp = std::cos(pitch), sp = std::sin(pitch);
  const Vec3 pitched{d.x, d.y * cp - d.z * sp, d.y * sp + d.z * cp};
  const double cy = std::cos(yaw), sy = std::sin(yaw);
  return {pitched.x * cy - pitched.z * sy, pitched.y, pitched.x * sy + pitched.z * cy};
}

Vec3 CameraTilt::undo(const Vec3& d) const {
  if (level()) return d;
  const double cy = std::cos(yaw), sy = std::sin(yaw);
  const Vec3 unyawed{d.x * cy + d.z * sy, d.y, -d.x * sy + d.z * cy};
  const double cp = std::cos(pitch), sp = std::sin(pitch);
  return {unyawed.x, unyawed.y * cp + unyawed.z * sp, -unyawed.y * sp + unyawed.z * cp};
}

Vec3 turn_gaze(const Vec3& gaze, const CameraTurn& turn, const CameraTilt& tilt) {
  const Vec3 seen = tilt.apply({gaze.x, gaze.y, -gaze.z});
  const Vec3 turned = tilt.undo(turn.apply(seen));
  return {turned.x, turned.y, -turned.z};
}

Vec3 turn_gaze_for_shift(const Vec3& gaze, double shift_x, double shift_y, double focal_px) {
  return turn_gaze(gaze, camera_turn_for_shift(shift_x, shift_y, 0, focal_px));
}

}  // namespace gaze
