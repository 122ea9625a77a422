// Image: the 8-bit image every loader yields (no dependencies): grey (channels = 1, every eye
// dataset) or RGB (channels = 3, natural-image folders for pretraining and distillation).
//
// Row-major, channels interleaved, `pixels.size() == height * width * channels`. Geometry
// helpers used by loaders and pre-processing live here too: crop, bilinear resize, mirror.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace gaze {

struct Image {
  int32_t height = 0;
  int32_t width = 0;
  int32_t channels = 1;
  std::vector<uint8_t> pixels;

  Image() = default;
  Image(int32_t h, int32_t w, uint8_t fill = 0, int32_t c = 1)
      : height(h), width(w), channels(c), pixels(size_t(h) * w * c, fill) {}
  uint8_t& at(int32_t y, int32_t x, int32_t c = 0) { return pixels[(size_t(y) * width + x) * channels + c]; }
  uint8_t at(int32_t y, int32_t x, int32_t c = 0) const { return pixels[(size_t(y) * width + x) * channels + c]; }
  bool empty() const { return pixels.empty(); }
};

// Rows [y, y+h) and columns [x, x+w); the rectangle must lie inside the image.
Image crop(const Image& image, int32_t y, int32_t x, int32_t h, int32_t w);

// The part of a source image an output image samples: output pixel (y, x) reads the source at
// (y0 + (y + 0.5) * sy - 0.5, x0 + (x + 0.5) * sx - 0.5), i.e. pixel centres align
// (align_corners = false).
struct SourceWindow {
  double y0, x0, sy, sx;
};

// The whole image (a plain resize).
SourceWindow full_window(const Image& image, int32_t height, int32_t width);
// The largest centred window with the output's aspect ratio (no distortion, edges cropped).
SourceWindow centred_window(const Image& image, int32_t height, int32_t width);

// The project's window resampler (preprocess.h's resample_turned resamples through a camera
// turn with sample_bilinear): bilinear over `window`, edge-clamped, one channel of the
// image into height x width floats in grey levels (0..255, not rounded). `mirror` flips the
// output left-right.
void resample_bilinear(const Image& image, const SourceWindow& window, int32_t height, int32_t width, bool mirror,
                       float* out, int32_t channel = 0);

// One bilinear sample of one channel at source position (x, y), pixel centres at integers (the
// index convention of SourceWindow), edge-clamped: for resamplers that map pixel by pixel.
float sample_bilinear(const Image& image, double x, double y, int32_t channel = 0);

// resample_bilinear over the whole image, rounded to nearest.
Image resize_bilinear(const Image& image, int32_t height, int32_t width);

Image mirror_horizontal(const Image& image);

// Histogram equalisation of a grey image, OpenCV's equalizeHist mapping (the MPII datasets'
// normalised eye patches are equalised so): v -> round(255 (cdf(v) - cdf_min) / (N - cdf_min)),
// a constant image unchanged.
Image equalize_histogram(const Image& image);

}  // namespace gaze
