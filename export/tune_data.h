// The float side of on-device personalisation (export/tune.h): the tensors a gz_tune_graph
// points at, owned, taken from a trained student, and the replay pack the exporter adds.
// Torch-free; tune_data() reads the model (defined in export/quantizer.cpp beside the rest of
// quantize_model(), which fills QuantizedNet::tune with it).
//
// The last stage's blocks: block 0's body is frozen and cached per frame (its adapter is not),
// blocks 1.. run forward and backward at every step, so their bodies are kept here in the
// layouts export/tune.h wants (pointwise weights [in][out], depthwise [49][C]).
#pragma once

#include <cstdint>
#include <vector>

#include "export/tune.h"

namespace gaze {

class GazeNetImpl;

// gz_tune_options (export/tune_run.h) as the exporter writes them into the generated source.
struct TuneDefaults {
  int32_t steps = 60, batch_size = 32, views = 4;
  float lr = 3e-3f, replay_fraction = 0.5f;
  float shift = 0.04f, brightness = 0.1f, contrast = 0.15f, gamma = 0.15f, noise = 2.0f;
  bool laplace_nll = false;  // train.gaze_loss
  bool train_head = false;   // personalize.train_head
};

struct TuneBlockData {
  std::vector<float> dw_weight, dw_bias, norm_weight, norm_bias, pw1_weight, pw1_bias, grn_gamma, grn_beta, pw2_weight,
      pw2_bias;
  std::vector<float> bn_mean, bn_var;  // the adapter's BatchNorm statistics
};

struct TuneData {
  int32_t height = 0, width = 0, channels = 0, hidden = 0;  // the last stage at the export's input size
  int32_t grid_h = 1, grid_w = 1;                           // the head's cells (model.head.grid)
  float norm_eps = 1e-6f, bn_eps = 1e-5f, slope = 0.01f;
  bool scale_trained = true;
  std::vector<TuneBlockData> blocks;
  std::vector<float> adapters;  // the base's adapters, gz_tune parameter order (no head)
  std::vector<float> head_norm_weight, head_norm_bias, head_weight, head_bias;
  float head_norm_scale = 0;  // of the kernel's int16 head-norm output (the head's input)
  // The replay pack (export.replay_frames): per frame the integer network's (c, f) at the
  // last stage's first adapter ([frames][P][C] int16 at the residual scale, QTrace::tune_c/f)
  // and its gaze label.
  std::vector<int16_t> replay_c, replay_f;
  std::vector<float> replay_gaze;
  // The device's defaults (personalize.*, train.augmentation.*): gz_tune_options.
  TuneDefaults defaults;
  bool empty() const { return blocks.empty(); }

  // The base's parameter vector: adapters, then (train_head) the head Linear.
  std::vector<float> params(bool train_head) const;
  // A graph over this data (which must outlive it).
  gz_tune_graph graph(bool train_head, bool laplace_nll) const;
};

// The last stage of `model` for an input of input_h x input_w (multiples of 32), without a
// replay pack. Empty when a last-stage block has no adapter; throws when there are more blocks
// than GZ_TUNE_MAX_BLOCKS.
TuneData tune_data(GazeNetImpl& model, int32_t input_h, int32_t input_w);

}  // namespace gaze
