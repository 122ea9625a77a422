#include "datasets/splits.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "libgaze/core/error.h"
#include "libgaze/core/random.h"

namespace gaze {
namespace {

// Fisher-Yates with our deterministic generator (std::shuffle's result is library-specific).
template <class T>
void shuffle(std::vector<T>& v, uint64_t seed) {
  SplitMix rng(seed);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.next() % i]);
}

}  // namespace

std::vector<uint8_t> split_groups(int64_t groups, std::array<double, 3> fractions, uint64_t seed) {
  const double total = fractions[0] + fractions[1] + fractions[2];
  if (!(total > 0) || fractions[0] < 0 || fractions[1] < 0 || fractions[2] < 0) {
    throw Error("split fractions must be non-negative and not all zero");
  }
  std::array<int64_t, 3> counts;
  for (int s = 0; s < 3; ++s) counts[s] = std::llround(groups * fractions[s] / total);
  if (groups >= 3) {
    for (int s = 1; s < 3; ++s) {
      if (fractions[s] > 0 && counts[s] == 0) counts[s] = 1;
    }
  }
  counts[0] = groups - counts[1] - counts[2];
  std::vector<int64_t> order(groups);
  std::iota(order.begin(), order.end(), 0);
  shuffle(order, seed_mix(seed, stream::kSplit));
  std::vector<uint8_t> split(groups);
  for (int64_t i = 0; i < groups; ++i) {
    split[order[i]] = i < counts[0] ? 0 : i < counts[0] + counts[1] ? 1 : 2;
  }
  return split;
}

std::map<int64_t, CalibrationSplit> personalisation_split(const Dataset& data, int64_t k, uint64_t seed,
                                                          const std::vector<int64_t>& indices, int64_t gap_us) {
  std::map<int64_t, std::vector<int64_t>> by_participant;
  if (indices.empty()) {
    for (int64_t i = 0; i < data.size(); ++i) by_participant[data.label(i).participant].push_back(i);
  } else {
    for (int64_t i : indices) by_participant[data.label(i).participant].push_back(i);
  }
  std::map<int64_t, CalibrationSplit> out;
  for (auto& [participant, items] : by_participant) {
    if (int64_t(items.size()) <= k) continue;
    if (gap_us >= 0) {
      std::vector<int64_t> in_time = items;
      auto time_of = [&](int64_t i) { return std::make_pair(data.label(i).timestamp_us, i); };
      std::stable_sort(in_time.begin(), in_time.end(), [&](int64_t a, int64_t b) { return time_of(a) < time_of(b); });
      CalibrationSplit split;
      split.calibration.assign(in_time.begin(), in_time.begin() + k);
      const int64_t last = k ? data.label(in_time[size_t(k - 1)]).timestamp_us : INT64_MIN;
      for (size_t j = size_t(k); j < in_time.size(); ++j) {
        const int64_t t = data.label(in_time[j]).timestamp_us;
        const bool timed = t >= 0 && last >= 0;
        if (!timed || k == 0 || t >= last + gap_us) split.evaluation.push_back(in_time[j]);
      }
      if (!split.evaluation.empty()) out[participant] = std::move(split);
      continue;
    }
    std::vector<int64_t> shuffled = items;
    shuffle(shuffled, seed_mix(seed, stream::kPersonalize, uint64_t(participant)));
    CalibrationSplit split;
    split.calibration.assign(shuffled.begin(), shuffled.begin() + k);
    std::sort(split.calibration.begin(), split.calibration.end());
    for (int64_t i : items) {
      if (!std::binary_search(split.calibration.begin(), split.calibration.end(), i)) split.evaluation.push_back(i);
    }
    out[participant] = std::move(split);
  }
  return out;
}

}  // namespace gaze
