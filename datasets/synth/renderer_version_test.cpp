// kSynthRendererVersion is bumped when the renderer draws other data: this test holds it to that.
//
// It renders a small set of every layout, reads it back through the real readers (each at its
// rawest: OpenEDS's PNGs, AEA's whole frames, MPIIGaze's patches, the natural images; MPIIFaceGaze
// through its normalisation) and compares a fingerprint of it, item by item (its quadrants' mean
// pixels and its gaze label) and people.csv's draws, with the one recorded for the current version in
// datasets/synth/testdata/renderer_v<N>.txt. A change that draws other pixels or labels fails it
// until kSynthRendererVersion is bumped and that version's fingerprint is written:
//
//   LIBGAZE_WRITE_RENDERER_FINGERPRINT=1 build/datasets/dataset_tests "[renderer_version]"
//
// Compared within tolerances, not byte for byte: a compiler that rounds the last bit otherwise,
// or a JPEG pixel off by one, is not another renderer. The sanitizer build (clang) runs it too:
// the renders must not depend on the compiler (named draws, never two in one call's arguments).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "datasets/open_dataset.h"
#include "datasets/synth/renderer_version.h"
#include "datasets/synth/synth_writer.h"
#include "libgaze/core/strings.h"
#include "tests/test_util.h"

using namespace gaze;

namespace {

// One line per item: "<what>/<key>", its quadrants' mean pixels (top left, top right, bottom
// left, bottom right) and its gaze label.
void fingerprint_dataset(const std::string& what, const std::string& source, const std::string& eye,
                         std::vector<std::string>& lines) {
  DataConfig data;
  data.source = source;
  data.split = "all";
  data.eye = eye;
  data.openeds_size = {50, 80};
  const auto dataset = open_dataset(data);
  REQUIRE(dataset->size() > 0);
  for (int64_t i = 0; i < dataset->size(); ++i) {
    const Sample s = dataset->get(i);
    const Image& m = s.image;
    // Each quadrant's mean (every channel): where the eye is drawn, not only how bright.
    double sum[2][2] = {}, count[2][2] = {};
    for (int32_t y = 0; y < m.height; ++y) {
      for (int32_t x = 0; x < m.width; ++x) {
        for (int32_t c = 0; c < m.channels; ++c) {
          sum[2 * y / m.height][2 * x / m.width] += m.at(y, x, c);
          count[2 * y / m.height][2 * x / m.width] += 1;
        }
      }
    }
    char line[256];
    std::snprintf(line, sizeof line, "%s/%s %.3f %.3f %.3f %.3f %.6f %.6f %.6f", what.c_str(), s.label.key.c_str(),
                  sum[0][0] / count[0][0], sum[0][1] / count[0][1], sum[1][0] / count[1][0], sum[1][1] / count[1][1],
                  s.label.gaze[0], s.label.gaze[1], s.label.gaze[2]);
    lines.push_back(line);
  }
}

std::vector<std::string> render_fingerprint(const std::string& dir) {
  // Every layout, and the renderer's variation beyond the demo's (a held-out condition's keys).
  Config config = default_config({"synth.out_dir=" + dir,
                                  "synth.layouts=[openeds,aea,mpiigaze,mpiifacegaze,images]",
                                  "synth.participants=4",
                                  "synth.train_frames=2",
                                  "synth.validation_frames=2",
                                  "synth.test_frames=6",
                                  "synth.aea_frames=2",
                                  "synth.openeds_size=[50,80]",
                                  "synth.aea_size=[32,80]",
                                  "synth.images=4",
                                  "synth.image_classes=2",
                                  "synth.image_size=[32,40]",
                                  "synth.mpii_images=2",
                                  "synth.mpii_evaluation=2",
                                  "synth.mpii_frame=[120,160]",
                                  "synth.blink_rate=2",
                                  "synth.camera_tilt_deg=[5,10]",
                                  "synth.light_gradient=0.3",
                                  "synth.leds=6",
                                  "synth.anatomy_spread=1.5"});
  write_synthetic_datasets(config.synth, 5, 1);
  std::vector<std::string> lines;
  // people.csv's rows as written (draws at 4 decimals).
  for (const std::string& row : split(testing::read_file(dir + "/people.csv"), '\n')) {
    if (!row.empty()) lines.push_back("people.csv " + row);
  }
  const std::string whole_frame = "pair", reader_default = DataConfig().eye;
  fingerprint_dataset("openeds", "openeds:" + dir + "/openeds", reader_default, lines);
  fingerprint_dataset("aea", "aea:" + dir + "/aea", whole_frame, lines);
  fingerprint_dataset("mpiigaze", "mpiigaze:" + dir + "/mpiigaze", reader_default, lines);
  fingerprint_dataset("mpiifacegaze", "mpiifacegaze:" + dir + "/mpiifacegaze", reader_default, lines);
  fingerprint_dataset("images", "folder:" + dir + "/images", reader_default, lines);
  return lines;
}

// A line's numbers, compared within tolerances, and its other words, compared exactly.
struct ParsedLine {
  std::string words;
  std::vector<double> numbers;
};
ParsedLine parse_line(const std::string& line) {
  ParsedLine out;
  for (const std::string& token : split(line, ' ')) {
    for (const std::string& part : split(token, ',')) {
      char* end = nullptr;
      const double v = std::strtod(part.c_str(), &end);
      if (!part.empty() && end == part.c_str() + part.size())
        out.numbers.push_back(v);
      else
        out.words += part + " ";
    }
  }
  return out;
}

}  // namespace

TEST_CASE("the renderer draws what its version's fingerprint recorded (bump kSynthRendererVersion when not)",
          "[synth][renderer_version]") {
  testing::TempDir dir;
  const std::vector<std::string> lines = render_fingerprint(dir.path());
  const std::string reference = std::string(LIBGAZE_SOURCE_DIR) + "/datasets/synth/testdata/renderer_v" +
                                std::to_string(kSynthRendererVersion) + ".txt";
  if (std::getenv("LIBGAZE_WRITE_RENDERER_FINGERPRINT")) {
    std::ofstream out(reference, std::ios::trunc);
    for (const std::string& line : lines) out << line << "\n";
    REQUIRE(out.good());
    WARN("wrote " << reference);
    return;
  }
  INFO("the fingerprint of renderer version " << kSynthRendererVersion << ": " << reference
                                              << "; after a change that draws other data, bump kSynthRendererVersion "
                                                 "(datasets/synth/renderer_version.h) and write the new version's "
                                                 "fingerprint with LIBGAZE_WRITE_RENDERER_FINGERPRINT=1");
  std::vector<std::string> recorded;
  for (const std::string& row : split(testing::read_file(reference), '\n')) {
    if (!row.empty()) recorded.push_back(row);
  }
  REQUIRE(lines.size() == recorded.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    INFO("rendered: " << lines[i] << "\nrecorded: " << recorded[i]);
    const ParsedLine now = parse_line(lines[i]), then = parse_line(recorded[i]);
    REQUIRE(now.words == then.words);
    REQUIRE(now.numbers.size() == then.numbers.size());
    for (size_t k = 0; k < now.numbers.size(); ++k) {
      // Mean pixels (0-255) within 0.02: a few pixels a level apart; draws and labels within
      // 2e-4 (people.csv writes 4 decimals, labels 6).
      const bool pixel = !starts_with(lines[i], "people.csv") && k < 4;
      CHECK(std::abs(now.numbers[k] - then.numbers[k]) <= (pixel ? 0.02 : 2e-4));
    }
  }
}
