#include "trainers/losses.h"

#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <csignal>

#include "libgaze/core/crc32c.h"
#include "libgaze/core/error.h"
#include "libgaze/core/json.h"
#include "libgaze/core/strings.h"
#include "libgaze/models/gaze_net.h"
#include "tests/test_util.h"
#include "trainers/metrics_log.h"
#include "trainers/schedule.h"

using namespace gaze;

TEST_CASE("L1 and Laplace NLL on hand-made outputs", "[losses]") {
  // Raw outputs (x, y, z, log-scale); directions are normalised before the loss.
  const at::Tensor out = at::tensor({0.0f, 0.0f, 2.0f, 0.0f, 3.0f, 0.0f, 0.0f, std::log(2.0f)}).reshape({2, 4});
  const at::Tensor target = at::tensor({0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 1.0f}).reshape({2, 3});
  // Row 0 exact; row 1 direction (1,0,0) vs (0,0,1): |1| + |0| + |1| = 2 over 6 components.
  CHECK(direction_l1_loss(out, target).item<float>() == Approx(2.0 / 6));
  // NLL: row 0: 0*exp(0) + 0 = 0; row 1: 2*exp(-log 2) + log 2 = 1 + log 2.
  CHECK(laplace_nll_loss(out, target).item<float>() == Approx((1 + std::log(2.0)) / 2));
  CHECK(gaze_loss(out, target, "l1", false).item<float>() == direction_l1_loss(out, target).item<float>());
  CHECK(gaze_loss(out, target, "laplace_nll", true).item<float>() == laplace_nll_loss(out, target).item<float>());
  // A confident wrong answer costs more than an unsure one.
  const at::Tensor sure = at::tensor({1.0f, 0.0f, 0.0f, -3.0f}).reshape({1, 4});
  const at::Tensor unsure = at::tensor({1.0f, 0.0f, 0.0f, 1.0f}).reshape({1, 4});
  const at::Tensor t = at::tensor({0.0f, 0.0f, 1.0f}).reshape({1, 3});
  CHECK(laplace_nll_loss(sure, t).item<float>() > laplace_nll_loss(unsure, t).item<float>());
}

TEST_CASE("with L1 the scale output learns from a detached residual and never re-weights the gaze loss", "[losses]") {
  const at::Tensor target = at::tensor({0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 1.0f}).reshape({2, 3});
  auto grads = [&](const std::string& loss, float log_scale) {
    at::Tensor out = at::tensor({0.3f, 0.1f, 1.0f, log_scale, -0.2f, 0.4f, 1.0f, log_scale}).reshape({2, 4});
    out.set_requires_grad(true);
    gaze_loss(out, target, loss, true).backward();
    return out.grad().clone();
  };
  const at::Tensor confident = grads("l1", -2.0f), unsure = grads("l1", 2.0f);
  // Direction gradients equal plain L1's whatever the scale says ...
  at::Tensor plain = at::tensor({0.3f, 0.1f, 1.0f, 0.0f, -0.2f, 0.4f, 1.0f, 0.0f}).reshape({2, 4});
  plain.set_requires_grad(true);
  direction_l1_loss(plain, target).backward();
  CHECK(at::allclose(confident.narrow(1, 0, 3), plain.grad().narrow(1, 0, 3)));
  CHECK(at::allclose(unsure.narrow(1, 0, 3), plain.grad().narrow(1, 0, 3)));
  // ... while the scale does learn: d/ds (r e^-s + s) = 1 - r e^-s, per row, over the batch of 2.
  const double r0 =
      (gaze_directions(plain.detach()).narrow(0, 0, 1) - target.narrow(0, 0, 1)).abs().sum().item<double>();
  CHECK(confident[0][3].item<double>() == Approx((1 - r0 * std::exp(2.0)) / 2).epsilon(1e-4));
  // With laplace_nll the scale does re-weight the direction gradients.
  CHECK(!at::allclose(grads("laplace_nll", -2.0f).narrow(1, 0, 3), grads("laplace_nll", 2.0f).narrow(1, 0, 3)));
}

TEST_CASE("masked patch MSE counts hidden patches only", "[losses]") {
  // 1 image, 1 channel, 2x2 patches of 2x2 pixels.
  const at::Tensor image = at::arange(16, at::kFloat).reshape({1, 1, 4, 4});
  at::Tensor pred = at::zeros({1, 4, 2, 2});
  const at::Tensor mask = at::tensor({1.0f, 0.0f, 0.0f, 0.0f}).reshape({1, 1, 2, 2});
  // Patch (0,0) holds pixels 0,1,4,5: MSE vs zeros = (0+1+16+25)/4.
  CHECK(masked_patch_mse(pred, image, mask, 2, false).item<float>() == Approx(42.0 / 4));
  // Predicting the visible patches perfectly or badly changes nothing.
  pred.narrow(2, 1, 1).fill_(1000);
  CHECK(masked_patch_mse(pred, image, mask, 2, false).item<float>() == Approx(42.0 / 4));
  // norm_pix: a prediction equal to the normalised patch costs ~0.
  at::Tensor exact = at::tensor({0.0f, 1.0f, 4.0f, 5.0f});
  exact = (exact - exact.mean()) / at::sqrt(exact.var() + 1e-6);
  at::Tensor pred2 = at::zeros({1, 4, 2, 2});
  pred2.select(2, 0).select(2, 0).copy_(exact.reshape({1, 4}));
  CHECK(masked_patch_mse(pred2, image, mask, 2, true).item<float>() == Approx(0).margin(1e-6));
}

TEST_CASE("feature KD MSE and patch masks", "[losses]") {
  const at::Tensor t = at::ones({1, 2, 2, 2});
  at::Tensor s = at::zeros({1, 2, 2, 2});
  const at::Tensor mask = at::tensor({1.0f, 0.0f}).reshape({1, 1, 1, 2});  // left half hidden
  s.select(3, 1).fill_(1);                                                 // the visible right half is already right
  CHECK(masked_feature_mse(t, s, mask).item<float>() == Approx(1.0));
  const at::Tensor m = random_patch_mask(3, 4, 5, 0.6, 9);
  CHECK(m.sizes() == at::IntArrayRef({3, 1, 4, 5}));
  for (int b = 0; b < 3; ++b) CHECK(m[b].sum().item<float>() == 12);  // exactly 60% of 20
  CHECK(at::equal(m, random_patch_mask(3, 4, 5, 0.6, 9)));
  CHECK_FALSE(at::equal(m, random_patch_mask(3, 4, 5, 0.6, 10)));
  CHECK(resize_mask(mask, 2, 4).sizes() == at::IntArrayRef({1, 1, 2, 4}));
  const at::Tensor out = at::tensor({0.0f, 1.0f, 1.0f, 0.0f}).reshape({1, 4});
  CHECK(mean_angular_error_deg(out, at::tensor({0.0f, 0.0f, 1.0f}).reshape({1, 3})).item<double>() == Approx(45.0));
}

TEST_CASE("warm-up then cosine decay", "[schedule]") {
  CHECK(cosine_lr(0, 100, 10, 1.0, 0.0) == Approx(0.1));
  CHECK(cosine_lr(9, 100, 10, 1.0, 0.0) == Approx(1.0));
  CHECK(cosine_lr(10, 100, 10, 1.0, 0.0) == Approx(1.0));
  CHECK(cosine_lr(99, 100, 10, 1.0, 0.01) == Approx(0.01));
  CHECK(cosine_lr(54, 100, 10, 1.0, 0.0) == Approx(0.5).margin(0.02));
}

// A metrics write that fails (a full disk; here RLIMIT_FSIZE, which needs no root) is an error
// naming the file and the reason, not a silently truncated log.
TEST_CASE("a metrics write that fails names the file and the reason", "[metrics]") {
  testing::TempDir dir;
  MetricsLog log(dir.path());
  log.write(1, {{"loss", 0.5}});
  struct rlimit saved {};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG
  struct rlimit small = saved;
  small.rlim_cur = 64;  // both files are already longer
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string message;
  try {
    log.write(2, {{"loss", 0.25}});
  } catch (const Error& e) {
    message = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  CHECK_THAT(message, Catch::Contains("cannot write: File too large"));
  CHECK_THAT(message, Catch::Contains(dir.path()));
}

TEST_CASE("CRC-32C and TensorBoard event records", "[metrics]") {
  CHECK(crc32c("123456789", 9) == 0xE3069283u);  // the standard check value
  testing::TempDir dir;
  {
    MetricsLog log(dir.path());
    log.write(10, {{"loss", 0.5}, {"lr", 1e-3}, {"nan", std::nan("")}, {"quote\"d", 2}});
  }
  const std::string line = testing::read_file(dir.file("metrics.jsonl"));
  REQUIRE(line.back() == '\n');
  REQUIRE(line.find('\n') == line.size() - 1);  // one object per line
  const Json m = Json::parse(line);
  CHECK(m.dump() == R"({"step":10,"loss":0.5,"lr":0.001,"nan":null,"quote\"d":2.0})");
  // Walk the event file's records and check both CRCs of each.
  std::string events;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    if (starts_with(e.path().filename().string(), "events.out.tfevents."))
      events = testing::read_file(e.path().string());
  }
  size_t pos = 0;
  int records = 0;
  while (pos < events.size()) {
    uint64_t length;
    uint32_t length_crc, data_crc;
    std::memcpy(&length, &events[pos], 8);
    std::memcpy(&length_crc, &events[pos + 8], 4);
    CHECK(length_crc == masked_crc32c(&length, 8));
    std::memcpy(&data_crc, &events[pos + 12 + length], 4);
    CHECK(data_crc == masked_crc32c(&events[pos + 12], length));
    pos += 16 + length;
    ++records;
  }
  CHECK(pos == events.size());
  CHECK(records == 5);  // file_version + four scalars
  CHECK(events.find("brain.Event:2") != std::string::npos);
  // A scalar event: wall_time (fixed64, field 1), step 10 (varint, field 2), summary (field 5).
  const std::string e = encode_scalar_event(1.0, 10, "loss", 0.5f);
  CHECK(e[0] == 0x09);
  CHECK(e[9] == 0x10);
  CHECK(e[10] == 10);
  CHECK(e[11] == 0x2a);
}
