// OpenEDS2020 (gaze-prediction track) in its published layout:
//   <root>/<split>/sequences/<seq>/<NNN>.png     640x400 8-bit grey, 100 Hz
//   <root>/<split>/labels/<seq>.txt              "NNN,x,y,z" per row, no header, CRLF ok
// Frames are sorted numerically; each frame needs the label row with its number; extra rows
// (the test split has 55 rows for 50 images) are allowed. Participants: `participants_file`
// ("seq_id,participant" per line; a header row such as "seq_id,participant" is recognised;
// ids may be numbers or names such as "p07", names are numbered in sorted order), else
// <root>/participants.csv when present, else each sequence stands in for a participant
// (participant_unit() says "sequence", numbered by its id when the id is a number).
#pragma once

#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace gaze {

struct OpenEdsOptions {
  std::string split = "train";
  std::string participants_file;
  int32_t expected_height = 400, expected_width = 640;  // 0 = accept any size
  bool skip_bad = false;
};

class OpenEdsDataset : public Dataset {
 public:
  OpenEdsDataset(const std::string& root, const OpenEdsOptions& options);
  int64_t size() const override { return static_cast<int64_t>(items_.size()); }
  Sample get(int64_t index) const override;
  const SampleLabel& label(int64_t index) const override { return items_[index].label; }
  std::string describe() const override;
  std::string participant_unit() const override { return by_person_ ? "participant" : "sequence"; }

 private:
  struct Item {
    std::string path;
    SampleLabel label;
  };
  std::string root_;
  OpenEdsOptions options_;
  bool by_person_ = false;
  std::vector<Item> items_;
};

}  // namespace gaze
