// The float side of on-device personalisation (export/tune.h): the tensors a gz_tune_graph
// points at, owned, taken from a trained student. Torch-free; tune_data() itself (in
// gaze_quantizer) reads the model.
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

struct TuneBlockData {
  std::vector<float> dw_weight, dw_bias, norm_weight, norm_bias, pw1_weight, pw1_bias, grn_gamma, grn_beta,
      pw2_weight, pw2_bias;
  std::vector<float> bn_mean, bn_var;  // the adapter's BatchNorm statistics
};

struct TuneData {
  int32_t height = 0, width = 0, channels = 0, hidden = 0;  // the last stage at the export's input size
  float norm_eps = 1e-6f, bn_eps = 1e-5f, slope = 0.01f;
  bool scale_trained = true;
  std::vector<TuneBlockData> blocks;
  std::vector<float> adapters;  // the base's adapters, gz_tune parameter order (no head)
  std::vector<float> head_norm_weight, head_norm_bias, head_weight, head_bias;

  // The base's parameter vector: adapters, then (train_head) the head Linear.
  std::vector<float> params(bool train_head) const;
  // A graph over this data (which must outlive it).
  gz_tune_graph graph(bool train_head, bool laplace_nll) const;
};

// The last stage of `model` for an input of input_h x input_w (multiples of 32). Throws when
// a last-stage block has no adapter or there are more blocks than GZ_TUNE_MAX_BLOCKS.
TuneData tune_data(GazeNetImpl& model, int32_t input_h, int32_t input_w);

}  // namespace gaze
