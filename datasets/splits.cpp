#include "datasets/splits.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "libgaze/core/error.h"
#include "libgaze/core/random.h"
#include "libgaze/metrics/gaze_vector.h"

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

CalibrationTiming calibration_timing(const Dataset& users, const PersonalizeConfig& config) {
  if (users.participant_unit() == "participant") return {};
  return {std::llround(config.gap_ms * 1000), std::llround(config.calibration_window_ms * 1000)};
}

CalibrationProtocol calibration_protocol(const Dataset& users, const PersonalizeConfig& config) {
  CalibrationProtocol protocol;
  protocol.unit = users.participant_unit();
  if (calibration_timing(users, config).gap_us >= 0) {
    protocol.gap_ms = config.gap_ms;
    protocol.calibration_window_ms = config.calibration_window_ms;
  }
  return protocol;
}

namespace {

// The `k` of `candidates` whose gaze labels lie farthest apart, greedily: first the one farthest
// from the candidates' mean direction, then each time the one whose nearest chosen label is
// farthest (largest angle = smallest cosine). Ties go to the earlier frame.
std::vector<int64_t> farthest_gazes(const Dataset& data, const std::vector<int64_t>& candidates, int64_t k) {
  std::vector<Vec3> gaze;
  std::array<float, 3> sum{0, 0, 0};
  for (int64_t i : candidates) {
    const std::array<float, 3>& g = data.label(i).gaze;
    gaze.push_back({g[0], g[1], g[2]});
    for (size_t a = 0; a < 3; ++a) sum[a] += g[a];
  }
  const Vec3 mean{sum[0], sum[1], sum[2]};
  std::vector<double> nearest(gaze.size());  // cosine to the nearest chosen label (the mean before the first)
  for (size_t j = 0; j < gaze.size(); ++j) nearest[j] = dot(gaze[j], mean);
  std::vector<bool> taken(gaze.size(), false);
  std::vector<int64_t> chosen;
  while (int64_t(chosen.size()) < k) {
    size_t best = gaze.size();
    for (size_t j = 0; j < gaze.size(); ++j) {
      if (!taken[j] && (best == gaze.size() || nearest[j] < nearest[best])) best = j;
    }
    taken[best] = true;
    chosen.push_back(candidates[best]);
    for (size_t j = 0; j < gaze.size(); ++j) {
      const double cosine = dot(gaze[j], gaze[best]);
      nearest[j] = chosen.size() == 1 ? cosine : std::max(nearest[j], cosine);
    }
  }
  return chosen;
}

// One sequence's split in time (see the header).
CalibrationSplit split_in_time(const Dataset& data, std::vector<int64_t> items, int64_t k, CalibrationTiming timing) {
  auto time_of = [&](int64_t i) { return std::make_pair(data.label(i).timestamp_us, i); };
  std::stable_sort(items.begin(), items.end(), [&](int64_t a, int64_t b) { return time_of(a) < time_of(b); });
  size_t candidates = size_t(k);
  if (timing.window_us > 0 && k > 0) {  // k = 0 calibrates on nothing: no window to skip
    for (int64_t i : items) {
      if (data.label(i).timestamp_us < 0) {
        throw Error(data.describe() + ": item '" + data.label(i).key +
                    "' has no timestamp; personalize.calibration_window_ms needs one on every frame");
      }
    }
    const int64_t end = data.label(items.front()).timestamp_us + timing.window_us;
    while (candidates < items.size() && data.label(items[candidates]).timestamp_us < end) ++candidates;
  }
  CalibrationSplit split;
  const std::vector<int64_t> pool(items.begin(), items.begin() + long(candidates));
  split.calibration = timing.window_us > 0 ? farthest_gazes(data, pool, k) : pool;
  const int64_t last = candidates ? data.label(items[candidates - 1]).timestamp_us : INT64_MIN;
  for (size_t j = candidates; j < items.size(); ++j) {
    const int64_t t = data.label(items[j]).timestamp_us;
    const bool timed = t >= 0 && last >= 0;
    if (!timed || k == 0 || t >= last + timing.gap_us) split.evaluation.push_back(items[j]);
  }
  return split;
}

}  // namespace

std::map<int64_t, CalibrationSplit> personalisation_split(const Dataset& data, int64_t k, uint64_t seed,
                                                          const std::vector<int64_t>& indices,
                                                          CalibrationTiming timing) {
  std::map<int64_t, std::vector<int64_t>> by_participant;
  if (indices.empty()) {
    for (int64_t i = 0; i < data.size(); ++i) by_participant[data.label(i).participant].push_back(i);
  } else {
    for (int64_t i : indices) by_participant[data.label(i).participant].push_back(i);
  }
  std::map<int64_t, CalibrationSplit> out;
  for (auto& [participant, items] : by_participant) {
    if (int64_t(items.size()) <= k) continue;
    if (timing.gap_us >= 0) {
      CalibrationSplit split = split_in_time(data, items, k, timing);
      if (!split.evaluation.empty()) out[participant] = std::move(split);
      continue;
    }
    std::vector<int64_t> shuffled = items;
    shuffle(shuffled, seed_mix(seed, stream::kPersonalize, uint64_t(participant)));
    // Kept in the order drawn, so that the first k' < k are a random draw too (the k-curve's, the
    // baselines'); sorted, they would be the earliest of the k, frames of one glance in a sequence.
    CalibrationSplit split;
    split.calibration.assign(shuffled.begin(), shuffled.begin() + k);
    std::vector<int64_t> sorted = split.calibration;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i : items) {
      if (!std::binary_search(sorted.begin(), sorted.end(), i)) split.evaluation.push_back(i);
    }
    out[participant] = std::move(split);
  }
  return out;
}

std::vector<int64_t> calibration_shots(const CalibrationSplit& split, int64_t k) {
  if (k < 0 || k > int64_t(split.calibration.size())) {
    throw Error("calibration shots: k = " + std::to_string(k) + " but the pool holds " +
                std::to_string(split.calibration.size()) +
                " (a personalisation_users() pool holds the largest of personalize.k and k_curve)");
  }
  return {split.calibration.begin(), split.calibration.begin() + k};
}

std::map<int64_t, CalibrationSplit> personalisation_users(const Dataset& users, const PersonalizeConfig& config,
                                                          uint64_t seed) {
  int64_t k = config.k;
  for (int64_t c : config.k_curve) k = std::max(k, c);
  const CalibrationTiming timing = calibration_timing(users, config);
  auto splits = personalisation_split(users, k, seed, {}, timing);
  if (splits.empty()) {
    std::string why =
        "no " + users.participant_unit() + " has frames left to evaluate after calibrating on " + std::to_string(k);
    if (timing.window_us > 0) {
      why += " across its first " + std::to_string(timing.window_us / 1000) + " ms (personalize.calibration_window_ms)";
    }
    if (timing.gap_us >= 0) why += " and waiting " + std::to_string(timing.gap_us / 1000) + " ms (personalize.gap_ms)";
    why += timing.window_us > 0 ? "; shorten the window" : "; each needs more than " + std::to_string(k) + " images";
    throw Error(users.describe() + ": " + why);
  }
  return splits;
}

}  // namespace gaze
