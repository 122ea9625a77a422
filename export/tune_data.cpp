#include "export/tune_data.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/container/modulelist.h>

#include "libgaze/core/error.h"
#include "libgaze/models/gaze_net.h"

namespace gaze {
namespace {

std::vector<float> values(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kFloat).contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

}  // namespace

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
  g.blocks = int32_t(blocks.size());
  g.norm_eps = norm_eps, g.bn_eps = bn_eps, g.slope = slope;
  for (size_t b = 0; b < blocks.size(); ++b) {
    const TuneBlockData& d = blocks[b];
    g.bn_mean[b] = d.bn_mean.data(), g.bn_var[b] = d.bn_var.data();
    if (b == 0) continue;
    g.body[b] = {d.dw_weight.data(),  d.dw_bias.data(),   d.norm_weight.data(), d.norm_bias.data(),
                 d.pw1_weight.data(), d.pw1_bias.data(),  d.grn_gamma.data(),   d.grn_beta.data(),
                 d.pw2_weight.data(), d.pw2_bias.data()};
  }
  g.head_norm_weight = head_norm_weight.data(), g.head_norm_bias = head_norm_bias.data();
  g.head_weight = head_weight.data(), g.head_bias = head_bias.data();
  g.train_head = train_head;
  g.laplace_nll = laplace_nll;
  g.scale_trained = scale_trained;
  return g;
}

TuneData tune_data(GazeNetImpl& model, int32_t input_h, int32_t input_w) {
  const ModelConfig& cfg = model.config();
  TuneData t;
  t.height = input_h / 32, t.width = input_w / 32;
  t.channels = int32_t(cfg.dims.back());
  t.norm_eps = float(cfg.ln_eps);
  t.slope = float(cfg.adapter.slope);
  t.scale_trained = cfg.head.uncertainty;
  const auto& stage = *model.stages[model.stages->size() - 1]->as<torch::nn::ModuleList>();
  if (stage.size() > GZ_TUNE_MAX_BLOCKS)
    throw Error("personalisation on the device: the last stage has more than " + std::to_string(GZ_TUNE_MAX_BLOCKS) +
                " blocks");
  for (size_t b = 0; b < stage.size(); ++b) {
    BlockImpl& block = *stage[b]->as<Block>();
    if (!block.adapter)
      throw Error("personalisation on the device: block " + std::to_string(b) + " of the last stage has no adapter");
    AdapterImpl& a = *block.adapter;
    t.hidden = int32_t(a.down->options.out_features());
    t.bn_eps = float(a.bn->options.eps());
    TuneBlockData d;
    d.bn_mean = values(a.bn->running_mean);
    d.bn_var = values(a.bn->running_var);
    for (const at::Tensor& p : {a.down->weight, a.down->bias, a.bn->weight, a.bn->bias, a.up->weight, a.up->bias}) {
      const std::vector<float> v = values(p);
      t.adapters.insert(t.adapters.end(), v.begin(), v.end());
    }
    if (b > 0) {
      d.dw_weight = values(block.dwconv->weight.reshape({t.channels, 49}).t());  // [49][C]
      d.dw_bias = values(block.dwconv->bias);
      d.norm_weight = values(block.norm->weight);
      d.norm_bias = values(block.norm->bias);
      d.pw1_weight = values(block.pwconv1->weight.t());  // [in][out]
      d.pw1_bias = values(block.pwconv1->bias);
      d.grn_gamma = values(block.grn->gamma);
      d.grn_beta = values(block.grn->beta);
      d.pw2_weight = values(block.pwconv2->weight.t());
      d.pw2_bias = values(block.pwconv2->bias);
    }
    t.blocks.push_back(std::move(d));
  }
  t.head_norm_weight = values(model.norm->weight);
  t.head_norm_bias = values(model.norm->bias);
  t.head_weight = values(model.head->weight);
  t.head_bias = values(model.head->bias);
  return t;
}

}  // namespace gaze
