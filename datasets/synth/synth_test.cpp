#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "datasets/aea.h"
#include "datasets/openeds.h"
#include "datasets/preprocess.h"
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
// Mean position of the darkest pixels: where the pupil is (x: column, y: row, rows grow down).
struct Centre {
  double x = -1, y = -1;
};
Centre pupil_centre(const Image& image) {
  double sx = 0, sy = 0;
  int64_t n = 0;
  for (int32_t y = 0; y < image.height; ++y)
    for (int32_t x = 0; x < image.width; ++x)
      if (image.at(y, x) < 40) sx += x, sy += y, ++n;
  return n ? Centre{sx / double(n), sy / double(n)} : Centre{};
}
double pupil_column(const Image& image) { return pupil_centre(image).x; }
double pupil_row(const Image& image) { return pupil_centre(image).y; }
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
  // people.csv: a header and one row per person, each the renderer's draw for that id.
  const std::string people = testing::read_file(dir.path() + "/people.csv");
  CHECK(std::count(people.begin(), people.end(), '\n') == 6);
  const EyeParticipant p3 = sample_participant(1, 3, eye_population(config.synth));
  char kappa[64];
  std::snprintf(kappa, sizeof kappa, "\n3,validation,%.4f,%.4f,", p3.kappa_yaw * 180 / M_PI,
                p3.kappa_pitch * 180 / M_PI);
  CHECK_THAT(people, Catch::StartsWith("participant,split,kappa_yaw_deg,kappa_pitch_deg,") && Catch::Contains(kappa));
  for (size_t line = 0, next; (next = people.find('\n', line)) != std::string::npos; line = next + 1)
    CHECK(std::count(people.begin() + long(line), people.begin() + long(next), ',') == 16);
  // The camera's tilt in degrees, as synth.camera_tilt_deg gives it; the last column the LEDs.
  const Config tilted = default_config({"synth.participants=5", "synth.camera_tilt_deg=[10,20]", "synth.leds=6"});
  CHECK_THAT(people_csv(tilted.synth, 1), Catch::Contains(",10.0000,20.0000,6\n"));

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
  // Re-running replaces the trees in place (no leftovers from the staging folders): openeds,
  // aea, people.csv.
  write_synthetic_datasets(config.synth, 1, 2);
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++entries;
  CHECK(entries == 3);
}

namespace {
double mean_of_columns(const Image& image, int32_t from, int32_t to) {
  double sum = 0;
  for (int32_t y = 0; y < image.height; ++y)
    for (int32_t x = from; x < to; ++x) sum += image.at(y, x);
  return sum / double(image.height * (to - from));
}
}  // namespace

TEST_CASE("gaze synth names 100 or more AEA recordings so that the reader's order is the people's", "[synth][aea]") {
  testing::TempDir dir;
  Config config = default_config({"synth.out_dir=" + dir.path(), "synth.participants=101", "synth.aea_frames=1",
                                  "synth.aea_size=[32,64]", "synth.blink_rate=0", "synth.layouts=[aea]"});
  write_synthetic_datasets(config.synth, 1, 2);
  AeaOptions options;
  options.eye = "pair";
  const AeaDataset aea(dir.path() + "/aea", options);
  REQUIRE(aea.size() == 101);
  CHECK(aea.recordings()[10].name == "synth_p010_rec1");
  CHECK(aea.recordings()[100].name == "synth_p100_rec1");
  // The participant id is the recording's index: person 100 is the last recording, not the third.
  CHECK(aea.label(100).participant == 100);
  CHECK(aea.label(100).key.rfind("synth_p100_rec1/", 0) == 0);
}

TEST_CASE("held-out populations: anatomy spread scales each person's deviations from the mean", "[synth][conditions]") {
  EyePopulation narrow, usual, wide;
  narrow.anatomy_spread = 0;
  wide.anatomy_spread = 2;
  for (int64_t id = 0; id < 6; ++id) {
    const EyeParticipant n = sample_participant(4, id, narrow), u = sample_participant(4, id, usual),
                         w = sample_participant(4, id, wide);
    CHECK(n.kappa_yaw == Approx(-5.0 * M_PI / 180));  // every person at the mean
    CHECK(n.eyeball_radius == Approx(12.0));
    CHECK(n.lid_open == Approx((0.48 + 0.75) / 2));
    // The same draws, twice as far from the mean (kappa is never clamped).
    CHECK(w.kappa_yaw - n.kappa_yaw == Approx(2 * (u.kappa_yaw - n.kappa_yaw)));
    CHECK(w.kappa_pitch - n.kappa_pitch == Approx(2 * (u.kappa_pitch - n.kappa_pitch)));
    // What a population does not change stays the person's own.
    CHECK(w.texture_seed == u.texture_seed);
    CHECK(w.eye_distance == u.eye_distance);
  }
  // Whatever the spread, every eye is drawable: an iris of adult size around a pupil that fits
  // inside it even fully dilated (x1.5), a cornea that bulges out of the eyeball.
  EyePopulation widest;
  widest.anatomy_spread = 2.5;
  for (const EyePopulation& population : {usual, widest}) {
    for (int64_t id = 0; id < 300; ++id) {
      const EyeParticipant p = sample_participant(9, id, population);
      INFO("person " << id << " iris " << p.iris_radius << " pupil " << p.pupil_radius);
      CHECK((p.iris_radius > 4.89 && p.iris_radius < 6.31));
      CHECK(1.5 * p.pupil_radius < p.iris_radius);
      CHECK(p.cornea_offset + p.cornea_radius > p.eyeball_radius + 0.2);
    }
  }
  EyePopulation far;
  far.eye_distance_min = far.eye_distance_max = 40;
  far.iris_brightness_min = far.iris_brightness_max = 50;
  CHECK(sample_participant(4, 1, far).eye_distance == 40);
  CHECK(sample_participant(4, 1, far).iris_brightness == 50);
}

TEST_CASE("held-out populations: a camera below the eye sees it looking up, LEDs make the glints",
          "[synth][conditions]") {
  EyePopulation below;
  below.camera_pitch_deg = 20;
  const EyeParticipant level = sample_participant(3, 2), tilted = sample_participant(3, 2, below);
  // The same eye looking straight ahead: its pupil sits higher in the tilted camera's image.
  CHECK(pupil_row(render_eye(tilted, clean_state(), 200, 320)) <
        pupil_row(render_eye(level, clean_state(), 200, 320)) - 10);
  EyePopulation beside;
  beside.camera_yaw_deg = 15;  // straight ahead appears to the image's right
  CHECK(pupil_column(render_eye(sample_participant(3, 2, beside), clean_state(), 200, 320)) >
        pupil_column(render_eye(level, clean_state(), 200, 320)) + 10);
  EyePopulation dark;
  dark.leds = 0;
  CHECK(count_above(render_eye(level, clean_state(), 200, 320), 245) > 0);
  CHECK(count_above(render_eye(sample_participant(3, 2, dark), clean_state(), 200, 320), 245) == 0);
}

TEST_CASE("held-out conditions change how sequences look, never where they look", "[synth][conditions]") {
  const Config usual = default_config();
  const Config lit = default_config({"synth.light_gradient=0.6", "synth.exposure=[0.5,1.5]", "synth.noise=6"});
  const EyeParticipant p = sample_participant(2, 3);
  const auto a = generate_sequence(p, 40, 100.0, usual.synth, 17);
  const auto b = generate_sequence(p, 40, 100.0, lit.synth, 17);
  REQUIRE(a.size() == b.size());
  bool exposure_differs = false;
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].state.visual_axis.x == b[i].state.visual_axis.x);
    CHECK(a[i].state.visual_axis.y == b[i].state.visual_axis.y);
    CHECK(a[i].blink == b[i].blink);
    CHECK(a[i].state.light_gradient == 0);
    CHECK(b[i].state.light_gradient == Approx(b[0].state.light_gradient));  // one light per sequence
    CHECK((b[i].state.exposure >= 0.5 && b[i].state.exposure <= 1.5));
    exposure_differs = exposure_differs || a[i].state.exposure != b[i].state.exposure;
  }
  CHECK(exposure_differs);
  CHECK(b[0].state.light_gradient >= 0.3 * 0.6);
  // Light growing toward the image's left (angle pi) brightens the left half, darkens the right.
  EyeFrameState even = clean_state(), slanted = clean_state();
  slanted.light_gradient = 0.5;
  slanted.light_angle = M_PI;
  const Image e = render_eye(p, even, 120, 160), s = render_eye(p, slanted, 120, 160);
  CHECK(mean_of_columns(s, 0, 40) > 1.3 * mean_of_columns(e, 0, 40));
  CHECK(mean_of_columns(s, 120, 160) < 0.8 * mean_of_columns(e, 120, 160));
}

TEST_CASE("an eye elsewhere in the frame looks as the shift-turned gaze says (train.augmentation.focal)",
          "[synth][preprocess]") {
  // Person B's eye sits 2 mm right of and 1.5 mm below the camera axis; A's on it. A window
  // moved onto B's eye shows a centred eye whose gaze is B's turned by that move
  // (turn_gaze_for_shift): rendered with that gaze, A's pupil sits where B's does relative to the
  // eye centre. Without the turn it does not.
  EyeParticipant a = sample_participant(7, 0);
  a.kappa_yaw = a.kappa_pitch = 0;
  a.eye_offset_x = a.eye_offset_y = 0;
  a.eye_distance = 32;
  EyeParticipant b = a;
  b.eye_offset_x = 2.0;
  b.eye_offset_y = -1.5;  // camera y is up: below the axis
  const int32_t h = 200, w = 320;
  const double f = synth_focal_px(w);
  const double u = f * b.eye_offset_x / b.eye_distance, v = -f * b.eye_offset_y / b.eye_distance;  // right, down
  for (const YawPitch gaze : {YawPitch{0.15, 0.05}, YawPitch{-0.2, -0.1}}) {
    const Vec3 seen_by_b = aria_direction(gaze);
    const Centre pb = pupil_centre(render_eye(b, clean_state(gaze.yaw, gaze.pitch), h, w));
    const auto offset_from_b = [&](const Vec3& gaze_of_a) {
      EyeFrameState s = clean_state();
      s.visual_axis = gaze_of_a;
      const Centre pa = pupil_centre(render_eye(a, s, h, w));
      return std::hypot((pa.x - w / 2.0) - (pb.x - w / 2.0 - u), (pa.y - h / 2.0) - (pb.y - h / 2.0 - v));
    };
    const Vec3 turned = turn_gaze_for_shift(seen_by_b, u, v, f);
    CHECK(angular_error_deg(turned, seen_by_b) == Approx(std::atan(std::hypot(u, v) / f) * 180 / M_PI).epsilon(0.02));
    CHECK(offset_from_b(turned) < 0.75);    // pixels
    CHECK(offset_from_b(seen_by_b) > 3.0);  // the label left as it was is several pixels off
  }
}

TEST_CASE("an eye elsewhere in the frame, warped to the centre, is the eye rendered there (train.augmentation.warp)",
          "[synth][preprocess]") {
  // B's eye sits 6 mm right of and 4.5 mm below the camera axis (13 degrees off it). The camera
  // turn that brings it to the middle of the frame (the shift onto it, warped) turns the scene
  // about the camera: the eye then sits at turn.apply(B's position) and looks along B's gaze
  // turned. Rendered so, its pupil falls where the warped image's does, in absolute pixels, to
  // the renderer's own floor (its lids and glints are drawn in the image, not turned: ~0.3 px).
  // The crop shift's translation is off by the perspective it leaves out, which grows with the
  // square of the turn: here 2-3 px; at the demo's fit (2 mm, 1.5 mm) both are within 0.5 px.
  EyeParticipant b = sample_participant(7, 0);
  b.kappa_yaw = b.kappa_pitch = 0;
  b.eye_distance = 32;
  b.eye_offset_x = 6.0;
  b.eye_offset_y = -4.5;  // camera y is up
  const int32_t h = 200, w = 320;
  const double f = synth_focal_px(w);
  const double u = f * b.eye_offset_x / b.eye_distance, v = -f * b.eye_offset_y / b.eye_distance;  // right, down
  const CameraTurn turn = camera_turn_for_shift(u, v, 0, f);
  const Vec3 moved = turn.apply({b.eye_offset_x, b.eye_offset_y, b.eye_distance});
  EyeParticipant there = b;
  there.eye_offset_x = moved.x;
  there.eye_offset_y = moved.y;
  there.eye_distance = moved.z;
  // Near the axis (mm): the yaw-then-pitch turn takes the view axis, not the eye's ray, exactly.
  CHECK(std::hypot(moved.x, moved.y) < 0.2);
  const auto to_image = [&](const std::vector<float>& grey) {
    Image image(h, w);
    for (size_t i = 0; i < grey.size(); ++i) image.pixels[i] = uint8_t(std::lround(std::clamp(grey[i], 0.0f, 255.0f)));
    return image;
  };
  for (const YawPitch gaze : {YawPitch{0.15, 0.05}, YawPitch{-0.2, -0.1}, YawPitch{0.05, 0.2}}) {
    const Image seen_by_b = render_eye(b, clean_state(gaze.yaw, gaze.pitch), h, w);
    std::vector<float> warped(size_t(h) * w), shifted(size_t(h) * w);
    resample_turned(seen_by_b, full_window(seen_by_b, h, w), turn, f, h, w, false, warped.data());
    SourceWindow window = full_window(seen_by_b, h, w);
    window.x0 += u;
    window.y0 += v;
    resample_bilinear(seen_by_b, window, h, w, false, shifted.data());
    EyeFrameState s = clean_state();
    s.visual_axis = turn_gaze(aria_direction(gaze), turn);
    const Centre rendered = pupil_centre(render_eye(there, s, h, w));
    const Centre by_warp = pupil_centre(to_image(warped)), by_shift = pupil_centre(to_image(shifted));
    const double warp_off = std::hypot(by_warp.x - rendered.x, by_warp.y - rendered.y);
    const double shift_off = std::hypot(by_shift.x - rendered.x, by_shift.y - rendered.y);
    INFO("warp " << warp_off << " px, shift " << shift_off << " px");
    CHECK(warp_off < 0.4);
    CHECK(shift_off > 1.5);
    CHECK(shift_off > 4 * warp_off);
  }
  // With the camera tilted against the label frame (20 degrees up from below, 10 to the side, as
  // the camera condition's), the label turns in the camera's frame: turned in the label frame
  // instead, the rendered pupil lands pixels away from the warped one.
  b.camera_yaw = 10 * M_PI / 180;
  b.camera_pitch = 20 * M_PI / 180;
  there.camera_yaw = b.camera_yaw;
  there.camera_pitch = b.camera_pitch;
  const CameraTilt tilt{b.camera_yaw, b.camera_pitch};
  // Gazes that look down, so the upward-looking camera sees the pupil clear of the lids (drawn
  // in the image, they follow the label's pitch and would move the dark-pixel centre).
  for (const YawPitch gaze : {YawPitch{0.0, -0.2}, YawPitch{0.1, -0.35}}) {
    const Image seen_by_b = render_eye(b, clean_state(gaze.yaw, gaze.pitch), h, w);
    std::vector<float> warped(size_t(h) * w);
    resample_turned(seen_by_b, full_window(seen_by_b, h, w), turn, f, h, w, false, warped.data());
    const Centre by_warp = pupil_centre(to_image(warped));
    const auto off_by = [&](const Vec3& label) {
      EyeFrameState s = clean_state();
      s.visual_axis = label;
      const Centre rendered = pupil_centre(render_eye(there, s, h, w));
      return std::hypot(by_warp.x - rendered.x, by_warp.y - rendered.y);
    };
    const double in_camera = off_by(turn_gaze(aria_direction(gaze), turn, tilt));
    const double in_label = off_by(turn_gaze(aria_direction(gaze), turn));
    INFO("tilted: label turned in the camera's frame " << in_camera << " px, in the label frame " << in_label << " px");
    CHECK(in_camera < 0.3);
    CHECK(in_label > 1.0);
    CHECK(in_label > 4 * in_camera);
  }
}
