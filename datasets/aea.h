// Aria Everyday Activities (AEA) recordings, read natively: VRS eye stream 211-1 + MPS gaze CSV.
//
// `root` is one recording folder (recording.vrs, mps/eye_gaze/general_eye_gaze.csv) or a folder
// of them (each sub-folder holding a recording.vrs), taken in name order; each recording is
// one participant (its wearer). Eye frames are the data records of stream 211-1 — one JPEG of
// both eye cameras side by side (640x240 on Aria Gen1). A frame's timestamp in µs (seconds
// x 1e6, truncated) is matched to the CSV row with the same tracking_timestamp_us, or to the
// nearest row within `tolerance_us`; frames without a row are left out and counted.
//
// `eye` picks what a sample is: "pair" the whole frame, "left"/"right" the left/right image
// half, "both" two samples per frame. The right half can be mirrored (`mirror_right`) so both
// eyes look alike; its gaze label's x is mirrored with it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "datasets/mps_gaze_csv.h"
#include "datasets/vrs.h"

namespace gaze {

struct AeaOptions {
  std::string eye = "both";
  bool mirror_right = true;
  int64_t tolerance_us = 0;
  bool skip_bad = false;
};

// Device seconds -> the integer µs that MPS files use (truncation, robust to binary rounding).
int64_t vrs_time_to_us(double seconds);

class AeaDataset : public Dataset {
 public:
  AeaDataset(const std::string& root, const AeaOptions& options);
  int64_t size() const override { return static_cast<int64_t>(items_.size()); }
  Sample get(int64_t index) const override;
  const SampleLabel& label(int64_t index) const override { return items_[index].label; }
  std::string describe() const override;
  std::string participant_unit() const override { return "recording"; }

  struct RecordingInfo {
    std::string name;
    int64_t eye_frames = 0, matched = 0;
    MpsGazeLayout layout = MpsGazeLayout::kGeneralV2;
  };
  const std::vector<RecordingInfo>& recordings() const { return info_; }

 private:
  enum class Side { kPair, kLeft, kRight };
  struct Item {
    size_t recording;
    VrsRecord record;
    Side side;
    SampleLabel label;
  };
  std::string root_;
  AeaOptions options_;
  std::vector<std::unique_ptr<VrsReader>> readers_;
  std::vector<RecordingInfo> info_;
  std::vector<Item> items_;
};

}  // namespace gaze
