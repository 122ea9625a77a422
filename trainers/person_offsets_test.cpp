// turn_directions and PersonOffsets on hand-made directions (train.person_offsets).
#include "trainers/person_offsets.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "libgaze/core/error.h"

using namespace gaze;
using Catch::Contains;

namespace {

// The angle between two [3] directions, in degrees.
double angle_deg(const at::Tensor& a, const at::Tensor& b) {
  const double c = (a * b).sum().item<double>() / (a.norm().item<double>() * b.norm().item<double>());
  return std::acos(std::clamp(c, -1.0, 1.0)) * 180.0 / M_PI;
}

}  // namespace

TEST_CASE("turn_directions is the rotation about x by pitch, then about y by yaw", "[person_offsets]") {
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

TEST_CASE("person offsets: one learned turn per participant, applied to its items only", "[person_offsets]") {
  PersonOffsets offsets(std::vector<int64_t>{7, 3, 7, 12});
  REQUIRE(offsets->angles.sizes() == at::IntArrayRef({3, 2}));  // people 3, 7 and 12
  CHECK(offsets->angles.requires_grad());
  // Raw head outputs: an unnormalised direction and the log-scale, which passes through.
  const at::Tensor out = at::tensor({0.0f, 0.0f, 2.0f, 0.5f, 0.6f, 0.0f, 0.8f, -1.0f}).view({2, 4});
  const at::Tensor same = offsets->forward(out, {3, 12});
  CHECK(at::allclose(same.narrow(1, 0, 3), at::tensor({0.0f, 0.0f, 1.0f, 0.6f, 0.0f, 0.8f}).view({2, 3})));
  CHECK(at::equal(same.select(1, 3), out.select(1, 3)));
  {
    at::NoGradGuard no_grad;
    offsets->angles[1][0] = float(5 * M_PI / 180);  // person 7: 5 degrees of yaw
  }
  CHECK(offsets->mean_offset_deg() == Approx(5.0 / 3).epsilon(1e-5));
  const at::Tensor turned = offsets->forward(out, {7, 12});
  CHECK(angle_deg(turned[0].narrow(0, 0, 3), out[0].narrow(0, 0, 3)) == Approx(5.0).epsilon(1e-4));
  CHECK(at::allclose(turned[1].narrow(0, 0, 3), same[1].narrow(0, 0, 3)));  // person 12 untouched
  // The loss reaches the turns of the people in the batch, and only theirs.
  offsets->forward(out, {7, 12}).narrow(1, 0, 3).sum().backward();
  const at::Tensor g = offsets->angles.grad();
  CHECK(g[0].abs().sum().item<float>() == 0);  // person 3 is not in the batch
  CHECK(g[1].abs().sum().item<float>() > 0);
  CHECK(g[2].abs().sum().item<float>() > 0);
  CHECK_THROWS_WITH(offsets->forward(out, {7, 4}), Contains("participant 4 is not in training"));
  CHECK_THROWS_WITH(offsets->forward(out, {7}), Contains("1 participants for a batch of 2"));
}
