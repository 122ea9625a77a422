#include "libgaze/models/model_stats.h"

#include <catch2/catch.hpp>

#include "libgaze/core/error.h"

using namespace gaze;

TEST_CASE("analytic parameter counts match the paper exactly", "[model_stats]") {
  const ModelStats teacher = compute_model_stats(default_config({"model.arch=teacher"}).model, 224, 224);
  CHECK(teacher.params == 3579104);
  CHECK(teacher.tunable == 191704);
  CHECK(teacher.last_stage_adapters == 103520);
  const ModelStats student = compute_model_stats(default_config().model, 224, 224);
  CHECK(student.params == 281174);
  CHECK(student.tunable == 14434);
  CHECK(student.last_stage_adapters == 6680);
}

TEST_CASE("stage shapes follow the /4, /8, /16, /32 pyramid", "[model_stats]") {
  const ModelStats s = compute_model_stats(default_config().model, 224, 224);
  REQUIRE(s.layers.size() == 5);
  CHECK(s.layers[0].height == 56);
  CHECK(s.layers[1].height == 28);
  CHECK(s.layers[2].width == 14);
  CHECK(s.layers[3].channels == 80);
  CHECK(s.layers[3].height == 7);
  // The stem conv alone: 40 out x 3 in x 16 taps x 56 x 56 positions.
  CHECK(s.layers[0].macs > 40LL * 3 * 16 * 56 * 56);
  CHECK_THROWS_AS(compute_model_stats(default_config().model, 16, 224), Error);
}

TEST_CASE("MACs scale with the input area", "[model_stats]") {
  const auto m = default_config().model;
  const int64_t small = compute_model_stats(m, 64, 64).macs;
  const int64_t big = compute_model_stats(m, 128, 128).macs;
  CHECK(big == 4 * small - 3 * compute_model_stats(m, 64, 64).layers.back().macs);
}
