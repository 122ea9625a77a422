#include "datasets/preprocess.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "datasets/synth/eye_renderer.h"

namespace gaze {
namespace {

struct Window {
  double y0, x0, sy, sx;  // source = y0 + (out + 0.5) * sy - 0.5
};

Window centred_window(const GreyImage& image, int32_t height, int32_t width) {
  const double target = double(height) / width, source = double(image.height) / image.width;
  double wh = image.height, ww = image.width;
  if (source > target) wh = ww * target; else ww = wh / target;
  return {(image.height - wh) / 2, (image.width - ww) / 2, wh / height, ww / width};
}

float sample_bilinear(const GreyImage& image, double y, double x) {
  y = std::clamp(y, 0.0, double(image.height - 1));
  x = std::clamp(x, 0.0, double(image.width - 1));
  const int32_t y0 = int32_t(y), x0 = int32_t(x);
  const int32_t y1 = std::min(y0 + 1, image.height - 1), x1 = std::min(x0 + 1, image.width - 1);
  const float fy = float(y - y0), fx = float(x - x0);
  const float top = image.at(y0, x0) + fx * (image.at(y0, x1) - image.at(y0, x0));
  const float bottom = image.at(y1, x0) + fx * (image.at(y1, x1) - image.at(y1, x0));
  return top + fy * (bottom - top);
}

}  // namespace

GreyImage resample_to_input(const GreyImage& image, int32_t height, int32_t width) {
  const Window w = centred_window(image, height, width);
  GreyImage out(height, width);
  for (int32_t y = 0; y < height; ++y)
    for (int32_t x = 0; x < width; ++x)
      out.at(y, x) = uint8_t(std::lround(sample_bilinear(image, w.y0 + (y + 0.5) * w.sy - 0.5, w.x0 + (x + 0.5) * w.sx - 0.5)));
  return out;
}

void normalize_grey_input(const uint8_t* image, int32_t height, int32_t width, float* out) {
  const size_t plane = size_t(height) * width;
  for (size_t i = 0; i < plane; ++i) {
    const float unit = image[i] / 255.0f;
    for (int c = 0; c < 3; ++c) out[c * plane + i] = (unit - kInputMean[c]) / kInputStd[c];
  }
}

std::array<float, 3> preprocess_sample(const Sample& sample, const PreprocessOptions& o, uint64_t seed, float* out) {
  const GreyImage& image = sample.image;
  Window w = centred_window(image, o.height, o.width);
  std::array<float, 3> gaze = sample.label.gaze;
  SplitMix rng(seed);
  bool flip = false;
  double contrast = 1, brightness = 0, gamma = 1, noise = 0;
  if (o.augment) {
    w.y0 += rng.uniform(-o.shift, o.shift) * w.sy * o.height;
    w.x0 += rng.uniform(-o.shift, o.shift) * w.sx * o.width;
    flip = o.flip && rng.uniform() < 0.5;
    contrast = 1 + rng.uniform(-o.contrast, o.contrast);
    brightness = 255 * rng.uniform(-o.brightness, o.brightness);
    gamma = std::exp(rng.uniform(-o.gamma, o.gamma));
    noise = rng.uniform(0, o.noise);
  }
  if (flip) gaze[0] = -gaze[0];
  const size_t plane = size_t(o.height) * o.width;
  for (int32_t y = 0; y < o.height; ++y) {
    for (int32_t x = 0; x < o.width; ++x) {
      const int32_t sx_out = flip ? o.width - 1 - x : x;
      float v = sample_bilinear(image, w.y0 + (y + 0.5) * w.sy - 0.5, w.x0 + (sx_out + 0.5) * w.sx - 0.5);
      if (o.augment) {
        v = float(255.0 * std::pow(std::clamp(v / 255.0, 0.0, 1.0), gamma));
        v = float((v - 128.0) * contrast + 128.0 + brightness + noise * rng.normal());
        v = std::clamp(v, 0.0f, 255.0f);
      }
      const float unit = v / 255.0f;
      for (int c = 0; c < 3; ++c) out[c * plane + size_t(y) * o.width + x] = (unit - kInputMean[c]) / kInputStd[c];
    }
  }
  return gaze;
}

}  // namespace gaze
