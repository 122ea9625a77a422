#include "export/nonlinear.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <random>

TEST_CASE("integer square root is exact", "[nonlinear]") {
  for (uint64_t v = 0; v < 100000; ++v) {
    const uint64_t r = gz_isqrt_u64(v);
    REQUIRE(r * r <= v);
    REQUIRE((r + 1) * (r + 1) > v);
  }
  std::mt19937_64 rng(5);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t v = rng() >> (1 + rng() % 40);
    const uint64_t r = gz_isqrt_u64(v);
    REQUIRE(r * r <= v);
    REQUIRE((r + 1) * (r + 1) > v);  // v < 2^63 here, so (r+1)^2 cannot overflow
  }
  CHECK(gz_isqrt_u64(UINT64_MAX) == 4294967295u);
}

TEST_CASE("GELU and LeakyReLU tables equal float evaluation on the grid", "[nonlinear]") {
  const gz_qparams in = gz_qparams_from_range(-6.0f, 6.0f);
  const gz_qparams out = gz_qparams_from_range(-0.2f, 6.0f);
  int8_t lut[256];
  gz_lut_s8_build(gz_gelu_f32, in, out, lut);
  for (int32_t q = -128; q <= 127; ++q) {
    const float x = gz_dequantize_s8((int8_t)q, in);
    const float exact = 0.5f * x * (1.0f + std::erf(x / std::sqrt(2.0f)));
    REQUIRE(std::fabs(gz_dequantize_s8(gz_lut_s8_apply(lut, (int8_t)q), out) - exact) <= out.scale / 2 + 1e-5f);
  }
  // GELU's dip below zero survives quantisation.
  CHECK(gz_dequantize_s8(gz_lut_s8_apply(lut, gz_quantize_s8(-0.75f, in)), out) < 0.0f);
  int8_t leaky[256];
  gz_lut_s8_build([](float x) { return x > 0 ? x : 0.01f * x; }, in, in, leaky);
  CHECK(gz_lut_s8_apply(leaky, gz_quantize_s8(3.0f, in)) == gz_quantize_s8(3.0f, in));
}
