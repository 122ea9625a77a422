// The quantiser and the integer reference against the float model they came from.
#include "export/quantizer.h"
#include "export/export_job.h"
#include "export/test_models.h"
#include "libgaze/io/model_io.h"
#include "libgaze/metrics/angular_error.h"

#include <ATen/ATen.h>
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

}  // namespace gaze
