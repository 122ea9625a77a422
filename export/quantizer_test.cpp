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

}  // namespace gaze
