// The paper's evaluation protocols as index lists (no torch).
//
//   split_groups(): assigns whole groups (AEA recordings, participants) to train / validation /
//     test by fractions (AEA: 8:1:1), seeded; with >= 3 groups every split gets at least one.
//   personalisation_split(): for each participant, k calibration items (drawn with the seed)
//     and the rest for evaluation — the 5-shot protocol, and k in {0,1,3,5,10} for the curve.
//     When a "participant" is one sequence or recording (no person ids), random calibration
//     frames would sit between test frames that look the same; with a CalibrationTiming the
//     calibration items come from the start of the sequence and evaluation starts a gap after
//     them (a headset calibrating, then being used): either its first k frames, or the k frames
//     of a calibration window whose gaze labels lie farthest apart (a calibration routine that
//     shows targets across the field, rather than five frames of one glance).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "libgaze/config/config.h"

namespace gaze {

// Split index (0 train, 1 validation, 2 test) for each of `groups` groups.
std::vector<uint8_t> split_groups(int64_t groups, std::array<double, 3> fractions, uint64_t seed);

struct CalibrationSplit {
  std::vector<int64_t> calibration, evaluation;  // dataset indices
};

// Where a sequence's calibration frames come from (personalize.gap_ms, calibration_window_ms).
struct CalibrationTiming {
  int64_t gap_us = -1;    // < 0: random draws (person ids); >= 0: time-ordered, evaluation this long after calibration
  int64_t window_us = 0;  // 0: the first k frames; > 0: from the frames of the sequence's first window_us
};

// The timing personalisation uses for `users`: random draws when they have person ids, else
// the config's gap and window.
CalibrationTiming calibration_timing(const Dataset& users, const PersonalizeConfig& config);

// The same protocol as a report states it (trainers/report.h), in the config's units.
struct CalibrationProtocol {
  std::string unit = "participant";  // what a user is: participant, sequence, recording
  double gap_ms = -1;                // calibration-to-evaluation gap (-1: random draws)
  double calibration_window_ms = 0;  // > 0: calibrated on the frames of this window spread farthest over gaze
};
CalibrationProtocol calibration_protocol(const Dataset& users, const PersonalizeConfig& config);

// Every user personalisation calibrates: personalisation_split() over all of `users` with
// calibration_timing(), k = the largest of personalize.k and its k_curve. Every k calibrates on the
// first k of that pool and every model (DFT Gaze, its curve, the baselines, the exporter's user
// kernels) is scored on the same evaluation frames. Throws gaze::Error naming the data when no
// user is left with frames to evaluate.
std::map<int64_t, CalibrationSplit> personalisation_users(const Dataset& users, const PersonalizeConfig& config,
                                                          uint64_t seed);

// Over `indices` (all items when empty). Participants left with nothing to evaluate on are
// left out. Random draws: the calibration items in the order drawn (any prefix is a random draw),
// evaluation in index order. Time-ordered: items without timestamps order by index; evaluation starts gap_us
// after the last calibration candidate (the last of the first k, or the window's last frame).
// With a window the calibration items are in farthest-point order (each the frame whose gaze is
// farthest from those before it), so the first k' of them are the k' most spread for any k' < k;
// a window holding fewer than k frames is widened to the first k. A window needs timestamps:
// gaze::Error naming the item without one.
std::map<int64_t, CalibrationSplit> personalisation_split(const Dataset& data, int64_t k, uint64_t seed,
                                                          const std::vector<int64_t>& indices = {},
                                                          CalibrationTiming timing = {});

// The k calibration items a model at k uses: the first k of a personalisation_users() split's
// pool. One place for the slice, so DFT Gaze, the baselines and the exporter's user kernels
// calibrate on the same frames. gaze::Error when the pool holds fewer than k.
std::vector<int64_t> calibration_shots(const CalibrationSplit& split, int64_t k);

}  // namespace gaze
