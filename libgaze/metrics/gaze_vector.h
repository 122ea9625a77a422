// Gaze directions and the angle conventions that name them (no dependencies).
//
// Two conventions, both as used by their datasets:
//  * Aria (Project Aria MPS, Central Pupil Frame: +x left, +y up, +z forward):
//      d = normalise(tan yaw, tan pitch, 1);  yaw = atan2(x, z), pitch = atan2(y, z).
//    Vergence files give a yaw per eye; aria_vergence_direction() intersects the two rays.
//  * Spherical (ETH-XGaze / MPIIGaze normalised space, gaze points towards -z):
//      d = (-cos p sin y, -sin p, -cos p cos y);  pitch = asin(-y), yaw = atan2(-x, -z).
// All angles are radians; every direction returned is unit length.
#pragma once

#include <cmath>

namespace gaze {

struct Vec3 {
  double x = 0, y = 0, z = 0;
};

inline double dot(const Vec3& a, const Vec3& b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
inline Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}
inline double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
inline Vec3 scale(const Vec3& a, double s) { return {a.x * s, a.y * s, a.z * s}; }
inline Vec3 normalized(const Vec3& a) { return scale(a, 1.0 / norm(a)); }

struct YawPitch {
  double yaw = 0, pitch = 0;
};

Vec3 aria_direction(YawPitch angles);
YawPitch aria_angles(const Vec3& direction);

// 3-D point the Aria gaze ray reaches at `depth_m` metres along it.
Vec3 aria_point_at_depth(YawPitch angles, double depth_m);

// Direction from the left/right eye yaws and the shared pitch of a vergence-layout MPS file
// (eyes at ±ipd/2 on the x axis; X = ipd/2·(tl+tr)/(tr−tl), Z = ipd/(tr−tl), Y = Z·tan pitch).
// Parallel rays (tr == tl) fall back to the cyclopean yaw.
Vec3 aria_vergence_direction(double yaw_left, double yaw_right, double pitch, double ipd_m = 0.063);

Vec3 spherical_direction(YawPitch angles);
YawPitch spherical_angles(const Vec3& direction);

}  // namespace gaze
