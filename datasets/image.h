// GreyImage: the 8-bit single-channel image every loader yields (no dependencies).
//
// Row-major, `pixels.size() == height * width`. Geometry helpers used by loaders and
// pre-processing live here too: crop, bilinear resize, horizontal mirror.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace gaze {

struct GreyImage {
  int32_t height = 0;
  int32_t width = 0;
  std::vector<uint8_t> pixels;

  GreyImage() = default;
  GreyImage(int32_t h, int32_t w, uint8_t fill = 0) : height(h), width(w), pixels(size_t(h) * w, fill) {}
  uint8_t& at(int32_t y, int32_t x) { return pixels[size_t(y) * width + x]; }
  uint8_t at(int32_t y, int32_t x) const { return pixels[size_t(y) * width + x]; }
  bool empty() const { return pixels.empty(); }
};

// Rows [y, y+h) and columns [x, x+w); the rectangle must lie inside the image.
GreyImage crop(const GreyImage& image, int32_t y, int32_t x, int32_t h, int32_t w);

// The part of a source image an output image samples: output pixel (y, x) reads the source at
// (y0 + (y + 0.5) * sy - 0.5, x0 + (x + 0.5) * sx - 0.5), i.e. pixel centres align
// (align_corners = false).
struct SourceWindow {
  double y0, x0, sy, sx;
};

// The whole image (a plain resize).
SourceWindow full_window(const GreyImage& image, int32_t height, int32_t width);
// The largest centred window with the output's aspect ratio (no distortion, edges cropped).
SourceWindow centred_window(const GreyImage& image, int32_t height, int32_t width);

// The project's one float resampler: bilinear over `window`, edge-clamped, into height x width
// floats in grey levels (0..255, not rounded). `mirror` flips the output left-right.
void resample_bilinear(const GreyImage& image, const SourceWindow& window, int32_t height, int32_t width, bool mirror,
                       float* out);

// resample_bilinear over the whole image, rounded to nearest.
GreyImage resize_bilinear(const GreyImage& image, int32_t height, int32_t width);

GreyImage mirror_horizontal(const GreyImage& image);

}  // namespace gaze
