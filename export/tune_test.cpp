// On-device personalisation's hand-written forward and backward (export/tune.h) against LibTorch
// autograd on the same float last stage: losses, every parameter's gradient, AdamW steps.
#include "export/tune.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/optim/adamw.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "export/test_models.h"
#include "export/tune_data.h"
#include "trainers/losses.h"

namespace gaze {
namespace {

constexpr int64_t kFrames = 3;
constexpr int32_t kInputH = 96, kInputW = 128;  // a 3 x 4 last stage: rows and columns differ

struct Case {
  std::string loss;
  bool uncertainty, train_head;
};

// One batch of last-stage inputs: c = r_0 + f_0 and f_0 per frame ([N][P][C]), unit targets.
struct Batch {
  at::Tensor c, f, target;
};

Batch random_batch(int64_t positions, int64_t channels, uint64_t seed) {
  at::manual_seed(int64_t(seed));
  Batch b;
  b.f = at::randn({kFrames, positions, channels});
  b.c = at::randn({kFrames, positions, channels}) * 2.0 + b.f;
  b.target = at::randn({kFrames, 3});
  b.target = b.target / b.target.norm(2, 1, true);
  return b;
}

// The user tensors in gz_tune's parameter order.
std::vector<at::Tensor> user_tensors(GazeNet& model, bool train_head) {
  std::vector<at::Tensor> out;
  const auto& stage = *model->stages[model->stages->size() - 1]->as<torch::nn::ModuleList>();
  for (const auto& module : stage) {
    AdapterImpl& a = *module->as<Block>()->adapter;
    for (const at::Tensor& p : {a.down->weight, a.down->bias, a.bn->weight, a.bn->bias, a.up->weight, a.up->bias})
      out.push_back(p);
  }
  if (train_head) out.push_back(model->head->weight), out.push_back(model->head->bias);
  return out;
}

// LibTorch's loss on the batch: r_1 = c + up_0 (block 0's adapter without its f_0), the later
// blocks as modules, the head, gaze_loss.
at::Tensor torch_loss(GazeNet& model, const Batch& b, const Case& k, int64_t h, int64_t w) {
  const auto& stage = *model->stages[model->stages->size() - 1]->as<torch::nn::ModuleList>();
  AdapterImpl& a0 = *stage[0]->as<Block>()->adapter;
  const int64_t channels = b.f.size(2);
  const at::Tensor flat = b.f.reshape({-1, channels});
  const at::Tensor up0 = a0.up->forward(at::leaky_relu(a0.bn->forward(a0.down->forward(flat)), a0.slope()));
  at::Tensor r = (b.c.reshape({-1, channels}) + up0).reshape({kFrames, h, w, channels}).permute({0, 3, 1, 2});
  for (size_t i = 1; i < stage.size(); ++i) r = stage[i]->as<Block>()->forward(r);
  return gaze_loss(model->forward_head(r), b.target, k.loss, k.uncertainty);
}

std::vector<float> flat(const std::vector<at::Tensor>& grads) {
  std::vector<float> out;
  for (const at::Tensor& g : grads) {
    const at::Tensor c = g.contiguous();
    out.insert(out.end(), c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  }
  return out;
}

// The largest difference relative to the largest magnitude.
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double diff = 0, scale = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return diff / scale;
}

// gz_tune over the batch: mean loss, gradients into `grad`.
float tune_batch(const gz_tune_graph& g, std::vector<float>& params, std::vector<float>& grad, const Batch& b) {
  std::vector<float> work(gz_tune_work_floats(&g));
  const int64_t n = b.f.size(1) * b.f.size(2);
  float loss = 0;
  for (int64_t i = 0; i < kFrames; ++i) {
    loss += gz_tune_frame(&g, params.data(), grad.data(), b.c.data_ptr<float>() + i * n,
                          b.f.data_ptr<float>() + i * n, b.target.data_ptr<float>() + i * 3, 1.0f / kFrames,
                          work.data()) /
            kFrames;
  }
  return loss;
}

}  // namespace

TEST_CASE("gz_tune's gradients equal LibTorch autograd on the same last stage", "[tune]") {
  const Case k = GENERATE(Case{"l1", true, false}, Case{"laplace_nll", true, false}, Case{"l1", false, true});
  INFO("loss " << k.loss << ", uncertainty " << k.uncertainty << ", train_head " << k.train_head);
  GazeNet model = testing::perturbed_student(11);
  model->set_head_uncertainty(k.uncertainty);
  const TuneData data = tune_data(*model, kInputH, kInputW);
  REQUIRE(data.blocks.size() == 2);
  REQUIRE(data.adapters.size() == 6680);  // SPEC §1: the student's last-stage adapters
  const gz_tune_graph g = data.graph(k.train_head, k.loss == "laplace_nll");
  const int64_t h = g.height, w = g.width;
  const Batch batch = random_batch(h * w, g.channels, 3);

  const std::vector<at::Tensor> tensors = user_tensors(model, k.train_head);
  for (const at::Tensor& t : tensors) t.requires_grad_(true);
  const at::Tensor loss = torch_loss(model, batch, k, h, w);
  const std::vector<at::Tensor> grads = torch::autograd::grad({loss}, tensors);

  std::vector<float> params = data.params(k.train_head);
  REQUIRE(params.size() == gz_tune_param_count(&g));
  CHECK(params == flat(tensors));
  std::vector<float> grad(params.size(), 0.0f);
  const float ours = tune_batch(g, params, grad, batch);
  CHECK(ours == Approx(loss.item<float>()).epsilon(1e-5));
  // The issue asks for 1e-4; float rounding leaves ~5e-7 here, so 1e-5 still catches a wrong
  // term that is small in this model (GRN's cross term at half its size gives 7e-5).
  CHECK(relative_difference(grad, flat(grads)) < 1e-5);
  // Each adapter's gradient on its own, so a small block cannot hide behind a large one.
  const size_t per = gz_tune_adapter_params(&g);
  const std::vector<float> want = flat(grads);
  for (int32_t b = 0; b < g.blocks; ++b) {
    const std::vector<float> a(grad.begin() + b * per, grad.begin() + (b + 1) * per);
    const std::vector<float> e(want.begin() + b * per, want.begin() + (b + 1) * per);
    CHECK(relative_difference(a, e) < 1e-5);
  }
}

TEST_CASE("gz_tune's AdamW steps follow LibTorch's AdamW", "[tune]") {
  GazeNet model = testing::perturbed_student(12);
  const TuneData data = tune_data(*model, kInputH, kInputW);
  const gz_tune_graph g = data.graph(false, false);
  const Batch batch = random_batch(int64_t(g.height) * g.width, g.channels, 4);
  const std::vector<at::Tensor> tensors = user_tensors(model, false);
  for (const at::Tensor& t : tensors) t.requires_grad_(true);
  torch::optim::AdamW optimizer(tensors, torch::optim::AdamWOptions(3e-3).weight_decay(0.0));
  std::vector<float> params = data.params(false), m(params.size()), v(params.size()), grad(params.size());
  for (int32_t step = 1; step <= 5; ++step) {
    optimizer.zero_grad();
    torch_loss(model, batch, {"l1", true, false}, g.height, g.width).backward();
    optimizer.step();
    std::fill(grad.begin(), grad.end(), 0.0f);
    tune_batch(g, params, grad, batch);
    gz_tune_adamw_step(params.data(), grad.data(), m.data(), v.data(), params.size(), 3e-3f, step);
  }
  at::NoGradGuard no_grad;
  CHECK(relative_difference(params, flat(tensors)) < 1e-4);
}

}  // namespace gaze
