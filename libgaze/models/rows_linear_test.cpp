#include "libgaze/models/rows_linear.h"

#include <catch2/catch.hpp>

using namespace gaze;

namespace {

double max_relative(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item<double>();
}

}  // namespace

TEST_CASE("rows_linear equals at::linear and its autograd gradients", "[rows_linear]") {
  at::manual_seed(3);
  // A student stage-1 shape, a wide one, and a single row.
  for (const auto& [rows, in, out] : std::vector<std::array<int64_t, 3>>{{3072, 40, 160}, {96, 320, 80}, {1, 8, 4}}) {
    for (const bool with_bias : {true, false}) {
      for (const bool train_weights : {true, false}) {
        INFO(rows << "x" << in << " -> " << out << (with_bias ? " bias" : "") << (train_weights ? " trained" : ""));
        const at::Tensor x0 = at::randn({rows, in}), w0 = at::randn({out, in}) * 0.1, b0 = at::randn({out});
        const at::Tensor dy = at::randn({rows, out});
        const auto run = [&](const auto& linear) {
          at::Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(train_weights);
          at::Tensor b = with_bias ? b0.clone().requires_grad_(train_weights) : at::Tensor();
          const at::Tensor y = linear(x, w, b);
          y.backward(dy);
          return std::vector<at::Tensor>{y.detach(), x.grad(), w.grad(), with_bias ? b.grad() : at::Tensor()};
        };
        const auto want =
            run([](const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) { return at::linear(x, w, b); });
        const auto got = run(rows_linear);
        CHECK(max_relative(got[0], want[0]) < 1e-5);
        CHECK(max_relative(got[1], want[1]) < 1e-5);
        CHECK(got[2].defined() == train_weights);
        if (train_weights) CHECK(max_relative(got[2], want[2]) < 1e-5);
        if (with_bias && train_weights) CHECK(max_relative(got[3], want[3]) < 1e-5);
      }
    }
  }
}

TEST_CASE("rows_linear takes non-contiguous rows and no rows at all", "[rows_linear]") {
  at::manual_seed(4);
  const at::Tensor w = at::randn({6, 5}), b = at::randn({6});
  const at::Tensor x = at::randn({5, 7}).t();  // [7, 5], column-major
  CHECK(max_relative(rows_linear(x, w, b), at::linear(x, w, b)) < 1e-6);
  CHECK(rows_linear(at::zeros({0, 5}), w, b).sizes() == at::IntArrayRef({0, 6}));
  // Double (checks and references run models in double) takes ATen's own convolution.
  const at::Tensor xd = x.to(at::kDouble), wd = w.to(at::kDouble), bd = b.to(at::kDouble);
  CHECK(max_relative(rows_linear(xd, wd, bd), at::linear(xd, wd, bd)) < 1e-12);
}

TEST_CASE("rows_linear refuses what it does not compute", "[rows_linear]") {
  const at::Tensor w = at::zeros({6, 5});
  CHECK_THROWS_WITH(rows_linear(at::zeros({2, 4}), w, {}), Catch::Contains("[R, K] and [N, K]"));
  CHECK_THROWS_WITH(rows_linear(at::zeros({2, 5}), w, at::zeros({5})), Catch::Contains("6 outputs"));
}
