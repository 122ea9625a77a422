#include "libgaze/models/fused_grn.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <vector>

namespace gaze {
namespace {

constexpr double kEps = 1e-6;

// Per image n: gx[c] = sqrt(sum_p x[p,c]^2) and the scale nx[c] = gx[c] / (mean gx + eps).
template <typename T>
void grn_norms(const T* x, int64_t positions, int64_t channels, double* gx, double* nx) {
  std::fill(gx, gx + channels, 0.0);
  for (int64_t p = 0; p < positions; ++p) {
    const T* row = x + p * channels;
    for (int64_t c = 0; c < channels; ++c) gx[c] += double(row[c]) * double(row[c]);
  }
  double mean = 0;
  for (int64_t c = 0; c < channels; ++c) {
    gx[c] = std::sqrt(gx[c]);
    mean += gx[c];
  }
  mean /= double(channels);
  for (int64_t c = 0; c < channels; ++c) nx[c] = gx[c] / (mean + kEps);
}

// Rows [R, C] of N images; image n owns rows [offsets[n], offsets[n+1]).
struct Segments {
  std::vector<int64_t> offsets;
  int64_t images() const { return int64_t(offsets.size()) - 1; }
  int64_t first_row(int64_t n) const { return offsets[size_t(n)]; }
  int64_t rows(int64_t n) const { return offsets[size_t(n) + 1] - offsets[size_t(n)]; }
};

Segments segments_of(const at::Tensor& x, at::IntArrayRef offsets) {
  TORCH_CHECK(x.dim() == 2, "fused_grn_rows: rows must be [R, C], got ", x.sizes());
  TORCH_CHECK(offsets.size() >= 2 && offsets.front() == 0 && offsets.back() == x.size(0),
              "fused_grn_rows: offsets must run from 0 to the row count ", x.size(0), ", got ", offsets);
  for (size_t i = 1; i < offsets.size(); ++i) {
    TORCH_CHECK(offsets[i - 1] <= offsets[i], "fused_grn_rows: offsets must not decrease, got ", offsets);
  }
  return {offsets.vec()};
}

class FusedGrn : public torch::autograd::Function<FusedGrn> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, at::IntArrayRef offsets,
                            const at::Tensor& gamma, const at::Tensor& beta) {
    TORCH_CHECK(input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble,
                "fused_grn: float or double input, got ", input.scalar_type());
    const Segments s = segments_of(input, offsets);
    const int64_t C = input.size(1);
    TORCH_CHECK(gamma.numel() == C && beta.numel() == C, "fused_grn: gamma/beta of ", gamma.numel(), "/", beta.numel(),
                " values for ", C, " channels");
    const at::Tensor x = input.contiguous();
    const at::Tensor g = gamma.to(x.scalar_type()).contiguous(), b = beta.to(x.scalar_type()).contiguous();
    at::Tensor y = at::empty_like(x);
    at::Tensor norms = at::empty({s.images(), C}, x.options().dtype(at::kDouble));  // gx, for backward
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_grn", [&] {
      const scalar_t *xp = x.data_ptr<scalar_t>(), *gp = g.data_ptr<scalar_t>(), *bp = b.data_ptr<scalar_t>();
      scalar_t* yp = y.data_ptr<scalar_t>();
      double* gxp = norms.data_ptr<double>();
      at::parallel_for(0, s.images(), 1, [&](int64_t first, int64_t last) {
        std::vector<double> nx(static_cast<size_t>(C));
        std::vector<scalar_t> scale(static_cast<size_t>(C));
        for (int64_t n = first; n < last; ++n) {
          const scalar_t* xn = xp + s.first_row(n) * C;
          scalar_t* yn = yp + s.first_row(n) * C;
          grn_norms(xn, s.rows(n), C, gxp + n * C, nx.data());
          for (int64_t c = 0; c < C; ++c) scale[size_t(c)] = scalar_t(double(gp[c]) * nx[size_t(c)] + 1.0);
          for (int64_t p = 0; p < s.rows(n); ++p) {
            const scalar_t* xr = xn + p * C;
            scalar_t* yr = yn + p * C;
            for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * scale[size_t(c)] + bp[c];
          }
        }
      });
    });
    ctx->save_for_backward({x, g, norms});
    ctx->saved_data["offsets"] = offsets.vec();
    ctx->saved_data["gamma_sizes"] = gamma.sizes().vec();
    ctx->saved_data["gamma_dtype"] = static_cast<int64_t>(gamma.scalar_type());
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& g = saved[1];
    const at::Tensor& norms = saved[2];
    const at::Tensor dy = grads[0].contiguous();
    const Segments s{ctx->saved_data["offsets"].toIntVector()};
    const int64_t channels = x.size(1);
    at::Tensor dx = at::empty_like(x);
    // Per-image partial sums for the parameter gradients, reduced over images below.
    at::Tensor dgamma_n = at::empty({s.images(), channels}, x.options().dtype(at::kDouble));
    at::Tensor dbeta_n = at::empty({s.images(), channels}, x.options().dtype(at::kDouble));
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_grn_backward", [&] {
      const scalar_t *xp = x.data_ptr<scalar_t>(), *gp = g.data_ptr<scalar_t>(), *dyp = dy.data_ptr<scalar_t>();
      scalar_t* dxp = dx.data_ptr<scalar_t>();
      double *dgp = dgamma_n.data_ptr<double>(), *dbp = dbeta_n.data_ptr<double>();
      const double* gxp = norms.data_ptr<double>();
      at::parallel_for(0, s.images(), 1, [&](int64_t first, int64_t last) {
        const size_t C = size_t(channels);
        std::vector<double> dot(C), sum_dy(C);
        std::vector<scalar_t> a(C), b(C);
        for (int64_t n = first; n < last; ++n) {
          const int64_t offset = s.first_row(n) * channels;
          const scalar_t *xn = xp + offset, *dyn = dyp + offset;
          const double* gx = gxp + n * channels;
          std::fill(dot.begin(), dot.end(), 0.0);
          std::fill(sum_dy.begin(), sum_dy.end(), 0.0);
          for (int64_t p = 0; p < s.rows(n); ++p) {
            const scalar_t *xr = xn + p * channels, *dr = dyn + p * channels;
            for (size_t c = 0; c < C; ++c) {
              dot[c] += double(dr[c]) * double(xr[c]);
              sum_dy[c] += double(dr[c]);
            }
          }
          // nx[c] = gx[c] / (m + eps) with m = mean_c gx: d gx[c] = dnx[c] / (m + eps)
          //   - (1 / C) sum_c' dnx[c'] gx[c'] / (m + eps)^2, where dnx = gamma * dot.
          double mean = 0;
          for (size_t c = 0; c < C; ++c) mean += gx[c];
          const double denom = mean / double(C) + kEps;
          double cross = 0;
          for (size_t c = 0; c < C; ++c) cross += double(gp[c]) * dot[c] * gx[c];
          cross /= double(C) * denom * denom;
          for (size_t c = 0; c < C; ++c) {
            const double dgx = double(gp[c]) * dot[c] / denom - cross;
            const double nx = gx[c] / denom;
            a[c] = scalar_t(double(gp[c]) * nx + 1.0);
            b[c] = gx[c] > 0 ? scalar_t(dgx / gx[c]) : scalar_t(0);
            dgp[n * channels + int64_t(c)] = dot[c] * nx;
            dbp[n * channels + int64_t(c)] = sum_dy[c];
          }
          scalar_t* dxn = dxp + offset;
          for (int64_t p = 0; p < s.rows(n); ++p) {
            const scalar_t *xr = xn + p * channels, *dr = dyn + p * channels;
            scalar_t* out = dxn + p * channels;
            for (size_t c = 0; c < C; ++c) out[c] = dr[c] * a[c] + xr[c] * b[c];
          }
        }
      });
    });
    const auto sizes = ctx->saved_data["gamma_sizes"].toIntVector();
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["gamma_dtype"].toInt());
    return {dx, at::Tensor(), dgamma_n.sum(0).to(dtype).reshape(sizes), dbeta_n.sum(0).to(dtype).reshape(sizes)};
  }
};

}  // namespace

at::Tensor fused_grn_rows(const at::Tensor& rows, at::IntArrayRef offsets, const at::Tensor& gamma,
                          const at::Tensor& beta) {
  return FusedGrn::apply(rows, offsets, gamma, beta);
}

std::vector<int64_t> grn_image_offsets(int64_t images, int64_t positions) {
  std::vector<int64_t> offsets(size_t(images) + 1);
  for (size_t n = 0; n < offsets.size(); ++n) offsets[n] = int64_t(n) * positions;
  return offsets;
}

at::Tensor fused_grn(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta) {
  TORCH_CHECK(x.dim() == 4, "fused_grn: x must be [N, H, W, C], got ", x.sizes());
  const std::vector<int64_t> offsets = grn_image_offsets(x.size(0), x.size(1) * x.size(2));
  return fused_grn_rows(x.reshape({-1, x.size(3)}), offsets, gamma, beta).view(x.sizes());
}

}  // namespace gaze
