#include "export/fixed_point.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <random>

TEST_CASE("rounding doubling high multiply matches its definition", "[fixed_point]") {
  CHECK(gz_srdhm_s32(INT32_MIN, INT32_MIN) == INT32_MAX);  // the one overflow
  CHECK(gz_srdhm_s32(1 << 30, 1 << 30) == 1 << 29);        // 0.5 * 0.5 in Q31
  CHECK(gz_srdhm_s32(INT32_MAX, 2) == 2);                  // ~1.0 * 2
  CHECK(gz_srdhm_s32(-(1 << 30), 3) == -1);                // -1.5: ties go up (gemmlowp's nudge)
  CHECK(gz_srdhm_s32(1 << 30, 3) == 2);                    // 1.5 -> 2
  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> any(INT32_MIN, INT32_MAX);
  for (int i = 0; i < 100000; ++i) {
    const int32_t a = any(rng), b = any(rng);
    const long double exact = (long double)a * b / 2147483648.0L;
    const int32_t got = gz_srdhm_s32(a, b);
    // Nearest integer, ties upward.
    const long double rounded = floorl(exact + 0.5L);
    if (rounded > INT32_MAX) continue;
    REQUIRE(got == (int32_t)rounded);
  }
}

TEST_CASE("rounding divide by a power of two rounds half away from zero", "[fixed_point]") {
  CHECK(gz_rdivpot_s32(3, 1) == 2);
  CHECK(gz_rdivpot_s32(-3, 1) == -2);
  CHECK(gz_rdivpot_s32(5, 2) == 1);    // 1.25
  CHECK(gz_rdivpot_s32(-6, 2) == -2);  // -1.5
  CHECK(gz_rdivpot_s32(7, 0) == 7);
  for (int32_t x = -1000; x <= 1000; ++x) {
    for (int32_t e = 0; e < 8; ++e) {
      const double exact = x / std::ldexp(1.0, e);
      const double rounded = exact >= 0 ? std::floor(exact + 0.5) : std::ceil(exact - 0.5);
      REQUIRE(gz_rdivpot_s32(x, e) == (int32_t)rounded);
    }
  }
}

TEST_CASE("requantisation multipliers are 31-bit and within 1 of the real product", "[fixed_point]") {
  const gz_requant half = gz_requant_compute(0.5);
  CHECK(half.multiplier == 1 << 30);
  CHECK(half.shift == 0);
  const gz_requant zero = gz_requant_compute(0.0);
  CHECK(zero.multiplier == 0);
  CHECK(gz_requant_apply_s32(12345, zero) == 0);
  CHECK(gz_requant_compute(1e-12).multiplier == 0);  // below 2^-31 of one unit
  const gz_requant big = gz_requant_compute(3.0);    // > 1: left shift
  CHECK(big.shift == 2);
  CHECK(gz_requant_apply_s32(1000, big) == 3000);
  std::mt19937 rng(2);
  std::uniform_real_distribution<double> log_scale(-20, 4);
  std::uniform_int_distribution<int32_t> acc(-(1 << 22), 1 << 22);
  for (int i = 0; i < 20000; ++i) {
    const double s = std::exp2(log_scale(rng));
    const gz_requant r = gz_requant_compute(s);
    REQUIRE(r.multiplier >= (1 << 30));
    const int32_t x = acc(rng);
    REQUIRE(std::fabs(gz_requant_apply_s32(x, r) - x * s) <= 1.0);
  }
  CHECK(gz_requant_s32_to_s8(100000, half) == 127);
  CHECK(gz_requant_s32_to_s8(-100000, half) == -127);  // symmetric: -128 never occurs
  CHECK(gz_requant_s32_to_s8(7, half) == 4);           // round(3.5) = 4
  CHECK(gz_requant_s32_to_s8(-7, half) == -3);         // srdhm rounds ties upward
}
