// The Table 1/2 baselines: the paper's parameter counts exactly, shapes, the GazeHub direction
// convention, and gradients reaching every parameter.
#include "libgaze/models/baselines.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/nn/modules/batchnorm.h>

#include <catch2/catch.hpp>
#include <cmath>

using namespace gaze;

namespace {

int64_t parameter_count(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

double millions(int64_t n) { return std::round(double(n) / 1e4) / 100; }

}  // namespace

TEST_CASE("baselines have the paper's parameter counts (Table 1: 90.24M, 31.67M, 11.42M)", "[baselines]") {
  GazeNetBaseline gazenet(3);
  CHECK(parameter_count(*gazenet) == 90236738);
  CHECK(millions(parameter_count(*gazenet)) == 90.24);
  GazeNetBaseline grey(1);  // the paper's grey eye: the same 90.24M
  CHECK(parameter_count(*grey) == 90235586);
  RtGeneBaseline rtgene;
  CHECK(parameter_count(*rtgene) == 31667074);
  CHECK(millions(parameter_count(*rtgene)) == 31.67);
  GazeTrHybrid gazetr;
  CHECK(parameter_count(*gazetr) == 11420738);
  CHECK(millions(parameter_count(*gazetr)) == 11.42);
}

TEST_CASE("baselines map their inputs to (yaw, pitch) and train end to end", "[baselines]") {
  at::manual_seed(0);
  SECTION("GazeNet: stride-1 pool1/pool2 leave a 4x7 map of a 36x60 eye") {
    GazeNetBaseline net(3);
    CHECK(net->trunk->forward(at::zeros({1, 3, 36, 60})).sizes() == at::IntArrayRef({1, 512, 4, 7}));
    const at::Tensor y = net->forward(at::rand({2, 3, 36, 60}), at::zeros({2, 2}));
    CHECK(y.sizes() == at::IntArrayRef({2, 2}));
    y.abs().sum().backward();
    for (const auto& p : net->parameters()) REQUIRE(p.grad().defined());
  }
  SECTION("RT-Gene: two eyes and the head pose") {
    RtGeneBaseline net;
    const at::Tensor y = net->forward(at::rand({3, 3, 36, 60}), at::rand({3, 3, 36, 60}), at::rand({3, 2}));
    CHECK(y.sizes() == at::IntArrayRef({3, 2}));
    y.abs().sum().backward();
    for (const auto& p : net->parameters()) REQUIRE(p.grad().defined());
    net->eval();  // eval: BatchNorm from running statistics, so one image alone works
    CHECK(net->forward(at::rand({1, 3, 36, 60}), at::rand({1, 3, 36, 60}), at::zeros({1, 2})).size(0) == 1);
  }
  SECTION("GazeTR-Hybrid: a 224x224 face, 49 tokens and a class token") {
    GazeTrHybrid net;
    CHECK(net->backbone->forward(at::zeros({1, 3, 224, 224})).sizes() == at::IntArrayRef({1, 32, 7, 7}));
    const at::Tensor y = net->forward(at::rand({2, 3, 224, 224}));
    CHECK(y.sizes() == at::IntArrayRef({2, 2}));
    y.abs().sum().backward();
    for (const auto& p : net->parameters()) REQUIRE(p.grad().defined());
    // The output depends on the class token and on each image alone (no mixing across the batch).
    net->eval();
    at::NoGradGuard no_grad;
    const at::Tensor a = at::rand({1, 3, 224, 224}), b = at::rand({1, 3, 224, 224});
    const at::Tensor both = net->forward(at::cat({a, b}));
    CHECK(at::allclose(both[0], net->forward(a)[0], 1e-4, 1e-5));
    CHECK(at::allclose(both[1], net->forward(b)[0], 1e-4, 1e-5));
  }
}

TEST_CASE("baseline_direction: GazeHub's (yaw, pitch) in MPII's normalised camera frame", "[baselines]") {
  const at::Tensor d = baseline_direction(at::tensor({0.0, 0.0, M_PI / 2, 0.0, 0.0, 0.3}, at::kDouble).view({3, 2}));
  CHECK(at::allclose(d[0], at::tensor({0.0, 0.0, -1.0}, at::kDouble)));  // into the camera
  CHECK(at::allclose(d[1], at::tensor({-1.0, 0.0, 0.0}, at::kDouble), 1e-9, 1e-12));
  // MPII's inverse: pitch = asin(-y), yaw = atan2(-x, -z).
  CHECK(std::asin(-d[2][1].item<double>()) == Approx(0.3));
  CHECK(std::atan2(-d[2][0].item<double>(), -d[2][2].item<double>()) == Approx(0).margin(1e-12));
}

TEST_CASE("Baseline: one interface over the three, counts unchanged, the frame turned for near-eye data",
          "[baselines]") {
  for (const BaselineInput& input : baseline_inputs()) {
    INFO(input.arch);
    Baseline net(input.arch);
    net->eval();
    // The wrapper adds no parameters (facing is a buffer): the count is the published one.
    const int64_t expected = input.arch == "gazenet" ? 90236738 : input.arch == "rtgene" ? 31667074 : 11420738;
    CHECK(parameter_count(*net) == expected);
    CHECK(net->named_buffers(true).contains("facing"));
    const at::Tensor images = at::randn({2, 3, input.height, input.width});
    const at::Tensor head = at::randn({2, 2}) * 0.1;
    at::NoGradGuard no_grad;
    const at::Tensor towards = net->forward(images, head);
    REQUIRE(towards.sizes() == at::IntArrayRef({2, 3}));
    CHECK(at::allclose(towards.norm(2, 1), at::ones({2}), 1e-5, 1e-5));
    CHECK(net->facing_camera());
    net->set_facing_camera(false);
    CHECK_FALSE(net->facing_camera());
    const at::Tensor away = net->forward(images, head);
    // Turned 180 degrees about y: x and z flip, y stays.
    CHECK(at::allclose(away.select(1, 0), -towards.select(1, 0)));
    CHECK(at::allclose(away.select(1, 1), towards.select(1, 1)));
    CHECK(at::allclose(away.select(1, 2), -towards.select(1, 2)));
  }
  CHECK_THROWS_WITH(Baseline("vgg"), Catch::Contains("unknown baseline 'vgg'") && Catch::Contains("gazetr_hybrid"));
  CHECK(baseline_input("gazetr_hybrid").height == 224);
  CHECK(baseline_input("gazenet").width == 60);
}

TEST_CASE("RT-Gene's BatchNorm keeps Keras's running statistics: 0.99 of the old per step", "[baselines]") {
  RtGeneBaseline net;
  auto norm = net->left_fc[1]->as<torch::nn::BatchNorm1d>();
  REQUIRE(norm);
  norm->train();
  at::NoGradGuard no_grad;
  norm->forward(at::ones({4, 1024}) * 2 + at::arange(4).unsqueeze(1));  // batch mean 3.5 per feature
  CHECK(norm->running_mean.mean().item<double>() == Approx(0.01 * 3.5));
  CHECK(norm->options.eps() == 1e-3);
}

TEST_CASE("Baseline: RT-Gene sends each half of an eye pair to its own trunk, one eye to both", "[baselines]") {
  Baseline net("rtgene");
  net->eval();
  const BaselineInput& input = baseline_input("rtgene");
  CHECK(baseline_input_size(input, true) == std::vector<int64_t>{36, 120});
  CHECK(baseline_input_size(input, false) == std::vector<int64_t>{36, 60});
  CHECK(baseline_input_size(baseline_input("gazenet"), true) == std::vector<int64_t>{36, 60});
  at::NoGradGuard no_grad;
  // At initialisation VGG's biases swamp its inputs; without them the trunks are homogeneous,
  // so scaled inputs reach the output and the eyes' order shows.
  for (auto& p : net->named_parameters())
    if (p.key().find("trunk") != std::string::npos && p.key().find("bias") != std::string::npos) p.value().zero_();
  const at::Tensor left = at::randn({2, 3, 36, 60}) * 1e6, right = at::randn({2, 3, 36, 60}) * 1e6;
  const at::Tensor head = at::zeros({2, 2});
  const at::Tensor pair = net->forward(at::cat({left, right}, 3), head);
  CHECK(at::allclose(pair, baseline_direction(net->rtgene(left, right, head)), 1e-5, 1e-6));
  // Swapping the eyes changes the answer (the trunks are different networks).
  const at::Tensor swapped = net->forward(at::cat({right, left}, 3), head);
  CHECK((pair - swapped).abs().max().item<double>() > 1e-2);
  CHECK(at::allclose(net->forward(left, head), baseline_direction(net->rtgene(left, left, head)), 1e-5, 1e-6));
}
