#include "datasets/openeds.h"

#include <catch2/catch.hpp>
#include <filesystem>

#include "datasets/codec.h"
#include "datasets/image_folder.h"
#include "datasets/open_dataset.h"
#include "libgaze/core/error.h"
#include "tests/test_util.h"

using namespace gaze;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {
// A tiny OpenEDS tree: one sequence "7" with frames 0, 1, 2, 10 (numeric order!) at 8x12.
std::string make_tree(const testing::TempDir& dir, const std::string& labels) {
  const std::string root = dir.file("openeds");
  fs::create_directories(root + "/train/sequences/7");
  fs::create_directories(root + "/train/labels");
  for (int f : {0, 1, 2, 10}) {
    Image image(8, 12, uint8_t(10 * f));
    char name[16];
    std::snprintf(name, sizeof name, "%03d.png", f);
    write_png(root + "/train/sequences/7/" + name, image);
  }
  std::ofstream(root + "/train/labels/7.txt") << labels;
  return root;
}
const std::string kLabels = "000,0,0,1\r\n001,0.1,0,1\r\n002,0,0.2,1\r\n010,0,0,2\r\n011,1,0,0\r\n";
OpenEdsOptions small() {
  OpenEdsOptions o;
  o.expected_height = 8;
  o.expected_width = 12;
  return o;
}
}  // namespace

TEST_CASE("OpenEDS frames sort numerically and take their label rows", "[openeds]") {
  testing::TempDir dir;
  const OpenEdsDataset data(make_tree(dir, kLabels), small());
  REQUIRE(data.size() == 4);
  CHECK(data.label(3).key == "7/010");
  CHECK(data.label(3).gaze == std::array<float, 3>{0, 0, 1});  // normalised (0,0,2)
  CHECK(data.label(1).gaze[0] == Approx(0.1 / std::sqrt(1.01)));
  CHECK(data.get(3).image.pixels[0] == 100);
  CHECK(data.label(2).timestamp_us == 20000);
}

TEST_CASE("bad OpenEDS input names the file and line", "[openeds]") {
  testing::TempDir dir;
  CHECK_THROWS_WITH(OpenEdsDataset(make_tree(dir, "000,0,0,1\n001,0,0,1\n002,0,0,1\n"), small()),
                    Contains("010.png: no label row for frame '010'"));
  testing::TempDir d2;
  CHECK_THROWS_WITH(OpenEdsDataset(make_tree(d2, "000,0,0,1\n001,0,0\n"), small()),
                    Contains("labels/7.txt:2: expected 'id,x,y,z', got 3 fields"));
  testing::TempDir d3;
  CHECK_THROWS_WITH(OpenEdsDataset(make_tree(d3, "000,0,nan,1\n"), small()),
                    Contains("labels/7.txt:1: y is not a finite number: 'nan'"));
  testing::TempDir d4;
  CHECK_THROWS_WITH(OpenEdsDataset(make_tree(d4, "000,0,0,0\n"), small()),
                    Contains("labels/7.txt:1: gaze vector is zero"));
  CHECK_THROWS_WITH(OpenEdsDataset(dir.file("nowhere"), small()), Contains("sequences: not found"));
  // skip_bad: the unlabelled frame is counted, the rest load.
  testing::TempDir d5;
  OpenEdsOptions skip = small();
  skip.skip_bad = true;
  const OpenEdsDataset partial(make_tree(d5, "000,0,0,1\n001,0,0,1\n002,x,0,1\n"), skip);
  CHECK(partial.size() == 2);
  CHECK(partial.skipped().count == 3);  // the bad row, and frames 002 and 010 left without a label
}

TEST_CASE("corrupt and wrongly sized images fail on read with the path", "[openeds][codec]") {
  testing::TempDir dir;
  const std::string root = make_tree(dir, kLabels);
  std::ofstream(root + "/train/sequences/7/001.png") << "\x89PNG garbage";
  write_png(root + "/train/sequences/7/002.png", Image(9, 12));
  const OpenEdsDataset data(root, small());
  CHECK_NOTHROW(data.get(0));
  CHECK_THROWS_WITH(data.get(1), Contains("sequences/7/001.png: corrupt PNG"));
  CHECK_THROWS_WITH(data.get(2), Contains("002.png: image is 12x9, expected 12x8"));
}

TEST_CASE("OpenEDS participants files: header rows, string ids, or one participant per sequence", "[openeds]") {
  testing::TempDir dir;
  const std::string root = make_tree(dir, kLabels);
  fs::create_directories(root + "/train/sequences/8");
  write_png(root + "/train/sequences/8/000.png", Image(8, 12, 5));
  std::ofstream(root + "/train/labels/8.txt") << "000,0,0,1\n";
  {
    const OpenEdsDataset plain(root, small());  // no file: a "participant" is a sequence
    CHECK(plain.participant_unit() == "sequence");
    CHECK(plain.label(0).participant == 7);
  }
  OpenEdsOptions o = small();
  o.participants_file = dir.file("people.csv");
  std::ofstream(o.participants_file) << "seq_id,participant\r\n7,p07\r\n8, \"p03\"\r\n";
  const OpenEdsDataset named(root, o);
  CHECK(named.participant_unit() == "participant");
  CHECK(named.label(0).participant == 1);  // names numbered in sorted order: p03 -> 0, p07 -> 1
  CHECK(named.label(4).participant == 0);
  std::ofstream(o.participants_file) << "sequence,subject\n7,12\n8,12\n";
  CHECK(OpenEdsDataset(root, o).label(4).participant == 12);  // numbers keep their value
  std::ofstream(o.participants_file) << "7,1\n7,2\n8,1\n";
  CHECK_THROWS_WITH(OpenEdsDataset(root, o), Contains("people.csv:2: sequence '7' already mapped on line 1"));
  std::ofstream(o.participants_file) << "7,1\n";
  CHECK_THROWS_WITH(OpenEdsDataset(root, o), Contains("no participant for sequence '8'"));
}

TEST_CASE("codecs round-trip and reject truncated data", "[codec]") {
  Image image(30, 40);
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = uint8_t(i * 7);
  const auto png = encode_png(image);
  CHECK(decode_png(png.data(), png.size(), "x.png").pixels == image.pixels);
  Image smooth(64, 64);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) smooth.at(y, x) = uint8_t(2 * x + y);
  const auto jpeg = encode_jpeg(smooth, 95);
  const Image back = decode_jpeg(jpeg.data(), jpeg.size(), "x.jpg");
  int max_diff = 0;
  for (size_t i = 0; i < back.pixels.size(); ++i)
    max_diff = std::max(max_diff, std::abs(back.pixels[i] - smooth.pixels[i]));
  CHECK(max_diff <= 4);
  CHECK_THROWS_WITH(decode_jpeg(jpeg.data(), jpeg.size() / 2, "cut.jpg"), Contains("cut.jpg: corrupt JPEG"));
  CHECK_THROWS_WITH(decode_png(png.data(), png.size() / 2, "cut.png"), Contains("cut.png: corrupt PNG"));
  // Colour: RGB round-trips through PNG exactly; a grey decode of it is its luma.
  Image rgb(6, 5, 0, 3);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 5; ++x) rgb.at(y, x, 0) = 250, rgb.at(y, x, 1) = uint8_t(40 * y), rgb.at(y, x, 2) = 10;
  const auto rgb_png = encode_png(rgb);
  const Image rgb_back = decode_png(rgb_png.data(), rgb_png.size(), "c.png", 3);
  CHECK(rgb_back.channels == 3);
  CHECK(rgb_back.pixels == rgb.pixels);
  const Image grey = decode_png(rgb_png.data(), rgb_png.size(), "c.png", 1);
  CHECK(grey.channels == 1);
  CHECK(grey.at(0, 0) > 50);
  CHECK(grey.at(0, 0) < 150);  // mostly red: luma (libpng converts in linear light) far below 250
  const auto rgb_jpeg = encode_jpeg(rgb, 95);
  CHECK(std::abs(decode_jpeg(rgb_jpeg.data(), rgb_jpeg.size(), "c.jpg", 3).at(3, 2, 0) - 250) <= 8);
  CHECK_THROWS_WITH(decode_png(png.data(), png.size(), "x.png", 2), Contains("1 (grey) or 3 (RGB) channels"));
}

TEST_CASE("image folders and source detection", "[image_folder]") {
  testing::TempDir dir;
  fs::create_directories(dir.file("imgs/cat"));
  fs::create_directories(dir.file("imgs/dog"));
  write_png(dir.file("imgs/cat/a.png"), Image(4, 4, 1));
  const auto jpeg = encode_jpeg(Image(8, 8, 200));
  std::ofstream(dir.file("imgs/dog/b.jpg"), std::ios::binary)
      .write(reinterpret_cast<const char*>(jpeg.data()), jpeg.size());
  std::ofstream(dir.file("imgs/dog/notes.txt")) << "ignored";
  const ImageFolderDataset folder(dir.file("imgs"));
  REQUIRE(folder.size() == 2);
  CHECK(folder.label(0).participant == 0);
  CHECK(folder.label(1).participant == 1);
  CHECK(folder.get(1).image.width == 8);
  CHECK(folder.participant_unit() == "class");
  const ImageFolderDataset colour(dir.file("imgs"), 3);
  CHECK(colour.get(0).image.channels == 3);
  CHECK(colour.describe() == "folder " + dir.file("imgs") + " (RGB)");
  CHECK(parse_source(dir.file("imgs"), "train").first == "folder");
  // A learning curve's data.train_people counts people: natural-image classes are not, and
  // a pipeline's image-folder stages read every image under it.
  DataConfig data;
  data.source = "folder:" + dir.file("imgs");
  data.train_people = 1;
  CHECK(open_dataset(data)->size() == 2);
  const std::string root = make_tree(dir, kLabels);
  CHECK(parse_source(root, "train").first == "openeds");
  CHECK(parse_source("aea:/x", "train") == std::pair<std::string, std::string>{"aea", "/x"});
  CHECK_THROWS_WITH(parse_source("opneds:/x", "train"), Contains("did you mean 'openeds'"));
  CHECK_THROWS_WITH(parse_source(dir.file("missing"), "train"), Contains("dataset not found"));
}
