#include <catch2/catch.hpp>

#include "libgaze/core/error.h"
#include "libgaze/metrics/angular_error.h"
#include "libgaze/metrics/gaze_vector.h"

using namespace gaze;

TEST_CASE("Aria yaw/pitch at depth gives projectaria's point", "[gaze_vector]") {
  // Numbers from projectaria_tools' eye-gaze tests (SPEC §3).
  const YawPitch angles{-0.102910490016660, -0.288851886987686};
  const Vec3 p = aria_point_at_depth(angles, 1.179526637404006);
  CHECK(p.x == Approx(-0.116201334).margin(1e-8));
  CHECK(p.y == Approx(-0.334355952).margin(1e-8));
  CHECK(p.z == Approx(1.12516063).margin(1e-8));
  const YawPitch back = aria_angles(p);
  CHECK(back.yaw == Approx(angles.yaw).margin(1e-12));
  CHECK(back.pitch == Approx(angles.pitch).margin(1e-12));
}

TEST_CASE("Aria convention: +x left, +y up, +z forward", "[gaze_vector]") {
  const Vec3 ahead = aria_direction({0, 0});
  CHECK(ahead.z == Approx(1.0));
  CHECK(aria_direction({0.3, 0}).x > 0);
  CHECK(aria_direction({0, 0.3}).y > 0);
  CHECK(norm(aria_direction({0.4, -0.7})) == Approx(1.0));
}

TEST_CASE("vergence yaws combine to the ray intersection", "[gaze_vector]") {
  // A target 0.5 m ahead and 0.1 m to the left: each eye's yaw points at it.
  const double ipd = 0.063, tx = 0.1, tz = 0.5, pitch = 0.2;
  const double yaw_left = std::atan2(tx - ipd / 2, tz);   // left eye at x = +ipd/2
  const double yaw_right = std::atan2(tx + ipd / 2, tz);  // right eye at x = -ipd/2
  const Vec3 d = aria_vergence_direction(yaw_left, yaw_right, pitch, ipd);
  const Vec3 expected = normalized({tx, tz * std::tan(pitch), tz});
  CHECK(angular_error_deg(d, expected) < 1e-9);
  // Parallel eyes fall back to the plain yaw.
  CHECK(angular_error_deg(aria_vergence_direction(0.1, 0.1, 0.0), aria_direction({0.1, 0})) < 1e-9);
}

TEST_CASE("spherical (ETH-XGaze) convention round-trips and points to -z", "[gaze_vector]") {
  CHECK(spherical_direction({0, 0}).z == Approx(-1.0));
  for (double yaw : {-1.0, -0.2, 0.0, 0.7}) {
    for (double pitch : {-0.6, 0.0, 0.4}) {
      const YawPitch back = spherical_angles(spherical_direction({yaw, pitch}));
      CHECK(back.yaw == Approx(yaw).margin(1e-12));
      CHECK(back.pitch == Approx(pitch).margin(1e-12));
    }
  }
}

TEST_CASE("angular error uses atan2 and is exact for tiny and opposite angles", "[angular_error]") {
  CHECK(angular_error_deg({1, 0, 0}, {0, 1, 0}) == Approx(90.0));
  CHECK(angular_error_deg({0, 0, 2}, {0, 0, 5}) == 0.0);
  CHECK(angular_error_deg({0, 0, 1}, {0, 0, -1}) == Approx(180.0));
  // 1e-7 rad: acos(dot) would round to 0 in double, atan2 keeps it.
  const double tiny = 1e-7;
  CHECK(angular_error_deg({0, 0, 1}, {std::sin(tiny), 0, std::cos(tiny)}) == Approx(tiny * 180 / M_PI).epsilon(1e-6));
  CHECK(std::isnan(angular_error_deg({0, 0, 0}, {0, 0, 1})));
}

TEST_CASE("error statistics: mean, median, p95, per participant", "[angular_error]") {
  std::vector<double> e;
  for (int i = 1; i <= 100; ++i) e.push_back(i);
  const ErrorStats s = summarize_errors(e);
  CHECK(s.count == 100);
  CHECK(s.mean == Approx(50.5));
  CHECK(s.median == Approx(50.5));
  CHECK(s.p95 == Approx(95.05));
  CHECK(s.max == 100);
  const auto p = summarize_by_participant({1, 3, 10}, {7, 7, 9});
  CHECK(p.per_participant.at(7).mean == Approx(2.0));
  CHECK(p.per_participant.at(9).mean == Approx(10.0));
  CHECK(p.mean_over_participants == Approx(6.0));
  CHECK(p.all_frames.mean == Approx(14.0 / 3));
  CHECK_THROWS_AS(summarize_errors({1.0, NAN}), Error);
  CHECK_THROWS_AS(summarize_by_participant({1.0}, {}), Error);
}
