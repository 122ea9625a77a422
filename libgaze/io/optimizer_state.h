// AdamW state <-> named tensors, so checkpoints store optimiser state by parameter name
// ("stages.3.0.adapter.up.weight:exp_avg") instead of LibTorch's pointer-keyed map, and a
// resumed run continues with bit-identical moments and step counts.
#pragma once

#include <torch/optim/adamw.h>

#include "libgaze/io/checkpoint.h"

namespace gaze {

// `params` are the optimiser's parameters with their names, in the order they were given to it.
TensorList adamw_state_to_tensors(const torch::optim::AdamW& optimizer, const TensorList& params);

// Restores moments and step counts; throws gaze::Error naming `source` and the parameter when
// the saved state lacks one or has the wrong shape.
void adamw_state_from_tensors(torch::optim::AdamW& optimizer, const TensorList& params, const TensorList& saved,
                              const std::string& source);

}  // namespace gaze
