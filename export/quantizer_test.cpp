// The quantiser and the integer reference against the float model they came from.
#include "export/quantizer.h"
#include "export/export_job.h"
#include "libgaze/metrics/angular_error.h"
#include "trainers/trainer.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/utils.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <random>

#include "datasets/preprocess.h"
#include "datasets/synth/eye_renderer.h"

namespace gaze {
namespace {

ModelConfig student_config() {
  Config config = default_config({});
  return config.model;
}

// A student with non-trivial adapters, BN statistics, GRN and LayerNorm parameters.
GazeNet perturbed_student(uint64_t seed) {
  GazeNet model = make_gaze_net(student_config(), seed);
  torch::NoGradGuard no_grad;
  at::manual_seed(int64_t(seed) + 1);
  for (auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    if (name.find("grn.") != std::string::npos || name.find("adapter.up") != std::string::npos ||
        name.find("adapter.bn") != std::string::npos || name.find("norm") != std::string::npos) {
      p.value().add_(at::randn_like(p.value()) * 0.1);
    }
  }
  for (auto& b : model->named_buffers()) {
    if (b.key().find("running_var") != std::string::npos) b.value().fill_(1.5);
    if (b.key().find("running_mean") != std::string::npos) b.value().normal_(0, 0.1);
  }
  model->eval();
  return model;
}

// Rendered eye images at the kernel input size.
std::vector<Frame> rendered_frames(int count, int32_t h, int32_t w, uint64_t seed) {
  std::vector<Frame> frames;
  std::mt19937 rng{uint32_t(seed)};
  for (int i = 0; i < count; ++i) {
    Frame f(size_t(h) * w);
    for (int32_t y = 0; y < h; ++y)
      for (int32_t x = 0; x < w; ++x) {
        const double dx = x - w / 2.0 - (i % 5) * 4, dy = y - h / 2.0 + (i % 3) * 3;
        const double r = std::sqrt(dx * dx + dy * dy);
        f[size_t(y) * w + x] = uint8_t(std::clamp(r < h / 6.0 ? 30.0 : r < h / 3.0 ? 110.0 : 190.0 + (rng() % 30), 0.0, 255.0));
      }
    frames.push_back(std::move(f));
  }
  return frames;
}

}  // namespace

TEST_CASE("integer reference stage outputs track the float model", "[quantizer]") {
  GazeNet model = perturbed_student(3);
  QuantizeOptions options;
  const auto frames = rendered_frames(24, options.input_h, options.input_w, 1);
  const ActivationRanges ranges = calibrate(model, frames, options);
  const QuantizedNet net = quantize_model(model, ranges, options);
  torch::NoGradGuard no_grad;
  for (size_t f = 0; f < 3; ++f) {
    at::Tensor x = at::empty({1, 3, options.input_h, options.input_w});
    normalize_grey_input(frames[f].data(), options.input_h, options.input_w, x.data_ptr<float>());
    const auto stages = model->forward_stages(x);
    QTrace trace;
    qnet_predict(net, frames[f].data(), options.input_h, options.input_w, &trace);
    {
      const at::Tensor expected = model->downsample_layers[0]->as<torch::nn::Sequential>()->forward(x)
                                      .permute({0, 2, 3, 1}).contiguous().flatten();
      at::Tensor got = at::from_blob(trace.stem_output.data(), {int64_t(trace.stem_output.size())}, at::kShort)
                           .to(at::kFloat) * net.scales.residual[0];
      const double rel = (got - expected).norm().item<double>() / expected.norm().item<double>();
      INFO("frame " << f << " stem relative error " << rel);
      CHECK(rel < 0.01);
    }
    for (size_t s = 0; s < 4; ++s) {
      const at::Tensor expected = stages[s].permute({0, 2, 3, 1}).contiguous().flatten();
      at::Tensor got = at::from_blob(trace.stage_outputs[s].data(), {int64_t(trace.stage_outputs[s].size())}, at::kShort)
                           .to(at::kFloat) * net.scales.residual[s];
      const double rel = (got - expected).norm().item<double>() / expected.norm().item<double>();
      INFO("frame " << f << " stage " << s << " relative error " << rel);
      CHECK(rel < 0.05);
    }
  }
}

}  // namespace gaze


