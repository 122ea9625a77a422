#include <catch2/catch.hpp>
#include <filesystem>

#include "datasets/aea.h"
#include "datasets/openeds.h"
#include "datasets/synth/eye_renderer.h"
#include "datasets/synth/synth_writer.h"
#include "libgaze/metrics/angular_error.h"
#include "tests/test_util.h"

using namespace gaze;

namespace {
int64_t count_below(const Image& image, int level) {
  return std::count_if(image.pixels.begin(), image.pixels.end(), [&](uint8_t v) { return v < level; });
}
int64_t count_above(const Image& image, int level) {
  return std::count_if(image.pixels.begin(), image.pixels.end(), [&](uint8_t v) { return v > level; });
}
// Mean x of the darkest pixels: where the pupil is.
double pupil_column(const Image& image) {
  double sum = 0;
  int64_t n = 0;
  for (int32_t y = 0; y < image.height; ++y)
    for (int32_t x = 0; x < image.width; ++x)
      if (image.at(y, x) < 40) sum += x, ++n;
  return n ? sum / n : -1;
}
EyeFrameState clean_state(double yaw = 0, double pitch = 0) {
  EyeFrameState s;
  s.visual_axis = aria_direction({yaw, pitch});
  s.noise_sigma = 0;
  return s;
}
}  // namespace

TEST_CASE("rendering is deterministic and per-participant", "[synth]") {
  const EyeParticipant a = sample_participant(7, 0), b = sample_participant(7, 1);
  EyeFrameState s = clean_state(0.1, -0.05);
  s.noise_sigma = 3;
  s.noise_seed = 99;
  CHECK(render_eye(a, s, 120, 160).pixels == render_eye(a, s, 120, 160).pixels);
  CHECK(render_eye(a, s, 120, 160).pixels != render_eye(b, s, 120, 160).pixels);
  CHECK(sample_participant(7, 0).kappa_yaw == a.kappa_yaw);
  CHECK(a.kappa_yaw != b.kappa_yaw);
}

TEST_CASE("the eye model responds physically", "[synth]") {
  const EyeParticipant p = sample_participant(3, 2);
  // Looking toward the wearer's left (+x) moves the pupil to the image's right.
  const double left = pupil_column(render_eye(p, clean_state(-0.35, 0), 200, 320));
  const double centre = pupil_column(render_eye(p, clean_state(0, 0), 200, 320));
  const double right = pupil_column(render_eye(p, clean_state(0.35, 0), 200, 320));
  CHECK(left < centre);
  CHECK(centre < right);
  // A dilated pupil covers more dark pixels.
  EyeFrameState small = clean_state(), large = clean_state();
  small.pupil_scale = 0.7;
  large.pupil_scale = 1.4;
  CHECK(count_below(render_eye(p, large, 200, 320), 40) > 1.5 * count_below(render_eye(p, small, 200, 320), 40));
  // Glints: specular LED reflections are the brightest pixels while the eye is open.
  CHECK(count_above(render_eye(p, clean_state(), 200, 320), 245) > 0);
  // A closed eye shows no pupil and no glints.
  EyeFrameState closed = clean_state();
  closed.blink = 1.0;
  const Image shut = render_eye(p, closed, 200, 320);
  CHECK(count_below(shut, 40) < 0.1 * count_below(render_eye(p, clean_state(), 200, 320), 40));
  CHECK(count_above(shut, 245) == 0);
}

TEST_CASE("kappa separates the visual axis (label) from the optical axis", "[synth]") {
  const EyeParticipant p = sample_participant(11, 4);
  const Vec3 visual = aria_direction({0.1, 0.05});
  const Vec3 optical = optical_axis(p, visual);
  const double kappa_deg = std::hypot(p.kappa_yaw, p.kappa_pitch) * 180 / M_PI;
  CHECK(angular_error_deg(visual, optical) == Approx(kappa_deg).epsilon(0.05));
  // Two people looking at the same target show different eyes (different optical axes).
  const EyeParticipant q = sample_participant(11, 5);
  CHECK(angular_error_deg(optical_axis(p, visual), optical_axis(q, visual)) > 0.1);
}

TEST_CASE("the right eye is the mirror of a left eye looking the mirrored way", "[synth]") {
  const EyeParticipant p = sample_participant(5, 1);
  const Image right = render_eye(p, clean_state(0.2, 0.1), 96, 128, true);
  const Image mirrored_left = mirror_horizontal(render_eye(p, clean_state(-0.2, 0.1), 96, 128, false));
  CHECK(right.pixels == mirrored_left.pixels);
}

TEST_CASE("gaze synth writes OpenEDS and AEA trees that the real loaders read", "[synth][openeds][aea]") {
  testing::TempDir dir;
  Config config = default_config({"synth.out_dir=" + dir.path(), "synth.participants=5", "synth.train_frames=6",
                                  "synth.validation_frames=4", "synth.test_frames=7", "synth.aea_frames=5",
                                  "synth.openeds_size=[100,160]", "synth.aea_size=[60,160]", "synth.blink_rate=20"});
  const SynthReport report = write_synthetic_datasets(config.synth, 1, 2);
  CHECK(report.openeds_images == 3 * 6 + 1 * 4 + 1 * 7);
  CHECK(report.aea_frames == 25);

  OpenEdsOptions options;
  options.expected_height = 100;
  options.expected_width = 160;
  options.split = "train";
  const OpenEdsDataset train(dir.path() + "/openeds", options);
  CHECK(train.size() == 18);
  options.split = "test";
  options.participants_file = dir.path() + "/openeds/participants.csv";
  const OpenEdsDataset test(dir.path() + "/openeds", options);
  CHECK(test.size() == 7);  // 7 images although the label file has 12 rows
  CHECK(test.label(0).participant == 4);
  CHECK(testing::read_file(dir.path() + "/openeds/test/labels/1004.txt").find("011,") != std::string::npos);
  const Sample s = test.get(3);
  CHECK(s.image.height == 100);
  CHECK(s.label.key == "1004/003");

  AeaOptions aea_options;
  aea_options.eye = "pair";
  const AeaDataset aea(dir.path() + "/aea", aea_options);
  REQUIRE(aea.size() == 25);
  CHECK(aea.recordings().size() == 5);
  CHECK(aea.label(1).timestamp_us == 10100306);  // 10.1 s + 306.25 µs, truncated
  CHECK(aea.get(0).image.width == 160);
  int64_t blinks = 0;
  for (int64_t i = 0; i < aea.size(); ++i) blinks += aea.label(i).blink;
  CHECK(blinks > 0);
  // The loader's gaze equals the renderer's label (through the CSV's yaw/pitch).
  const auto frames = generate_sequence(sample_participant(1, 0), 5, 10.0, config.synth, seed_mix(1, stream::kAEA, 0));
  const Vec3 written = frames[2].state.visual_axis;
  const auto& g = aea.label(2).gaze;
  CHECK(angular_error_deg(written, {g[0], g[1], g[2]}) < 1e-5);
  // Re-running replaces the trees in place (no leftovers from the staging folders).
  write_synthetic_datasets(config.synth, 1, 2);
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++entries;
  CHECK(entries == 2);
}
