#include "datasets/face_normalization.h"

#include <Eigen/Geometry>
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "libgaze/core/error.h"

namespace gaze {

Eigen::Vector2d PinholeCamera::distort_pixel(const Eigen::Vector2d& pixel) const {
  const double fx = matrix(0, 0), fy = matrix(1, 1), cx = matrix(0, 2), cy = matrix(1, 2);
  const double x = (pixel.x() - cx) / fx, y = (pixel.y() - cy) / fy;
  const auto& [k1, k2, p1, p2, k3] = distortion;
  const double r2 = x * x + y * y, radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3));
  const double xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x);
  const double yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y;
  return {fx * xd + cx, fy * yd + cy};
}

Eigen::Vector2d PinholeCamera::undistort_pixel(const Eigen::Vector2d& pixel) const {
  Eigen::Vector2d guess = pixel;
  for (int i = 0; i < 20; ++i) guess -= distort_pixel(guess) - pixel;
  return guess;
}

Eigen::Vector2d PinholeCamera::project(const Eigen::Vector3d& point) const {
  const Eigen::Vector3d p = matrix * point;
  return distort_pixel({p.x() / p.z(), p.y() / p.z()});
}

NormalizedFace normalize_face(const PinholeCamera& camera, const Eigen::Vector3d& centre,
                              const Eigen::Matrix3d& head_rotation, const FaceNormalizationOptions& o) {
  const double distance = centre.norm();
  const Eigen::Vector3d z = centre / distance;
  const Eigen::Vector3d y = z.cross(Eigen::Vector3d(head_rotation.col(0))).normalized();
  const Eigen::Vector3d x = y.cross(z).normalized();
  NormalizedFace face;
  face.rotation.row(0) = x.transpose();
  face.rotation.row(1) = y.transpose();
  face.rotation.row(2) = z.transpose();
  face.scale = o.distance / distance;
  Eigen::Matrix3d scale = Eigen::Matrix3d::Identity();
  scale(2, 2) = face.scale;
  Eigen::Matrix3d normalized_camera;
  normalized_camera << o.focal, 0, o.width / 2.0, 0, o.focal, o.height / 2.0, 0, 0, 1;
  face.warp = normalized_camera * scale * face.rotation * camera.matrix.inverse();
  return face;
}

Image warp_normalized(const Image& source, const PinholeCamera& camera, const NormalizedFace& face,
                      const FaceNormalizationOptions& o) {
  Image out(o.height, o.width, 0, source.channels);
  const Eigen::Matrix3d inverse = face.warp.inverse();
  for (int32_t v = 0; v < o.height; ++v) {
    for (int32_t u = 0; u < o.width; ++u) {
      const Eigen::Vector3d h = inverse * Eigen::Vector3d(u, v, 1);  // OpenCV's warpPerspective: pixel indices
      if (h.z() <= 0) continue;
      const Eigen::Vector2d p = camera.distort_pixel({h.x() / h.z(), h.y() / h.z()});
      const double sx = p.x(), sy = p.y();
      if (!(sx >= 0 && sy >= 0 && sx <= source.width - 1 && sy <= source.height - 1)) continue;
      const int32_t x0 = std::min(int32_t(sx), std::max(0, source.width - 2));
      const int32_t y0 = std::min(int32_t(sy), std::max(0, source.height - 2));
      const int32_t x1 = std::min(x0 + 1, source.width - 1), y1 = std::min(y0 + 1, source.height - 1);
      const double fx = sx - x0, fy = sy - y0;
      for (int32_t c = 0; c < source.channels; ++c) {
        const double top = source.at(y0, x0, c) * (1 - fx) + source.at(y0, x1, c) * fx;
        const double bottom = source.at(y1, x0, c) * (1 - fx) + source.at(y1, x1, c) * fx;
        out.at(v, u, c) = uint8_t(std::clamp(std::lround(top * (1 - fy) + bottom * fy), 0L, 255L));
      }
    }
  }
  return out;
}

Eigen::Vector2d normalized_pixel(const PinholeCamera& camera, const NormalizedFace& face,
                                 const Eigen::Vector2d& pixel) {
  const Eigen::Vector2d u = camera.undistort_pixel(pixel);
  const Eigen::Vector3d h = face.warp * Eigen::Vector3d(u.x(), u.y(), 1);
  return {h.x() / h.z(), h.y() / h.z()};
}

Image crop_eye_pair(const Image& face, const std::array<Eigen::Vector2d, 4>& corners, int32_t height, int32_t width,
                    double margin) {
  if (face.channels != 1)
    throw Error("crop_eye_pair: expected a grey face, got " + std::to_string(face.channels) + " channels");
  for (const Eigen::Vector2d& corner : corners)
    if (!corner.allFinite()) throw Error("crop_eye_pair: an eye corner is not finite");
  Image out(height, 2 * width);
  std::vector<float> patch(size_t(height) * size_t(width));
  for (int eye = 0; eye < 2; ++eye) {
    const Eigen::Vector2d a = corners[size_t(2 * eye)], b = corners[size_t(2 * eye + 1)];
    const Eigen::Vector2d centre = (a + b) / 2;
    const double crop_width = std::max(margin * (b - a).norm(), 1.0), crop_height = crop_width * height / width;
    const double step = crop_width / width;
    // SourceWindow counts from pixel edges, landmarks from pixel centres: +0.5.
    const SourceWindow window{centre.y() + 0.5 - crop_height / 2, centre.x() + 0.5 - crop_width / 2, step, step};
    resample_bilinear(face, window, height, width, /*mirror=*/false, patch.data());
    for (int32_t y = 0; y < height; ++y)
      for (int32_t x = 0; x < width; ++x)
        out.at(y, eye * width + x) = uint8_t(std::clamp(std::lround(patch[size_t(y * width + x)]), 0L, 255L));
  }
  return out;
}

Eigen::Matrix3d rotation_from_rodrigues(const Eigen::Vector3d& v) {
  const double angle = v.norm();
  return angle > 0 ? Eigen::AngleAxisd(angle, v / angle).toRotationMatrix() : Eigen::Matrix3d::Identity();
}

Eigen::Vector3d rodrigues_from_rotation(const Eigen::Matrix3d& m) {
  const Eigen::AngleAxisd aa(m);
  return aa.axis() * aa.angle();
}

std::array<float, 2> head_pitch_yaw(const Eigen::Matrix3d& m) {
  return {float(std::asin(std::clamp(m(1, 2), -1.0, 1.0))), float(std::atan2(m(0, 2), m(2, 2)))};
}

}  // namespace gaze
