// How much of a model's error is a constant offset per person: the part a calibration that
// learns one correction per person could remove, and what would be left (no dependencies).
//
// For each participant, the offset is the rotation that takes the mean of their predicted
// directions onto the mean of their labels (the smallest rotation between the two: a yaw/pitch
// shift, in any angle convention). Applying it to each of their predictions and measuring again
// gives the residual: roughly the error of an oracle that knows every person's offset from all
// of their frames (not a strict lower bound: this rotation does not minimise the mean angular
// error, it aligns the means). A residual near the raw error says the error is per frame (noise, blinks, appearance);
// a small residual says it is per person (kappa, headset fit, anatomy the model has not learnt).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "libgaze/metrics/angular_error.h"
#include "libgaze/metrics/gaze_vector.h"

namespace gaze {

struct PersonOffsets {
  std::map<int64_t, double> offset_deg;  // per participant: the angle of their rotation
  double mean_offset_deg = 0;            // the mean over participants
  ParticipantErrors residual;            // errors after each participant's rotation
};

// `predictions`, `labels` and `participants` are parallel (one entry per frame). Throws
// gaze::Error when their lengths differ or they are empty.
PersonOffsets split_person_offsets(const std::vector<Vec3>& predictions, const std::vector<Vec3>& labels,
                                   const std::vector<int64_t>& participants);

}  // namespace gaze
