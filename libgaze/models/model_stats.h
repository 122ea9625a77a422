// Analytic size and cost of a DFT Gaze / ConvNeXt V2 network (no torch).
//
// Counts follow the module definitions in gaze_net.h exactly (the tests check both agree):
// parameters include every weight/bias/gamma/beta; BatchNorm running statistics are buffers,
// not parameters. MACs count multiply-accumulates of convolutions and linear layers (one MAC
// per weight use); normalisation, GELU, GRN and pooling are elementwise and listed separately.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "libgaze/config/config.h"

namespace gaze {

struct LayerStats {
  std::string name;               // "stem", "stage1", ..., "head"
  int64_t channels = 0;           // output channels
  int64_t height = 0, width = 0;  // output feature-map size
  int64_t params = 0;
  int64_t tunable = 0;  // adapters + head Linear
  int64_t macs = 0;
  int64_t elementwise = 0;  // elementwise ops (norms, GELU, GRN), for the curious
};

struct ModelStats {
  std::vector<LayerStats> layers;
  int64_t params = 0, tunable = 0, last_stage_adapters = 0, macs = 0;
};

// Throws gaze::Error if the input is too small for the four downsamplings (needs >= 32 px).
ModelStats compute_model_stats(const ModelConfig& model, int64_t height, int64_t width);

}  // namespace gaze
