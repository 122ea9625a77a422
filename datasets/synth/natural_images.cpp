#include "datasets/synth/natural_images.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "libgaze/core/random.h"

namespace gaze {
namespace {

using Rgb = std::array<float, 3>;

// HSV (h in turns) -> RGB in [0, 1].
Rgb hsv(double h, double s, double v) {
  h = h - std::floor(h);
  const double i = std::floor(h * 6), f = h * 6 - i;
  const double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (int(i) % 6) {
    case 0:
      return {float(v), float(t), float(p)};
    case 1:
      return {float(q), float(v), float(p)};
    case 2:
      return {float(p), float(v), float(t)};
    case 3:
      return {float(p), float(q), float(v)};
    case 4:
      return {float(t), float(p), float(v)};
    default:
      return {float(v), float(p), float(q)};
  }
}

// Value noise with amplitude ~ 1/frequency over octaves: a pink-spectrum field in about [-1, 1].
class PinkNoise {
 public:
  PinkNoise(SplitMix& rng, int octaves) {
    for (int o = 0; o < octaves; ++o) {
      const int cells = 2 << o;
      std::vector<float> grid(size_t(cells + 1) * (cells + 1));
      for (auto& g : grid) g = float(rng.uniform(-1, 1));
      grids_.push_back(std::move(grid));
    }
  }
  float at(double y, double x) const {  // y, x in [0, 1]
    float sum = 0, norm = 0;
    for (size_t o = 0; o < grids_.size(); ++o) {
      const int cells = 2 << o;
      const double gy = y * cells, gx = x * cells;
      const int y0 = std::min(int(gy), cells - 1), x0 = std::min(int(gx), cells - 1);
      const float fy = float(gy - y0), fx = float(gx - x0);
      const auto& g = grids_[o];
      auto v = [&](int yy, int xx) { return g[size_t(yy) * (cells + 1) + xx]; };
      const float top = v(y0, x0) + fx * (v(y0, x0 + 1) - v(y0, x0));
      const float bottom = v(y0 + 1, x0) + fx * (v(y0 + 1, x0 + 1) - v(y0 + 1, x0));
      const float amplitude = 1.0f / float(1 << o);
      sum += amplitude * (top + fy * (bottom - top));
      norm += amplitude;
    }
    return sum / norm;
  }

 private:
  std::vector<std::vector<float>> grids_;
};

struct Shape {
  int kind;  // 0 ellipse, 1 rotated box, 2 stroke
  double cy, cx, ry, rx, angle, softness;
  Rgb colour;
  double shade_y, shade_x, texture;
};

// Signed inside-ness of (y, x) in the shape's frame: > 0 inside, in units of its size.
double inside(const Shape& s, double y, double x) {
  const double c = std::cos(s.angle), n = std::sin(s.angle);
  const double u = ((x - s.cx) * c + (y - s.cy) * n) / s.rx, v = (-(x - s.cx) * n + (y - s.cy) * c) / s.ry;
  if (s.kind == 0) return 1 - std::sqrt(u * u + v * v);
  if (s.kind == 1) return 1 - std::max(std::abs(u), std::abs(v));
  return 1 - std::max(std::abs(u), std::abs(v) * 8);  // a thin stroke
}

}  // namespace

Image render_natural_image(int32_t height, int32_t width, int64_t label, int64_t index, uint64_t seed) {
  // Class statistics: a hue family, saturation, shape preference, texture strength.
  SplitMix cls(seed_mix(seed, stream::kImages, uint64_t(label)));
  const double hue = cls.uniform(), hue_spread = cls.uniform(0.05, 0.3), saturation = cls.uniform(0.2, 0.8);
  const double texture = cls.uniform(0.05, 0.3);
  const int favourite_shape = int(cls.next() % 3);
  SplitMix rng(seed_mix(seed, stream::kImages, uint64_t(label), uint64_t(index) + 1));
  const PinkNoise background(rng, 6), grain(rng, 7);
  // Draws for one colour are named and taken value, saturation, hue: a call's arguments have no
  // order in C++, and this is the order GCC took them in when kSynthRendererVersion 1 was recorded
  // (another compiler drew other images from the same seed).
  const double ground_value = rng.uniform(0.25, 0.6), ground_saturation = rng.uniform(0.5, 1),
               ground_hue = rng.uniform(-hue_spread, hue_spread);
  const Rgb ground = hsv(hue + ground_hue, saturation * ground_saturation, ground_value);
  const double sky_value = rng.uniform(0.6, 0.95), sky_saturation = rng.uniform(0.1, 0.5),
               sky_hue = rng.uniform(-0.1, 0.1);
  const Rgb sky = hsv(hue + 0.5 + sky_hue, sky_saturation, sky_value);
  const double horizon = rng.uniform(0.2, 0.7), tilt = rng.uniform(-0.2, 0.2);
  std::vector<Shape> shapes(size_t(4 + rng.next() % 9));
  for (auto& s : shapes) {
    s.kind = rng.uniform() < 0.6 ? favourite_shape : int(rng.next() % 3);
    s.cy = rng.uniform(0.1, 0.9);
    s.cx = rng.uniform(0.1, 0.9);
    s.ry = rng.uniform(0.04, 0.3);
    s.rx = s.ry * rng.uniform(0.5, 2.0);
    s.angle = rng.uniform(0, M_PI);
    s.softness = rng.uniform(0.02, 0.15);
    const double value = rng.uniform(0.2, 1.0), shape_saturation = rng.uniform(0.6, 1.2),
                 shape_hue = rng.uniform(-hue_spread, hue_spread), opposite = rng.uniform() < 0.2 ? 0.5 : 0.0;
    s.colour = hsv(hue + shape_hue + opposite, saturation * shape_saturation, value);
    s.shade_y = rng.uniform(-0.6, 0.6);
    s.shade_x = rng.uniform(-0.6, 0.6);
    s.texture = texture * rng.uniform(0.5, 2);
  }
  const double noise_sigma = rng.uniform(1, 4) / 255.0;
  Image image(height, width, 0, 3);
  for (int32_t py = 0; py < height; ++py) {
    for (int32_t px = 0; px < width; ++px) {
      const double y = (py + 0.5) / height, x = (px + 0.5) / width;
      const float b = background.at(y, x), g = grain.at(y, x);
      // Sky above a tilted horizon, lit ground below, both textured by the pink field.
      const double above = std::clamp((horizon + tilt * (x - 0.5) - y) * 20, -1.0, 1.0) * 0.5 + 0.5;
      Rgb c;
      for (int k = 0; k < 3; ++k) {
        c[k] = float(above * sky[k] * (1 - 0.3 * y) + (1 - above) * ground[k] * (1 + 0.8 * b));
      }
      for (const Shape& s : shapes) {  // painter's order: later shapes occlude earlier ones
        const double a = std::clamp(inside(s, y, x) / s.softness, 0.0, 1.0);
        if (a <= 0) continue;
        const double light = 1 + s.shade_y * (y - s.cy) / s.ry + s.shade_x * (x - s.cx) / s.rx;
        for (int k = 0; k < 3; ++k) {
          const float own = float(s.colour[k] * std::clamp(light, 0.3, 1.5) * (1 + s.texture * g));
          c[k] = float(a * own + (1 - a) * c[k]);
        }
      }
      for (int k = 0; k < 3; ++k) {
        const double v = c[k] + noise_sigma * rng.normal();
        image.at(py, px, k) = uint8_t(std::lround(std::clamp(v, 0.0, 1.0) * 255));
      }
    }
  }
  return image;
}

}  // namespace gaze
