// The quantiser and the integer reference against the float model they came from.
#include "export/quantizer.h"
#include "export/export_job.h"
#include "export/test_models.h"
#include "libgaze/io/model_io.h"
#include "libgaze/metrics/angular_error.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/utils.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <random>

#include "datasets/preprocess.h"
#include "datasets/synth/eye_renderer.h"

namespace gaze {
using testing::eye_frames;
using testing::perturbed_student;

TEST_CASE("the calibration forward is the model's own forward", "[quantizer]") {
  GazeNet model = perturbed_student(4);
  QuantizeOptions options;
  const auto frames = eye_frames(2, options.input_h, options.input_w, 2);
  torch::NoGradGuard no_grad;
  const at::Tensor x = frames_to_batch(frames, 1, 2, options.input_h, options.input_w);
  const auto shadow = float_activations(model, frames[1], options);
  CHECK(at::allclose(shadow.at("head.out"), model->forward(x), 1e-5, 1e-6));
  CHECK(at::allclose(shadow.at("residual.3").permute({0, 3, 1, 2}), model->forward_stages(x).back(), 1e-5, 1e-6));
}

TEST_CASE("a grid head: calibrated through the model's own head, refused past the kernel's size", "[quantizer]") {
  GazeNet model = perturbed_student(4, {3, 4});
  QuantizeOptions options;
  const auto frames = eye_frames(2, options.input_h, options.input_w, 2);
  torch::NoGradGuard no_grad;
  const at::Tensor x = frames_to_batch(frames, 0, 2, options.input_h, options.input_w);
  CHECK(at::allclose(float_activations(model, frames[0], options).at("head.out"), model->forward(x).narrow(0, 0, 1),
                     1e-5, 1e-6));
  const ActivationRanges ranges = calibrate(model, frames, options);
  CHECK(ranges.at("head.norm").channel_mean.size() == 12 * 80);  // one mean per head input
  // The teacher's 320 channels in 4 x 4 cells: 5,120 inputs, more than the kernel holds.
  GazeNet wide = make_gaze_net(default_config({"model.arch=teacher", "model.head.grid=[4,4]"}).model, 1);
  CHECK_THROWS_WITH(quantize_model(wide, {}, options),
                    Catch::Contains("export: the head reads 5120 features (model.head.grid [4, 4] of 320 channels); "
                                    "the kernel holds at most 4096"));
}

TEST_CASE("a head with key points is refused by every export path, by name", "[quantizer]") {
  GazeNet keyed = make_gaze_net(default_config({"model.head.keypoints=4"}).model, 1);
  QuantizeOptions options;
  const auto frames = eye_frames(1, options.input_h, options.input_w, 2);
  const auto refused = Catch::Contains("export: model.head.keypoints=4");
  CHECK_THROWS_WITH(calibrate(keyed, frames, options), refused);
  CHECK_THROWS_WITH(quantize_model(keyed, {}, options), refused);
  CHECK_THROWS_WITH(tune_data(*keyed, options.input_h, options.input_w), refused);
  CHECK_THROWS_WITH(float_activations(keyed, frames[0], options), refused);
  // gaze export / bench load their student through load_student: refused before any data is read.
  testing::TempDir dir;
  const Config config = default_config({"model.head.keypoints=4"});
  save_model(dir.file("keyed.h5"), keyed, config, "adapters", 0);
  CHECK_THROWS_WITH(load_student(dir.file("keyed.h5"), ""), refused);
}

TEST_CASE("integer reference stage outputs track the float model", "[quantizer]") {
  GazeNet model = perturbed_student(3);
  QuantizeOptions options;
  const auto frames = eye_frames(24, options.input_h, options.input_w, 1);
  const ActivationRanges ranges = calibrate(model, frames, options);
  const QuantizedNet net = quantize_model(model, ranges, options);
  torch::NoGradGuard no_grad;
  for (size_t f = 0; f < 3; ++f) {
    const at::Tensor x = frames_to_batch(frames, f, f + 1, options.input_h, options.input_w);
    const auto stages = model->forward_stages(x);
    QTrace trace;
    qnet_predict(net, frames[f].data(), options.input_h, options.input_w, &trace);
    {
      const at::Tensor expected = model->downsample_layers[0]
                                      ->as<torch::nn::Sequential>()
                                      ->forward(x)
                                      .permute({0, 2, 3, 1})
                                      .contiguous()
                                      .flatten();
      at::Tensor got =
          at::from_blob(trace.stem_output.data(), {int64_t(trace.stem_output.size())}, at::kShort).to(at::kFloat) *
          net.scales.residual[0];
      const double rel = (got - expected).norm().item<double>() / expected.norm().item<double>();
      INFO("frame " << f << " stem relative error " << rel);
      CHECK(rel < 0.01);
    }
    for (size_t s = 0; s < 4; ++s) {
      const at::Tensor expected = stages[s].permute({0, 2, 3, 1}).contiguous().flatten();
      at::Tensor got =
          at::from_blob(trace.stage_outputs[s].data(), {int64_t(trace.stage_outputs[s].size())}, at::kShort)
              .to(at::kFloat) *
          net.scales.residual[s];
      const double rel = (got - expected).norm().item<double>() / expected.norm().item<double>();
      INFO("frame " << f << " stage " << s << " relative error " << rel);
      CHECK(rel < 0.02);
    }
  }
}

// int8 inputs: the named layers requantise their input to [-127, 127] (and only they); the
// reference stays close to the float model with every candidate int8, and closer with none.
TEST_CASE("int8-input layers: only the named ones, and the reference still tracks the float model", "[quantizer]") {
  GazeNet model = perturbed_student(3);
  QuantizeOptions options;
  options.input_h = 64;
  options.input_w = 96;
  // Weights rounded to nearest: with GPTQ's rounding this random student's all-int8 and
  // all-16-bit networks are within noise of each other on 8 frames (0.137 and 0.144 deg).
  options.weight_rounding = "nearest";
  const auto frames = eye_frames(24, options.input_h, options.input_w, 1);
  const ActivationRanges ranges = calibrate(model, frames, options);
  const QuantizedNet none = quantize_model(model, ranges, options);
  const std::vector<std::string> candidates = none.int8_candidates();
  CHECK(candidates.size() == 1 + 3 + 2 * size_t(std::accumulate(none.depths.begin(), none.depths.end(), 0)));
  CHECK(none.int8_macs() == 0);
  for (const std::string& name : candidates) CHECK(none.layer(name) != nullptr);
  CHECK(none.layer("0.0.down") == nullptr);  // adapters keep 16-bit products (the user blob format)

  options.int8_layers = {"stem", "ds.2", "1.0.pw1"};
  const QuantizedNet some = quantize_model(model, ranges, options);
  for (const std::string& name : candidates)
    CHECK(some.layer(name)->int8_input() == (options.int8_layers.count(name) > 0));
  CHECK(some.int8_macs() > 0);

  options.int8_layers = std::set<std::string>(candidates.begin(), candidates.end());
  const QuantizedNet all = quantize_model(model, ranges, options);
  const auto held_out = eye_frames(8, options.input_h, options.input_w, 9);
  const QuantizationError e16 = compare_float_fixed(model, none, held_out),
                          e8 = compare_float_fixed(model, all, held_out);
  INFO("float vs fixed: all 16-bit " << e16.mean_deg << " deg, every candidate int8 " << e8.mean_deg << " deg");
  CHECK(e8.mean_deg > e16.mean_deg);
  CHECK(e8.mean_deg < 10 * e16.mean_deg + 1.0);  // coarser, not broken
  CHECK(double(all.int8_macs()) / double(all.macs()) > 0.7);

  options.int8_layers = {"0.0.pw3"};
  CHECK_THROWS_WITH(quantize_model(model, ranges, options), Catch::Contains("no pointwise layer '0.0.pw3'"));
}

TEST_CASE("the int8 sensitivity pass stays within its bound and measures what it chose", "[quantizer]") {
  GazeNet model = perturbed_student(5);
  QuantizeOptions options;
  options.input_h = 64;
  options.input_w = 96;
  const ActivationRanges ranges = calibrate(model, eye_frames(32, options.input_h, options.input_w, 2), options);
  const auto frames = eye_frames(12, options.input_h, options.input_w, 3);
  const std::vector<std::string> candidates = quantize_model(model, ranges, options).int8_candidates();
  QuantizeOptions all = options;
  all.int8_layers = std::set<std::string>(candidates.begin(), candidates.end());
  const double base = compare_float_fixed(model, quantize_model(model, ranges, options), frames).mean_deg;
  const double every = compare_float_fixed(model, quantize_model(model, ranges, all), frames).mean_deg;
  REQUIRE(every > base);
  const double bound = (base + every) / 2;  // room for some layers, not all

  const Int8Choice choice = choose_int8_layers(model, ranges, options, frames, bound - base, 10.0);
  INFO("all 16-bit " << base << " deg, all int8 " << every << " deg, bound " << bound << ", chose "
                     << choice.layers.size() << " layers at " << choice.chosen_deg << " deg");
  CHECK(choice.base_deg == Approx(base).epsilon(1e-9));
  CHECK(choice.ranking.size() == candidates.size());
  CHECK(choice.frames == frames.size());
  CHECK(!choice.layers.empty());
  CHECK(choice.layers.size() < candidates.size());
  CHECK(choice.chosen_deg <= bound);
  // the chosen set, quantised afresh, measures what the pass reported, and its layers are the
  // ranking's first ones
  QuantizeOptions chosen = options;
  chosen.int8_layers = std::set<std::string>(choice.layers.begin(), choice.layers.end());
  CHECK(compare_float_fixed(model, quantize_model(model, ranges, chosen), frames).mean_deg ==
        Approx(choice.chosen_deg).epsilon(1e-9));
  for (size_t i = 0; i < choice.layers.size(); ++i) CHECK(choice.layers[i] == choice.ranking[i].first);
  // one evaluation for all 16-bit, one per candidate, then a bisection
  CHECK(choice.evaluations <= 1 + candidates.size() + 6);

  // a budget too small for any layer: nothing int8
  const double cheapest = choice.ranking.front().second;
  if (cheapest > 0) {
    const Int8Choice strict = choose_int8_layers(model, ranges, options, frames, cheapest / 2, 10.0);
    CHECK(strict.layers.empty());
    CHECK(strict.chosen_deg == strict.base_deg);
    // the same bound as an absolute cap behind a generous budget: the same (empty) choice
    const Int8Choice capped = choose_int8_layers(model, ranges, options, frames, 10.0, base + cheapest / 2);
    CHECK(capped.bound_deg == Approx(base + cheapest / 2).epsilon(1e-12));
    CHECK(capped.layers.empty());
  }
  // the cap at the first bound gives the first choice
  const Int8Choice capped = choose_int8_layers(model, ranges, options, frames, 10.0, bound);
  CHECK(capped.layers == choice.layers);
  CHECK(capped.bound_deg == Approx(bound).epsilon(1e-12));
  CHECK_THROWS_WITH(choose_int8_layers(model, ranges, options, {}, 1.0, 1.0), Catch::Contains("no frames"));
}

namespace {

// sum_o (w_o - s_o q_o)^T G (w_o - s_o q_o): the mean squared output error of weights w [out][in]
// rounded to q with row scales s, over the inputs whose Gram matrix (mean x x^T) is G.
double output_error(const float* w, const int8_t* q, const float* scale, size_t out, size_t in, const double* gram) {
  double total = 0;
  std::vector<double> e(in);
  for (size_t o = 0; o < out; ++o) {
    for (size_t i = 0; i < in; ++i) e[i] = double(w[o * in + i]) - double(q[o * in + i]) * scale[o];
    for (size_t i = 0; i < in; ++i)
      for (size_t j = 0; j < in; ++j) total += e[i] * gram[i * in + j] * e[j];
  }
  return total;
}

double output_error(const std::vector<float>& w, const QLinear& l, const std::vector<double>& gram) {
  return output_error(w.data(), l.weight.data(), l.weight_scale.data(), size_t(l.out), size_t(l.in), gram.data());
}

std::vector<float> values(const at::Tensor& t) {
  const at::Tensor c = t.detach().contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

// export.weight_rounding=gptq: calibration measures the Gram matrices of exactly the backbone's
// pointwise inputs (each block's pw1 and pw2, each downsample's 2x2 patches); the scales stay
// those of rounding to nearest, and on every such layer the output error over the calibration
// inputs is no larger (GPTQ's objective; rounding to nearest ignores the inputs).
TEST_CASE("GPTQ rounding lowers every backbone layer's output error on the calibration inputs", "[quantizer]") {
  GazeNet model = perturbed_student(6);
  QuantizeOptions nearest, gptq;  // gptq: the default
  nearest.weight_rounding = "nearest";
  const auto frames = eye_frames(32, nearest.input_h, nearest.input_w, 6);
  const ActivationRanges plain = calibrate(model, frames, nearest);
  const ActivationRanges ranges = calibrate(model, frames, gptq);
  size_t grams = 0;
  for (const auto& [name, r] : plain) CHECK(r.gram.empty());
  for (const auto& [name, r] : ranges) grams += !r.gram.empty();
  CHECK(grams == 2 * 12 + 3);  // 12 blocks, 3 downsamples
  CHECK_THROWS_WITH(quantize_model(model, plain, gptq), Catch::Contains("has no Gram matrix"));
  QuantizeOptions unknown;
  unknown.weight_rounding = "stochastic";
  CHECK_THROWS_WITH(quantize_model(model, plain, unknown), Catch::Contains("unknown weight rounding 'stochastic'"));

  const QuantizedNet a = quantize_model(model, ranges, nearest), b = quantize_model(model, ranges, gptq);
  double sum_nearest = 0, sum_gptq = 0;
  size_t changed = 0;
  const auto compare = [&](const std::string& name, const std::vector<float>& w, const QLinear& qa, const QLinear& qb,
                           const std::string& activation) {
    const std::vector<double>& gram = ranges.at(activation).gram;
    REQUIRE(gram.size() == size_t(qa.in) * size_t(qa.in));
    CHECK(qa.weight_scale == qb.weight_scale);
    const double ea = output_error(w, qa, gram), eb = output_error(w, qb, gram);
    INFO(name << ": output error " << ea << " rounded to nearest, " << eb << " by GPTQ");
    CHECK(eb <= ea * (1 + 1e-9));
    sum_nearest += ea, sum_gptq += eb;
    changed += qa.weight != qb.weight;
  };
  for (size_t s = 0; s < 4; ++s) {
    if (s > 0) {
      const auto conv = model->downsample_layers[s]->as<torch::nn::Sequential>()->ptr(1)->as<torch::nn::Conv2d>();
      const std::string ds = "ds." + std::to_string(s);
      compare(ds, values(conv->weight.permute({0, 2, 3, 1})), a.downsamples[s - 1].conv, b.downsamples[s - 1].conv,
              ds + ".norm");
    }
    size_t i = 0;
    for (const auto& module : *model->stages[s]->as<torch::nn::ModuleList>()) {
      const BlockImpl& block = *module->as<Block>();
      const std::string name = std::to_string(s) + "." + std::to_string(i);
      compare(name + ".pw1", values(block.pwconv1->weight), a.stages[s][i].pw1, b.stages[s][i].pw1, name + ".norm");
      compare(name + ".pw2", values(block.pwconv2->weight), a.stages[s][i].pw2, b.stages[s][i].pw2, name + ".grn");
      ++i;
    }
  }
  WARN("backbone pointwise layers' output error, summed: " << sum_nearest << " rounded to nearest, " << sum_gptq
                                                           << " by GPTQ");
  CHECK(changed == 27);
  CHECK(sum_gptq < 0.8 * sum_nearest);

  // The depthwise 7x7 convs: each channel's 49 taps rounded with that channel's 49 x 49 Gram
  // matrix of its patches; per block, no larger an output error than rounding to nearest.
  double dw_nearest = 0, dw_gptq = 0;
  size_t dw_changed = 0;
  for (size_t s = 0; s < 4; ++s) {
    size_t i = 0;
    for (const auto& module : *model->stages[s]->as<torch::nn::ModuleList>()) {
      const std::string name = std::to_string(s) + "." + std::to_string(i);
      const QBlock &qa = a.stages[s][i], &qb = b.stages[s][i++];
      const std::vector<float> w = values(module->as<Block>()->dwconv->weight);
      const ActivationRange& in = ranges.at(name + ".in");
      REQUIRE(in.tap_gram.size() == size_t(qa.dim) * 49 * 49);
      CHECK(plain.at(name + ".in").tap_gram.empty());
      CHECK(qa.dw_weight_scale == qb.dw_weight_scale);
      double ea = 0, eb = 0;
      for (size_t c = 0; c < size_t(qa.dim); ++c) {
        const double* gram = in.tap_gram.data() + c * 49 * 49;
        ea += output_error(&w[c * 49], &qa.dw_weight[c * 49], &qa.dw_weight_scale[c], 1, 49, gram);
        eb += output_error(&w[c * 49], &qb.dw_weight[c * 49], &qb.dw_weight_scale[c], 1, 49, gram);
      }
      INFO(name << ".dw: output error " << ea << " rounded to nearest, " << eb << " by GPTQ");
      CHECK(eb <= ea * (1 + 1e-9));
      dw_nearest += ea, dw_gptq += eb;
      dw_changed += qa.dw_weight != qb.dw_weight;
    }
  }
  WARN("depthwise convs' output error, summed: " << dw_nearest << " rounded to nearest, " << dw_gptq << " by GPTQ");
  CHECK(dw_changed == 12);
  CHECK(dw_gptq < 0.8 * dw_nearest);
  // The adapters and the head round to nearest either way (the device rounds a user's so).
  CHECK(a.stages[3][0].adapter.up.weight == b.stages[3][0].adapter.up.weight);
  CHECK(a.head.weight == b.head.weight);
}

}  // namespace gaze

namespace gaze {

// The depthwise convs' bias correction is taken tap by tap: a tap near the border sees the zero
// padding, so on the small maps of stages 3 and 4 (6x8 and 3x4 at 96x128) the channel mean is
// not what most taps see. calibrate() records each tap's mean; checked here against the
// recorded inputs, and by its purpose: on the calibration frames the quantised conv's mean
// output error per channel is the bias's rounding alone, in every block.
TEST_CASE("depthwise bias correction: each tap's own mean, zero padding included", "[quantizer]") {
  GazeNet model = perturbed_student(7);
  QuantizeOptions options;
  options.weight_rounding = "nearest";  // tap means are measured either way
  const auto frames = eye_frames(8, options.input_h, options.input_w, 7);
  const ActivationRanges ranges = calibrate(model, frames, options);
  const QuantizedNet net = quantize_model(model, ranges, options);
  std::map<std::string, std::vector<at::Tensor>> inputs;  // block -> NCHW input per frame
  for (const Frame& f : frames)
    for (const auto& [name, t] : float_activations(model, f, options))
      if (name.size() > 3 && name.compare(name.size() - 3, 3, ".in") == 0)
        inputs[name].push_back(t.permute({0, 3, 1, 2}));
  REQUIRE(inputs.size() == 12);
  torch::NoGradGuard no_grad;
  for (size_t s = 0; s < 4; ++s) {
    size_t i = 0;
    for (const auto& module : *model->stages[s]->as<torch::nn::ModuleList>()) {
      const std::string name = std::to_string(s) + "." + std::to_string(i);
      const QBlock& q = net.stages[s][i++];
      const at::Tensor x = at::cat(inputs.at(name + ".in"));  // [n][C][h][w]
      const int64_t c = x.size(1), h = x.size(2), w = x.size(3);
      // Each tap's mean, directly: tap (ky, kx) reads x[y + ky - 3][x + kx - 3], zero outside.
      const std::vector<double>& tap_mean = ranges.at(name + ".in").tap_mean;
      REQUIRE(tap_mean.size() == size_t(c) * 49);
      const at::Tensor padded = at::constant_pad_nd(x, {3, 3, 3, 3}).to(at::kDouble);
      double worst = 0;
      for (int64_t ky = 0; ky < 7; ++ky)
        for (int64_t kx = 0; kx < 7; ++kx) {
          const at::Tensor m = padded.slice(2, ky, ky + h).slice(3, kx, kx + w).mean(at::IntArrayRef{0, 2, 3});
          for (int64_t ch = 0; ch < c; ++ch)
            worst = std::max(worst, std::fabs(m[ch].item<double>() - tap_mean[size_t(ch * 49 + ky * 7 + kx)]));
        }
      INFO(name << ": largest tap mean difference " << worst);
      CHECK(worst < 1e-4 * (x.abs().max().item<double>() + 1));

      // The quantised conv (dequantised weights and corrected bias) against the float one.
      auto conv = module->as<Block>()->dwconv;
      const at::Tensor scale = at::tensor(q.dw_weight_scale);
      const at::Tensor wq =
          at::tensor(std::vector<float>(q.dw_weight.begin(), q.dw_weight.end())).reshape({c, 1, 7, 7}) *
          scale.reshape({c, 1, 1, 1});
      const at::Tensor acc_scale = scale * net.scales.residual[s];
      const at::Tensor bq = at::tensor(std::vector<float>(q.dw_bias.begin(), q.dw_bias.end())) * acc_scale;
      const at::Tensor shift = (at::conv2d(x, wq, bq, 1, 3, 1, c) - at::conv2d(x, conv->weight, conv->bias, 1, 3, 1, c))
                                   .mean(at::IntArrayRef{0, 2, 3});
      INFO(name << ": mean output shift / accumulator step, worst channel "
                << (shift.abs() / acc_scale).max().item<double>());
      CHECK((shift.abs() <= 0.5 * acc_scale + 1e-6).all().item<bool>());
    }
  }
}

}  // namespace gaze
