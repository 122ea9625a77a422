#include "libgaze/models/fused_grn.h"

#include <catch2/catch.hpp>

using namespace gaze;

namespace {

// The official module's composite (ConvNeXt-V2 models/utils.py GRN), differentiated by autograd.
at::Tensor reference_grn(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta) {
  const at::Tensor gx = at::norm(x, 2, {1, 2}, /*keepdim=*/true);
  const at::Tensor nx = gx / (gx.mean(-1, /*keepdim=*/true) + 1e-6);
  return gamma * (x * nx) + beta + x;
}

struct Grads {
  at::Tensor y, dx, dgamma, dbeta;
};

template <typename F>
Grads run(F grn, const at::Tensor& x0, const at::Tensor& gamma0, const at::Tensor& beta0, const at::Tensor& dy) {
  at::Tensor x = x0.clone().requires_grad_(true), gamma = gamma0.clone().requires_grad_(true),
             beta = beta0.clone().requires_grad_(true);
  const at::Tensor y = grn(x, gamma, beta);
  y.backward(dy);
  return {y.detach(), x.grad(), gamma.grad(), beta.grad()};
}

double max_relative(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item<double>();
}

}  // namespace

TEST_CASE("fused_grn equals the official GRN and its autograd gradients", "[fused_grn]") {
  at::manual_seed(7);
  for (const auto dtype : {at::kDouble, at::kFloat}) {
    at::Tensor x = at::randn({3, 5, 6, 16}, dtype);
    x.select(0, 1).select(2, 3).zero_();     // one channel of one image all zero: gx = 0 there
    x.select(0, 2).narrow(0, 1, 2).zero_();  // hidden rows, as an FCMAE mask leaves them
    const at::Tensor gamma = at::randn({1, 1, 1, 16}, dtype), beta = at::randn({1, 1, 1, 16}, dtype);
    const at::Tensor dy = at::randn(x.sizes(), dtype);
    const Grads want = run(reference_grn, x, gamma, beta, dy);
    const Grads got = run(fused_grn, x, gamma, beta, dy);
    const double tol = dtype == at::kDouble ? 1e-10 : 2e-5;
    INFO("dtype " << dtype);
    CHECK(max_relative(got.y, want.y) < tol);
    CHECK(max_relative(got.dx, want.dx) < tol);
    CHECK(max_relative(got.dgamma, want.dgamma) < tol);
    CHECK(max_relative(got.dbeta, want.dbeta) < tol);
    CHECK(got.dgamma.sizes() == gamma.sizes());
  }
}

TEST_CASE("fused_grn takes a permuted (non-contiguous) input, as a block's NHWC view is", "[fused_grn]") {
  at::manual_seed(8);
  const at::Tensor nchw = at::randn({2, 8, 4, 5}, at::kDouble);
  const at::Tensor x = nchw.permute({0, 2, 3, 1});
  const at::Tensor gamma = at::randn({1, 1, 1, 8}, at::kDouble), beta = at::randn({1, 1, 1, 8}, at::kDouble);
  CHECK(max_relative(fused_grn(x, gamma, beta), reference_grn(x, gamma, beta)) < 1e-12);
}

TEST_CASE("fused_grn_rows on an image's visible rows equals fused_grn with the hidden rows zero", "[fused_grn]") {
  at::manual_seed(9);
  at::Tensor x = at::randn({3, 4, 5, 8}, at::kDouble);
  const at::Tensor keep = at::rand({3, 4, 5}, at::kDouble) < 0.4;
  keep[1].fill_(false);  // one image with no visible position
  x.mul_(keep.unsqueeze(-1));
  const at::Tensor rows = keep.reshape({-1}).nonzero().reshape({-1});
  const at::Tensor per_image = keep.reshape({3, -1}).sum(1).cumsum(0);
  const std::vector<int64_t> offsets{0, per_image[0].item<int64_t>(), per_image[1].item<int64_t>(),
                                     per_image[2].item<int64_t>()};
  const at::Tensor gamma = at::randn({1, 1, 1, 8}, at::kDouble), beta = at::randn({1, 1, 1, 8}, at::kDouble);
  const at::Tensor dy = at::randn(x.sizes(), at::kDouble) * keep.unsqueeze(-1);
  const Grads dense = run(fused_grn, x, gamma, beta, dy);
  const auto on_rows = [&](const at::Tensor& xd, const at::Tensor& g, const at::Tensor& b) {
    return fused_grn_rows(xd.reshape({-1, 8}).index_select(0, rows), offsets, g, b);
  };
  const Grads sparse = run(on_rows, x, gamma, beta, dy.reshape({-1, 8}).index_select(0, rows));
  CHECK(max_relative(sparse.y, dense.y.reshape({-1, 8}).index_select(0, rows)) < 1e-12);
  CHECK(max_relative(sparse.dx, dense.dx) < 1e-12);
  CHECK(max_relative(sparse.dgamma, dense.dgamma) < 1e-12);
  CHECK(max_relative(sparse.dbeta, dense.dbeta) < 1e-12);
}

TEST_CASE("fused_grn refuses what it does not compute", "[fused_grn]") {
  const at::Tensor g = at::zeros({1, 1, 1, 4});
  CHECK_THROWS_WITH(fused_grn(at::zeros({2, 4}), g, g), Catch::Contains("[N, H, W, C]"));
  CHECK_THROWS_WITH(fused_grn(at::zeros({1, 2, 2, 4}, at::kInt), g, g), Catch::Contains("float or double"));
  CHECK_THROWS_WITH(fused_grn(at::zeros({1, 2, 2, 5}), g, g), Catch::Contains("5 channels"));
  CHECK_THROWS_WITH(fused_grn_rows(at::zeros({6, 4}), {0, 2, 5}, g, g), Catch::Contains("row count 6"));
  CHECK_THROWS_WITH(fused_grn_rows(at::zeros({6, 4}), {0, 4, 2, 6}, g, g), Catch::Contains("not decrease"));
  CHECK_THROWS_WITH(fused_grn_rows(at::zeros({2, 2, 4}), {0, 2}, g, g), Catch::Contains("[R, C]"));
}
