// MPIIGaze (Zhang et al., CVPR 2015 / TPAMI 2019) in its published layout, normalised eyes:
//   <root>/Data/Normalized/pXX/dayYY.mat       MATLAB level-5 files (read with matio):
//       data.left / data.right   1x1 structs, each with
//           gaze   [N 3] double  gaze direction in the normalised camera frame (x right,
//                                y down, z forward; from the eye to the target)
//           image  [N 36 60] uint8  histogram-equalised grey eye patches
//           pose   [N 3] double  head rotation (Rodrigues vector) in the same frame
//       filenames [N 1] cell of char rows ("0001.jpg")
//   <root>/Evaluation Subset/sample list for eye image/pXX.txt
//       "dayYY/NNNN.jpg left|right" per line: the standard 3,000 samples per person
//       (1,500 per eye), evaluated leave-one-person-out
// Layout and conventions checked against public readers (hysts/pytorch_mpiigaze, GazeHub,
// Zhang's converters); see docs/research/mpii_layout.md.
//
// Leave-one-person-out: split "train" holds every person but `hold_out`, "validation" and
// "test" hold that person only, "all" everyone (the only split allowed without a hold_out).
// subset "evaluation" reads the sample lists (a listed sample must exist in its day file,
// found by file name, never by position); "all" reads every normalised sample of both eyes.
// eye = left | right | both | pair. Right eyes are mirrored (image flipped left-right, gaze x and head
// yaw negated) when mirror_right, as the standard protocol does, so one model sees left eyes.
// eye = pair: one sample per frame (listed frames once, whichever eye listed them), the two
// patches side by side as the camera sees them (36x120: the participant's right eye on the
// left), labelled with the mean of the two eyes' gaze and head pose: RT-Gene's input.
// Participant = XX of pXX. Labels: gaze as stored (unit vector), head = (pitch, yaw) of the
// head pose, pitch = asin(M[1][2]), yaw = atan2(M[0][2], M[2][2]) with M = Rodrigues(pose).
// Images are decoded at open (36x60 bytes each: 97 MB for the evaluation subset), so get()
// is a copy. Bad input: gaze::Error naming the file and line or MATLAB field.
#pragma once

#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace gaze {

struct MpiiGazeOptions {
  std::string split = "all";          // train | validation | test | all
  int64_t hold_out = -1;              // the person left out (pXX number)
  std::string subset = "evaluation";  // evaluation | all
  std::string eye = "both";           // left | right | both | pair
  bool mirror_right = true;
  bool skip_bad = false;
};

class MpiiGazeDataset : public Dataset {
 public:
  MpiiGazeDataset(const std::string& root, const MpiiGazeOptions& options);
  int64_t size() const override { return int64_t(labels_.size()); }
  Sample get(int64_t index) const override;
  const SampleLabel& label(int64_t index) const override { return labels_.at(size_t(index)); }
  std::string describe() const override;

  static constexpr int32_t kHeight = 36, kWidth = 60;

 private:
  std::string root_;
  MpiiGazeOptions options_;
  std::vector<SampleLabel> labels_;
  int32_t width_ = kWidth;       // 2 * kWidth for eye pairs
  std::vector<uint8_t> pixels_;  // kHeight * width_ per item, row-major, already mirrored
};

// The people a leave-one-person-out split selects (shared by the MPII loaders): the pXX
// folders under `folder` it keeps, sorted. Throws for a bad split, a missing hold_out or none.
std::vector<std::string> mpii_people(const std::string& folder, const std::string& split, int64_t hold_out,
                                     const std::string& dataset);
// "everyone", "all but p3" or "p3".
std::string mpii_people_description(const std::string& split, int64_t hold_out);
// 7 for "p07", -1 for anything else.
int64_t mpii_person_number(const std::string& name);

}  // namespace gaze
