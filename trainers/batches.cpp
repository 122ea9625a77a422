#include "trainers/batches.h"

#include <algorithm>
#include <numeric>

#include "datasets/kmeans.h"
#include "libgaze/core/error.h"
#include "libgaze/core/random.h"

namespace gaze {
namespace {

class ShuffledPlan : public IndexPlan {
 public:
  ShuffledPlan(std::vector<int64_t> items, int64_t batch, uint64_t seed)
      : items_(std::move(items)), batch_(batch), seed_(seed) {}
  // Stateless (called from several workers): the epoch's permutation is rebuilt per call.
  std::vector<int64_t> indices(int64_t step) const override {
    std::vector<int64_t> out, permutation;
    const int64_t n = int64_t(items_.size());
    int64_t epoch = -1;
    for (int64_t k = step * batch_; k < (step + 1) * batch_; ++k) {
      if (k / n != epoch) {
        epoch = k / n;
        permutation = items_;
        SplitMix rng(seed_mix(seed_, uint64_t(epoch)));
        for (size_t i = permutation.size(); i > 1; --i) std::swap(permutation[i - 1], permutation[rng.next() % i]);
      }
      out.push_back(permutation[k % n]);
    }
    return out;
  }

 private:
  std::vector<int64_t> items_;
  int64_t batch_;
  uint64_t seed_;
};

class BalancedPlan : public IndexPlan {
 public:
  BalancedPlan(std::vector<int32_t> assignment, std::vector<int64_t> items, int64_t batch, uint64_t seed)
      : sampler_(assignment, seed), items_(std::move(items)), batch_(batch), seed_(seed) {}
  std::vector<int64_t> indices(int64_t step) const override {
    ClusterBalancedSampler sampler = sampler_;
    sampler.set_state(seed_mix(seed_, uint64_t(step)));
    std::vector<int64_t> out;
    for (int64_t j = 0; j < batch_; ++j) out.push_back(items_[sampler.next()]);
    return out;
  }

 private:
  ClusterBalancedSampler sampler_;
  std::vector<int64_t> items_;
  int64_t batch_;
  uint64_t seed_;
};

class SequentialPlan : public IndexPlan {
 public:
  SequentialPlan(std::vector<int64_t> items, int64_t batch) : items_(std::move(items)), batch_(batch) {}
  std::vector<int64_t> indices(int64_t step) const override {
    const int64_t begin = std::min<int64_t>(step * batch_, int64_t(items_.size()));
    const int64_t end = std::min<int64_t>(begin + batch_, int64_t(items_.size()));
    return {items_.begin() + begin, items_.begin() + end};
  }

 private:
  std::vector<int64_t> items_;
  int64_t batch_;
};

std::vector<int64_t> all_or(std::vector<int64_t> items, int64_t n) {
  if (!items.empty()) return items;
  items.resize(size_t(n));
  std::iota(items.begin(), items.end(), 0);
  return items;
}

}  // namespace

std::unique_ptr<IndexPlan> shuffled_plan(int64_t dataset_size, int64_t batch, uint64_t seed,
                                         std::vector<int64_t> items) {
  items = all_or(std::move(items), dataset_size);
  if (items.empty()) throw Error("cannot draw batches from an empty dataset");
  return std::make_unique<ShuffledPlan>(std::move(items), batch, seed);
}

std::unique_ptr<IndexPlan> balanced_plan(std::vector<int32_t> assignment, int64_t batch, uint64_t seed,
                                         std::vector<int64_t> items) {
  items = all_or(std::move(items), int64_t(assignment.size()));
  return std::make_unique<BalancedPlan>(std::move(assignment), std::move(items), batch, seed);
}

std::unique_ptr<IndexPlan> sequential_plan(std::vector<int64_t> items, int64_t batch) {
  return std::make_unique<SequentialPlan>(std::move(items), batch);
}

Batch make_batch(const Dataset& data, const std::vector<int64_t>& indices, const PreprocessOptions& options,
                 uint64_t augment_seed, SkipLog* skip, std::mutex* skip_mutex, int64_t offset) {
  const int64_t plane = int64_t(3) * options.height * options.width;
  at::Tensor images = at::empty({int64_t(indices.size()), 3, options.height, options.width});
  at::Tensor gaze = at::empty({int64_t(indices.size()), 3});
  at::Tensor head = at::empty({int64_t(indices.size()), 2});
  at::Tensor blink = at::zeros({int64_t(indices.size())}, at::kBool);
  Batch batch;
  int64_t row = 0;
  for (size_t j = 0; j < indices.size(); ++j) {
    Sample sample;
    try {
      sample = data.get(indices[j]);
    } catch (const Error& e) {
      if (!skip) throw;
      std::lock_guard<std::mutex> lock(*skip_mutex);
      skip->add(e.what());
      continue;
    }
    const SampleLabel label = preprocess_sample(sample, options, seed_mix(augment_seed, uint64_t(offset) + j),
                                                images.data_ptr<float>() + row * plane);
    for (int k = 0; k < 3; ++k) gaze.data_ptr<float>()[row * 3 + k] = label.gaze[size_t(k)];
    for (int k = 0; k < 2; ++k) head.data_ptr<float>()[row * 2 + k] = label.head[size_t(k)];
    blink[row] = sample.label.blink;
    batch.indices.push_back(indices[j]);
    batch.participants.push_back(sample.label.participant);
    ++row;
  }
  batch.offset = offset;
  batch.global_size = offset + int64_t(indices.size());
  batch.images = images.narrow(0, 0, row);
  batch.gaze = gaze.narrow(0, 0, row);
  batch.head = head.narrow(0, 0, row);
  batch.blink = blink.narrow(0, 0, row);
  return batch;
}

BatchStream::BatchStream(const Dataset& data, const IndexPlan& plan, int64_t first, int64_t last,
                         const PreprocessOptions& options, uint64_t seed, int64_t workers, int64_t window,
                         bool skip_bad, Shard shard) {
  prefetcher_ = std::make_unique<Prefetcher<Batch>>(
      std::max<int64_t>(0, last - first),
      [this, &data, &plan, first, options, seed, skip_bad, shard](int64_t b) {
        std::vector<int64_t> indices = plan.indices(first + b);
        const int64_t global = int64_t(indices.size()), per = global / shard.count;
        if (global % shard.count != 0) {
          throw Error("a global batch of " + std::to_string(global) + " items does not split into " +
                      std::to_string(shard.count) + " equal shards (train.batch_size must divide by the world size)");
        }
        indices = std::vector<int64_t>(indices.begin() + shard.index * per, indices.begin() + (shard.index + 1) * per);
        Batch batch = make_batch(data, indices, options, seed_mix(seed, uint64_t(first + b)),
                                 skip_bad ? &skipped_ : nullptr, &mutex_, shard.index * per);
        batch.global_size = global;
        batch.step = first + b;
        return batch;
      },
      workers, window, false);
}

SkipLog BatchStream::skipped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return skipped_;
}

}  // namespace gaze
