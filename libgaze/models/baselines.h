// The baselines of the paper's Tables 1 and 2, from their published architectures.
//
// The paper re-implemented three appearance-based gaze networks; the public code that gives its
// parameter counts exactly is yihuacheng's GazeHub (the GazeTR authors' own repository among
// them), so these follow it layer for layer (docs/research/baselines.md has the derivation):
//
//   GazeNet (Zhang et al., TPAMI 2019)       one normalised eye 36x60, 2-D head pose
//     VGG-16's 13 convolutions (3x3, bias, ReLU) with pool1 and pool2 at stride 1 for the small
//     input (36x60 -> 4x7x512), fc6 14336->4096, [fc6 | head pose] -> fc7 4098->4096, out 4096->2;
//     dropout 0.5 after fc6 and fc7.                                  90,236,738 parameters (RGB)
//   RT-Gene (Fischer et al., ECCV 2018)      left and right eyes 36x60, 2-D head pose
//     a VGG-16 trunk per eye (five stride-2 pools, global average pool -> 512), per eye
//     Linear 512->1024 + BatchNorm + ReLU, both -> Linear 2048->512 + BN + ReLU, [. | head pose]
//     -> Linear 514->256 + BN + ReLU -> Linear 256->2; BatchNorm momentum 0.99, eps 1e-3 as the
//     Keras original (its momentum means "weight of the new batch" in PyTorch's terms).
//                                                                       31,667,074 parameters
//   GazeTR-Hybrid (Cheng & Lu, ICPR 2022)    a normalised face 224x224
//     ResNet-18 (no pool/fc) -> 512x7x7, Conv 1x1 512->32 + BN + ReLU -> 49 tokens, a class
//     token, 6 post-norm encoder layers (d 32, 8 heads, feed-forward 512, ReLU, dropout 0.1) whose
//     learned position embedding (50 x 32) is added to queries and keys in every layer (not to
//     values), a final LayerNorm, Linear 32->2 on the class token.       11,420,738 parameters
//
// Counts are parameters (BatchNorm running statistics excluded), as the paper's "#param". Every
// network outputs 2-D gaze angles (yaw, pitch) in radians, GazeHub's order and convention:
// direction = (-cos(pitch) sin(yaw), -sin(pitch), -cos(pitch) cos(yaw)), MPII's normalised camera
// frame (baseline_direction() below). Inputs are float [B, C, H, W] images as the loaders
// normalise them; head pose [B, 2] (pitch, yaw) as SampleLabel::head (zero where a dataset has none).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <string>
#include <vector>

namespace gaze {

// VGG-16's convolutional trunk (13 convolutions with ReLU, 5 max-pools); `stride1_pools` lists
// the pools (0-based) that run at stride 1.
torch::nn::Sequential vgg16_trunk(int64_t in_channels, const std::vector<int>& stride1_pools);

struct GazeNetBaselineImpl : torch::nn::Module {
  explicit GazeNetBaselineImpl(int64_t in_channels = 3);
  at::Tensor forward(const at::Tensor& eye, const at::Tensor& head);  // eye [B, C, 36, 60], head [B, 2]
  torch::nn::Sequential trunk{nullptr};
  torch::nn::Linear fc6{nullptr}, fc7{nullptr}, out{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(GazeNetBaseline);

struct RtGeneBaselineImpl : torch::nn::Module {
  RtGeneBaselineImpl();
  // left, right [B, 3, 36, 60], head [B, 2]
  at::Tensor forward(const at::Tensor& left, const at::Tensor& right, const at::Tensor& head);
  torch::nn::Sequential left_trunk{nullptr}, right_trunk{nullptr};
  torch::nn::Sequential left_fc{nullptr}, right_fc{nullptr}, fused_fc{nullptr}, head_fc{nullptr};
  torch::nn::Linear out{nullptr};
};
TORCH_MODULE(RtGeneBaseline);

// A post-norm transformer encoder layer whose position embedding is added to queries and keys
// (DETR's, as GazeTR uses it). Sequence-first: src, pos [L, B, D].
struct PositionalEncoderLayerImpl : torch::nn::Module {
  PositionalEncoderLayerImpl(int64_t dim, int64_t heads, int64_t feed_forward, double dropout);
  at::Tensor forward(const at::Tensor& src, const at::Tensor& pos);
  torch::nn::MultiheadAttention attention{nullptr};
  torch::nn::Linear linear1{nullptr}, linear2{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Dropout dropout{nullptr}, dropout1{nullptr}, dropout2{nullptr};
};
TORCH_MODULE(PositionalEncoderLayer);

struct GazeTrHybridImpl : torch::nn::Module {
  GazeTrHybridImpl();
  at::Tensor forward(const at::Tensor& face);  // [B, 3, 224, 224]
  torch::nn::Sequential backbone{nullptr};     // ResNet-18 trunk + 1x1 conv to 32 channels
  at::Tensor cls_token;
  torch::nn::Embedding pos_embedding{nullptr};
  torch::nn::ModuleList encoder{nullptr};
  torch::nn::LayerNorm encoder_norm{nullptr};
  torch::nn::Linear feed{nullptr};
};
TORCH_MODULE(GazeTrHybrid);

// Unit gaze directions [B, 3] of (yaw, pitch) predictions [B, 2], GazeHub's gazeto3d.
at::Tensor baseline_direction(const at::Tensor& yaw_pitch);

// The three behind one interface, as the trainers drive them (model.arch names them; the
// names are libgaze/config's baseline_archs()):
//   gazenet        the sample's image resized to 36x60 as the eye, plus its head pose
//   rtgene         a frame's two eyes side by side (data.eye = pair) resized to 36x120, the
//                  left half into the left trunk and the right half into the right; where the
//                  data shows one eye (OpenEDS2020), that eye resized to 36x60 in both trunks;
//                  plus the head pose
//   gazetr_hybrid  the sample's image resized to 224x224 as the face
// forward() returns unit gaze directions [B, 3]: baseline_direction of the (yaw, pitch) output
// in GazeHub's frame, where (0, 0) looks into the camera (MPII's normalised data). Near-eye
// cameras see the eye from the front, so the gaze points away from them (+z): `facing` (a
// buffer, saved with the weights; not a parameter) turns the frame by 180 degrees about y for
// such data, so that (0, 0) is again the typical gaze and angles never wrap at yaw = +-pi.
// The baseline stage sets it from the training labels.
struct BaselineInput {
  std::string arch, title;        // "gazenet", "GazeNet"
  int64_t height = 0, width = 0;  // one eye's (or the face's) size
  bool eye_pair = false;          // takes a frame's two eyes side by side: [height, 2 width]
  std::string input;              // what the published model sees, for reports
  double lr = 0;                  // the published learning rate: train.lr when a config leaves it unset
  std::string recipe;             // the published training recipe (docs/research/baselines.md), for reports
};
const std::vector<BaselineInput>& baseline_inputs();
const BaselineInput& baseline_input(const std::string& arch);  // throws gaze::Error listing the names
// The input [H, W] a baseline takes from data that does (eye_pairs) or does not show both eyes.
std::vector<int64_t> baseline_input_size(const BaselineInput& input, bool eye_pairs);

struct BaselineImpl : torch::nn::Module {
  explicit BaselineImpl(const std::string& arch);
  at::Tensor forward(const at::Tensor& images, const at::Tensor& head);  // images [B, 3, H, W], head [B, 2]
  void set_facing_camera(bool toward);  // true: gaze towards the camera (MPII); false: away (near-eye)
  bool facing_camera() const;
  std::string arch;
  at::Tensor facing;  // [3]: (1, 1, 1) towards the camera, (-1, 1, -1) away from it
  GazeNetBaseline gazenet{nullptr};
  RtGeneBaseline rtgene{nullptr};
  GazeTrHybrid gazetr_hybrid{nullptr};
};
TORCH_MODULE(Baseline);

}  // namespace gaze
