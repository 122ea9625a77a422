#include "datasets/image.h"

#include <algorithm>
#include <cmath>

#include "libgaze/core/error.h"

namespace gaze {

GreyImage crop(const GreyImage& image, int32_t y, int32_t x, int32_t h, int32_t w) {
  if (y < 0 || x < 0 || h <= 0 || w <= 0 || y + h > image.height || x + w > image.width) {
    throw Error("crop " + std::to_string(h) + "x" + std::to_string(w) + " at (" + std::to_string(y) + "," +
                std::to_string(x) + ") does not fit a " + std::to_string(image.height) + "x" +
                std::to_string(image.width) + " image");
  }
  GreyImage out(h, w);
  for (int32_t r = 0; r < h; ++r) {
    std::copy_n(&image.pixels[size_t(y + r) * image.width + x], w, &out.pixels[size_t(r) * w]);
  }
  return out;
}

SourceWindow full_window(const GreyImage& image, int32_t height, int32_t width) {
  return {0, 0, double(image.height) / height, double(image.width) / width};
}

SourceWindow centred_window(const GreyImage& image, int32_t height, int32_t width) {
  const double target = double(height) / width, source = double(image.height) / image.width;
  double wh = image.height, ww = image.width;
  if (source > target) {
    wh = ww * target;
  } else {
    ww = wh / target;
  }
  return {(image.height - wh) / 2, (image.width - ww) / 2, wh / height, ww / width};
}

void resample_bilinear(const GreyImage& image, const SourceWindow& window, int32_t height, int32_t width, bool mirror,
                       float* out) {
  // Horizontal taps once per column, vertical once per row.
  std::vector<int32_t> x0(width), x1(width);
  std::vector<float> fx(width);
  for (int32_t x = 0; x < width; ++x) {
    const int32_t column = mirror ? width - 1 - x : x;
    const double src = std::clamp(window.x0 + (column + 0.5) * window.sx - 0.5, 0.0, double(image.width - 1));
    x0[x] = int32_t(src);
    x1[x] = std::min(x0[x] + 1, image.width - 1);
    fx[x] = float(src - x0[x]);
  }
  for (int32_t y = 0; y < height; ++y) {
    const double src = std::clamp(window.y0 + (y + 0.5) * window.sy - 0.5, 0.0, double(image.height - 1));
    const int32_t y0 = int32_t(src), y1 = std::min(y0 + 1, image.height - 1);
    const float fy = float(src - y0);
    const uint8_t* r0 = &image.pixels[size_t(y0) * image.width];
    const uint8_t* r1 = &image.pixels[size_t(y1) * image.width];
    for (int32_t x = 0; x < width; ++x) {
      const float top = r0[x0[x]] + fx[x] * (r0[x1[x]] - r0[x0[x]]);
      const float bottom = r1[x0[x]] + fx[x] * (r1[x1[x]] - r1[x0[x]]);
      out[size_t(y) * width + x] = top + fy * (bottom - top);
    }
  }
}

GreyImage resize_bilinear(const GreyImage& image, int32_t height, int32_t width) {
  if (height == image.height && width == image.width) return image;
  std::vector<float> values(size_t(height) * width);
  resample_bilinear(image, full_window(image, height, width), height, width, false, values.data());
  GreyImage out(height, width);
  for (size_t i = 0; i < values.size(); ++i) out.pixels[i] = uint8_t(std::lround(values[i]));
  return out;
}

GreyImage mirror_horizontal(const GreyImage& image) {
  GreyImage out = image;
  for (int32_t y = 0; y < image.height; ++y) {
    std::reverse(out.pixels.begin() + size_t(y) * image.width, out.pixels.begin() + size_t(y + 1) * image.width);
  }
  return out;
}

}  // namespace gaze
