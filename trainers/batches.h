// Training and evaluation batches: which items each step uses, decoded and pre-processed on
// worker threads ahead of the step.
//
// The items of step s are a pure function of (seed, s) — a seeded permutation per epoch, or
// K-means-balanced draws seeded by the step — and so is each item's augmentation. A resumed
// run therefore needs only the step to continue exactly where it stopped, and a run with the
// same seed sees the same batches.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "datasets/dataset.h"
#include "datasets/prefetcher.h"
#include "datasets/preprocess.h"

namespace gaze {

struct Batch {
  at::Tensor images;  // [B, 3, H, W] float, normalised
  at::Tensor gaze;    // [B, 3] unit vectors (mirrored with flipped images)
  at::Tensor head;    // [B, 2] head pose (pitch, yaw), yaw mirrored with flipped images
  at::Tensor blink;   // [B] bool
  std::vector<int64_t> indices, participants;
  int64_t step = 0;
  // Where these items sit in their step's global batch (data-parallel shards; 0 and the batch
  // size otherwise): per-item randomness (augmentation, MAE masks) is drawn by global position,
  // so N shards see exactly what one process would.
  int64_t offset = 0, global_size = 0;
};

// Which slice of every global batch this process trains on (distributed.h).
struct Shard {
  int64_t index = 0, count = 1;
};

// Dataset indices for each step.
class IndexPlan {
 public:
  virtual ~IndexPlan() = default;
  virtual std::vector<int64_t> indices(int64_t step) const = 0;
};

// Epochs of seeded permutations of `items` (all indices when empty), `batch` per step.
std::unique_ptr<IndexPlan> shuffled_plan(int64_t dataset_size, int64_t batch, uint64_t seed,
                                         std::vector<int64_t> items = {});
// K-means-balanced: per step, `batch` draws of (uniform cluster, uniform member).
std::unique_ptr<IndexPlan> balanced_plan(std::vector<int32_t> assignment, int64_t batch, uint64_t seed,
                                         std::vector<int64_t> items = {});
// items[step*batch ...] in order, the last batch short (evaluation).
std::unique_ptr<IndexPlan> sequential_plan(std::vector<int64_t> items, int64_t batch);

// Decodes and pre-processes the given items into a batch. With `skip`, a bad item is dropped
// from the batch and recorded; otherwise its gaze::Error propagates.
Batch make_batch(const Dataset& data, const std::vector<int64_t>& indices, const PreprocessOptions& options,
                 uint64_t augment_seed, SkipLog* skip = nullptr, std::mutex* skip_mutex = nullptr, int64_t offset = 0);

// Batches for steps [first, last) on `workers` threads, `window` batches ahead; with a shard,
// each batch is that shard's equal slice of the plan's global batch.
class BatchStream {
 public:
  BatchStream(const Dataset& data, const IndexPlan& plan, int64_t first, int64_t last, const PreprocessOptions& options,
              uint64_t seed, int64_t workers, int64_t window, bool skip_bad, Shard shard = {});
  std::optional<Batch> next() { return prefetcher_->next(); }
  SkipLog skipped() const;

 private:
  SkipLog skipped_;
  mutable std::mutex mutex_;
  std::unique_ptr<Prefetcher<Batch>> prefetcher_;
};

}  // namespace gaze
