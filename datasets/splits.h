// The paper's evaluation protocols as index lists (no torch).
//
//   split_groups(): assigns whole groups (AEA recordings, participants) to train / validation /
//     test by fractions (AEA: 8:1:1), seeded; with >= 3 groups every split gets at least one.
//   personalisation_split(): for each participant, k calibration items (drawn with the seed)
//     and the rest for evaluation — the 5-shot protocol, and k in {0,1,3,5,10} for the curve.
//     When a "participant" is one sequence or recording (no person ids), random calibration
//     frames would sit between test frames that look the same; with `gap_us` >= 0 the
//     calibration items are the participant's first k in time and evaluation starts gap_us
//     after the last of them (a headset calibrating, then being used).
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

// Over `indices` (all items when empty). Participants left with nothing to evaluate on are
// left out. gap_us < 0: random calibration draws; >= 0: time-ordered with that gap (items
// without timestamps order by index).
std::map<int64_t, CalibrationSplit> personalisation_split(const Dataset& data, int64_t k, uint64_t seed,
                                                          const std::vector<int64_t>& indices = {},
                                                          int64_t gap_us = -1);

}  // namespace gaze
