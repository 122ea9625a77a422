// The per-position integer layers against exact / float arithmetic.
#include "export/layers.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

TEST_CASE("integer reciprocal and bit length are exact", "[layers]") {
  const uint64_t one = uint64_t(1) << 62;
  std::mt19937_64 rng(9);
  for (int i = 0; i < 200000; ++i) {
    const uint64_t d = 1 + (rng() >> (rng() % 63));
    REQUIRE(gz_reciprocal_q62(d) == one / d);
  }
  for (uint64_t d : {uint64_t(1), uint64_t(2), uint64_t(3), one - 1, one, one + 1, ~uint64_t(0)}) {
    CHECK(gz_reciprocal_q62(d) == one / d);
  }
  CHECK(gz_bit_length_u64(0) == 0);
  CHECK(gz_bit_length_u64(1) == 1);
  CHECK(gz_bit_length_u64(~uint64_t(0)) == 64);
  for (int b = 1; b < 64; ++b) CHECK(gz_bit_length_u64(uint64_t(1) << b) == b + 1);
}

TEST_CASE("requantisation from an exact product keeps 31 significant bits", "[layers]") {
  std::mt19937_64 rng(4);
  for (int i = 0; i < 20000; ++i) {
    const int64_t m = int64_t(rng() >> 12) * ((rng() & 1) ? 1 : -1);
    const int32_t e = -int32_t(40 + rng() % 20);
    const gz_requant r = gz_requant_from_product(m, e);
    const double value = double(m) * std::ldexp(1.0, e), got = double(r.multiplier) * std::ldexp(1.0, r.shift - 31);
    REQUIRE(std::fabs(got - value) <= std::fabs(value) * std::ldexp(1.0, -30));
  }
}

TEST_CASE("integer LayerNorm equals float LayerNorm within one output step", "[layers]") {
  std::mt19937 rng(2);
  std::normal_distribution<double> n(0, 1);
  const int32_t c = 40;
  const double x_scale = 1e-3, y_scale = 4.0 / 32767;
  std::vector<int32_t> gm(c), gs(c), beta(c);
  std::vector<double> gamma(c), b(c);
  for (int32_t k = 0; k < c; ++k) {
    gamma[size_t(k)] = 1 + 0.5 * n(rng);
    b[size_t(k)] = 0.2 * n(rng);
    const gz_requant r = gz_requant_compute_signed(gamma[size_t(k)] / (y_scale * 65536));
    gm[size_t(k)] = r.multiplier;
    gs[size_t(k)] = r.shift;
    beta[size_t(k)] = int32_t(std::lround(b[size_t(k)] / y_scale));
  }
  const gz_layernorm_params p = {c, int64_t(std::llround(1e-6 * c * c / (x_scale * x_scale))), gm.data(), gs.data(),
                                 beta.data()};
  int worst = 0;
  for (int t = 0; t < 500; ++t) {
    std::vector<int16_t> x(static_cast<size_t>(c)), y(static_cast<size_t>(c));
    const double spread = std::exp(3 * n(rng));  // from nearly flat to wide inputs
    for (auto& v : x) v = int16_t(std::clamp(std::lround(n(rng) * spread * 300), -32767L, 32767L));
    gz_layernorm_s16(x.data(), &p, y.data());
    double mean = 0, var = 0;
    for (int16_t v : x) mean += v * x_scale / c;
    for (int16_t v : x) var += (v * x_scale - mean) * (v * x_scale - mean) / c;
    for (int32_t k = 0; k < c; ++k) {
      const double expected = (x[size_t(k)] * x_scale - mean) / std::sqrt(var + 1e-6) * gamma[size_t(k)] + b[size_t(k)];
      const long want = std::clamp(std::lround(expected / y_scale), -32768L, 32767L);  // saturates like int16
      worst = std::max(worst, int(std::abs(want - y[size_t(k)])));
    }
  }
  CHECK(worst <= 2);
}

TEST_CASE("GELU table interpolation stays within one step of the exact function", "[layers]") {
  const float s = 12.0f / 32767;
  std::vector<int16_t> table(GZ_GELU_TABLE);
  for (int32_t i = 0; i < GZ_GELU_TABLE; ++i) {
    table[size_t(i)] = int16_t(std::clamp(std::llround(gz_gelu_f32(float(i * 64 - 32768) * s) / s), -32768LL, 32767LL));
  }
  int worst = 0;
  for (int32_t q = -32768; q <= 32767; ++q) {
    const double exact = gz_gelu_f32(float(q) * s) / s;
    worst = std::max(worst, int(std::abs(std::lround(exact) - gz_gelu_s16(int16_t(q), table.data()))));
  }
  CHECK(worst <= 1);
  CHECK(gz_leaky_relu_s16(1000, gz_requant_compute(0.01)) == 1000);
  CHECK(gz_leaky_relu_s16(-1000, gz_requant_compute(0.01)) == -10);
}

TEST_CASE("GELU tables of any scale step within GZ_GELU_MAX_STEP, and a larger step is named", "[layers]") {
  for (const float s : {1e-7f, 3.8e-5f, 12.0f / 32767, 1e-3f, 0.05f, 10.0f}) {
    std::vector<int16_t> table(GZ_GELU_TABLE);
    int32_t largest = 0;
    for (int32_t i = 0; i < GZ_GELU_TABLE; ++i) {
      table[size_t(i)] =
          int16_t(std::clamp(std::llround(gz_gelu_f32(float(i * 64 - 32768) * s) / s), -32768LL, 32767LL));
      if (i > 0) largest = std::max(largest, std::abs(table[size_t(i)] - table[size_t(i) - 1]));
    }
    INFO("scale " << s);
    CHECK(largest <= 74);  // GELU's slope is below 1.13
    CHECK(gz_gelu_table_check(table.data()) == -1);
  }
  std::vector<int16_t> table(GZ_GELU_TABLE, 0);
  table[301] = GZ_GELU_MAX_STEP;
  CHECK(gz_gelu_table_check(table.data()) == -1);
  table[301] = -GZ_GELU_MAX_STEP - 1;
  CHECK(gz_gelu_table_check(table.data()) == 300);
}
