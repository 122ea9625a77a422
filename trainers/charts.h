// Charts for the reports (`gaze run`, `gaze reproduce`), drawn with cairo (Debian
// libcairo2-dev) and written as PNG. No torch.
//
//   LineChart  named series of (x, y) points on linear axes: ticks, axis titles, a legend.
//              Error vs calibration shots k; the error CDF of each model (cdf_points()).
//   BarChart   labelled bars, coloured by group (e.g. the device a latency was measured on),
//              with the value printed on each bar and a legend of groups.
//
// write_chart_png() renders at width x height pixels and writes the file atomically; a chart
// with no data, or a value that is not finite, is a gaze::Error naming the file.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace gaze {

struct ChartSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in order
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<ChartSeries> series;
  bool markers = true;  // a dot at every point (off for dense curves such as CDFs)
};

struct ChartBar {
  std::string label;  // under the bar
  std::string group;  // picks the colour; listed in the legend
  double value = 0;
};

struct BarChart {
  std::string title, y_label;
  std::vector<ChartBar> bars;
};

void write_chart_png(const LineChart& chart, const std::string& path, int width = 800, int height = 480);
void write_chart_png(const BarChart& chart, const std::string& path, int width = 800, int height = 480);

// The empirical CDF of `values`: (value, fraction of values <= it), ascending.
std::vector<std::pair<double, double>> cdf_points(std::vector<double> values);

// Round axis ticks covering [lo, hi]: about `count` multiples of 1, 2 or 5 times a power of 10.
std::vector<double> nice_ticks(double lo, double hi, int count = 5);

}  // namespace gaze
