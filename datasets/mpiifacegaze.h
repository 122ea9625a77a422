// MPIIFaceGaze (Zhang et al., CVPR Workshops 2017) in its published layout, normalised on load:
//   <root>/pXX/pXX.txt   one line per image, 28 fields separated by spaces (camera frame, mm):
//       dayYY/NNNN.jpg | screen gaze (2, px) | 6 landmarks (12, px: four eye corners, two mouth
//       corners) | head rotation (3, Rodrigues) | head translation (3) | face centre (3) |
//       gaze target (3) | left|right (the eye MPIIGaze's evaluation used)
//   <root>/pXX/dayYY/NNNN.jpg               the webcam frames
//   <root>/pXX/Calibration/Camera.mat       cameraMatrix [3 3], distCoeffs [1 5] (MATLAB)
// Checked against public readers; see docs/research/mpii_layout.md section 3.
//
// get(i) decodes the frame and applies the standard data normalisation (face_normalization.h:
// a 224x224 face seen from 600 mm by a focal-960 camera, lens distortion removed): label.gaze
// is normalise(R (target - centre)) in the normalised camera frame (x right, y down, z forward,
// from the face to the target), label.head the (pitch, yaw) of R hR. Faces are not mirrored for
// the "right" tag (a face shows both eyes); the tag is checked and kept in the key. Images are
// grey (the JPEG's luma) unless `colour`. Participant = XX; leave-one-person-out splits as MPIIGaze
// (split + hold_out). With `eye_pair` a sample is the two eyes cropped from that face at their
// landmarks (36x120, crop_eye_pair), labelled like the face.
// Bad input: gaze::Error naming the file and line or MATLAB field.
#pragma once

#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "datasets/face_normalization.h"
#include "datasets/mpiigaze.h"  // mpii_people

namespace gaze {

struct MpiiFaceGazeOptions {
  std::string split = "all";  // train | validation | test | all (see MpiiGazeOptions)
  int64_t hold_out = -1;
  bool colour = false;
  bool skip_bad = false;
  // The two eyes cropped from the normalised face at their landmarks, side by side
  // (crop_eye_pair: 36x120), instead of the face: RT-Gene's input. Grey only.
  bool eye_pair = false;
  FaceNormalizationOptions normalization;
};

class MpiiFaceGazeDataset : public Dataset {
 public:
  MpiiFaceGazeDataset(const std::string& root, const MpiiFaceGazeOptions& options);
  int64_t size() const override { return int64_t(items_.size()); }
  Sample get(int64_t index) const override;
  const SampleLabel& label(int64_t index) const override { return items_.at(size_t(index)).label; }
  std::string describe() const override;

  // What one annotation line holds (camera frame, mm), parsed.
  struct Annotation {
    std::string image;  // dayYY/NNNN.jpg
    std::array<double, 2> screen{};
    std::array<Eigen::Vector2d, 6> landmarks;
    Eigen::Vector3d head_rotation, head_translation, face_centre, gaze_target;
    std::string eye;  // left | right
  };
  static Annotation parse_annotation(const std::string& line, const std::string& where);

 private:
  struct Item {
    std::string path;
    size_t camera = 0;
    NormalizedFace face;
    std::array<Eigen::Vector2d, 4> eye_corners;  // in the normalised face (image-left eye first)
    SampleLabel label;
  };
  std::string root_;
  MpiiFaceGazeOptions options_;
  std::vector<PinholeCamera> cameras_;  // one per person
  std::vector<Item> items_;
};

}  // namespace gaze
