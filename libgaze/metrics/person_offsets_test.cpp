#include "libgaze/metrics/person_offsets.h"

#include <catch2/catch.hpp>

using namespace gaze;
using Catch::Contains;

namespace {
constexpr double kRad = M_PI / 180;
}

TEST_CASE("a constant yaw/pitch offset per person is found and removed", "[person_offsets]") {
  // Person 1 is read 4 deg too far right and 2 up, person 2 exactly: every frame of theirs.
  std::vector<Vec3> predictions, labels;
  std::vector<int64_t> participants;
  for (int k = 0; k < 9; ++k) {
    const YawPitch gaze{(-12 + 3 * k) * kRad, (8 - 2 * k) * kRad};
    labels.push_back(aria_direction(gaze));
    predictions.push_back(aria_direction({gaze.yaw + 4 * kRad, gaze.pitch + 2 * kRad}));
    participants.push_back(1);
    labels.push_back(aria_direction(gaze));
    predictions.push_back(aria_direction(gaze));
    participants.push_back(2);
  }
  const PersonOffsets o = split_person_offsets(predictions, labels, participants);
  // The offset is the angle between the mean directions: close to hypot(4, 2) deg near the axis.
  CHECK(o.offset_deg.at(1) == Approx(std::hypot(4.0, 2.0)).epsilon(0.05));
  CHECK(o.offset_deg.at(2) == Approx(0).margin(1e-9));
  CHECK(o.mean_offset_deg == Approx((o.offset_deg.at(1) + o.offset_deg.at(2)) / 2));
  // Removing it leaves what a rotation cannot explain (yaw/pitch shifts are not exactly one
  // rotation over a 24 x 16 deg range): far below the 4.5 deg the person had.
  CHECK(o.residual.per_participant.at(1).mean < 0.3);
  CHECK(o.residual.per_participant.at(2).mean == Approx(0).margin(1e-9));
}

TEST_CASE("per-frame errors stay when there is no offset to remove", "[person_offsets]") {
  // Errors that alternate in sign around the label average out: no offset, residual = raw error.
  std::vector<Vec3> predictions, labels;
  std::vector<double> raw;
  for (int k = 0; k < 8; ++k) {
    const YawPitch gaze{(k - 4) * 2 * kRad, 0};
    const double e = (k % 2 ? 3 : -3) * kRad;
    labels.push_back(aria_direction(gaze));
    predictions.push_back(aria_direction({gaze.yaw, e}));
    raw.push_back(angular_error_deg(predictions.back(), labels.back()));
  }
  const PersonOffsets o = split_person_offsets(predictions, labels, std::vector<int64_t>(8, 7));
  CHECK(o.mean_offset_deg < 0.05);
  CHECK(o.residual.all_frames.mean == Approx(summarize_errors(raw).mean).epsilon(0.01));
}

TEST_CASE("person offsets refuse lists of different lengths", "[person_offsets]") {
  CHECK_THROWS_WITH(split_person_offsets({{0, 0, 1}}, {}, {1}), Contains("1 predictions, 0 labels and 1 participants"));
  CHECK_THROWS_WITH(split_person_offsets({}, {}, {}), Contains("no frames"));
}
