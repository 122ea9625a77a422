#include "libgaze/models/baselines.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/pooling.h>

#include <algorithm>

#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"

namespace gaze {
namespace {

namespace nn = torch::nn;

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool bias) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(bias));
}

// Keras's BatchNormalization as RT-Gene's port states it (momentum 0.99, epsilon 1e-3). Keras
// keeps `momentum` of the old running statistics per step, PyTorch replaces that fraction, so
// Keras's 0.99 is PyTorch's 0.01 (0.99 here made the running statistics the last batch's).
nn::BatchNorm1d keras_batch_norm(int64_t features) {
  return nn::BatchNorm1d(nn::BatchNormOptions(features).momentum(0.01).eps(1e-3));
}

// Linear -> BatchNorm -> ReLU.
nn::Sequential dense_bn_relu(int64_t in, int64_t out) {
  return nn::Sequential(nn::Linear(in, out), keras_batch_norm(out), nn::ReLU());
}

// ResNet's BasicBlock (two 3x3 convolutions, BatchNorm, identity or 1x1 projection).
struct BasicBlockImpl : nn::Module {
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride) {
    conv1 = register_module("conv1", conv(in, out, 3, stride, 1, false));
    bn1 = register_module("bn1", nn::BatchNorm2d(out));
    conv2 = register_module("conv2", conv(out, out, 3, 1, 1, false));
    bn2 = register_module("bn2", nn::BatchNorm2d(out));
    if (stride != 1 || in != out)
      downsample =
          register_module("downsample", nn::Sequential(conv(in, out, 1, stride, 0, false), nn::BatchNorm2d(out)));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = at::relu(bn1(conv1(x)));
    y = bn2(conv2(y));
    return at::relu(y + (downsample ? downsample->forward(x) : x));
  }
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

}  // namespace

nn::Sequential vgg16_trunk(int64_t in_channels, const std::vector<int>& stride1_pools) {
  const std::vector<std::vector<int64_t>> blocks = {
      {64, 64}, {128, 128}, {256, 256, 256}, {512, 512, 512}, {512, 512, 512}};
  nn::Sequential trunk;
  int64_t channels = in_channels;
  for (size_t b = 0; b < blocks.size(); ++b) {
    for (const int64_t width : blocks[b]) {
      trunk->push_back(conv(channels, width, 3, 1, 1, true));
      trunk->push_back(nn::ReLU());
      channels = width;
    }
    const bool stride1 = std::find(stride1_pools.begin(), stride1_pools.end(), int(b)) != stride1_pools.end();
    trunk->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(stride1 ? 1 : 2)));
  }
  return trunk;
}

GazeNetBaselineImpl::GazeNetBaselineImpl(int64_t in_channels) {
  trunk = register_module("trunk", vgg16_trunk(in_channels, {0, 1}));
  fc6 = register_module("fc6", nn::Linear(512 * 4 * 7, 4096));
  fc7 = register_module("fc7", nn::Linear(4096 + 2, 4096));
  out = register_module("out", nn::Linear(4096, 2));
  dropout = register_module("dropout", nn::Dropout(0.5));
}

at::Tensor GazeNetBaselineImpl::forward(const at::Tensor& eye, const at::Tensor& head) {
  at::Tensor x = trunk->forward(eye).flatten(1);
  x = dropout(at::relu(fc6(x)));
  x = dropout(at::relu(fc7(at::cat({x, head.to(x.dtype())}, 1))));
  return out(x);
}

RtGeneBaselineImpl::RtGeneBaselineImpl() {
  left_trunk = register_module("left_trunk", vgg16_trunk(3, {}));
  right_trunk = register_module("right_trunk", vgg16_trunk(3, {}));
  left_fc = register_module("left_fc", dense_bn_relu(512, 1024));
  right_fc = register_module("right_fc", dense_bn_relu(512, 1024));
  fused_fc = register_module("fused_fc", dense_bn_relu(2048, 512));
  head_fc = register_module("head_fc", dense_bn_relu(514, 256));
  out = register_module("out", nn::Linear(256, 2));
}

at::Tensor RtGeneBaselineImpl::forward(const at::Tensor& left, const at::Tensor& right, const at::Tensor& head) {
  const at::Tensor l = left_fc->forward(left_trunk->forward(left).mean({2, 3}));
  const at::Tensor r = right_fc->forward(right_trunk->forward(right).mean({2, 3}));
  const at::Tensor fused = fused_fc->forward(at::cat({l, r}, 1));
  return out(head_fc->forward(at::cat({fused, head.to(fused.dtype())}, 1)));
}

PositionalEncoderLayerImpl::PositionalEncoderLayerImpl(int64_t dim, int64_t heads, int64_t feed_forward, double p) {
  attention =
      register_module("attention", nn::MultiheadAttention(nn::MultiheadAttentionOptions(dim, heads).dropout(p)));
  linear1 = register_module("linear1", nn::Linear(dim, feed_forward));
  linear2 = register_module("linear2", nn::Linear(feed_forward, dim));
  norm1 = register_module("norm1", nn::LayerNorm(nn::LayerNormOptions({dim})));
  norm2 = register_module("norm2", nn::LayerNorm(nn::LayerNormOptions({dim})));
  dropout = register_module("dropout", nn::Dropout(p));
  dropout1 = register_module("dropout1", nn::Dropout(p));
  dropout2 = register_module("dropout2", nn::Dropout(p));
}

at::Tensor PositionalEncoderLayerImpl::forward(const at::Tensor& src, const at::Tensor& pos) {
  const at::Tensor query = src + pos;
  const at::Tensor attended = std::get<0>(attention(query, query, src));
  at::Tensor x = norm1(src + dropout1(attended));
  return norm2(x + dropout2(linear2(dropout(at::relu(linear1(x))))));
}

GazeTrHybridImpl::GazeTrHybridImpl() {
  nn::Sequential net(conv(3, 64, 7, 2, 3, false), nn::BatchNorm2d(64), nn::ReLU(),
                     nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
  int64_t channels = 64;
  for (const auto& [width, stride] : std::vector<std::pair<int64_t, int64_t>>{{64, 1}, {128, 2}, {256, 2}, {512, 2}}) {
    net->push_back(BasicBlock(channels, width, stride));
    net->push_back(BasicBlock(width, width, 1));
    channels = width;
  }
  net->push_back(conv(512, 32, 1, 1, 0, true));
  net->push_back(nn::BatchNorm2d(32));
  net->push_back(nn::ReLU());
  backbone = register_module("backbone", net);
  cls_token = register_parameter("cls_token", at::randn({1, 1, 32}));
  pos_embedding = register_module("pos_embedding", nn::Embedding(50, 32));
  encoder = register_module("encoder", nn::ModuleList());
  for (int i = 0; i < 6; ++i) encoder->push_back(PositionalEncoderLayer(32, 8, 512, 0.1));
  encoder_norm = register_module("encoder_norm", nn::LayerNorm(nn::LayerNormOptions({32})));
  feed = register_module("feed", nn::Linear(32, 2));
}

at::Tensor GazeTrHybridImpl::forward(const at::Tensor& face) {
  const at::Tensor features = backbone->forward(face);         // [B, 32, 7, 7]
  at::Tensor tokens = features.flatten(2).permute({2, 0, 1});  // [49, B, 32]
  const int64_t batch = tokens.size(1);
  tokens = at::cat({cls_token.expand({1, batch, 32}), tokens}, 0);  // [50, B, 32]
  const at::Tensor positions = at::arange(tokens.size(0), at::TensorOptions().dtype(at::kLong).device(face.device()));
  const at::Tensor pos = pos_embedding(positions).unsqueeze(1);  // [50, 1, 32], broadcast over the batch
  for (const auto& layer : *encoder) tokens = layer->as<PositionalEncoderLayer>()->forward(tokens, pos);
  return feed(encoder_norm(tokens)[0]);
}

at::Tensor baseline_direction(const at::Tensor& yaw_pitch) {
  const at::Tensor yaw = yaw_pitch.select(1, 0), pitch = yaw_pitch.select(1, 1);
  return at::stack({-at::cos(pitch) * at::sin(yaw), -at::sin(pitch), -at::cos(pitch) * at::cos(yaw)}, 1);
}

const std::vector<BaselineInput>& baseline_inputs() {
  static const std::vector<BaselineInput> inputs = {
      {"gazenet", "GazeNet", 36, 60, false, "one eye 36x60 + head pose", 1e-5,
       "Adam (0.9, 0.95) lr 1e-5, batch 256, 60 epochs, lr x0.1 every 5000 iterations, MSE on (yaw, pitch), "
       "ImageNet VGG-16 weights"},
      {"rtgene", "RT-Gene", 36, 60, true,
       "a frame's two eyes 36x60 side by side (one eye in both trunks where the data shows one) + head pose", 1e-4,
       "Adam (0.9, 0.95) lr 1e-4, batch 64, 40 epochs, MSE on (yaw, pitch), two ImageNet VGG-16s"},
      {"gazetr_hybrid", "GazeTR-Hybrid", 224, 224, false, "the image 224x224 as the face", 5e-4,
       "Adam lr 5e-4, batch 512, 80 epochs, 5 warm-up, lr x0.5 at epoch 60, L1 on (yaw, pitch), pre-trained on "
       "ETH-XGaze"},
  };
  return inputs;
}

const BaselineInput& baseline_input(const std::string& arch) {
  std::vector<std::string> names;
  for (const auto& b : baseline_inputs()) {
    if (b.arch == arch) return b;
    names.push_back(b.arch);
  }
  throw Error("unknown baseline '" + arch + "'; valid: " + join(names, ", "));
}

std::vector<int64_t> baseline_input_size(const BaselineInput& input, bool eye_pairs) {
  return {input.height, input.eye_pair && eye_pairs ? 2 * input.width : input.width};
}

BaselineImpl::BaselineImpl(const std::string& name) : arch(baseline_input(name).arch) {
  // One registered submodule, named after the architecture, so checkpoints say what they hold.
  if (arch == "gazenet") gazenet = register_module("gazenet", GazeNetBaseline(3));
  if (arch == "rtgene") rtgene = register_module("rtgene", RtGeneBaseline());
  if (arch == "gazetr_hybrid") gazetr_hybrid = register_module("gazetr_hybrid", GazeTrHybrid());
  facing = register_buffer("facing", at::ones({3}));
}

void BaselineImpl::set_facing_camera(bool toward) {
  const float s = toward ? 1.0f : -1.0f;
  facing.copy_(at::tensor({s, 1.0f, s}));
}

bool BaselineImpl::facing_camera() const { return facing[0].item<float>() > 0; }

at::Tensor BaselineImpl::forward(const at::Tensor& images, const at::Tensor& head) {
  at::Tensor yaw_pitch;
  if (rtgene) {
    // A pair image is twice as wide as one eye (baseline_input_size): one half per trunk.
    const int64_t width = images.size(3), eye = baseline_input("rtgene").width;
    yaw_pitch = width == 2 * eye ? rtgene(images.narrow(3, 0, eye), images.narrow(3, eye, eye), head)
                                 : rtgene(images, images, head);
  } else {
    yaw_pitch = gazenet ? gazenet(images, head) : gazetr_hybrid(images);
  }
  return baseline_direction(yaw_pitch) * facing;
}

}  // namespace gaze
