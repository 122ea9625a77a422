// kSynthRendererVersion is bumped when the renderer draws other data: this test holds it to that.
//
// It renders a small set of every layout, reads it back through the real readers (each at its
// rawest: OpenEDS's PNGs, AEA's whole frames, MPIIGaze's patches, the natural images; MPIIFaceGaze
// through its normalisation) and compares a fingerprint of it, item by item (its quadrants' mean
// pixels and sharpness, and its gaze label) and people.csv's draws, with the one recorded for the
// current version in datasets/synth/testdata/renderer_v<N>.txt. A change that draws other pixels or labels (draw
// order, geometry, shading, blur, noise: enough to move a quadrant's mean or sharpness by a few
// pixels' worth) fails it until kSynthRendererVersion is bumped and the new version's fingerprint
// is recorded (a recorded version is never written over):
//
//   LIBGAZE_WRITE_RENDERER_FINGERPRINT=1 build/datasets/dataset_tests "[renderer_version]"
//
// Compared within tolerances, not byte for byte: a compiler that rounds the last bit otherwise,
// or a JPEG pixel off by one, is not another renderer. The sanitizer build (clang) runs it too,
// so the renders must not depend on the order a compiler evaluates a call's arguments in (named
// draws, never two in one call's arguments). MPIIFaceGaze's camera calibration files are written
// but not read back here.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
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

// A text file's lines, blank ones left out.
std::vector<std::string> non_empty_lines(const std::string& path) {
  std::vector<std::string> lines;
  for (const std::string& line : split(testing::read_file(path), '\n')) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// One line per item: "<what>/<key>", its quadrants' (top left, top right, bottom left, bottom
// right) mean pixels, their mean steps from pixel to pixel, and its gaze label.
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
    // Per quadrant (every channel): the mean, where the eye is drawn and how bright, and the
    // mean absolute step to the next pixel right, how sharp and how textured.
    double mean[2][2] = {}, step[2][2] = {}, count[2][2] = {};
    for (int32_t y = 0; y < m.height; ++y) {
      for (int32_t x = 0; x < m.width; ++x) {
        for (int32_t c = 0; c < m.channels; ++c) {
          const int32_t qy = 2 * y / m.height, qx = 2 * x / m.width;
          mean[qy][qx] += m.at(y, x, c);
          step[qy][qx] += x + 1 < m.width ? std::abs(int(m.at(y, x + 1, c)) - int(m.at(y, x, c))) : 0;
          count[qy][qx] += 1;
        }
      }
    }
    std::string line = what + "/" + s.label.key;
    char number[32];
    for (const auto* stat : {&mean, &step}) {
      for (int32_t q = 0; q < 4; ++q) {
        std::snprintf(number, sizeof number, " %.3f", (*stat)[q / 2][q % 2] / count[q / 2][q % 2]);
        line += number;
      }
    }
    for (const float g : s.label.gaze) {
      std::snprintf(number, sizeof number, " %.6f", g);
      line += number;
    }
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
  for (const std::string& row : non_empty_lines(dir + "/people.csv")) lines.push_back("people.csv " + row);
  const std::string whole_frame = "pair", reader_default = DataConfig().eye;
  fingerprint_dataset("openeds", "openeds:" + dir + "/openeds", reader_default, lines);
  fingerprint_dataset("aea", "aea:" + dir + "/aea", whole_frame, lines);
  fingerprint_dataset("mpiigaze", "mpiigaze:" + dir + "/mpiigaze", reader_default, lines);
  fingerprint_dataset("mpiifacegaze", "mpiifacegaze:" + dir + "/mpiifacegaze", reader_default, lines);
  fingerprint_dataset("images", "folder:" + dir + "/images", reader_default, lines);
  return lines;
}

// A line's numbers, each with the step of its last printed digit, and its other words.
struct ParsedLine {
  std::string words;
  std::vector<double> numbers, last_digit;
};
ParsedLine parse_line(const std::string& line) {
  ParsedLine out;
  for (const std::string& token : split(line, ' ')) {
    for (const std::string& part : split(token, ',')) {
      char* end = nullptr;
      const double v = std::strtod(part.c_str(), &end);
      if (part.empty() || end != part.c_str() + part.size()) {
        out.words += part + " ";
        continue;
      }
      const size_t dot = part.find('.');
      out.numbers.push_back(v);
      out.last_digit.push_back(dot == std::string::npos ? 1.0 : std::pow(10.0, -double(part.size() - dot - 1)));
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
    // Never over a recorded version: rewriting it would pass a renderer that draws other data
    // under the old version, the one thing this test is here to stop.
    INFO(reference << " is recorded already: bump kSynthRendererVersion to record another");
    REQUIRE(!std::filesystem::exists(reference));
    std::ofstream out(reference);
    for (const std::string& line : lines) out << line << "\n";
    REQUIRE(out.good());
    WARN("wrote " << reference);
    return;
  }
  INFO("the fingerprint of renderer version "
       << kSynthRendererVersion << ": " << reference
       << "; after a change that draws other data, bump kSynthRendererVersion (datasets/synth/renderer_version.h) and "
          "record the new version's fingerprint with LIBGAZE_WRITE_RENDERER_FINGERPRINT=1; after a change to a synth.* "
          "default, pin the old value in render_fingerprint instead (the render's stamp compares settings itself)");
  const std::vector<std::string> recorded = non_empty_lines(reference);
  REQUIRE(lines.size() == recorded.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    INFO("rendered: " << lines[i] << "\nrecorded: " << recorded[i]);
    const ParsedLine now = parse_line(lines[i]), then = parse_line(recorded[i]);
    REQUIRE(now.words == then.words);
    REQUIRE(now.numbers.size() == then.numbers.size());
    for (size_t k = 0; k < now.numbers.size(); ++k) {
      // Pixel statistics (0-255) within 0.02: a few pixels a level apart (a libm that rounds
      // the last bit otherwise); draws and labels within one and a half steps of their last
      // printed digit (a value on a rounding edge).
      const bool pixels = !starts_with(lines[i], "people.csv") && k < 8;
      CHECK(std::abs(now.numbers[k] - then.numbers[k]) <= (pixels ? 0.02 : 1.5 * then.last_digit[k]));
    }
  }
}
