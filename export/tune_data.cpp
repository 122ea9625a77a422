#include "export/tune_data.h"

namespace gaze {

std::vector<float> TuneData::params(bool train_head) const {
  std::vector<float> p = adapters;
  if (train_head) {
    p.insert(p.end(), head_weight.begin(), head_weight.end());
    p.insert(p.end(), head_bias.begin(), head_bias.end());
  }
  return p;
}

gz_tune_graph TuneData::graph(bool train_head, bool laplace_nll) const {
  gz_tune_graph g{};
  g.height = height, g.width = width, g.channels = channels, g.hidden = hidden;
  g.grid_h = grid_h, g.grid_w = grid_w;
  g.blocks = int32_t(blocks.size());
  g.norm_eps = norm_eps, g.bn_eps = bn_eps, g.slope = slope;
  for (size_t b = 0; b < blocks.size(); ++b) {
    const TuneBlockData& d = blocks[b];
    g.bn_mean[b] = d.bn_mean.data(), g.bn_var[b] = d.bn_var.data();
    if (b == 0) continue;
    g.body[b] = {d.dw_weight.data(), d.dw_bias.data(),   d.norm_weight.data(), d.norm_bias.data(),  d.pw1_weight.data(),
                 d.pw1_bias.data(),  d.grn_gamma.data(), d.grn_beta.data(),    d.pw2_weight.data(), d.pw2_bias.data()};
  }
  g.head_norm_weight = head_norm_weight.data(), g.head_norm_bias = head_norm_bias.data();
  g.head_weight = head_weight.data(), g.head_bias = head_bias.data();
  g.train_head = train_head;
  g.laplace_nll = laplace_nll;
  g.scale_trained = scale_trained;
  return g;
}

}  // namespace gaze
