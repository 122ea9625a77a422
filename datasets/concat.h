// ConcatDataset: several datasets end to end, each tagged with a split id — e.g. the
// OpenEDS2020 train, validation and test splits packed into one file.
#pragma once

#include <memory>
#include <vector>

#include "datasets/dataset.h"

namespace gaze {

class ConcatDataset : public Dataset {
 public:
  void add(std::unique_ptr<Dataset> part, uint8_t split);
  int64_t size() const override { return total_; }
  Sample get(int64_t index) const override;
  const SampleLabel& label(int64_t index) const override;
  std::string describe() const override;
  // The parts' common unit, "mixed" when they differ.
  std::string participant_unit() const override;
  uint8_t split_of(int64_t index) const { return locate(index).first->split; }

 private:
  struct Part {
    std::unique_ptr<Dataset> data;
    uint8_t split;
    int64_t start;
  };
  std::pair<const Part*, int64_t> locate(int64_t index) const;
  std::vector<Part> parts_;
  int64_t total_ = 0;
};

}  // namespace gaze
