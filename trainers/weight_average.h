// Polyak averaging of the weights a run trains (train.ema; 0 = off).
//
// After each optimiser step the average moves toward the live weights:
//     average = d * average + (1 - d) * weights,   d = min(train.ema, (1 + step) / (10 + step))
// with `step` the 0-based step just taken. The warm-up bound (TensorFlow's
// ExponentialMovingAverage with num_updates) keeps the starting weights from dominating a short
// run: over N steps the average spans roughly the last N/9 of them, or 1/(1 - train.ema) steps
// when that is fewer.
//
// What is averaged: the module's parameters that train (requires_grad once the stage has chosen
// them) and its floating-point buffers (BatchNorm running statistics, so they match the averaged
// weights). Frozen parameters never move, so they need no average. Auxiliary modules (MAE
// decoder, KD projectors) are not averaged: they are discarded after training.
//
// The run's model.h5 holds the average (copy_into_model() before saving); checkpoints/last.h5
// holds the live weights and the average as "ema.<name>" state, so a resumed run ends
// bit-identical to an uninterrupted one.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <string>

#include "libgaze/io/checkpoint.h"

namespace gaze {

class WeightAverage {
 public:
  // Starts the average at the module's current weights. `decay` in [0, 1); 0 = inactive.
  WeightAverage(torch::nn::Module& module, double decay);
  bool active() const { return decay_ > 0; }
  // After optimiser step `step` (0-based).
  void update(int64_t step);
  // The average, named "ema.<tensor name>", for a checkpoint's state (empty when inactive).
  TensorList state() const;
  // Restores the average from a checkpoint's state; throws Error naming `source` when it is
  // missing or misshapen (a run checkpointed without train.ema cannot resume with it).
  void restore(const TensorList& checkpoint_state, const std::string& source);
  // Overwrites the module's averaged tensors with the average (no-op when inactive).
  void copy_into_model();

 private:
  double decay_;
  TensorList live_, average_;  // same names, same order
};

}  // namespace gaze
