// The MPII data normalisation for full-face gaze (Zhang, Sugano & Bulling, ETRA 2018,
// "Revisiting data normalization for appearance-based gaze estimation"), no torch.
//
// A virtual camera is rotated to look at the face centre c from a fixed distance, with its x
// axis following the head's, and the image is re-rendered from it:
//   z = c / |c|,  y = normalise(z x hR[:, 0]),  x = normalise(y x z),  R = [x; y; z] (rows)
//   S = diag(1, 1, distance / |c|),  C_n = [[focal, 0, W/2], [0, focal, H/2], [0, 0, 1]]
//   image: warp by C_n S R C^-1 (C the real camera; lens distortion removed in the same pass)
//   gaze:  normalise(R (target - c))        head: R hR
// as Zhang's own normalize_data.py does (the 2018 "modified" variant: gaze rotated, not scaled).
// Defaults: focal 960, distance 600 mm, 224 x 224 (GazeHub's and X. Shi's MPIIFaceGaze setting).
// Sources and the other variants public code uses: docs/research/mpii_layout.md section 4.
#pragma once

#include <Eigen/Core>
#include <array>

#include "datasets/image.h"

namespace gaze {

// A pinhole camera with OpenCV's lens distortion (k1, k2, p1, p2, k3), pixels and millimetres.
struct PinholeCamera {
  Eigen::Matrix3d matrix = Eigen::Matrix3d::Identity();  // [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
  std::array<double, 5> distortion{0, 0, 0, 0, 0};
  // Pixel of a camera-frame point (distorted as the real lens does).
  Eigen::Vector2d project(const Eigen::Vector3d& point) const;
  // Pixel of an undistorted image point given in pixels (applies the lens distortion).
  Eigen::Vector2d distort_pixel(const Eigen::Vector2d& pixel) const;
  // Its inverse, by fixed-point iteration on the pixel (OpenCV's undistortPoints iterates the
  // same way in normalised coordinates); exact to well under a hundredth of a pixel for webcam
  // lenses.
  Eigen::Vector2d undistort_pixel(const Eigen::Vector2d& pixel) const;
};

struct FaceNormalizationOptions {
  double focal = 960, distance = 600;
  int32_t height = 224, width = 224;
};

struct NormalizedFace {
  Eigen::Matrix3d rotation;  // R: camera frame -> normalised frame
  double scale = 1;          // distance / |c|
  Eigen::Matrix3d warp;      // undistorted source pixels -> normalised pixels (C_n S R C^-1)
};

// The normalising transform for a face centre `centre` (camera frame, mm) and head rotation.
NormalizedFace normalize_face(const PinholeCamera& camera, const Eigen::Vector3d& centre,
                              const Eigen::Matrix3d& head_rotation, const FaceNormalizationOptions& options);

// The normalised image: each output pixel's source point (inverse warp, then the lens
// distortion) sampled bilinearly, every channel; outside the source: 0.
Image warp_normalized(const Image& source, const PinholeCamera& camera, const NormalizedFace& face,
                      const FaceNormalizationOptions& options);

// Where a source pixel (as the real, distorted camera saw it: a landmark) lands in the
// normalised image.
Eigen::Vector2d normalized_pixel(const PinholeCamera& camera, const NormalizedFace& face, const Eigen::Vector2d& pixel);

// RT-Gene's input from a normalised face: each eye cropped around its two corners (normalised
// pixels) and resampled to height x width, the two side by side as the face shows them
// (height x 2 width; `corners` = image-left eye's two corners, then the image-right eye's).
// The crop is `margin` times the corner distance wide, centred on the corners' midpoint, with
// the output's aspect ratio. Grey faces only; non-finite corners throw gaze::Error.
Image crop_eye_pair(const Image& face, const std::array<Eigen::Vector2d, 4>& corners, int32_t height, int32_t width,
                    double margin = 1.6);

// A Rodrigues rotation vector <-> rotation matrix (OpenCV's cv::Rodrigues).
Eigen::Matrix3d rotation_from_rodrigues(const Eigen::Vector3d& v);
Eigen::Vector3d rodrigues_from_rotation(const Eigen::Matrix3d& m);

// MPII's (pitch, yaw) of a head rotation matrix: pitch = asin(M[1][2]), yaw = atan2(M[0][2], M[2][2]).
std::array<float, 2> head_pitch_yaw(const Eigen::Matrix3d& m);

}  // namespace gaze
