// CachedDataset: another dataset's decoded images kept in memory, up to a byte budget.
//
// Training reads the same items every epoch; decoding them again (inflate, checksums, JPEG or
// VRS decompression) is loader work that competes with the training step for the same cores.
// The first get(i) decodes through the source and keeps the image while the budget lasts; later
// reads of i copy it. Items beyond the budget are decoded on every read, so any dataset size
// works and memory stays bounded. Labels, sizes and descriptions pass through unchanged, and
// every get() returns exactly what the source returns. Thread-safe like any Dataset: two
// threads missing on one item both decode it and the first keeps it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace gaze {

class CachedDataset : public Dataset {
 public:
  CachedDataset(std::unique_ptr<Dataset> source, int64_t budget_bytes);
  int64_t size() const override { return source_->size(); }
  Sample get(int64_t index) const override;
  const SampleLabel& label(int64_t index) const override { return source_->label(index); }
  std::string describe() const override { return source_->describe(); }
  std::string participant_unit() const override { return source_->participant_unit(); }
  int64_t cached_bytes() const;  // pixels held now

 private:
  std::unique_ptr<Dataset> source_;
  const int64_t budget_bytes_;
  mutable std::mutex mutex_;
  mutable int64_t used_bytes_ = 0;
  mutable std::vector<std::shared_ptr<const Image>> images_;  // by index; null until cached
};

// `source` behind a cache of `budget_mib` MiB; budget 0 returns the source itself.
std::unique_ptr<Dataset> cache_decoded(std::unique_ptr<Dataset> source, int64_t budget_mib);

}  // namespace gaze
