#include "datasets/image.h"

#include <algorithm>
#include <cmath>

#include "libgaze/core/error.h"

namespace gaze {

GreyImage crop(const GreyImage& image, int32_t y, int32_t x, int32_t h, int32_t w) {
  if (y < 0 || x < 0 || h <= 0 || w <= 0 || y + h > image.height || x + w > image.width) {
    throw Error("crop " + std::to_string(h) + "x" + std::to_string(w) + " at (" +
                std::to_string(y) + "," + std::to_string(x) + ") does not fit a " +
                std::to_string(image.height) + "x" + std::to_string(image.width) + " image");
  }
  GreyImage out(h, w);
  for (int32_t r = 0; r < h; ++r) {
    std::copy_n(&image.pixels[size_t(y + r) * image.width + x], w, &out.pixels[size_t(r) * w]);
  }
  return out;
}

GreyImage resize_bilinear(const GreyImage& image, int32_t height, int32_t width) {
  if (height == image.height && width == image.width) return image;
  GreyImage out(height, width);
  const float sy = float(image.height) / height, sx = float(image.width) / width;
  // Precompute the horizontal taps once per column.
  std::vector<int32_t> x0(width), x1(width);
  std::vector<float> fx(width);
  for (int32_t x = 0; x < width; ++x) {
    const float src = std::max(0.0f, (x + 0.5f) * sx - 0.5f);
    x0[x] = std::min(int32_t(src), image.width - 1);
    x1[x] = std::min(x0[x] + 1, image.width - 1);
    fx[x] = src - x0[x];
  }
  for (int32_t y = 0; y < height; ++y) {
    const float src = std::max(0.0f, (y + 0.5f) * sy - 0.5f);
    const int32_t y0 = std::min(int32_t(src), image.height - 1);
    const int32_t y1 = std::min(y0 + 1, image.height - 1);
    const float fy = src - y0;
    const uint8_t* r0 = &image.pixels[size_t(y0) * image.width];
    const uint8_t* r1 = &image.pixels[size_t(y1) * image.width];
    for (int32_t x = 0; x < width; ++x) {
      const float top = r0[x0[x]] + fx[x] * (r0[x1[x]] - r0[x0[x]]);
      const float bottom = r1[x0[x]] + fx[x] * (r1[x1[x]] - r1[x0[x]]);
      out.pixels[size_t(y) * width + x] = uint8_t(std::lround(top + fy * (bottom - top)));
    }
  }
  return out;
}

GreyImage mirror_horizontal(const GreyImage& image) {
  GreyImage out = image;
  for (int32_t y = 0; y < image.height; ++y) {
    std::reverse(out.pixels.begin() + size_t(y) * image.width,
                 out.pixels.begin() + size_t(y + 1) * image.width);
  }
  return out;
}

}  // namespace gaze
