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

  const Int8Choice choice = choose_int8_layers(model, ranges, options, frames, bound - base);
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
    const Int8Choice strict = choose_int8_layers(model, ranges, options, frames, cheapest / 2);
    CHECK(strict.layers.empty());
    CHECK(strict.chosen_deg == strict.base_deg);
  }
  CHECK_THROWS_WITH(choose_int8_layers(model, ranges, options, {}, 1.0), Catch::Contains("no frames"));
}

namespace {

// sum_o (w_o - s_o q_o)^T G (w_o - s_o q_o): the layer's mean squared output error over the
// inputs whose Gram matrix (mean x x^T) is G.
double output_error(const std::vector<float>& w, const QLinear& l, const std::vector<double>& gram) {
  const size_t in = size_t(l.in);
  double total = 0;
  std::vector<double> e(in);
  for (size_t o = 0; o < size_t(l.out); ++o) {
    for (size_t i = 0; i < in; ++i) e[i] = double(w[o * in + i]) - double(l.weight[o * in + i]) * l.weight_scale[o];
    for (size_t i = 0; i < in; ++i)
      for (size_t j = 0; j < in; ++j) total += e[i] * gram[i * in + j] * e[j];
  }
  return total;
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
  // The adapters and the head round to nearest either way (the device rounds a user's so).
  CHECK(a.stages[3][0].adapter.up.weight == b.stages[3][0].adapter.up.weight);
  CHECK(a.head.weight == b.head.weight);
}

}  // namespace gaze
