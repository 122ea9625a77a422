#include "libgaze/models/model_stats.h"

#include "libgaze/core/error.h"

namespace gaze {
namespace {

int64_t adapter_params(int64_t d, int64_t r) {
  const int64_t h = d / r;
  return (d * h + h) + 2 * h + (h * d + d);  // down, BatchNorm affine, up
}

}  // namespace

ModelStats compute_model_stats(const ModelConfig& m, int64_t height, int64_t width) {
  if (height < 32 || width < 32) {
    throw Error("input " + std::to_string(height) + "x" + std::to_string(width) +
                " is too small: the network downsamples by 32");
  }
  ModelStats stats;
  int64_t h = height, w = width, c_in = m.in_chans, third_positions = 0;
  for (int i = 0; i < 4; ++i) {
    const int64_t d = m.dims[i];
    LayerStats layer;
    layer.name = i == 0 ? "stem+stage1" : "stage" + std::to_string(i + 1);
    // Stem (conv 4x4/4 + LayerNorm) or downsample (LayerNorm + conv 2x2/2).
    const int64_t k = i == 0 ? 4 : 2;
    h /= k;
    w /= k;
    layer.params += d * c_in * k * k + d + 2 * (i == 0 ? d : c_in);
    layer.macs += d * c_in * k * k * h * w;
    layer.elementwise += (i == 0 ? d : c_in) * h * w * (i == 0 ? 1 : k * k);
    // Blocks: dwconv 7x7, LayerNorm, Linear d->4d, GELU, GRN, Linear 4d->d, adapter.
    const int64_t hw = h * w;
    for (int64_t b = 0; b < m.depths[i]; ++b) {
      layer.params += (49 * d + d) + 2 * d + (4 * d * d + 4 * d) + 8 * d + (4 * d * d + d);
      layer.macs += hw * (49 * d + 8 * d * d);
      layer.elementwise += hw * (d + 4 * d + 4 * d);
      if (m.adapter.enabled) {
        const int64_t a = adapter_params(d, m.adapter.reduction);
        layer.params += a;
        layer.tunable += a;
        layer.macs += hw * 2 * d * (d / m.adapter.reduction);
        if (i == 3) stats.last_stage_adapters += a;
      }
    }
    layer.channels = d;
    layer.height = h;
    layer.width = w;
    stats.layers.push_back(layer);
    c_in = d;
    if (i == 2) third_positions = hw;
  }
  LayerStats head;
  head.name = "head";
  head.channels = 4;
  head.height = head.width = 1;
  // Pool to the grid's cells, a LayerNorm per cell, one Linear over every cell's channels and
  // the key points' coordinates; the key points' 1x1 conv on the third stage's map, a softmax
  // and two weighted sums per map position.
  const int64_t k = m.head.keypoints, features = c_in * m.head.grid[0] * m.head.grid[1] + 2 * k;
  const int64_t keypoint_params = k * m.dims[2] + k;
  head.params = 2 * c_in + (4 * features + 4) + keypoint_params;
  head.tunable = 4 * features + 4 + keypoint_params;
  head.macs = 4 * features + k * m.dims[2] * third_positions;
  head.elementwise = c_in * h * w + features + 3 * k * third_positions;
  stats.layers.push_back(head);
  for (const auto& layer : stats.layers) {
    stats.params += layer.params;
    stats.tunable += layer.tunable;
    stats.macs += layer.macs;
  }
  return stats;
}

}  // namespace gaze
