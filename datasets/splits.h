// The paper's evaluation protocols as index lists (no torch).
//
//   split_groups(): assigns whole groups (AEA recordings, participants) to train / validation /
//     test by fractions (AEA: 8:1:1), seeded; with >= 3 groups every split gets at least one.
//   personalisation_split(): for each participant, k calibration items (drawn with the seed)
//     and the rest for evaluation — the 5-shot protocol, and k in {0,1,3,5,10} for the curve.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <vector>

#include "datasets/dataset.h"

namespace gaze {

// Split index (0 train, 1 validation, 2 test) for each of `groups` groups.
std::vector<uint8_t> split_groups(int64_t groups, std::array<double, 3> fractions, uint64_t seed);

struct CalibrationSplit {
  std::vector<int64_t> calibration, evaluation;  // dataset indices
};

// Over `indices` (all items when empty). Participants with <= k items are left out: nothing
// would remain to evaluate on.
std::map<int64_t, CalibrationSplit> personalisation_split(const Dataset& data, int64_t k, uint64_t seed,
                                                          const std::vector<int64_t>& indices = {});

}  // namespace gaze
