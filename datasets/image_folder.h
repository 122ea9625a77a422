// A folder of images for masked pretraining: ImageNet-style class folders (root/<class>/*.png)
// or a flat folder (root/*.jpg). Files are found recursively (.png, .jpg, .jpeg), sorted by
// path; each class folder becomes a participant id so splits can stratify. There is no gaze
// label: label().gaze is (0,0,1). Images decode to grey (channels = 1, like eye images) or RGB
// (channels = 3: natural images for ImageNet-style pretraining and distillation).
#pragma once

#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace gaze {

class ImageFolderDataset : public Dataset {
 public:
  explicit ImageFolderDataset(const std::string& root, int32_t channels = 1);
  int64_t size() const override { return static_cast<int64_t>(items_.size()); }
  Sample get(int64_t index) const override;
  const SampleLabel& label(int64_t index) const override { return items_[index].label; }
  std::string participant_unit() const override { return "class"; }
  std::string describe() const override { return "folder " + root_ + (channels_ == 3 ? " (RGB)" : " (grey)"); }

 private:
  struct Item {
    std::string path;
    SampleLabel label;
  };
  std::string root_;
  int32_t channels_;
  std::vector<Item> items_;
};

}  // namespace gaze
