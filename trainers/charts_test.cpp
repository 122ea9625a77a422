// The reports' charts: real PNG files of the asked size, each series and group drawn in its
// colour, round ticks, the CDF's steps, and clear errors for charts that cannot be drawn.
#include "trainers/charts.h"

#include <catch2/catch.hpp>
#include <cmath>

#include "datasets/codec.h"
#include "tests/test_util.h"

using namespace gaze;
using Catch::Contains;

namespace {

// Pixels of roughly this colour (the first two Okabe-Ito colours charts use).
int64_t count_colour(const Image& image, int r, int g, int b) {
  int64_t n = 0;
  for (int32_t y = 0; y < image.height; ++y) {
    for (int32_t x = 0; x < image.width; ++x) {
      n += std::abs(image.at(y, x, 0) - r) < 12 && std::abs(image.at(y, x, 1) - g) < 12 &&
           std::abs(image.at(y, x, 2) - b) < 12;
    }
  }
  return n;
}

}  // namespace

TEST_CASE("line and bar charts are PNG files with every series drawn", "[charts]") {
  testing::TempDir dir;
  LineChart line;
  line.title = "error vs k";
  line.x_label = "k";
  line.y_label = "deg";
  line.series = {{"student", {{0, 6.0}, {1, 5.5}, {5, 4.0}}}, {"teacher", {{0, 5.0}, {5, 3.5}}}};
  write_chart_png(line, dir.file("k.png"), 640, 400);
  const Image k = read_png(dir.file("k.png"), 3);
  CHECK(k.width == 640);
  CHECK(k.height == 400);
  CHECK(count_colour(k, 0, 115, 179) > 200);  // the first series' blue
  CHECK(count_colour(k, 214, 94, 0) > 150);   // the second's vermilion
  BarChart bars;
  bars.title = "latency";
  bars.y_label = "ms";
  bars.bars = {
      {"teacher", "Pi 4 (paper)", 928.84}, {"teacher", "here, LibTorch", 48.7}, {"student", "Pi 4 (paper)", 426.66}};
  write_chart_png(bars, dir.file("b.png"));
  const Image b = read_png(dir.file("b.png"), 3);
  CHECK(b.width == 800);
  CHECK(count_colour(b, 0, 115, 179) > 5000);  // two tall bars of the first group
  CHECK(count_colour(b, 214, 94, 0) > 20);     // the short bar of the second
}

TEST_CASE("chart arithmetic: round ticks and the empirical CDF", "[charts]") {
  CHECK(nice_ticks(0, 9.3) == std::vector<double>{0, 2, 4, 6, 8, 10});
  const std::vector<double> unit = nice_ticks(0, 1);
  REQUIRE(unit.size() == 6);
  CHECK(unit[3] == Approx(0.6));
  CHECK(unit.back() == Approx(1));
  CHECK(nice_ticks(3, 3).size() >= 2);  // a flat range still gets an axis
  const auto cdf = cdf_points({3, 1, 2, 2});
  REQUIRE(cdf.size() == 4);
  CHECK(cdf.front() == std::make_pair(1.0, 0.25));
  CHECK(cdf.back() == std::make_pair(3.0, 1.0));
}

TEST_CASE("charts that cannot be drawn are errors naming the file, and nothing is written", "[charts]") {
  testing::TempDir dir;
  LineChart empty;
  CHECK_THROWS_WITH(write_chart_png(empty, dir.file("e.png")), Contains("e.png: a chart with no points"));
  LineChart nan;
  nan.series = {{"x", {{0, std::nan("")}}}};
  CHECK_THROWS_WITH(write_chart_png(nan, dir.file("n.png")), Contains("n.png: chart value of x is not finite"));
  CHECK_THROWS_WITH(write_chart_png(BarChart{}, dir.file("b.png")), Contains("b.png: a chart with no bars"));
  CHECK_FALSE(std::filesystem::exists(dir.file("e.png")));
  CHECK_FALSE(std::filesystem::exists(dir.file("n.png")));
}
