// MATLAB files through matio, and the MPIIGaze loader on gaze synth's MPIIGaze layout (the real
// dataset's folders, file names and MATLAB structures; tests/python checks the same files
// against scipy.io, the reader public MPIIGaze code uses).
#include "datasets/mpiigaze.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "datasets/face_normalization.h"
#include "datasets/matfile.h"
#include "datasets/synth/mpii_writer.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "tests/test_util.h"

using namespace gaze;
using Catch::Contains;
namespace fs = std::filesystem;

TEST_CASE("a MATLAB file whose header declares more than its bytes hold is refused before matio allocates", "[mat]") {
  // Found by fuzz_mpiigaze: a 4 KB day file whose cell count asked matio for 114 GB.
  const std::string found = std::string(LIBGAZE_SOURCE_DIR) + "/fuzz/regressions/fuzz_mpiigaze/huge_declared_size.mat";
  CHECK_THROWS_WITH(MatFile(found), Contains("huge_declared_size.mat: damaged MATLAB file"));
  testing::TempDir dir;
  CHECK_THROWS_WITH(MatFile(dir.write("short.mat", "MATLAB 5.0")), Contains("shorter than the 128-byte header"));
  std::string v4(200, '\0');  // no endian mark: a v4 file or something else, refused by name
  CHECK_THROWS_WITH(MatFile(dir.write("v4.mat", v4)), Contains("v4.mat: not a level-5 or v7.3"));
}

TEST_CASE("a MATLAB file round-trips structs, cells, text and column-major arrays through matio", "[mat]") {
  testing::TempDir dir;
  const std::string path = dir.file("x.mat");
  write_mat_file(path,
                 {{"data", MatValue::structure(
                               {{"left", MatValue::structure({{"gaze", MatValue::matrix({2, 3}, {1, 2, 3, 4, 5, 6})}})},
                                {"image", MatValue::uint8_array({2, 2, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})}})},
                  {"filenames", MatValue::cell_column({MatValue::string("0001.jpg"), MatValue::string("0002.jpg")})},
                  {"scalar", MatValue::matrix({1, 1}, {2.5})}});
  const MatFile file(path);
  CHECK(file.has("data"));
  CHECK_FALSE(file.has("nothing"));
  const MatVar gaze = file.read("data").field("left").field("gaze");
  CHECK(gaze.dims() == std::vector<size_t>{2, 3});
  CHECK(gaze.doubles() == std::vector<double>{1, 2, 3, 4, 5, 6});
  const MatVar image = file.read("data").field("image");
  image.expect_dims({0, 2, 3});
  CHECK(image.uint8s()[11] == 11);
  CHECK(image.doubles()[5] == 5.0);  // any numeric class converts
  CHECK(file.read("filenames").strings() == std::vector<std::string>{"0001.jpg", "0002.jpg"});
  CHECK(file.read("scalar").doubles() == std::vector<double>{2.5});
  // Errors name the file and the path inside it.
  CHECK_THROWS_WITH(file.read("data").field("right"), Contains("x.mat: data: no field 'right'"));
  CHECK_THROWS_WITH(gaze.uint8s(), Contains("x.mat: data.left.gaze: expected uint8, found double [2 3]"));
  CHECK_THROWS_WITH(gaze.expect_dims({0, 4}), Contains("data.left.gaze: expected [N 4], found double [2 3]"));
  CHECK_THROWS_WITH(file.read("filenames").cell(0).doubles(), Contains("filenames{1}: expected numbers, found char"));
  CHECK_THROWS_WITH(file.read("missing"), Contains("x.mat: no readable variable 'missing'"));
  write_text_atomically(dir.file("text.mat"), "not a MATLAB file at all, just some text of a reasonable length\n");
  CHECK_THROWS_WITH(MatFile(dir.file("text.mat")), Contains("text.mat: not a MATLAB .mat file"));
  CHECK_THROWS_WITH(MatFile(dir.file("absent.mat")), Contains("absent.mat: no such MATLAB file"));
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("histogram equalisation maps levels by their cumulative counts", "[image]") {
  Image image(1, 4);
  image.pixels = {10, 10, 11, 12};
  CHECK(equalize_histogram(image).pixels == std::vector<uint8_t>{0, 0, 128, 255});
  Image flat(2, 2, 77);
  CHECK(equalize_histogram(flat).pixels == flat.pixels);
}

TEST_CASE("head pose: MPII's (pitch, yaw) of a Rodrigues vector", "[mpiigaze]") {
  const auto yaw_only = head_pitch_yaw(rotation_from_rodrigues({0, 0.3, 0}));
  CHECK(yaw_only[0] == Approx(0).margin(1e-7));
  CHECK(yaw_only[1] == Approx(0.3));
  const auto pitch_only =
      head_pitch_yaw(rotation_from_rodrigues({-0.2, 0, 0}));  // rotating about x by -0.2 lifts z's y to sin 0.2
  CHECK(pitch_only[0] == Approx(0.2));
  CHECK(pitch_only[1] == Approx(0).margin(1e-7));
  CHECK(head_pitch_yaw(rotation_from_rodrigues({0, 0, 0})) == std::array<float, 2>{0, 0});
}

namespace {

SynthConfig small_mpii(const std::string& out_dir) {
  SynthConfig c;
  c.out_dir = out_dir;
  c.layouts = {"mpiigaze"};
  c.participants = 3;
  c.mpii_images = 9;
  c.mpii_evaluation = 6;
  return c;
}

// The day file's right-eye patch `index`, row-major, read independently of the loader.
std::vector<uint8_t> right_patch(const std::string& day_file, size_t index) {
  const MatFile file(day_file);
  const MatVar image = file.read("data").field("right").field("image");
  const size_t n = image.dims()[0];
  const std::vector<uint8_t> v = image.uint8s();
  std::vector<uint8_t> out;
  for (size_t r = 0; r < 36; ++r)
    for (size_t c = 0; c < 60; ++c) out.push_back(v[index + n * (r + 36 * c)]);
  return out;
}

}  // namespace

TEST_CASE("MPIIGaze: gaze synth's layout through the loader, evaluation list and all samples", "[mpiigaze]") {
  testing::TempDir dir;
  int64_t images = 0;
  const std::string root = write_synthetic_mpiigaze(small_mpii(dir.path()), 5, 2, &images);
  CHECK(images == 27);
  CHECK(fs::is_regular_file(root + "/Data/Normalized/p02/day04.mat"));  // the one-image day
  CHECK(fs::is_regular_file(root + "/Evaluation Subset/sample list for eye image/p00.txt"));

  const MpiiGazeDataset listed(root, {});
  REQUIRE(listed.size() == 3 * 6);
  std::set<int64_t> people;
  int lefts = 0;
  for (int64_t i = 0; i < listed.size(); ++i) {
    const Sample s = listed.get(i);
    CHECK(s.image.height == 36);
    CHECK(s.image.width == 60);
    CHECK(std::abs(std::hypot(s.label.gaze[0], s.label.gaze[1], s.label.gaze[2]) - 1) < 1e-6);
    CHECK(s.label.gaze[2] < 0);  // MPII frame: looking toward the camera and screen is -z
    people.insert(s.label.participant);
    lefts += s.label.key.size() > 5 && s.label.key.substr(s.label.key.size() - 5) == "/left";
  }
  CHECK(people == std::set<int64_t>{0, 1, 2});
  CHECK(lefts == 9);

  // A right eye is the day file's right patch mirrored, with gaze x and head yaw negated.
  MpiiGazeOptions raw;
  raw.mirror_right = false;
  raw.subset = "all";
  const MpiiGazeDataset unmirrored(root, raw);
  MpiiGazeOptions all;
  all.subset = "all";
  const MpiiGazeDataset everything(root, all);
  REQUIRE(everything.size() == 3 * 9 * 2);
  REQUIRE(unmirrored.size() == everything.size());
  const int64_t right = 1;  // all: left then right of each sample
  CHECK(everything.label(right).key == "p00/day01/0001.jpg/right");
  const std::vector<uint8_t> stored = right_patch(root + "/Data/Normalized/p00/day01.mat", 0);
  CHECK(unmirrored.get(right).image.pixels == stored);
  const Image mirrored = everything.get(right).image;
  for (int32_t r = 0; r < 36; ++r)
    for (int32_t c = 0; c < 60; ++c) REQUIRE(mirrored.at(r, c) == stored[size_t(r) * 60 + size_t(59 - c)]);
  CHECK(everything.label(right).gaze[0] == -unmirrored.label(right).gaze[0]);
  CHECK(everything.label(right).gaze[1] == unmirrored.label(right).gaze[1]);
  CHECK(everything.label(right).head[1] == -unmirrored.label(right).head[1]);
  CHECK(everything.label(right).head[0] == unmirrored.label(right).head[0]);
  CHECK(everything.label(right).head[1] != 0);

  MpiiGazeOptions left_only;
  left_only.eye = "left";
  CHECK(MpiiGazeDataset(root, left_only).size() == 9);
}

TEST_CASE("MPIIGaze: eye pairs put a frame's two patches side by side, labelled with their mean", "[mpiigaze]") {
  testing::TempDir dir;
  const std::string root = write_synthetic_mpiigaze(small_mpii(dir.path()), 5, 2, nullptr);
  MpiiGazeOptions o;
  o.eye = "pair";
  o.subset = "all";
  const MpiiGazeDataset pairs(root, o);
  o.eye = "both";
  o.mirror_right = false;
  const MpiiGazeDataset eyes(root, o);  // left then right of each frame
  REQUIRE(pairs.size() == 3 * 9);
  REQUIRE(eyes.size() == 2 * pairs.size());
  CHECK(pairs.label(0).key == "p00/day01/0001.jpg/pair");
  for (const int64_t i : {int64_t(0), int64_t(13)}) {
    const Image pair = pairs.get(i).image, left = eyes.get(2 * i).image, right = eyes.get(2 * i + 1).image;
    REQUIRE(pair.height == 36);
    REQUIRE(pair.width == 120);
    // As the camera sees them: the participant's right eye on the image's left.
    for (int32_t r = 0; r < 36; ++r)
      for (int32_t c = 0; c < 60; ++c) {
        REQUIRE(pair.at(r, c) == right.at(r, c));
        REQUIRE(pair.at(r, 60 + c) == left.at(r, c));
      }
    const SampleLabel &p = pairs.label(i), &l = eyes.label(2 * i), &q = eyes.label(2 * i + 1);
    std::array<double, 3> mean{};
    for (size_t k = 0; k < 3; ++k) mean[k] = double(l.gaze[k]) + q.gaze[k];
    const double norm = std::hypot(mean[0], mean[1], mean[2]);
    for (size_t k = 0; k < 3; ++k) CHECK(p.gaze[k] == Approx(mean[k] / norm).margin(1e-6));
    CHECK(p.head[0] == Approx((l.head[0] + q.head[0]) / 2));
    CHECK(p.head[1] == Approx((l.head[1] + q.head[1]) / 2));
    CHECK(p.participant == l.participant);
  }
  // The evaluation list names frames by eye; a pair is each listed frame once.
  MpiiGazeOptions listed;
  listed.eye = "pair";
  const MpiiGazeDataset listed_pairs(root, listed);
  const MpiiGazeDataset listed_eyes(root, {});
  std::set<std::string> frames;
  for (int64_t i = 0; i < listed_eyes.size(); ++i) {
    const std::string& key = listed_eyes.label(i).key;
    frames.insert(key.substr(0, key.rfind('/')));
  }
  CHECK(listed_pairs.size() == int64_t(frames.size()));
  // A frame listed for both eyes is still one pair.
  const std::string list = root + "/Evaluation Subset/sample list for eye image/p00.txt";
  const std::string text = read_text_file(list), first = text.substr(0, text.find('\n'));
  const std::string path = first.substr(0, first.find(' '));
  const bool left_first = first.substr(first.find(' ') + 1) == "left";
  write_text_atomically(list, text + path + (left_first ? " right" : " left") + "\n");
  CHECK(MpiiGazeDataset(root, {}).size() == listed_eyes.size() + 1);
  CHECK(MpiiGazeDataset(root, listed).size() == listed_pairs.size());
  CHECK(listed_pairs.describe().find("eye pairs") != std::string::npos);
  MpiiGazeOptions bad;
  bad.eye = "three";
  CHECK_THROWS_WITH(MpiiGazeDataset(root, bad), Contains("expected left, right, both or pair"));
}

TEST_CASE("MPIIGaze: gaze synth with the fewest images still writes readable days", "[mpiigaze]") {
  testing::TempDir dir;
  SynthConfig c = small_mpii(dir.path());
  c.mpii_images = 2;
  c.mpii_evaluation = 2;
  const std::string root = write_synthetic_mpiigaze(c, 3, 1, nullptr);
  MpiiGazeOptions all;
  all.subset = "all";
  CHECK(MpiiGazeDataset(root, all).size() == 3 * 2 * 2);
  CHECK(MpiiGazeDataset(root, {}).size() == 3 * 2);
}

TEST_CASE("MPIIGaze: leave-one-person-out splits", "[mpiigaze]") {
  testing::TempDir dir;
  const std::string root = write_synthetic_mpiigaze(small_mpii(dir.path()), 5, 1, nullptr);
  MpiiGazeOptions o;
  o.hold_out = 1;
  o.split = "train";
  const MpiiGazeDataset train(root, o);
  o.split = "test";
  const MpiiGazeDataset test(root, o);
  CHECK(train.size() == 12);
  CHECK(test.size() == 6);
  for (int64_t i = 0; i < train.size(); ++i) CHECK(train.label(i).participant != 1);
  for (int64_t i = 0; i < test.size(); ++i) CHECK(test.label(i).participant == 1);
  CHECK_THAT(test.describe(), Contains("p1"));
  o.hold_out = -1;
  CHECK_THROWS_WITH(MpiiGazeDataset(root, o), Contains("leave-one-person-out") && Contains("data.hold_out"));
  o.hold_out = 7;
  CHECK_THROWS_WITH(MpiiGazeDataset(root, o), Contains("no pXX folders for split test with hold_out 7"));
}

TEST_CASE("MPIIGaze: bad lists and day files are named, or skipped and counted", "[mpiigaze]") {
  testing::TempDir dir;
  const std::string root = write_synthetic_mpiigaze(small_mpii(dir.path()), 5, 1, nullptr);
  const std::string list = root + "/Evaluation Subset/sample list for eye image/p01.txt";
  std::string text = read_text_file(list);
  SECTION("a malformed line") {
    write_text_atomically(list, text + "day01/0002.jpg both\n");
    CHECK_THROWS_WITH(MpiiGazeDataset(root, {}), Contains("p01.txt:7: expected 'dayYY/NNNN.jpg left|right'"));
  }
  SECTION("a listed sample its day file lacks") {
    write_text_atomically(list, "day02/0099.jpg left\n" + text);
    CHECK_THROWS_WITH(MpiiGazeDataset(root, {}),
                      Contains("p01.txt:1: ") && Contains("p01/day02.mat has no sample '0099.jpg'"));
    MpiiGazeOptions skip;
    skip.skip_bad = true;
    const MpiiGazeDataset skipped(root, skip);
    CHECK(skipped.size() == 18);
    CHECK(skipped.skipped().count == 1);
  }
  SECTION("a day file whose images are not uint8") {
    write_mat_file(
        root + "/Data/Normalized/p01/day01.mat",
        {{"data", MatValue::structure({{"left", MatValue::structure({{"gaze", MatValue::matrix({1, 3}, {0, 0, -1})},
                                                                     {"image", MatValue::matrix({1, 2}, {1, 2})},
                                                                     {"pose", MatValue::matrix({1, 3}, {0, 0, 0})}})},
                                       {"right", MatValue::structure({})}})},
         {"filenames", MatValue::cell_column({MatValue::string("0001.jpg")})}});
    MpiiGazeOptions all;
    all.subset = "all";
    CHECK_THROWS_WITH(MpiiGazeDataset(root, all),
                      Contains("p01/day01.mat: data.left.image: expected [36 60], found double [1 2]"));
  }
  SECTION("not MPIIGaze at all") {
    CHECK_THROWS_WITH(MpiiGazeDataset(dir.file("nothing"), {}), Contains("not MPIIGaze (no Data/Normalized folder)"));
  }
}
