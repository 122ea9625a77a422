// On-device personalisation (export/tune.h, export/tune_run.h) against LibTorch and the exporter:
// the hand-written backward against autograd on the same float last stage (losses, every
// parameter's gradient), AdamW against torch::optim::AdamW over 60 steps, the float last stage on
// the integer network's features against the integer network, and the device's quantiser
// against the exporter's user blob, byte for byte.
#include "export/tune.h"
#include "export/tune_run.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/optim/adamw.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "export/codegen.h"
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
  std::vector<int64_t> grid = {1, 1};  // model.head.grid; [2, 3] on the 3 x 4 map: cells share rows
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
    loss += gz_tune_frame(&g, params.data(), grad.data(), b.c.data_ptr<float>() + i * n, b.f.data_ptr<float>() + i * n,
                          b.target.data_ptr<float>() + i * 3, 1.0f / kFrames, work.data()) /
            kFrames;
  }
  return loss;
}

// A perturbed student calibrated on eye frames at the default 96x128 and quantised.
struct Quantized {
  GazeNet model;
  QuantizeOptions options;
  std::vector<Frame> frames;
  ActivationRanges ranges;
  QuantizedNet net;
  explicit Quantized(uint64_t seed, const std::vector<int64_t>& head_grid = {1, 1})
      : model(testing::perturbed_student(seed, head_grid)),
        frames(testing::eye_frames(8, options.input_h, options.input_w, uint32_t(seed))),
        ranges(calibrate(model, frames, options)),
        net(quantize_model(model, ranges, options)) {}
};

}  // namespace

TEST_CASE("gz_tune's gradients equal LibTorch autograd on the same last stage", "[tune]") {
  const Case k = GENERATE(Case{"l1", true, false}, Case{"laplace_nll", true, false}, Case{"l1", false, true},
                          Case{"laplace_nll", true, true, {3, 4}}, Case{"l1", true, true, {2, 3}});
  INFO("loss " << k.loss << ", uncertainty " << k.uncertainty << ", train_head " << k.train_head << ", grid "
               << k.grid[0] << "x" << k.grid[1]);
  GazeNet model = testing::perturbed_student(11);
  model->set_head_uncertainty(k.uncertainty);
  if (k.grid != std::vector<int64_t>{1, 1}) {
    model->reset_head(k.grid, 0, 3);
    at::NoGradGuard no_grad;
    model->head->weight.normal_(0, 0.2);  // a head that has learned something, not the 0.02 start
  }
  REQUIRE(model->config().head.grid == k.grid);
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
  const Case k = GENERATE(Case{"l1", true, false}, Case{"laplace_nll", true, false});
  INFO("loss " << k.loss);
  GazeNet model = testing::perturbed_student(12);
  const TuneData data = tune_data(*model, kInputH, kInputW);
  const gz_tune_graph g = data.graph(false, k.loss == "laplace_nll");
  const std::vector<at::Tensor> tensors = user_tensors(model, false);
  for (const at::Tensor& t : tensors) t.requires_grad_(true);
  torch::optim::AdamW optimizer(tensors, torch::optim::AdamWOptions(3e-3).weight_decay(0.0));
  std::vector<float> params = data.params(false), m(params.size()), v(params.size()), grad(params.size());
  // 60 steps (personalize's default) on a new batch each step, as personalisation runs them.
  for (int32_t step = 1; step <= 60; ++step) {
    const Batch batch = random_batch(int64_t(g.height) * g.width, g.channels, 100 + uint64_t(step % 7));
    optimizer.zero_grad();
    torch_loss(model, batch, k, g.height, g.width).backward();
    optimizer.step();
    std::fill(grad.begin(), grad.end(), 0.0f);
    tune_batch(g, params, grad, batch);
    gz_tune_adamw_step(params.data(), grad.data(), m.data(), v.data(), params.size(), 3e-3f, step);
  }
  at::NoGradGuard no_grad;
  CHECK(relative_difference(params, flat(tensors)) < 1e-3);
}

// The device's quantisation of adapters (gz_tune_quantize_adapter, export/tune_run.h) against
// the exporter's user blob of the same adapters and statistics: byte for byte.
TEST_CASE("the device quantises adapters and head into exactly the exporter's user blob", "[tune]") {
  const std::vector<int64_t> grid = GENERATE(std::vector<int64_t>{1, 1}, std::vector<int64_t>{2, 3});
  const Quantized q(13, grid);
  const ActivationRanges& ranges = q.ranges;
  const QuantizedNet& net = q.net;
  const std::vector<uint8_t> blob = user_blob(net, net);  // the base's own adapters and head as a user's
  const bool train_head = GENERATE(false, true);          // the head from the graph, or trained among the parameters
  INFO("train_head " << train_head);
  gz_tune_model m{};
  m.graph = net.tune.graph(train_head, false);
  m.residual_scale = net.scales.residual[3];
  m.head_norm_scale = net.tune.head_norm_scale;
  m.slope = net.stages[3][0].adapter.slope;
  std::vector<float> params = net.tune.params(train_head);
  std::vector<float> scratch(gz_tune_quant_floats(&m.graph));
  std::vector<uint8_t> payload(blob.size(), 0);
  REQUIRE(blob.size() == gz_tune_blob_bytes(&m));
  size_t at = 20;
  for (int32_t b = 0; b < m.graph.blocks; ++b) {
    // The statistics the exporter used: pw2 and LeakyReLU channel means, the down output's range.
    const std::string name = "3." + std::to_string(b);
    std::vector<double> stats = ranges.at(name + ".pw2").channel_mean;
    const std::vector<double>& lrelu = ranges.at(name + ".lrelu").channel_mean;
    stats.insert(stats.end(), lrelu.begin(), lrelu.end());
    const ActivationRange& down = ranges.at(name + ".down");
    stats.push_back(std::max(std::fabs(down.low), std::fabs(down.high)));
    REQUIRE(stats.size() == size_t(m.graph.channels + m.graph.hidden + 1));
    const long bytes =
        gz_tune_quantize_adapter(&m, params.data(), b, stats.data(), scratch.data(), payload.data() + at);
    REQUIRE(bytes == long(gz_tune_adapter_payload_bytes(m.graph.channels, m.graph.hidden)));
    at += size_t(bytes);
  }
  // The head, bias-corrected with the exporter's head-norm channel means.
  const std::vector<double>& head_means = ranges.at("head.norm").channel_mean;
  REQUIRE(head_means.size() == size_t(m.graph.channels * grid[0] * grid[1]));
  const long head_bytes =
      gz_tune_quantize_head(&m, &m.graph, params.data(), head_means.data(), scratch.data(), payload.data() + at);
  REQUIRE(head_bytes == long(gz_head_payload_bytes(int32_t(head_means.size()))));
  at += size_t(head_bytes);
  CHECK(at == blob.size());
  CHECK(std::equal(payload.begin() + 20, payload.end(), blob.begin() + 20));
}

// Where the device starts: the integer network's (c, f) for a frame, dequantised, through the
// float last stage (export/tune.h) gives the prediction the integer network itself makes.
TEST_CASE("the float last stage on the integer network's features predicts what the kernel predicts", "[tune]") {
  const std::vector<int64_t> grid = GENERATE(std::vector<int64_t>{1, 1}, std::vector<int64_t>{3, 4});
  const Quantized q(14, grid);
  const QuantizedNet& net = q.net;
  const QuantizeOptions& options = q.options;
  const std::vector<Frame>& frames = q.frames;
  const gz_tune_graph g = net.tune.graph(false, false);
  std::vector<float> params = net.tune.params(false), work(gz_tune_work_floats(&g));
  for (const Frame& frame : frames) {
    QTrace trace;
    const auto want = qnet_predict(net, frame.data(), options.input_h, options.input_w, &trace);
    REQUIRE(trace.tune_c.size() == size_t(g.height) * g.width * g.channels);
    std::vector<float> c(trace.tune_c.size()), f(trace.tune_f.size());
    for (size_t i = 0; i < c.size(); ++i)
      c[i] = trace.tune_c[i] * net.scales.residual[3], f[i] = trace.tune_f[i] * net.scales.residual[3];
    float out[4];
    gz_tune_predict(&g, params.data(), c.data(), f.data(), work.data(), out);
    const double n = std::sqrt(double(out[0]) * out[0] + double(out[1]) * out[1] + double(out[2]) * out[2]);
    const double cosine = (out[0] * want[0] + out[1] * want[1] + out[2] * want[2]) / n;
    CHECK(std::acos(std::min(1.0, cosine)) * 180 / M_PI < 0.5);
  }
}

}  // namespace gaze
