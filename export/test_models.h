// Test helpers for export/: a student with every quantised parameter non-trivial, eye-like
// frames, and a model's output as ONNX Runtime computes it. Header-only, test code only.
#pragma once

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <random>
#include <vector>

#include "export/quantizer.h"
#include "libgaze/models/gaze_net.h"
#include "tests/test_util.h"

namespace gaze::testing {

// Random student weights, then noise on GRN, LayerNorm, adapter up-projections and BatchNorm
// (all zero or one at initialisation), so no quantised parameter is trivial. `head_grid`:
// model.head.grid.
inline GazeNet perturbed_student(uint64_t seed, const std::vector<int64_t>& head_grid = {1, 1}) {
  ModelConfig config = default_config({}).model;
  config.head.grid = head_grid;
  GazeNet model = make_gaze_net(config, seed);
  torch::NoGradGuard no_grad;
  at::manual_seed(int64_t(seed) + 7);
  for (auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    if (name.find("grn.") != std::string::npos || name.find("adapter.up") != std::string::npos ||
        name.find("adapter.bn") != std::string::npos || name.find("norm") != std::string::npos) {
      p.value().add_(at::randn_like(p.value()) * 0.2);
    }
  }
  for (auto& b : model->named_buffers()) {
    if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
    if (b.key().find("running_mean") != std::string::npos) b.value().normal_(0, 0.1);
  }
  model->eval();
  return model;
}

// Eye-like frames: dark pupil, textured iris, bright skin, noise; position and size vary.
inline std::vector<Frame> eye_frames(int count, int32_t h, int32_t w, uint32_t seed) {
  std::mt19937 rng{seed};
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Frame> frames;
  for (int i = 0; i < count; ++i) {
    const double cx = w * (0.3 + 0.4 * u(rng)), cy = h * (0.3 + 0.4 * u(rng)), r = h * (0.1 + 0.1 * u(rng));
    Frame f(size_t(h) * w);
    for (int32_t y = 0; y < h; ++y)
      for (int32_t x = 0; x < w; ++x) {
        const double d = std::hypot(x - cx, y - cy);
        const double v = d < r ? 25 : d < 2.2 * r ? 100 + 20 * std::sin(x * 0.7) : 185;
        f[size_t(y) * w + x] = uint8_t(std::clamp(v + 12 * (u(rng) - 0.5), 0.0, 255.0));
      }
    frames.push_back(std::move(f));
  }
  return frames;
}

inline void write_floats(const std::string& path, const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(c.data_ptr<float>()), c.numel() * 4);
}

// The model's output for `x` [N, C, H, W] as ONNX Runtime computes it from `onnx_path`
// (scripts/ort/ort_run.js, the package scripts/setup installs); `dir` holds the float files.
inline at::Tensor run_in_onnxruntime(const std::string& onnx_path, const at::Tensor& x, const TempDir& dir) {
  write_floats(dir.file("input.f32"), x);
  const std::string shape = std::to_string(x.size(0)) + "," + std::to_string(x.size(1)) + "," +
                            std::to_string(x.size(2)) + "," + std::to_string(x.size(3));
  const auto run = run_command("node " LIBGAZE_SOURCE_DIR "/scripts/ort/ort_run.js '" + onnx_path + "' '" +
                               dir.file("input.f32") + "' " + shape + " '" + dir.file("output.f32") + "'");
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  const std::string bytes = read_file(dir.file("output.f32"));
  REQUIRE(bytes.size() == size_t(x.size(0)) * 4 * sizeof(float));
  return at::from_blob(const_cast<char*>(bytes.data()), {x.size(0), 4}, at::kFloat).clone();
}

}  // namespace gaze::testing
