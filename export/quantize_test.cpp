// The integer reference ops against float arithmetic on the same (dequantised) values.
#include "export/quantize.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
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
                    float x_scale, float y_scale) {
  QuantLayer q;
  q.w.resize(w.size());
  q.w_scales.resize(size_t(channels));
  gz_quantize_weights_per_channel(w.data(), channels, per_channel, nullptr, q.w.data(), q.w_scales.data());
  for (int32_t c = 0; c < channels; ++c) {
    const double acc_scale = double(x_scale) * q.w_scales[c];
    q.bias.push_back(int32_t(std::lround(b[c] / acc_scale)));
    q.requant.push_back(gz_requant_compute(acc_scale / y_scale));
  }
  return q;
}

}  // namespace

TEST_CASE("two int8 planes hold 16-bit weights exactly", "[quantize]") {
  std::mt19937 rng(2);
  std::normal_distribution<float> n(0, 1);
  std::vector<float> w(64 * 3);
  for (auto& v : w) v = n(rng);
  std::vector<int8_t> hi(w.size()), lo(w.size());
  std::vector<float> scales(3);
  gz_split_weights_s16(w.data(), 3, 64, nullptr, hi.data(), lo.data(), scales.data());
  for (size_t i = 0; i < w.size(); ++i) {
    const float scale = scales[i / 64];
    CHECK(std::fabs((256.0f * hi[i] + lo[i]) * scale - w[i]) <= scale / 2 + 1e-7f);
    CHECK(hi[i] >= -127);
  }
}

TEST_CASE("pointwise on int16 activations equals float within one output step", "[quantize]") {
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0, 1);
  const int32_t positions = 37, in = 40, out = 160;
  std::vector<float> w(size_t(out) * in), b(static_cast<size_t>(out)), x(size_t(positions) * in);
  for (auto& v : w) v = 0.05f * n(rng);
  for (auto& v : b) v = 0.1f * n(rng);
  for (auto& v : x) v = n(rng);
  const float x_scale = 5.0f / 32767, y_scale = 6.0f / 32767;
  const QuantLayer layer = quantise(w, b, out, in, x_scale, y_scale);
  std::vector<int16_t> xs(x.size()), ys(size_t(positions) * out);
  for (size_t i = 0; i < x.size(); ++i) xs[i] = int16_t(std::lround(x[i] / x_scale));
  std::vector<int32_t> acc(ys.size());
  gz_pointwise_acc_s16_ref(xs.data(), positions, in, layer.w.data(), layer.bias.data(), out, acc.data());
  for (size_t i = 0; i < acc.size(); ++i) ys[i] = gz_requant_s32_to_s16(acc[i], layer.requant[i % size_t(out)]);
  int worst = 0;
  for (int32_t p = 0; p < positions; ++p) {
    for (int32_t o = 0; o < out; ++o) {
      double sum = layer.bias[o] * double(x_scale) * layer.w_scales[o];
      for (int32_t i = 0; i < in; ++i)
        sum += xs[p * in + i] * double(x_scale) * double(layer.w[o * in + i]) * layer.w_scales[o];
      const int expected = int(std::lround(sum / y_scale));
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
  const float y_scale = 5.0f / 32767;
  const QuantLayer layer = quantise(k, b, c, 49, x_scale, y_scale);
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
        const int expected = int(std::lround(sum / y_scale));
        worst = std::max(worst, std::abs(expected - ys[(r * w + col) * c + ch]));
      }
  CHECK(worst <= 1);
}

TEST_CASE("a scale floor keeps a near-zero channel's bias representable", "[quantize]") {
  const std::vector<float> w = {1e-9f, -2e-9f, 0.5f, -0.25f};  // channel 0 tiny, channel 1 normal
  const float floors[2] = {1e-3f, 1e-3f};
  int8_t q[4];
  float scales[2];
  gz_quantize_weights_per_channel(w.data(), 2, 2, floors, q, scales);
  CHECK(scales[0] == 1e-3f);  // raised to the floor: the tiny weights round to 0
  CHECK(q[0] == 0);
  CHECK(q[1] == 0);
  CHECK(scales[1] == 0.5f / 127.0f);  // the floor is below max/127: untouched
  CHECK(q[2] == 127);
  int8_t hi[4], lo[4];
  const float split_floors[2] = {1e-3f, 1e-9f};  // 16-bit scales are 256x finer: a lower floor for channel 1
  gz_split_weights_s16(w.data(), 2, 2, split_floors, hi, lo, scales);
  CHECK(scales[0] == 1e-3f);
  CHECK(scales[1] == 0.5f / (127.0f * 256.0f + 127.0f));
  const std::vector<float> zeros = {0.0f, 0.0f};
  gz_quantize_weights_per_channel(zeros.data(), 1, 2, nullptr, q, scales);
  CHECK(scales[0] == 1.0f);  // an all-zero channel without a floor keeps scale 1
}
