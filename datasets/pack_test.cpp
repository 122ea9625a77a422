#include "datasets/pack.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "datasets/kmeans.h"
#include "datasets/open_dataset.h"
#include "datasets/prefetcher.h"
#include "datasets/preprocess.h"
#include "datasets/splits.h"
#include "datasets/synth/natural_images.h"
#include "libgaze/core/error.h"
#include "libgaze/io/hdf5.h"
#include "libgaze/metrics/angular_error.h"
#include "tests/test_util.h"

using namespace gaze;
using Catch::Contains;

namespace {
// An in-memory dataset: item i is a 12x16 image filled with i, gaze tilted by i.
class ToyDataset : public Dataset {
 public:
  explicit ToyDataset(int64_t n, int64_t bad = -1) : bad_(bad) {
    for (int64_t i = 0; i < n; ++i) {
      SampleLabel l;
      l.gaze = unit_gaze(0.01 * i, -0.02 * i, 1, "toy");
      l.participant = i % 3;
      l.key = "item/" + std::to_string(i);
      l.timestamp_us = 1000 * i;
      l.blink = i % 5 == 0;
      l.head = {0.01f * float(i), -0.02f * float(i)};
      labels_.push_back(l);
    }
  }
  int64_t size() const override { return int64_t(labels_.size()); }
  Sample get(int64_t i) const override {
    if (i == bad_) throw Error("toy: item " + std::to_string(i) + " is corrupt");
    Image image(12, 16, uint8_t(i));
    image.at(0, 0) = 255;
    return {image, labels_[i]};
  }
  const SampleLabel& label(int64_t i) const override { return labels_[i]; }
  std::string describe() const override { return "toy"; }

 private:
  std::vector<SampleLabel> labels_;
  int64_t bad_;
};
}  // namespace

TEST_CASE("a pack keeps head pose, and packs from before version 4 read it as zero", "[pack]") {
  testing::TempDir dir;
  const ToyDataset toy(30);
  write_pack(toy, dir.file("p.h5"), {});
  {
    const PackDataset pack(dir.file("p.h5"));
    for (int64_t i : {0, 7, 29}) CHECK(pack.label(i).head == toy.label(i).head);
  }
  {  // a version-3 pack: no /head
    std::lock_guard<std::mutex> lock(h5::library_mutex());
    const hid_t file = H5Fopen(dir.file("p.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(file >= 0);
    REQUIRE(H5Ldelete(file, "head", H5P_DEFAULT) >= 0);
    H5Fclose(file);
  }
  const PackDataset old(dir.file("p.h5"));
  CHECK(old.size() == 30);
  CHECK(old.label(7).head == std::array<float, 2>{0, 0});
  CHECK(old.label(7).key == "item/7");
}

TEST_CASE("a pack round-trips images and labels, with splits", "[pack]") {
  testing::TempDir dir;
  const ToyDataset toy(150);
  PackOptions options;
  options.split_of = [](int64_t i, const SampleLabel&) { return uint8_t(i % 3 == 2 ? 2 : 0); };
  const PackReport report = write_pack(toy, dir.file("p.h5"), options);
  CHECK(report.written == 150);
  const PackDataset all(dir.file("p.h5"));
  REQUIRE(all.size() == 150);
  for (int64_t i : {0, 1, 77, 149}) {
    const Sample s = all.get(i);
    CHECK(s.image.pixels == toy.get(i).image.pixels);
    CHECK(s.label.key == toy.label(i).key);
    CHECK(s.label.gaze == toy.label(i).gaze);
    CHECK(s.label.participant == toy.label(i).participant);
    CHECK(s.label.timestamp_us == 1000 * i);
    CHECK(s.label.blink == (i % 5 == 0));
  }
  const PackDataset test(dir.file("p.h5"), "test");
  CHECK(test.size() == 50);
  CHECK(test.label(0).key == "item/2");
  CHECK_THROWS_WITH(PackDataset(dir.file("p.h5"), "tset"), Contains("did you mean 'test'"));
}

// No HDF5 timestamps (libgaze/io/hdf5.h): the same items packed again are the same file.
TEST_CASE("the same items packed twice, seconds apart, are the same bytes", "[pack]") {
  testing::TempDir dir;
  const ToyDataset toy(40);
  write_pack(toy, dir.file("a.h5"), {});
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // HDF5's times count seconds
  write_pack(toy, dir.file("b.h5"), {});
  CHECK(testing::read_file(dir.file("a.h5")) == testing::read_file(dir.file("b.h5")));
}

TEST_CASE("a pack holds one participant out for a leave-one-person-out fold, its own splits ignored", "[pack]") {
  testing::TempDir dir;
  const ToyDataset toy(30);  // participants 0, 1, 2
  PackOptions options;
  options.split_of = [](int64_t i, const SampleLabel&) { return uint8_t(i % 3 == 2 ? 2 : 0); };
  write_pack(toy, dir.file("p.h5"), options);
  const PackDataset train(dir.file("p.h5"), "train", 1), held(dir.file("p.h5"), "validation", 1);
  CHECK(train.size() == 20);
  CHECK(held.size() == 10);
  for (int64_t i = 0; i < train.size(); ++i) CHECK(train.label(i).participant != 1);
  for (int64_t i = 0; i < held.size(); ++i) CHECK(held.label(i).participant == 1);
  CHECK(PackDataset(dir.file("p.h5"), "test", 1).size() == 10);
  CHECK(PackDataset(dir.file("p.h5"), "", 1).size() == 30);
  CHECK(held.describe() == "pack " + dir.file("p.h5") + " (validation, participant 1 held out)");
  CHECK_THROWS_WITH(PackDataset(dir.file("p.h5"), "train", 7), Contains("p.h5: no participant 7 to hold out"));
  // Through the config, as the pipeline's folds open it.
  DataConfig data;
  data.source = dir.file("p.h5");
  data.split = "test";
  data.hold_out = 2;
  CHECK(open_dataset(data)->size() == 10);
}

TEST_CASE("a pack keeps its first N train people for a learning curve, the other splits untouched", "[pack]") {
  testing::TempDir dir;
  const ToyDataset toy(30);  // participants 0, 1, 2: 0 and 1 train, 2 test
  PackOptions options;
  options.split_of = [](int64_t, const SampleLabel& l) { return uint8_t(l.participant == 2 ? 2 : 0); };
  write_pack(toy, dir.file("p.h5"), options);
  const PackDataset first(dir.file("p.h5"), "train", -1, 1);
  CHECK(first.size() == 10);
  for (int64_t i = 0; i < first.size(); ++i) CHECK(first.label(i).participant == 0);
  CHECK(first.describe() == "pack " + dir.file("p.h5") + " (train, the train split's first 1 participant ids)");
  CHECK(PackDataset(dir.file("p.h5"), "test", -1, 1).size() == 10);
  CHECK(PackDataset(dir.file("p.h5"), "", -1, 1).size() == 20);  // everyone but train person 1
  CHECK(PackDataset(dir.file("p.h5"), "train", -1, 2).size() == 20);
  CHECK_THROWS_WITH(PackDataset(dir.file("p.h5"), "test", -1, 3),
                    Contains("p.h5: data.train_people=3, but its train split holds 2 (participant ids)"));
  // In a leave-one-person-out fold the train side is everyone else: its first person is 1.
  const PackDataset fold(dir.file("p.h5"), "train", 0, 1);
  CHECK(fold.size() == 10);
  for (int64_t i = 0; i < fold.size(); ++i) CHECK(fold.label(i).participant == 1);
  CHECK(PackDataset(dir.file("p.h5"), "validation", 0, 1).size() == 10);  // the person held out
  CHECK_THROWS_WITH(PackDataset(dir.file("p.h5"), "train", 7, 5), Contains("no participant 7 to hold out"));
  // Through the config; other sources cannot say who the first people are.
  DataConfig data;
  data.source = dir.file("p.h5");
  data.train_people = 1;
  CHECK(open_dataset(data)->size() == 10);
  data.source = "openeds:" + dir.path();
  CHECK_THROWS_WITH(open_dataset(data), Contains("data.train_people needs a pack"));
}

TEST_CASE("packing resizes on request and otherwise rejects mixed sizes", "[pack]") {
  testing::TempDir dir;
  const ToyDataset toy(3);
  PackOptions options;
  options.height = 6;
  options.width = 8;
  write_pack(toy, dir.file("small.h5"), options);
  const PackDataset small(dir.file("small.h5"));
  CHECK(small.height() == 6);
  CHECK(small.get(2).image.width == 8);
}

TEST_CASE("bad items are an error by default and counted with skip_bad and the old pack survives", "[pack]") {
  testing::TempDir dir;
  write_pack(ToyDataset(10), dir.file("p.h5"), PackOptions{});
  const std::string before = testing::read_file(dir.file("p.h5"));
  CHECK_THROWS_WITH(write_pack(ToyDataset(10, 4), dir.file("p.h5"), PackOptions{}), Contains("item 4 is corrupt"));
  CHECK(testing::read_file(dir.file("p.h5")) == before);
  PackOptions skip;
  skip.skip_bad = true;
  const PackReport r = write_pack(ToyDataset(10, 4), dir.file("q.h5"), skip);
  CHECK(r.written == 9);
  CHECK(r.skipped.count == 1);
  CHECK(PackDataset(dir.file("q.h5")).label(4).key == "item/5");
}

TEST_CASE("fletcher32 catches a flipped byte in the image data", "[pack]") {
  testing::TempDir dir;
  // Incompressible noise so the image chunk bytes are easy to find and flip.
  class Noise : public ToyDataset {
   public:
    Noise() : ToyDataset(4) {}
    Sample get(int64_t i) const override {
      Sample s = ToyDataset::get(i);
      for (size_t k = 0; k < s.image.pixels.size(); ++k)
        s.image.pixels[k] = uint8_t((k * 131 + i * 17) * 2654435761u >> 13);
      return s;
    }
  };
  PackOptions options;
  options.compression = 0;
  write_pack(Noise(), dir.file("p.h5"), options);
  std::string bytes = testing::read_file(dir.file("p.h5"));
  const Sample two = Noise().get(2);
  const std::string needle(two.image.pixels.begin(), two.image.pixels.begin() + 32);
  const size_t at = bytes.find(needle);
  REQUIRE(at != std::string::npos);
  bytes[at + 40] ^= 0x5a;
  dir.write("p.h5", bytes);
  const PackDataset damaged(dir.file("p.h5"));
  CHECK_NOTHROW(damaged.get(1));
  CHECK_THROWS_WITH(damaged.get(2), Contains("p.h5: image 2 (item/2)") && Contains("checksum"));
  CHECK_THROWS_WITH(PackDataset(dir.file("missing.h5")), Contains("missing.h5"));
}

TEST_CASE("k-means finds separated gaze clusters and the sampler balances them", "[kmeans]") {
  std::vector<std::array<float, 3>> points;
  // 3 tight clusters of very different sizes.
  for (int i = 0; i < 300; ++i) points.push_back(unit_gaze(0.3 + 0.001 * (i % 7), 0, 1, "p"));
  for (int i = 0; i < 30; ++i) points.push_back(unit_gaze(-0.3, 0.2 + 0.001 * (i % 5), 1, "p"));
  for (int i = 0; i < 10; ++i) points.push_back(unit_gaze(0, -0.3, 1, "p"));
  const KMeansResult r = kmeans(points, 3, 42);
  CHECK(r.assignment[0] != r.assignment[300]);
  CHECK(r.assignment[300] != r.assignment[335]);
  CHECK(r.assignment[0] != r.assignment[335]);
  CHECK(r.inertia < 5e-3);                                  // a wrong grouping would cost ~0.1 per misplaced point
  CHECK(kmeans(points, 3, 42).assignment == r.assignment);  // deterministic
  CHECK_THROWS_AS(kmeans(points, 400, 1), Error);
  ClusterBalancedSampler sampler(r.assignment, 7);
  std::array<int, 3> hits{0, 0, 0};
  for (int i = 0; i < 3000; ++i) ++hits[r.assignment[sampler.next()]];
  for (int h : hits) CHECK(h > 850);  // ~1000 each although the clusters hold 300 / 30 / 10
  // The sampler resumes from its saved state.
  const uint64_t state = sampler.state();
  const int64_t a = sampler.next();
  sampler.set_state(state);
  CHECK(sampler.next() == a);
}

TEST_CASE("group splits and the k-shot personalisation split", "[splits]") {
  const auto s = split_groups(10, {0.8, 0.1, 0.1}, 3);
  CHECK(std::count(s.begin(), s.end(), 0) == 8);
  CHECK(std::count(s.begin(), s.end(), 1) == 1);
  CHECK(std::count(s.begin(), s.end(), 2) == 1);
  CHECK(split_groups(10, {0.8, 0.1, 0.1}, 3) == s);
  const auto three = split_groups(3, {0.8, 0.1, 0.1}, 1);
  CHECK(std::count(three.begin(), three.end(), 2) == 1);
  const ToyDataset toy(30);  // participants 0,1,2 with 10 items each
  const auto p = personalisation_split(toy, 5, 9);
  REQUIRE(p.size() == 3);
  for (const auto& [id, split] : p) {
    CHECK(split.calibration.size() == 5);
    CHECK(split.evaluation.size() == 5);
    for (int64_t i : split.calibration) CHECK(toy.label(i).participant == id);
  }
  CHECK(personalisation_split(toy, 10, 9).empty());  // nothing would be left to evaluate
  // The calibration items stay in the order drawn, so the first k' of a draw of k are a random
  // draw too (the k-curve's and the baselines' shots), not the earliest frames of the k; the rest
  // are evaluated, in index order.
  const ToyDataset many(300);  // 100 items per participant
  int64_t prefixes = 0, earliest = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    for (const auto& [id, split] : personalisation_split(many, 10, seed)) {
      std::vector<int64_t> sorted = split.calibration, all = split.evaluation;
      std::sort(sorted.begin(), sorted.end());
      CHECK(std::is_sorted(split.evaluation.begin(), split.evaluation.end()));
      all.insert(all.end(), split.calibration.begin(), split.calibration.end());
      std::sort(all.begin(), all.end());
      CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());  // disjoint
      CHECK(all.size() == 100);
      std::vector<int64_t> first = calibration_shots(split, 5);
      CHECK(first == std::vector<int64_t>(split.calibration.begin(), split.calibration.begin() + 5));
      CHECK(calibration_shots(split, 10) == split.calibration);
      CHECK(calibration_shots(split, 0).empty());
      std::sort(first.begin(), first.end());
      prefixes += 1;
      earliest += first == std::vector<int64_t>(sorted.begin(), sorted.begin() + 5) ? 1 : 0;
    }
  }
  CHECK(prefixes == 12);
  CHECK_THROWS_WITH(calibration_shots(p.at(0), 6), Catch::Contains("k = 6 but the pool holds 5"));
  CHECK(earliest < 3);  // a random 5 of 10 are the earliest 5 with probability 1/252
  // Without person ids: the first k in time calibrate, evaluation starts gap_us after them.
  // Participant 0 holds items 0, 3, ..., 27 at 1000 us per index.
  const auto timed = personalisation_split(toy, 2, 9, {}, {5000, 0});
  const CalibrationSplit& zero = timed.at(0);
  CHECK(zero.calibration == std::vector<int64_t>{0, 3});
  CHECK(zero.evaluation == std::vector<int64_t>{9, 12, 15, 18, 21, 24, 27});  // 6 is < 3000 + 5000 us
  CHECK(personalisation_split(toy, 2, 9, {}, {0, 0}).at(0).evaluation.size() == 8);
}

namespace {
// One recording, a frame every 100 ms: the first second mostly looks ahead, with a glance left
// at 300 ms, up at 600 ms and right-down at 800 ms; then it looks around.
class GlanceRecording : public Dataset {
 public:
  explicit GlanceRecording(bool timed = true) {
    const std::vector<std::array<float, 2>> yaw_pitch = {{0, 0},     {0.01f, 0}, {0, 0.01f}, {-0.4f, 0},     {0, 0},
                                                         {0.02f, 0}, {0, 0.3f},  {0, 0},     {0.2f, -0.25f}, {0, 0}};
    for (int64_t i = 0; i < 16; ++i) {
      SampleLabel l;
      const auto& yp = yaw_pitch[size_t(i) % yaw_pitch.size()];
      l.gaze = unit_gaze(std::sin(yp[0]), std::sin(yp[1]), 1, "glance");
      l.key = "rec/" + std::to_string(i);
      l.timestamp_us = timed || i != 12 ? 100000 * i : -1;
      labels_.push_back(l);
    }
  }
  int64_t size() const override { return int64_t(labels_.size()); }
  Sample get(int64_t i) const override { return {Image(4, 4, 0), labels_[size_t(i)]}; }
  const SampleLabel& label(int64_t i) const override { return labels_[size_t(i)]; }
  std::string describe() const override { return "glance recording"; }
  std::string participant_unit() const override { return "recording"; }

 private:
  std::vector<SampleLabel> labels_;
};
}  // namespace

TEST_CASE("a calibration window takes the frames whose gaze lies farthest apart, in that order", "[splits]") {
  const GlanceRecording recording;
  PersonalizeConfig pc;
  pc.gap_ms = 150;
  CHECK(calibration_timing(recording, pc).window_us == 0);  // the default: the first k frames
  const CalibrationSplit first = personalisation_split(recording, 3, 1, {}, calibration_timing(recording, pc)).at(0);
  CHECK(first.calibration == std::vector<int64_t>{0, 1, 2});
  CHECK(first.evaluation.front() == 4);  // 200 ms + 150 ms

  pc.calibration_window_ms = 1000;  // frames 0-9
  const CalibrationTiming timing = calibration_timing(recording, pc);
  CHECK(timing.gap_us == 150000);
  CHECK(timing.window_us == 1000000);
  const CalibrationSplit spread = personalisation_split(recording, 3, 1, {}, timing).at(0);
  // Left (farthest from the mean), then right-down (farthest from left), then up.
  CHECK(spread.calibration == std::vector<int64_t>{3, 8, 6});
  CHECK(personalisation_split(recording, 1, 1, {}, timing).at(0).calibration == std::vector<int64_t>{3});
  // Evaluation starts gap_ms after the window's last frame (900 ms): 1100 ms on.
  CHECK(spread.evaluation == std::vector<int64_t>{11, 12, 13, 14, 15});
  // A window shorter than k frames is widened to the first k.
  pc.calibration_window_ms = 150;
  std::vector<int64_t> widened =
      personalisation_split(recording, 3, 1, {}, calibration_timing(recording, pc)).at(0).calibration;
  std::sort(widened.begin(), widened.end());
  CHECK(widened == std::vector<int64_t>{0, 1, 2});
  // People with ids draw at random, whatever the window; the report's protocol says which.
  const ToyDataset toy(30);
  CHECK(calibration_timing(toy, pc).gap_us < 0);
  const CalibrationProtocol drawn = calibration_protocol(toy, pc);
  CHECK((drawn.unit == "participant" && drawn.gap_ms == -1 && drawn.calibration_window_ms == 0));
  const CalibrationProtocol timed = calibration_protocol(recording, pc);
  CHECK((timed.unit == "recording" && timed.gap_ms == 150 && timed.calibration_window_ms == 150));
  // A window as long as the recording leaves nothing to evaluate: said, with the settings to change.
  pc.calibration_window_ms = 1600;
  CHECK_THROWS_WITH(personalisation_users(recording, pc, 1),
                    Catch::Contains("glance recording: no recording has frames left to evaluate after calibrating on "
                                    "10 across its first 1600 ms (personalize.calibration_window_ms) and waiting 150 "
                                    "ms (personalize.gap_ms)"));
  pc.calibration_window_ms = 0;
  CHECK(personalisation_users(recording, pc, 1).at(0).calibration.size() == 10);  // k_curve's largest k
  // A window needs a timestamp on every frame.
  pc.calibration_window_ms = 1000;
  const GlanceRecording untimed(false);
  CHECK_THROWS_WITH(personalisation_split(untimed, 3, 1, {}, calibration_timing(untimed, pc)),
                    Catch::Contains("glance recording: item 'rec/12' has no timestamp"));
}

TEST_CASE("colour images: per-channel resampling and ImageNet normalisation", "[preprocess]") {
  Image rgb(20, 40, 0, 3);
  for (int y = 0; y < 20; ++y)
    for (int x = 0; x < 40; ++x)
      rgb.at(y, x, 0) = 255, rgb.at(y, x, 1) = uint8_t(x < 20 ? 0 : 128), rgb.at(y, x, 2) = 64;
  PreprocessOptions o;
  o.height = 4;
  o.width = 8;
  std::vector<float> out(3 * 32);
  preprocess_image(rgb, o, 0, out.data());
  CHECK(out[0] == Approx((1.0 - 0.485) / 0.229).epsilon(1e-5));
  CHECK(out[32 + 0] == Approx((0.0 - 0.456) / 0.224).epsilon(1e-5));
  CHECK(out[32 + 7] == Approx((128 / 255.0 - 0.456) / 0.224).epsilon(1e-5));
  CHECK(out[64 + 5] == Approx((64 / 255.0 - 0.406) / 0.225).epsilon(1e-5));
  // Mirroring and cropping keep the channels apart.
  CHECK(mirror_horizontal(rgb).at(0, 0, 1) == 128);
  CHECK(mirror_horizontal(rgb).at(0, 39, 0) == 255);
  CHECK(crop(rgb, 2, 18, 3, 4).at(0, 3, 1) == 128);
  CHECK(resize_bilinear(rgb, 10, 20).at(5, 0, 2) == 64);
}

TEST_CASE("rendered natural images are colourful, varied and deterministic", "[synth]") {
  const Image a = render_natural_image(48, 64, 1, 0, 7), b = render_natural_image(48, 64, 1, 0, 7);
  CHECK(a.channels == 3);
  CHECK(a.pixels == b.pixels);
  CHECK(render_natural_image(48, 64, 1, 1, 7).pixels != a.pixels);
  double chroma = 0, mean = 0, var = 0;
  const size_t n = size_t(48) * 64;
  for (size_t i = 0; i < n; ++i) {
    const int r = a.pixels[3 * i], g = a.pixels[3 * i + 1], bl = a.pixels[3 * i + 2];
    chroma += std::max({r, g, bl}) - std::min({r, g, bl});
    mean += g;
  }
  mean /= double(n);
  for (size_t i = 0; i < n; ++i) var += (a.pixels[3 * i + 1] - mean) * (a.pixels[3 * i + 1] - mean);
  CHECK(chroma / double(n) > 10);         // not grey
  CHECK(std::sqrt(var / double(n)) > 8);  // not flat
}

TEST_CASE("pre-processing resamples, normalises and mirrors the label with a flip", "[preprocess]") {
  Sample s;
  s.image = Image(40, 80);
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 80; ++x) s.image.at(y, x) = uint8_t(x < 40 ? 50 : 200);
  s.label.gaze = unit_gaze(0.2, 0.1, 1, "t");
  PreprocessOptions o;
  o.height = 8;
  o.width = 16;
  std::vector<float> out(3 * 8 * 16);
  s.label.head = {0.05f, 0.3f};
  const SampleLabel g = preprocess_sample(s, o, 1, out.data());
  CHECK(g.gaze == s.label.gaze);
  CHECK(g.head == s.label.head);
  CHECK(out[0] == Approx((50 / 255.0 - 0.485) / 0.229).epsilon(1e-4));            // left, channel 0
  CHECK(out[15] == Approx((200 / 255.0 - 0.485) / 0.229).epsilon(1e-4));          // right
  CHECK(out[2 * 128 + 0] == Approx((50 / 255.0 - 0.406) / 0.225).epsilon(1e-4));  // channel 2
  o.augment = true;
  o.flip = true;
  o.shift = o.brightness = o.contrast = o.gamma = o.noise = 0;
  int flips = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const SampleLabel gf = preprocess_sample(s, o, seed, out.data());
    CHECK((gf.gaze[0] < 0) == (gf.head[1] < 0));  // gaze x and head yaw mirror together
    CHECK(gf.head[0] == s.label.head[0]);
    if (gf.gaze[0] < 0) {
      ++flips;
      CHECK(out[0] == Approx((200 / 255.0 - 0.485) / 0.229).epsilon(1e-4));  // mirrored image
    }
  }
  CHECK(flips > 3);
  CHECK(flips < 17);
  // The one float resampler: identity at the same size, a plain resize, a centred window.
  std::vector<float> same(40 * 80);
  resample_bilinear(s.image, centred_window(s.image, 40, 80), 40, 80, false, same.data());
  CHECK(std::vector<uint8_t>(same.begin(), same.end()) == s.image.pixels);
  CHECK(resize_bilinear(s.image, 20, 40).at(0, 0) == 50);
  CHECK(resize_bilinear(s.image, 20, 40).at(19, 39) == 200);
  std::vector<float> square(8 * 8);  // a 1:1 window of a 2:1 image: columns 20..59 only
  resample_bilinear(s.image, centred_window(s.image, 8, 8), 8, 8, false, square.data());
  CHECK(square[0] == 50);
  CHECK(square[7] == 200);
  resample_bilinear(s.image, centred_window(s.image, 8, 8), 8, 8, true, square.data());
  CHECK(square[0] == 200);
}

TEST_CASE("zoom augmentation scales the window about its centre, and only draws when asked for", "[preprocess]") {
  // A bright 20x20 square in the middle of a dark 60x60 image.
  Image image(60, 60);
  for (int y = 20; y < 40; ++y)
    for (int x = 20; x < 40; ++x) image.at(y, x) = 250;
  PreprocessOptions o;
  o.height = o.width = 30;
  o.augment = true;
  o.shift = o.brightness = o.contrast = o.gamma = o.noise = 0;
  const auto bright_pixels = [&](uint64_t seed) {
    std::vector<float> out(3 * 30 * 30);
    preprocess_image(image, o, seed, out.data());
    int n = 0;
    for (int i = 0; i < 900; ++i) n += out[i] > 0;  // normalised: above the mean grey
    return n;
  };
  const int plain = bright_pixels(3);
  CHECK(plain == 100);  // 10x10 after halving
  o.scale = 0.3;
  int smaller = 0, larger = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    const int n = bright_pixels(seed);
    CHECK((n >= 100 / (1.3 * 1.3) - 12 && n <= 100 / (0.7 * 0.7) + 12));  // zoom within 1 +- 0.3
    smaller += n < plain - 5;
    larger += n > plain + 5;
  }
  CHECK(smaller > 5);
  CHECK(larger > 5);
}

TEST_CASE("the prefetcher yields items in order, bounded, and skips or rethrows errors", "[prefetcher]") {
  std::atomic<int64_t> in_flight{0}, peak{0};
  Prefetcher<int64_t> p(
      200,
      [&](int64_t i) {
        const int64_t now = ++in_flight;
        peak = std::max<int64_t>(peak, now);
        std::this_thread::sleep_for(std::chrono::microseconds((i * 37) % 300));
        --in_flight;
        return i * i;
      },
      4, 8, false);
  for (int64_t i = 0; i < 200; ++i) CHECK(*p.next() == i * i);
  CHECK_FALSE(p.next().has_value());
  CHECK(peak <= 4);
  Prefetcher<int64_t> skipping(
      10,
      [](int64_t i) -> int64_t {
        if (i == 3 || i == 7) throw Error("bad " + std::to_string(i));
        return i;
      },
      2, 4, true);
  std::vector<int64_t> got;
  while (auto v = skipping.next()) got.push_back(*v);
  CHECK(got == std::vector<int64_t>{0, 1, 2, 4, 5, 6, 8, 9});
  CHECK(skipping.skipped().count == 2);
  Prefetcher<int64_t> strict(
      5,
      [](int64_t i) -> int64_t {
        if (i == 2) throw Error("bad 2");
        return i;
      },
      2, 2, false);
  CHECK(*strict.next() == 0);
  CHECK(*strict.next() == 1);
  CHECK_THROWS_WITH(strict.next(), "bad 2");
}

TEST_CASE("a crop shift turns the gaze label only with train.augmentation.focal", "[preprocess]") {
  Sample sample;
  sample.image = Image(80, 128);
  for (size_t i = 0; i < sample.image.pixels.size(); ++i) sample.image.pixels[i] = uint8_t(i * 7 % 251);
  sample.label.gaze = unit_gaze(0.1, -0.2, 0.97, "test");
  PreprocessOptions o;
  o.height = 48;
  o.width = 64;
  o.augment = true;
  o.shift = 0.1;
  o.flip = true;
  std::vector<float> out(size_t(3) * o.height * o.width);
  int mirrored = 0;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    INFO(seed);
    const GeometryDraw draw = preprocess_image(sample.image, o, seed, out.data());
    CHECK((draw.shift_x != 0 && draw.shift_y != 0));
    CHECK(std::abs(draw.shift_x) <= 0.1 * 128);
    mirrored += draw.mirrored;
    const float sign = draw.mirrored ? -1.0f : 1.0f;
    o.focal = 0;  // the label only mirrors with the image
    const SampleLabel plain = preprocess_sample(sample, o, seed, out.data());
    CHECK(plain.gaze == std::array<float, 3>{sign * sample.label.gaze[0], sample.label.gaze[1], sample.label.gaze[2]});
    o.focal = 0.75;  // and turns with the shift, before the mirror
    const SampleLabel turned = preprocess_sample(sample, o, seed, out.data());
    const auto& g = sample.label.gaze;
    const Vec3 expected = turn_gaze_for_shift({g[0], g[1], g[2]}, draw.shift_x, draw.shift_y, 0.75 * 128);
    CHECK(turned.gaze[0] == Approx(sign * expected.x));
    CHECK(turned.gaze[1] == Approx(expected.y));
    CHECK(turned.gaze[2] == Approx(expected.z));
    o.focal = 0;
  }
  CHECK((mirrored > 0 && mirrored < 8));
  // A window moved right turns the gaze towards +x by atan(shift / focal); one moved down, towards -y.
  const Vec3 ahead{0, 0, 1};
  const Vec3 right = turn_gaze_for_shift(ahead, 10, 0, 100), down = turn_gaze_for_shift(ahead, 0, 10, 100);
  CHECK(right.x == Approx(std::sin(std::atan(0.1))));
  CHECK(right.y == Approx(0).margin(1e-12));
  CHECK(down.y == Approx(-std::sin(std::atan(0.1))));
  CHECK(norm(turn_gaze_for_shift(normalized({0.3, -0.2, 0.9}), 13, -7, 90)) == Approx(1));
  // Exactly the rotation taking the view axis to (-shift_x, shift_y, focal), however large.
  const Vec3 axis = turn_gaze_for_shift({0, 0, -1}, 30, 25, 100), expected_axis = normalized({-30, 25, 100});
  CHECK(axis.x == Approx(expected_axis.x));
  CHECK(axis.y == Approx(expected_axis.y));
  CHECK(-axis.z == Approx(expected_axis.z));
  // Evaluation never turns or shifts.
  const Config c = default_config({"train.augmentation.focal=0.75"});
  CHECK(preprocess_options(c, false).focal == 0);
  CHECK(preprocess_options(c, true).focal == 0.75);
}

namespace {
// Intensity-weighted centre (x: column, y: row) of the grey levels above `floor` in channel 0 of
// a preprocessed image.
std::pair<double, double> bright_centre(const std::vector<float>& out, int32_t height, int32_t width, float floor) {
  double sx = 0, sy = 0, sw = 0;
  for (int32_t y = 0; y < height; ++y)
    for (int32_t x = 0; x < width; ++x) {
      const float grey = (out[size_t(y) * width + x] * kInputStd[0] + kInputMean[0]) * 255.0f;
      if (grey > floor) sx += grey * x, sy += grey * y, sw += grey;
    }
  return {sx / sw, sy / sw};
}
}  // namespace

TEST_CASE("a camera turn (warp, roll) moves the image and the label by one rotation", "[preprocess]") {
  // A bright 5x5 spot off the centre of a dark 120x160 image, resampled at its own size.
  Sample sample;
  sample.image = Image(120, 160);
  const double spot_x = 40, spot_y = 35;
  for (int y = 33; y <= 37; ++y)
    for (int x = 38; x <= 42; ++x) sample.image.at(y, x) = 250;
  sample.label.gaze = unit_gaze(0.1, -0.2, 0.97, "test");
  PreprocessOptions o;
  o.height = 120;
  o.width = 160;
  o.augment = true;
  o.shift = 0.15;
  o.brightness = o.contrast = o.gamma = o.noise = 0;
  o.focal = 0.75;
  const double f = 0.75 * 160, cx = 79.5, cy = 59.5;
  std::vector<float> out(size_t(3) * 120 * 160);
  double perspective = 0;  // px: the most the turn's spot sits off the translation's
  int mirrored = 0;
  for (const double roll : {0.0, 10.0}) {
    for (uint64_t seed = 1; seed <= 6; ++seed) {
      INFO("roll " << roll << ", seed " << seed);
      o.warp = false;
      o.roll = 0;
      const GeometryDraw shifted = preprocess_image(sample.image, o, seed, out.data());
      const auto [moved_x, moved_y] = bright_centre(out, 120, 160, 20);
      o.warp = true;
      o.roll = roll;
      const GeometryDraw draw = preprocess_image(sample.image, o, seed, out.data());
      // The same shift drawn (the roll is drawn last); a roll only when asked for.
      CHECK(draw.shift_x == shifted.shift_x);
      CHECK(draw.shift_y == shifted.shift_y);
      CHECK(std::abs(draw.roll) <= roll * M_PI / 180);
      CHECK((draw.roll != 0) == (roll > 0));
      // The spot is where the turned camera sees its ray.
      const CameraTurn turn = camera_turn_for_shift(draw.shift_x, draw.shift_y, draw.roll, f);
      const Vec3 seen = turn.apply({spot_x - cx, cy - spot_y, f});
      const double expected_x = cx + f * seen.x / seen.z, expected_y = cy - f * seen.y / seen.z;
      const auto [warped_x, warped_y] = bright_centre(out, 120, 160, 20);
      CHECK(std::hypot(warped_x - expected_x, warped_y - expected_y) < 0.1);
      // A translation moves it by the shift alone; the turn also by the view's perspective.
      CHECK(std::hypot(moved_x - (spot_x - draw.shift_x), moved_y - (spot_y - draw.shift_y)) < 0.1);
      if (roll == 0) perspective = std::max(perspective, std::hypot(expected_x - moved_x, expected_y - moved_y));
      // The label turns by the same rotation, in the label frame (camera frame, z negated).
      const SampleLabel label = preprocess_sample(sample, o, seed, out.data());
      const auto& g = sample.label.gaze;
      const Vec3 camera = turn.apply({g[0], g[1], -g[2]});
      CHECK(label.gaze[0] == Approx(camera.x));
      CHECK(label.gaze[1] == Approx(camera.y));
      CHECK(label.gaze[2] == Approx(-camera.z));
      // Mirrored after the turn: the spot and the turned label's x flip together (without a roll,
      // whose draw would follow the flip's).
      if (roll > 0) continue;
      o.flip = true;
      const bool mirror = preprocess_image(sample.image, o, seed, out.data()).mirrored;
      const SampleLabel flipped = preprocess_sample(sample, o, seed, out.data());
      const auto [flipped_x, flipped_y] = bright_centre(out, 120, 160, 20);
      o.flip = false;
      if (mirror) {
        CHECK(flipped.gaze == std::array<float, 3>{-label.gaze[0], label.gaze[1], label.gaze[2]});
        ++mirrored;
        CHECK(std::hypot(flipped_x - (159 - expected_x), flipped_y - expected_y) < 0.1);
      } else {
        CHECK(flipped.gaze == label.gaze);
      }
    }
  }
  CHECK(mirrored > 0);
  CHECK(perspective > 1.0);
  // A roll alone turns the label's (x, y) about the view axis and keeps its z.
  const Vec3 g{0.3, 0.1, 0.9}, rolled = turn_gaze(g, {0, 0, 0.2});
  CHECK(std::atan2(rolled.y, rolled.x) - std::atan2(g.y, g.x) == Approx(0.2));
  CHECK(rolled.z == Approx(g.z));
  // A tilted camera turns the label in its own frame: a turn about the camera's view axis (a
  // roll) keeps the label's angle to that axis, not to the label frame's z.
  const CameraTilt tilt{0.2, 0.35};
  const Vec3 tilted_camera_axis = tilt.undo({0, 0, 1});  // in the untilted camera's frame
  const Vec3 tilted = turn_gaze(g, {0, 0, 0.5}, tilt);
  const Vec3 g_cam{g.x, g.y, -g.z}, tilted_cam{tilted.x, tilted.y, -tilted.z};
  CHECK(dot(tilted_cam, tilted_camera_axis) == Approx(dot(g_cam, tilted_camera_axis)));
  CHECK(std::abs(tilted.z - g.z) > 0.01);
  // And preprocess_sample turns its label so, with the options' tilt.
  o.roll = 0;
  o.tilt = tilt;
  const GeometryDraw tilted_draw = preprocess_image(sample.image, o, 3, out.data());
  const SampleLabel tilted_label = preprocess_sample(sample, o, 3, out.data());
  const auto& sg = sample.label.gaze;
  const CameraTurn sample_turn = camera_turn_for_shift(tilted_draw.shift_x, tilted_draw.shift_y, 0, f);
  const Vec3 in_camera = turn_gaze({sg[0], sg[1], sg[2]}, sample_turn, tilt);
  const Vec3 level = turn_gaze({sg[0], sg[1], sg[2]}, sample_turn);
  CHECK(tilted_label.gaze[0] == Approx(in_camera.x));
  CHECK(tilted_label.gaze[1] == Approx(in_camera.y));
  CHECK(tilted_label.gaze[2] == Approx(in_camera.z));
  CHECK(angular_error_deg(in_camera, level) > 0.1);
  o.tilt = {};
  const Vec3 round_trip = tilt.undo(tilt.apply({0.3, -0.2, 0.9}));
  CHECK(round_trip.x == Approx(0.3));
  CHECK(round_trip.y == Approx(-0.2));
  CHECK(round_trip.z == Approx(0.9));
  // undo inverts apply; without a turn the resampler is resample_bilinear's, mirror and window alike.
  const CameraTurn turn{0.2, -0.1, 0.3};
  const Vec3 back = turn.undo(turn.apply({0.3, -0.2, 0.9}));
  CHECK(back.x == Approx(0.3));
  CHECK(back.y == Approx(-0.2));
  CHECK(back.z == Approx(0.9));
  for (const bool mirror : {false, true}) {
    const SourceWindow w = centred_window(sample.image, 30, 30);
    std::vector<float> plain(900), turned(900);
    resample_bilinear(sample.image, w, 30, 30, mirror, plain.data());
    resample_turned(sample.image, w, CameraTurn{}, f, 30, 30, mirror, turned.data());
    for (size_t i = 0; i < plain.size(); ++i) CHECK(turned[i] == Approx(plain[i]).margin(1e-3));
  }
  // A turn needs the camera's focal length, a roll the warp; personalisation's views never turn.
  o.warp = false;
  o.roll = 5;
  CHECK_THROWS_WITH(preprocess_image(sample.image, o, 1, out.data()),
                    Contains("roll turns the camera through the warp"));
  o.warp = true;
  o.focal = 0;
  CHECK_THROWS_WITH(preprocess_image(sample.image, o, 1, out.data()),
                    Contains("warp turns the camera: needs its focal"));
  CHECK_THROWS_WITH(resample_turned(sample.image, centred_window(sample.image, 30, 30), CameraTurn{}, f, 30, 30, false,
                                    out.data(), 1),
                    Contains("channel 1 of a 1-channel image"));
  const Config c = default_config({"train.augmentation.focal=0.75", "train.augmentation.warp=true",
                                   "train.augmentation.roll=5", "train.augmentation.tilt=[10,-20]"});
  CHECK((preprocess_options(c, true).warp && preprocess_options(c, true).roll == 5));
  CHECK(preprocess_options(c, true).tilt.yaw == Approx(10 * M_PI / 180));
  CHECK(preprocess_options(c, true).tilt.pitch == Approx(-20 * M_PI / 180));
  CHECK((!preprocess_options(c, false).warp && preprocess_options(c, false).roll == 0));
}
