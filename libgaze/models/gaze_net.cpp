#include "libgaze/models/gaze_net.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/init.h>

#include "libgaze/models/fused_grn.h"
#include "libgaze/models/rows_linear.h"

namespace gaze {
namespace {

// Truncated normal init by inverse CDF (LibTorch 1.13 has no trunc_normal_): the same method,
// bounds and arguments as PyTorch's nn.init.trunc_normal_ used by the official code.
void trunc_normal(at::Tensor t, double stddev, double lo = -2.0, double hi = 2.0) {
  const auto cdf = [](double x) { return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); };
  const double l = cdf(lo / stddev), u = cdf(hi / stddev);
  t.uniform_(2 * l - 1, 2 * u - 1).erfinv_().mul_(stddev * std::sqrt(2.0)).clamp_(lo, hi);
}

at::Tensor drop_path(const at::Tensor& x, double p, bool training) {
  if (p == 0.0 || !training) return x;
  const auto keep = at::empty({x.size(0), 1, 1, 1}, x.options()).bernoulli_(1.0 - p);
  return x * keep / (1.0 - p);
}

// What the head Linear reads: each cell's LayerNorm'd channels, then 2 coordinates per key point.
int64_t head_inputs(const ModelConfig& config) {
  return config.dims[3] * config.head.grid[0] * config.head.grid[1] + 2 * config.head.keypoints;
}

}  // namespace

VisiblePositions visible_positions(const at::Tensor& mask, const at::Tensor& features) {
  if (!mask.defined()) return {};
  const int64_t h = features.size(2), w = features.size(3);
  at::Tensor m = mask;
  if (m.size(2) != h || m.size(3) != w) {
    TORCH_CHECK(h % m.size(2) == 0 && w % m.size(3) == 0, "mask ", m.sizes(), " does not divide feature map ",
                features.sizes());
    m = m.repeat_interleave(h / m.size(2), 2).repeat_interleave(w / m.size(3), 3);
  }
  VisiblePositions visible;
  visible.keep = 1.0 - m.to(features.dtype());
  const at::Tensor shown = visible.keep.reshape({-1}) > 0.5;
  visible.rows = shown.nonzero().reshape({-1});
  const at::Tensor per_image = shown.reshape({m.size(0), -1}).sum(1).cumsum(0);
  visible.offsets.push_back(0);
  for (int64_t n = 0; n < m.size(0); ++n) visible.offsets.push_back(per_image[n].item<int64_t>());
  return visible;
}

LayerNorm2dImpl::LayerNorm2dImpl(int64_t channels, double eps) : eps_(eps) {
  weight = register_parameter("weight", at::ones({channels}));
  bias = register_parameter("bias", at::zeros({channels}));
}

at::Tensor LayerNorm2dImpl::forward(const at::Tensor& x) {
  const auto y = at::layer_norm(x.permute({0, 2, 3, 1}), {x.size(1)}, weight, bias, eps_);
  return y.permute({0, 3, 1, 2});
}

GRNImpl::GRNImpl(int64_t dim) {
  gamma = register_parameter("gamma", at::zeros({1, 1, 1, dim}));
  beta = register_parameter("beta", at::zeros({1, 1, 1, dim}));
}

at::Tensor GRNImpl::forward(const at::Tensor& x) { return fused_grn(x, gamma, beta); }

AdapterImpl::AdapterImpl(int64_t dim, int64_t reduction, double slope) : slope_(slope) {
  const int64_t hidden = dim / reduction;
  down = register_module("down", torch::nn::Linear(dim, hidden));
  bn = register_module("bn", torch::nn::BatchNorm1d(hidden));
  up = register_module("up", torch::nn::Linear(hidden, dim));
}

// Training-mode BatchNorm of down(x), written out. Its statistics come from x W^T without the
// bias, which BatchNorm cancels anyway: the bias then gets no gradient at all, instead of the
// rounding noise that AdamW would blow up into full-size steps (and that differs between one
// process and N). With an all-reduce set, the count and sums cover every worker's rows. They are
// accumulated in double; the running estimates include the bias, so evaluation (bn->forward on
// down(x)) is the usual BatchNorm1d.
at::Tensor AdapterImpl::training_batch_norm(const at::Tensor& x) {
  const at::Tensor h = at::linear(x, down->weight);
  const at::Tensor hd = h.to(at::kDouble);
  at::Tensor sums = at::cat({at::full({1}, double(h.size(0)), hd.options()), hd.sum(0), (hd * hd).sum(0)});
  if (all_reduce_) sums = all_reduce_(sums);
  const int64_t c = h.size(1);
  const at::Tensor n = sums.narrow(0, 0, 1);
  const at::Tensor mean = sums.narrow(0, 1, c) / n;
  const at::Tensor var = (sums.narrow(0, 1 + c, c) / n - mean * mean).clamp_min(0);
  {
    at::NoGradGuard no_grad;
    const double momentum = bn->options.momentum().value_or(0.1), count = n.item<double>();
    bn->running_mean.mul_(1 - momentum).add_((mean.to(at::kFloat) + down->bias) * momentum);
    bn->running_var.mul_(1 - momentum).add_(var.to(at::kFloat) * (momentum * count / std::max(1.0, count - 1)));
    bn->num_batches_tracked.add_(1);
  }
  const at::Tensor inv_std = at::rsqrt(var + bn->options.eps()).to(at::kFloat);
  return (h - mean.to(at::kFloat)) * inv_std * bn->weight + bn->bias;
}

at::Tensor AdapterImpl::forward(const at::Tensor& x) {
  const auto shape = x.sizes().vec();
  const at::Tensor flat = x.reshape({-1, shape.back()});
  at::Tensor h = is_training() ? training_batch_norm(flat) : bn->forward(down->forward(flat));
  h = at::leaky_relu(h, slope_);
  return x + up->forward(h).reshape(shape);
}

BlockImpl::BlockImpl(int64_t dim, double drop_path, double ln_eps, const AdapterConfig& adapter_cfg)
    : drop_path_(drop_path) {
  dwconv = register_module("dwconv", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim, 7).padding(3).groups(dim)));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(ln_eps)));
  pwconv1 = register_module("pwconv1", torch::nn::Linear(dim, 4 * dim));
  grn = register_module("grn", GRN(4 * dim));
  pwconv2 = register_module("pwconv2", torch::nn::Linear(4 * dim, dim));
  if (adapter_cfg.enabled) {
    adapter = register_module("adapter", Adapter(dim, adapter_cfg.reduction, adapter_cfg.slope));
  }
}

// On rows [R, C] (positions x channels), with the Linears as rows_linear: see rows_linear.h for
// why not torch::nn::Linear's BLAS path.
at::Tensor BlockImpl::mlp(const at::Tensor& rows, at::IntArrayRef offsets) {
  const at::Tensor h = at::gelu(rows_linear(norm->forward(rows), pwconv1->weight, pwconv1->bias));
  return rows_linear(fused_grn_rows(h, offsets, grn->gamma, grn->beta), pwconv2->weight, pwconv2->bias);
}

// Masked, hidden positions enter the dense MLP as zeros (the mask follows the depthwise conv)
// and leave GELU as zeros again (the mask before GRN), so GRN gives them exactly grn.beta and
// the block pwconv2(grn.beta). Running the MLP on the visible rows skips ~mask_ratio of its work
// in both directions; the hidden rows' constant keeps its gradient path to grn.beta and pwconv2.
at::Tensor BlockImpl::forward(const at::Tensor& input, const VisiblePositions& visible) {
  const at::Tensor nhwc = dwconv->forward(input).permute({0, 2, 3, 1});  // the per-position layers' layout
  const auto shape = nhwc.sizes().vec();
  const int64_t channels = shape.back();
  const at::Tensor rows = nhwc.reshape({-1, channels});
  at::Tensor x;
  if (visible.keep.defined()) {
    const at::Tensor shown = mlp(rows.index_select(0, visible.rows), visible.offsets);
    const at::Tensor hidden_value = pwconv2->forward(grn->beta.reshape({1, -1}));
    x = hidden_value.expand({rows.size(0), channels}).contiguous().index_copy_(0, visible.rows, shown);
  } else {
    x = mlp(rows, grn_image_offsets(shape[0], shape[1] * shape[2]));
  }
  x = x.view(shape);
  if (adapter) x = adapter->forward(x);
  x = input + drop_path(x.permute({0, 3, 1, 2}), drop_path_, is_training());
  return visible.keep.defined() ? x * visible.keep : x;
}

GazeNetImpl::GazeNetImpl(const ModelConfig& config) : config_(config) {
  const auto& dims = config.dims;
  const double eps = config.ln_eps;
  downsample_layers = register_module("downsample_layers", torch::nn::ModuleList());
  torch::nn::Sequential stem(torch::nn::Conv2d(torch::nn::Conv2dOptions(config.in_chans, dims[0], 4).stride(4)),
                             LayerNorm2d(dims[0], eps));
  downsample_layers->push_back(stem);
  for (int i = 1; i < 4; ++i) {
    downsample_layers->push_back(torch::nn::Sequential(
        LayerNorm2d(dims[i - 1], eps), torch::nn::Conv2d(torch::nn::Conv2dOptions(dims[i - 1], dims[i], 2).stride(2))));
  }
  // Stochastic depth grows linearly from 0 to drop_path over all blocks, as in the official code.
  int64_t total_blocks = 0;
  for (int64_t d : config.depths) total_blocks += d;
  int64_t block_index = 0;
  stages = register_module("stages", torch::nn::ModuleList());
  for (int i = 0; i < 4; ++i) {
    torch::nn::ModuleList stage;
    for (int64_t b = 0; b < config.depths[i]; ++b, ++block_index) {
      const double rate = total_blocks > 1 ? config.drop_path * block_index / (total_blocks - 1) : 0.0;
      stage->push_back(Block(dims[i], rate, eps, config.adapter));
    }
    stages->push_back(stage);
  }
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dims[3]}).eps(eps)));
  head = register_module("head", torch::nn::Linear(head_inputs(config), 4));
  if (config.head.keypoints > 0) {
    keypoints =
        register_module("keypoints", torch::nn::Conv2d(torch::nn::Conv2dOptions(dims[2], config.head.keypoints, 1)));
  }
}

void GazeNetImpl::set_all_reduce(const AllReduceSum& sum) {
  for (const auto& stage : *stages) {
    for (const auto& block : *stage->as<torch::nn::ModuleList>()) {
      if (auto adapter = block->as<BlockImpl>()->adapter) adapter->set_all_reduce(sum);
    }
  }
}

std::vector<at::Tensor> GazeNetImpl::forward_stages(const at::Tensor& input, const at::Tensor& mask, int first,
                                                    int last) {
  TORCH_CHECK(0 <= first && first <= last && last < 4, "bad stage range ", first, "..", last);
  std::vector<at::Tensor> outputs;
  at::Tensor x = input;
  for (int i = first; i <= last; ++i) {
    x = downsample_layers[i]->as<torch::nn::Sequential>()->forward(x);
    const VisiblePositions visible = visible_positions(mask, x);
    if (visible.keep.defined()) x = x * visible.keep;
    for (const auto& block : *stages[i]->as<torch::nn::ModuleList>()) {
      x = block->as<Block>()->forward(x, visible);
    }
    outputs.push_back(x);
  }
  return outputs;
}

at::Tensor GazeNetImpl::head_features(const at::Tensor& last_features, const at::Tensor& third_features) {
  const std::vector<int64_t>& grid = config_.head.grid;
  const at::Tensor cells =
      grid[0] == 1 && grid[1] == 1
          ? norm->forward(last_features.mean({2, 3}))
          : norm->forward(at::adaptive_avg_pool2d(last_features, {grid[0], grid[1]}).permute({0, 2, 3, 1})).flatten(1);
  if (!keypoints) return cells;
  TORCH_CHECK(third_features.defined(), "model.head.keypoints=", config_.head.keypoints,
              ": the head needs the third stage's map too");
  // Relative to their centroid: where the key points sit against each other (the pupil against
  // the glints), not where the eye sits in the frame. The cells give that coarsely already;
  // read finely it is a training person's headset fit (absolute coordinates, the first form:
  // +0.65 degrees held out, docs/results/conditions).
  const at::Tensor points = keypoint_coordinates(keypoints->forward(third_features)).reshape({cells.size(0), -1, 2});
  return at::cat({cells, (points - points.mean(1, true)).flatten(1)}, 1);
}

at::Tensor GazeNetImpl::forward_head(const at::Tensor& last_features, const at::Tensor& third_features) {
  return head->forward(head_features(last_features, third_features));
}

void GazeNetImpl::reset_head(const std::vector<int64_t>& grid, int64_t keypoint_count, uint64_t seed) {
  config_.head.grid = grid;
  config_.head.keypoints = keypoint_count;
  at::manual_seed(seed);
  torch::NoGradGuard no_grad;
  torch::nn::Linear fresh(head_inputs(config_), 4);
  trunc_normal(fresh->weight, 0.02);
  torch::nn::init::zeros_(fresh->bias);
  head = replace_module("head", fresh);
  if (keypoints) unregister_module("keypoints");
  keypoints = nullptr;
  if (keypoint_count > 0) {
    torch::nn::Conv2d maps(torch::nn::Conv2dOptions(config_.dims[2], keypoint_count, 1));
    trunc_normal(maps->weight, 0.02);
    torch::nn::init::zeros_(maps->bias);
    keypoints = register_module("keypoints", maps);
  }
}

at::Tensor GazeNetImpl::forward(const at::Tensor& x) {
  const std::vector<at::Tensor> stages = forward_stages(x);
  return forward_head(stages[3], stages[2]);
}

at::Tensor keypoint_coordinates(const at::Tensor& maps) {
  const int64_t n = maps.size(0), k = maps.size(1), h = maps.size(2), w = maps.size(3);
  const at::Tensor p = at::softmax(maps.reshape({n, k, h * w}), 2).reshape({n, k, h, w});
  const auto centres = [&](int64_t cells) {
    return (at::arange(cells, maps.options()) + 0.5) * (2.0 / double(cells)) - 1.0;
  };
  const at::Tensor x = (p.sum(2) * centres(w)).sum(2), y = (p.sum(3) * centres(h)).sum(2);  // [N,K] each
  return at::stack({x, y}, 2).reshape({n, 2 * k});
}

GazeNet make_gaze_net(const ModelConfig& config, uint64_t seed) {
  at::manual_seed(seed);
  GazeNet net(config);
  torch::NoGradGuard no_grad;
  for (auto& module : net->modules(/*include_self=*/false)) {
    if (auto* conv = module->as<torch::nn::Conv2d>()) {
      trunc_normal(conv->weight, 0.02);
      torch::nn::init::zeros_(conv->bias);
    } else if (auto* linear = module->as<torch::nn::Linear>()) {
      trunc_normal(linear->weight, 0.02);
      torch::nn::init::zeros_(linear->bias);
    }
  }
  // Zero up-projection: a fresh adapter is exactly the identity.
  for (auto& module : net->modules(false)) {
    if (auto* adapter = module->as<Adapter>()) {
      torch::nn::init::zeros_(adapter->up->weight);
      torch::nn::init::zeros_(adapter->up->bias);
    }
  }
  return net;
}

at::Tensor gaze_directions(const at::Tensor& head_output) {
  const auto d = head_output.narrow(1, 0, 3);
  return d / d.norm(2, 1, /*keepdim=*/true).clamp_min(1e-12);
}

at::Tensor gaze_log_scales(const at::Tensor& head_output) { return head_output.select(1, 3); }

}  // namespace gaze
