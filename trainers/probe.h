// Linear probes: how much gaze a model's features hold, stage by stage (issue 18: what the
// frozen backbone can and cannot represent).
//
// Each image's output of every stage (its blocks, adapters included when the checkpoint has
// trained ones) is pooled two ways: a global average, which is all the head sees after stage 4,
// and a GxG grid of averages, which keeps where things are (the pupil's position carries the
// gaze). A ridge regression from the standardised pooled features to (yaw, pitch) is fitted on
// the `train` frames and scored as the mean angular error on the `heldout` frames (people unseen;
// blinks left out of both). The ridge strength is picked from a grid on a quarter of the training
// people held out of the fit, never on the scored frames. A probe far below the model's own
// error says the features hold the gaze and the head/adapters fail to read it; a probe near the
// mean-gaze baseline says the features have lost it.
#pragma once

#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "libgaze/config/config.h"
#include "libgaze/core/json.h"
#include "libgaze/models/gaze_net.h"

namespace gaze {

struct ProbeRow {
  int64_t stage = 0;    // 1..4
  std::string pooling;  // "global", or "grid GxG"
  int64_t dims = 0;     // features per image
  double lambda = 0;    // chosen ridge strength (relative to the standardised features)
  double train_deg = 0, heldout_deg = 0;
};

struct ProbeReport {
  std::string checkpoint, train, heldout;  // what was probed, on what
  int64_t train_frames = 0, heldout_frames = 0;
  double mean_gaze_deg = 0;  // the held-out error of predicting the training frames' mean gaze
  std::vector<ProbeRow> rows;
  Json json() const;
  std::string markdown() const;
};

// Probes every stage of `model` (in eval mode) with global and `grid` x `grid` pooling.
ProbeReport linear_probe(GazeNet& model, const Dataset& train, const Dataset& heldout, const Config& config,
                         int64_t grid);

}  // namespace gaze
