// turn_directions and ParticipantOffsets on hand-made directions (train.person_offsets).
#include "trainers/participant_offsets.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

using namespace gaze;
using Catch::Contains;

namespace {

// The angle between two [3] directions, in degrees.
double angle_deg(const at::Tensor& a, const at::Tensor& b) {
  const double c = (a * b).sum().item<double>() / (a.norm().item<double>() * b.norm().item<double>());
  return std::acos(std::clamp(c, -1.0, 1.0)) * 180.0 / M_PI;
}

SampleLabel labelled(int64_t participant, const std::string& key) {
  SampleLabel l;
  l.participant = participant;
  l.key = key;
  return l;
}

}  // namespace

TEST_CASE("turn_directions is the rotation about x by pitch, then about y by yaw", "[participant_offsets]") {
  const double q = M_PI / 2;
  const at::Tensor ahead = at::tensor({0.0, 0.0, 1.0}, at::kDouble).unsqueeze(0);
  // Pitch a quarter turn takes z to y; yaw a quarter turn takes z to x.
  CHECK(at::allclose(turn_directions(ahead, at::tensor({0.0, q}, at::kDouble).unsqueeze(0)),
                     at::tensor({0.0, 1.0, 0.0}, at::kDouble).unsqueeze(0), 0, 1e-12));
  CHECK(at::allclose(turn_directions(ahead, at::tensor({q, 0.0}, at::kDouble).unsqueeze(0)),
                     at::tensor({1.0, 0.0, 0.0}, at::kDouble).unsqueeze(0), 0, 1e-12));
  // Against the matrices written out, on directions of every sign (near-eye gaze points along
  // +z, MPII's along -z: no branch cut either way).
  const at::Tensor d = at::tensor({0.3, -0.2, 0.93, -0.5, 0.4, -0.77, 0.0, 0.0, -1.0}, at::kDouble).view({3, 3});
  const at::Tensor unit = d / d.norm(2, 1, true);
  const at::Tensor angles = at::tensor({0.1, -0.05, -0.3, 0.2, 0.02, 0.4}, at::kDouble).view({3, 2});
  const at::Tensor turned = turn_directions(unit, angles);
  for (int64_t i = 0; i < 3; ++i) {
    const double a = angles[i][0].item<double>(), b = angles[i][1].item<double>();
    const at::Tensor rx =
        at::tensor({1.0, 0.0, 0.0, 0.0, std::cos(b), std::sin(b), 0.0, -std::sin(b), std::cos(b)}, at::kDouble)
            .view({3, 3});
    const at::Tensor ry =
        at::tensor({std::cos(a), 0.0, std::sin(a), 0.0, 1.0, 0.0, -std::sin(a), 0.0, std::cos(a)}, at::kDouble)
            .view({3, 3});
    CHECK(at::allclose(turned[i], at::matmul(ry, at::matmul(rx, unit[i])), 0, 1e-12));
    CHECK(turned[i].norm().item<double>() == Approx(1.0).margin(1e-12));
  }
  CHECK(at::allclose(turn_directions(unit, at::zeros({3, 2}, at::kDouble)), unit));
}

TEST_CASE("an offset's group is its participant and the eye its key names", "[participant_offsets]") {
  CHECK(offset_group_of(labelled(4, "rec/86535306/L")) == OffsetGroup{4, 1});
  CHECK(offset_group_of(labelled(4, "rec/86535306/R")) == OffsetGroup{4, 2});
  CHECK(offset_group_of(labelled(9, "p09/day01/0003/right")) == OffsetGroup{9, 2});
  CHECK(offset_group_of(labelled(9, "p09/day01/0003/left")) == OffsetGroup{9, 1});
  CHECK(offset_group_of(labelled(2, "S_2/017")) == OffsetGroup{2, 0});  // OpenEDS: one eye
  CHECK(offset_group_of(labelled(2, "SR")) == OffsetGroup{2, 0});
}

TEST_CASE("participant offsets: one centred turn per group, applied to its items only", "[participant_offsets]") {
  const OffsetGroup a{3, 0}, b{7, 0}, c{12, 0};
  ParticipantOffsets offsets(std::vector<OffsetGroup>{b, a, b, c});
  REQUIRE(offsets->angles.sizes() == at::IntArrayRef({3, 2}));  // groups 3, 7 and 12, in that order
  CHECK(offsets->angles.requires_grad());
  // Raw head outputs: an unnormalised direction and the log-scale, which passes through.
  const at::Tensor out = at::tensor({0.0f, 0.0f, 2.0f, 0.5f, 0.6f, 0.0f, 0.8f, -1.0f}).view({2, 4});
  const at::Tensor same = offsets->forward(out, {a, c});
  CHECK(at::allclose(same.narrow(1, 0, 3), at::tensor({0.0f, 0.0f, 1.0f, 0.6f, 0.0f, 0.8f}).view({2, 3})));
  CHECK(at::equal(same.select(1, 3), out.select(1, 3)));
  // A turn every group shares is the model's own bias: centring takes it out.
  {
    at::NoGradGuard no_grad;
    offsets->angles.fill_(0.2f);
  }
  CHECK(at::allclose(offsets->forward(out, {a, c}), same, 0, 1e-6));
  CHECK(offsets->mean_offset_deg() == Approx(0).margin(1e-5));
  // Group 7 alone turned 6 degrees of yaw: centred, it turns 4 and the others -2 each.
  {
    at::NoGradGuard no_grad;
    offsets->angles.zero_();
    offsets->angles[1][0] = float(6 * M_PI / 180);
  }
  CHECK(offsets->mean_offset_deg() == Approx((4.0 + 2 + 2) / 3).epsilon(1e-5));
  const at::Tensor turned = offsets->forward(out, {b, c});
  const at::Tensor ahead = out[0].narrow(0, 0, 3);
  CHECK(angle_deg(turned[0].narrow(0, 0, 3), ahead) == Approx(4.0).epsilon(1e-4));
  CHECK(turned[0][0].item<float>() > 0);  // positive yaw: towards +x
  CHECK(angle_deg(turned[1].narrow(0, 0, 3), same[1].narrow(0, 0, 3)) == Approx(2.0).epsilon(1e-3));
  // The loss reaches every turn through the centring, and the turns of groups in the batch most.
  offsets->forward(out, {b, c}).narrow(1, 0, 3).sum().backward();
  CHECK(offsets->angles.grad().abs().sum().item<float>() > 0);
  CHECK_THROWS_WITH(offsets->forward(out, {b, OffsetGroup{4, 2}}),
                    Contains("participant 4 (right eye) is not in training"));
  CHECK_THROWS_WITH(offsets->forward(out, {b}), Contains("1 items' groups for a batch of 2"));
}
