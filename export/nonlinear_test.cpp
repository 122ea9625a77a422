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

TEST_CASE("erf GELU matches its definition", "[nonlinear]") {
  for (float x = -6.0f; x <= 6.0f; x += 0.125f) {
    CHECK(gz_gelu_f32(x) == Approx(0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)))).margin(1e-6));
  }
}
