#include "datasets/cached.h"

namespace gaze {

CachedDataset::CachedDataset(std::unique_ptr<Dataset> source, int64_t budget_bytes)
    : source_(std::move(source)), budget_bytes_(budget_bytes), images_(size_t(source_->size())) {
  skipped_ = source_->skipped();
}

Sample CachedDataset::get(int64_t index) const {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (const auto& image = images_.at(size_t(index))) return Sample{*image, source_->label(index)};
  }
  Sample sample = source_->get(index);
  const int64_t bytes = int64_t(sample.image.pixels.size());
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = images_[size_t(index)];
  if (!slot && used_bytes_ + bytes <= budget_bytes_) {
    slot = std::make_shared<const Image>(sample.image);
    used_bytes_ += bytes;
  }
  return sample;
}

int64_t CachedDataset::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return used_bytes_;
}

std::unique_ptr<Dataset> cache_decoded(std::unique_ptr<Dataset> source, int64_t budget_mib) {
  if (budget_mib <= 0) return source;
  return std::make_unique<CachedDataset>(std::move(source), budget_mib << 20);
}

}  // namespace gaze
