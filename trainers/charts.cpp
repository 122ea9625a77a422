#include "trainers/charts.h"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"

namespace gaze {
namespace {

// Colour-blind-safe (Okabe-Ito), in the order series and groups appear.
constexpr double kPalette[][3] = {{0.00, 0.45, 0.70}, {0.84, 0.37, 0.00}, {0.00, 0.62, 0.45}, {0.80, 0.47, 0.65},
                                  {0.94, 0.89, 0.26}, {0.34, 0.71, 0.91}, {0.90, 0.62, 0.00}, {0.30, 0.30, 0.30}};
constexpr int kColours = int(sizeof kPalette / sizeof kPalette[0]);

struct Canvas {
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface;
  std::unique_ptr<cairo_t, decltype(&cairo_destroy)> cr;
  Canvas(int width, int height)
      : surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height), cairo_surface_destroy),
        cr(cairo_create(surface.get()), cairo_destroy) {
    cairo_set_source_rgb(cr.get(), 1, 1, 1);
    cairo_paint(cr.get());
    cairo_select_font_face(cr.get(), "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  }
  cairo_t* operator*() const { return cr.get(); }
};

void colour(cairo_t* cr, int index) {
  const double* c = kPalette[index % kColours];
  cairo_set_source_rgb(cr, c[0], c[1], c[2]);
}

// Text anchored at (x, y): align 0 left, 0.5 centred, 1 right; baseline at y + size/3.
void text(cairo_t* cr, const std::string& s, double x, double y, double size, double align = 0, bool vertical = false) {
  cairo_set_font_size(cr, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_save(cr);
  cairo_translate(cr, x, y);
  if (vertical) cairo_rotate(cr, -M_PI / 2);
  cairo_move_to(cr, -align * e.x_advance, size / 3);
  cairo_show_text(cr, s.c_str());
  cairo_restore(cr);
}

std::string tick_label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", std::abs(v) < 1e-12 ? 0.0 : v);
  return buf;
}

void write_surface(cairo_surface_t* surface, const std::string& path) {
  write_atomically(path, [&](const std::string& temp) {
    const cairo_status_t status = cairo_surface_write_to_png(surface, temp.c_str());
    if (status != CAIRO_STATUS_SUCCESS) throw Error(path + ": cannot write PNG: " + cairo_status_to_string(status));
  });
}

// The plot area and its axes: a frame, ticks with labels and grid lines, titles.
struct Axes {
  double left, top, right, bottom;  // pixels
  double x0, x1, y0, y1;            // data range
  double px(double x) const { return left + (right - left) * (x - x0) / (x1 - x0); }
  double py(double y) const { return bottom - (bottom - top) * (y - y0) / (y1 - y0); }
};

void draw_frame(cairo_t* cr, const Axes& a, const std::string& title, const std::string& x_label,
                const std::string& y_label, const std::vector<double>& x_ticks, const std::vector<double>& y_ticks,
                double width, double height) {
  cairo_set_line_width(cr, 1);
  for (double y : y_ticks) {
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_move_to(cr, a.left, a.py(y));
    cairo_line_to(cr, a.right, a.py(y));
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    text(cr, tick_label(y), a.left - 6, a.py(y), 12, 1);
  }
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  for (double x : x_ticks) text(cr, tick_label(x), a.px(x), a.bottom + 14, 12, 0.5);
  cairo_rectangle(cr, a.left, a.top, a.right - a.left, a.bottom - a.top);
  cairo_stroke(cr);
  text(cr, title, width / 2, 18, 15, 0.5);
  if (!x_label.empty()) text(cr, x_label, (a.left + a.right) / 2, height - 14, 13, 0.5);
  text(cr, y_label, 16, (a.top + a.bottom) / 2, 13, 0.5, true);
}

void legend(cairo_t* cr, const std::vector<std::string>& names, double x, double y) {
  for (size_t i = 0; i < names.size(); ++i) {
    colour(cr, int(i));
    cairo_rectangle(cr, x, y + 18 * double(i) - 5, 12, 10);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text(cr, names[i], x + 18, y + 18 * double(i), 12);
  }
}

void check_finite(double v, const std::string& path, const std::string& what) {
  if (!std::isfinite(v)) throw Error(path + ": chart value of " + what + " is not finite");
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int count) {
  if (!(hi > lo)) hi = lo + 1;
  const double raw = (hi - lo) / std::max(1, count);
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  double step = power;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * power;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  for (double i = first; i <= last; ++i) ticks.push_back(i * step);
  return ticks;
}

std::vector<std::pair<double, double>> cdf_points(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  std::vector<std::pair<double, double>> out;
  for (size_t i = 0; i < values.size(); ++i) out.emplace_back(values[i], double(i + 1) / double(values.size()));
  return out;
}

void write_chart_png(const LineChart& chart, const std::string& path, int width, int height) {
  double x0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY, y0 = 0;
  for (const auto& s : chart.series) {
    for (const auto& [x, y] : s.points) {
      check_finite(x, path, s.name);
      check_finite(y, path, s.name);
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  }
  if (!(x1 >= x0)) throw Error(path + ": a chart with no points");
  const std::vector<double> x_ticks = nice_ticks(x0, x1), y_ticks = nice_ticks(y0, y1 * 1.05);
  Axes a{70,
         34,
         double(width) - 210,
         double(height) - 46,
         std::min(x0, x_ticks.front()),
         std::max(x1, x_ticks.back()),
         std::min(y0, y_ticks.front()),
         std::max(y1, y_ticks.back())};
  if (a.x1 == a.x0) a.x1 = a.x0 + 1;
  if (a.y1 == a.y0) a.y1 = a.y0 + 1;
  Canvas canvas(width, height);
  cairo_t* cr = *canvas;
  draw_frame(cr, a, chart.title, chart.x_label, chart.y_label, x_ticks, y_ticks, width, height);
  std::vector<std::string> names;
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const ChartSeries& s = chart.series[i];
    names.push_back(s.name);
    colour(cr, int(i));
    cairo_set_line_width(cr, 2);
    for (size_t j = 0; j < s.points.size(); ++j) {
      const double x = a.px(s.points[j].first), y = a.py(s.points[j].second);
      if (j == 0)
        cairo_move_to(cr, x, y);
      else
        cairo_line_to(cr, x, y);
    }
    cairo_stroke(cr);
    if (chart.markers) {
      for (const auto& [x, y] : s.points) {
        cairo_arc(cr, a.px(x), a.py(y), 3.5, 0, 2 * M_PI);
        cairo_fill(cr);
      }
    }
  }
  legend(cr, names, a.right + 16, a.top + 8);
  write_surface(canvas.surface.get(), path);
}

void write_chart_png(const BarChart& chart, const std::string& path, int width, int height) {
  if (chart.bars.empty()) throw Error(path + ": a chart with no bars");
  double top_value = 0;
  std::vector<std::string> groups;
  for (const auto& b : chart.bars) {
    check_finite(b.value, path, b.label);
    top_value = std::max(top_value, b.value);
    if (std::find(groups.begin(), groups.end(), b.group) == groups.end()) groups.push_back(b.group);
  }
  const std::vector<double> y_ticks = nice_ticks(0, top_value * 1.1);
  const Axes a{70,
               34,
               double(width) - 230,
               double(height) - 70,
               0,
               double(chart.bars.size()),
               0,
               std::max(y_ticks.back(), 1e-9)};
  Canvas canvas(width, height);
  cairo_t* cr = *canvas;
  draw_frame(cr, a, chart.title, "", chart.y_label, {}, y_ticks, width, height);
  const double slot = (a.right - a.left) / double(chart.bars.size());
  for (size_t i = 0; i < chart.bars.size(); ++i) {
    const ChartBar& b = chart.bars[i];
    const int g = int(std::find(groups.begin(), groups.end(), b.group) - groups.begin());
    const double x = a.left + slot * (double(i) + 0.15), w = slot * 0.7, y = a.py(b.value);
    colour(cr, g);
    cairo_rectangle(cr, x, y, w, a.bottom - y);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text(cr, tick_label(std::round(b.value * 100) / 100), x + w / 2, y - 9, 11, 0.5);
    text(cr, b.label, x + w / 2, a.bottom + 14, 11, 0.5);
  }
  legend(cr, groups, a.right + 16, a.top + 8);
  write_surface(canvas.surface.get(), path);
}

}  // namespace gaze
