// Models on disk: a trained GazeNet (or baseline) as a checkpoint, and a user's adapters on top of a base.
//
// load_model() builds the architecture the checkpoint's own stored config describes, so a
// caller never has to know which model a file holds. save_model() writes a model-only
// checkpoint (stage, step, the resolved config with the architecture actually trained).
//
// User adapter files (personalisation, SPEC §2 stage 4): HDF5 checkpoints of stage
// "user-adapter" holding only the user's tensors (the last-stage adapters, the head Linear
// too when personalised with it) and the CRC-32C fingerprint of every base tensor they do not
// replace. apply_user_adapter() refuses a file made for another base, so a user's few
// kilobytes can never silently land on the wrong model.
#pragma once

#include <cstdint>
#include <string>

#include "libgaze/config/config.h"
#include "libgaze/io/checkpoint.h"
#include "libgaze/models/baselines.h"
#include "libgaze/models/gaze_net.h"

namespace gaze {

// A model from a libgaze checkpoint; `loaded` (optional) receives the whole checkpoint.
GazeNet load_model(const std::string& checkpoint_path, Checkpoint* loaded = nullptr);

// Writes a model-only checkpoint atomically.
void save_model(const std::string& path, GazeNet& model, const Config& config, const std::string& stage, int64_t step);

// Any module's model-only checkpoint, `config` stored as given (its model.arch says what it is).
void save_module(const std::string& path, torch::nn::Module& model, const Config& config, const std::string& stage,
                 int64_t step);

// A baseline (libgaze/models/baselines.h) from a checkpoint whose model.arch names one.
Baseline load_baseline(const std::string& path);

// The tensors a user file carries: last-stage adapters (+ the head Linear with `with_head`),
// sharing storage with `model`.
TensorList user_tensors(GazeNet& model, bool with_head);

// CRC-32C over the base model's tensors that a user file does not replace.
uint32_t base_fingerprint(GazeNet& model, bool user_has_head);

void save_user_adapter(const std::string& path, GazeNet& model, bool with_head, int64_t participant,
                       uint32_t fingerprint, const Config& config);

// Loads a user's tensors into `model` (a copy of the base); throws gaze::Error for another base
// or a malformed file, leaving `model` untouched.
void apply_user_adapter(GazeNet& model, const std::string& path);

}  // namespace gaze
