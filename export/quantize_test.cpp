// The integer reference ops against float arithmetic on the same (dequantised) values.
#include "export/quantize.h"

#include <catch2/catch.hpp>
#include <random>
#include <vector>

namespace {

struct QuantLayer {
  std::vector<int8_t> w;
  std::vector<float> w_scales;
  std::vector<int32_t> bias;
  std::vector<gz_requant> requant;
};

// Quantises weights/bias for an op whose accumulator scale per channel is s_x * s_w[c].
QuantLayer quantise(const std::vector<float>& w, const std::vector<float>& b, int32_t channels, int32_t per_channel,
                    gz_qparams x, gz_qparams y) {
  QuantLayer q;
  q.w.resize(w.size());
  q.w_scales.resize(size_t(channels));
  gz_quantize_weights_per_channel(w.data(), channels, per_channel, q.w.data(), q.w_scales.data());
  for (int32_t c = 0; c < channels; ++c) {
    const double acc_scale = double(x.scale) * q.w_scales[c];
    q.bias.push_back(int32_t(std::lround(b[c] / acc_scale)));
    q.requant.push_back(gz_requant_compute(acc_scale / y.scale));
  }
  return q;
}

}  // namespace

TEST_CASE("activation quantisation round-trips within half a step", "[quantize]") {
  const gz_qparams q = gz_qparams_from_range(-1.0f, 3.0f);
  CHECK(q.scale == Approx(4.0 / 255));
  CHECK(gz_dequantize_s8(gz_quantize_s8(0.0f, q), q) == 0.0f);  // 0 is exact: padding is real zero
  for (float v = -1.0f; v <= 3.0f; v += 0.01f) {
    CHECK(std::fabs(gz_dequantize_s8(gz_quantize_s8(v, q), q) - v) <= q.scale / 2 + 1e-6f);
  }
  CHECK(gz_quantize_s8(100.0f, q) == 127);
}

TEST_CASE("int8 pointwise equals float on dequantised inputs within one output step", "[quantize]") {
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0, 1);
  const int32_t positions = 37, in = 40, out = 160;
  std::vector<float> w(size_t(out) * in), b(static_cast<size_t>(out)), x(size_t(positions) * in);
  for (auto& v : w) v = 0.05f * n(rng);
  for (auto& v : b) v = 0.1f * n(rng);
  for (auto& v : x) v = n(rng);
  const gz_qparams xq = gz_qparams_from_range(-4, 4), yq = gz_qparams_from_range(-6, 6);
  const QuantLayer layer = quantise(w, b, out, in, xq, yq);
  std::vector<int8_t> xs(x.size()), ys(size_t(positions) * out);
  for (size_t i = 0; i < x.size(); ++i) xs[i] = gz_quantize_s8(x[i], xq);
  std::vector<int32_t> acc(ys.size());
  gz_pointwise_acc_s8_ref(xs.data(), positions, in, xq.zero_point, layer.w.data(), layer.bias.data(), out, acc.data());
  for (size_t i = 0; i < acc.size(); ++i) ys[i] = gz_requant_s32_to_s8(acc[i], layer.requant[i % size_t(out)], yq.zero_point);
  int worst = 0;
  for (int32_t p = 0; p < positions; ++p) {
    for (int32_t o = 0; o < out; ++o) {
      double acc = layer.bias[o] * double(xq.scale) * layer.w_scales[o];
      for (int32_t i = 0; i < in; ++i) {
        acc += gz_dequantize_s8(xs[p * in + i], xq) * double(layer.w[o * in + i]) * layer.w_scales[o];
      }
      const int expected = std::clamp(int(std::lround(acc / yq.scale)) + yq.zero_point, -128, 127);
      worst = std::max(worst, std::abs(expected - ys[p * out + o]));
    }
  }
  CHECK(worst <= 1);
}

TEST_CASE("depthwise 7x7 on the int16 stream equals float with zero padding within one output step", "[quantize]") {
  std::mt19937 rng(4);
  std::normal_distribution<float> n(0, 1);
  const int32_t h = 6, w = 8, c = 20;
  std::vector<float> k(size_t(c) * 49), b(static_cast<size_t>(c)), x(size_t(h) * w * c);
  for (auto& v : k) v = 0.1f * n(rng);
  for (auto& v : b) v = 0.1f * n(rng);
  for (auto& v : x) v = n(rng) + 0.5f;
  const float x_scale = 4.0f / 32767;
  const gz_qparams xq = {x_scale, 0}, yq = {5.0f / 32767, 0};
  const QuantLayer layer = quantise(k, b, c, 49, xq, yq);
  std::vector<int16_t> xs(x.size()), ys(x.size());
  for (size_t i = 0; i < x.size(); ++i) xs[i] = int16_t(std::lround(x[i] / x_scale));
  std::vector<int32_t> acc(x.size());
  gz_dwconv7x7_acc_s16_ref(xs.data(), h, w, c, layer.w.data(), layer.bias.data(), acc.data());
  for (size_t i = 0; i < acc.size(); ++i) ys[i] = gz_requant_s32_to_s16(acc[i], layer.requant[i % size_t(c)]);
  int worst = 0;
  for (int32_t r = 0; r < h; ++r)
    for (int32_t col = 0; col < w; ++col)
      for (int32_t ch = 0; ch < c; ++ch) {
        double sum = layer.bias[ch] * double(x_scale) * layer.w_scales[ch];
        for (int32_t ky = 0; ky < 7; ++ky)
          for (int32_t kx = 0; kx < 7; ++kx) {
            const int32_t yy = r + ky - 3, xx = col + kx - 3;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
            sum += xs[(yy * w + xx) * c + ch] * double(x_scale) * double(layer.w[ch * 49 + ky * 7 + kx]) *
                   layer.w_scales[ch];
          }
        const int expected = int(std::lround(sum / yq.scale));
        worst = std::max(worst, std::abs(expected - ys[(r * w + col) * c + ch]));
      }
  CHECK(worst <= 1);
}
