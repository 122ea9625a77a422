// DFT Gaze and its ConvNeXt V2 teacher as LibTorch modules (SPEC §1).
//
// Parameter names equal the official facebookresearch/ConvNeXt-V2 checkpoint keys:
//   downsample_layers.0.0.weight   stem conv          downsample_layers.0.1.weight  stem LN
//   downsample_layers.i.0.weight   LN before conv i   downsample_layers.i.1.weight  conv i
//   stages.s.b.{dwconv,norm,pwconv1,grn,pwconv2}.*    grn.gamma/beta are [1,1,1,4d]
//   norm.weight / norm.bias        head LayerNorm     head.weight / head.bias       Linear(d*cells,4)
// plus, with model.head.keypoints, keypoints.{weight,bias} (a 1x1 conv; in the head's group),
// and our additions stages.s.b.adapter.{down,bn,up}.*, so official weights import 1:1.
//
// Masked forward (FCMAE, SPEC §2): `mask` is [N,1,h,w] with 1 = hidden patch, at any
// resolution that divides the stem output. It is re-applied after the stem, after every
// downsample, after every depthwise conv, before GRN (so its statistics see visible positions
// only) and on each block output, so hidden regions never leak into visible ones.
// That is the dense statement (the official code's non-sparse path). A block computes it
// sparsely, as the official sparse encoder does: its per-position MLP (LayerNorm, pwconv1,
// GELU, GRN, pwconv2) runs on the visible positions only, and every hidden position gets the
// MLP's value for a zero input there, pwconv2(grn.beta), so the adapter's BatchNorm statistics,
// the outputs and every gradient are the dense statement's (gaze_net_test checks them).
#pragma once

#include <functional>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <string>
#include <vector>

#include "libgaze/config/config.h"

namespace gaze {

// LayerNorm over the channel axis of an NCHW tensor (the official "channels_first" LN).
class LayerNorm2dImpl : public torch::nn::Module {
 public:
  LayerNorm2dImpl(int64_t channels, double eps);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight, bias;

 private:
  double eps_;
};
TORCH_MODULE(LayerNorm2d);

// Global Response Normalisation on channels-last input: gamma*(x*N(x)) + beta + x.
class GRNImpl : public torch::nn::Module {
 public:
  explicit GRNImpl(int64_t dim);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor gamma, beta;
};
TORCH_MODULE(GRN);

// f' = f + Up(LeakyReLU(BN(Down(f)))) on channels-last input; Up is zero-initialised.
// Sums a tensor over data-parallel workers, differentiably (its backward sums the gradients
// too); set by the trainer (trainers/distributed.h) so BatchNorm sees the global batch.
using AllReduceSum = std::function<at::Tensor(const at::Tensor&)>;

class AdapterImpl : public torch::nn::Module {
 public:
  AdapterImpl(int64_t dim, int64_t reduction, double slope);
  at::Tensor forward(const at::Tensor& x);
  double slope() const { return slope_; }
  // Training-mode BatchNorm statistics over every worker's rows (synchronised BatchNorm), so
  // N workers normalise as one process with the whole batch; null: this process only.
  void set_all_reduce(AllReduceSum sum) { all_reduce_ = std::move(sum); }
  torch::nn::Linear down{nullptr}, up{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};

 private:
  at::Tensor training_batch_norm(const at::Tensor& x);
  double slope_;
  AllReduceSum all_reduce_;
};
TORCH_MODULE(Adapter);

// The visible positions of an FCMAE mask at one feature resolution, found once per stage.
struct VisiblePositions {
  at::Tensor keep;               // [N,1,h,w], 1 = visible; undefined: no mask, all visible
  at::Tensor rows;               // [R] int64, visible positions as NHWC row numbers n*h*w + y*w + x
  std::vector<int64_t> offsets;  // N+1: image n's visible rows are rows[offsets[n] .. offsets[n+1])
};

// `mask` [N,1,h',w'] (1 = hidden) resized to `features`' resolution; an undefined mask gives
// an undefined keep (no masking).
VisiblePositions visible_positions(const at::Tensor& mask, const at::Tensor& features);

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(int64_t dim, double drop_path, double ln_eps, const AdapterConfig& adapter);
  at::Tensor forward(const at::Tensor& x, const VisiblePositions& visible = {});
  torch::nn::Conv2d dwconv{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear pwconv1{nullptr}, pwconv2{nullptr};
  GRN grn{nullptr};
  Adapter adapter{nullptr};  // null when adapters are disabled

 private:
  // LayerNorm -> pwconv1 -> GELU -> GRN -> pwconv2 on rows [R, C] of images whose rows start
  // at `offsets` (fused_grn_rows).
  at::Tensor mlp(const at::Tensor& rows, at::IntArrayRef offsets);
  double drop_path_;
};
TORCH_MODULE(Block);

class GazeNetImpl : public torch::nn::Module {
 public:
  explicit GazeNetImpl(const ModelConfig& config);

  // Runs stages [first, last] (0-based). For first == 0 `x` is the image batch [N,C,H,W];
  // otherwise it is the output of stage first-1. Returns each run stage's NCHW output.
  std::vector<at::Tensor> forward_stages(const at::Tensor& x, const at::Tensor& mask = {}, int first = 0, int last = 3);
  // [N,d_last,h,w] -> [N,4]. The paper's head (model.head.grid [1,1]): global average pool ->
  // LayerNorm -> Linear. A grid [r,c] average-pools to r x c cells (adaptive pooling), applies
  // the same LayerNorm to each cell's d channels and feeds the Linear all of them, cell-major
  // (input r*c*d: feature (y*c + x)*d + k is channel k of cell (y, x)), so the head sees where in
  // the image a feature sits, which a global pool throws away. With model.head.keypoints K > 0
  // the Linear also reads 2K key point coordinates (keypoint_coordinates of the 1x1 conv
  // `keypoints` on `third_features`, the third stage's output [N,d_2,h',w'], which is then
  // required), less their centroid: where the points sit against each other, not in the frame.
  at::Tensor forward_head(const at::Tensor& last_features, const at::Tensor& third_features = {});
  // The Linear's input [N, cells*d_last + 2K]: forward_head's pool and LayerNorm, then the
  // centred key points (the exporter calibrates on it).
  at::Tensor head_features(const at::Tensor& last_features, const at::Tensor& third_features = {});
  // Image batch -> [N,4]: raw 3-D direction and the Laplace log-scale.
  at::Tensor forward(const at::Tensor& x);

  const ModelConfig& config() const { return config_; }
  // Whether the 4th output is trained is the adapters stage's choice (the layers are the same
  // either way); it is recorded here so checkpoints, evaluation and export know it.
  void set_head_uncertainty(bool trained) { config_.head.uncertainty = trained; }
  // Replaces the head Linear (and the key point maps) by fresh ones reading `grid` cells and
  // `keypoint_count` key points, initialised as make_gaze_net does (trunc-normal 0.02, zero bias)
  // from `seed`; for a head that never saw gaze.
  void reset_head(const std::vector<int64_t>& grid, int64_t keypoint_count, uint64_t seed);
  // Every adapter's BatchNorm synchronised over data-parallel workers (AdapterImpl).
  void set_all_reduce(const AllReduceSum& sum);

  torch::nn::ModuleList downsample_layers{nullptr};
  torch::nn::ModuleList stages{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear head{nullptr};
  torch::nn::Conv2d keypoints{nullptr};  // 1x1, d_2 -> K heat maps; null when model.head.keypoints = 0

 private:
  ModelConfig config_;
};
TORCH_MODULE(GazeNet);

// Spatial soft-argmax: `maps` [N,K,h,w] -> [N,2K], for each map the expected (x, y) under a
// softmax over its h*w positions, a cell's centre at ((j + 0.5)/w, (i + 0.5)/h) * 2 - 1, so
// -1..1 spans the image edge to edge; ordered x_0, y_0, x_1, y_1, ... A differentiable "where is
// it" that is finer than the map's cells (Levine et al. 2016's spatial softmax).
at::Tensor keypoint_coordinates(const at::Tensor& maps);

// Builds the network and initialises it like the official code (trunc-normal std 0.02 for
// conv/linear weights, zero biases), adapters as identity. Seeds torch's CPU generator with
// `seed` first so the same seed gives the same weights.
GazeNet make_gaze_net(const ModelConfig& config, uint64_t seed = 0);

// Unit gaze directions [N,3] and log-scales [N] from head outputs [N,4].
at::Tensor gaze_directions(const at::Tensor& head_output);
at::Tensor gaze_log_scales(const at::Tensor& head_output);

}  // namespace gaze
