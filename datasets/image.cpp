#include "datasets/image.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "libgaze/core/error.h"

namespace gaze {

Image crop(const Image& image, int32_t y, int32_t x, int32_t h, int32_t w) {
  if (y < 0 || x < 0 || h <= 0 || w <= 0 || y + h > image.height || x + w > image.width) {
    throw Error("crop " + std::to_string(h) + "x" + std::to_string(w) + " at (" + std::to_string(y) + "," +
                std::to_string(x) + ") does not fit a " + std::to_string(image.height) + "x" +
                std::to_string(image.width) + " image");
  }
  const size_t c = size_t(image.channels);
  Image out(h, w, 0, image.channels);
  for (int32_t r = 0; r < h; ++r) {
    std::copy_n(&image.pixels[(size_t(y + r) * image.width + x) * c], w * c, &out.pixels[size_t(r) * w * c]);
  }
  return out;
}

SourceWindow full_window(const Image& image, int32_t height, int32_t width) {
  return {0, 0, double(image.height) / height, double(image.width) / width};
}

SourceWindow centred_window(const Image& image, int32_t height, int32_t width) {
  const double target = double(height) / width, source = double(image.height) / image.width;
  double wh = image.height, ww = image.width;
  if (source > target) {
    wh = ww * target;
  } else {
    ww = wh / target;
  }
  return {(image.height - wh) / 2, (image.width - ww) / 2, wh / height, ww / width};
}

void resample_bilinear(const Image& image, const SourceWindow& window, int32_t height, int32_t width, bool mirror,
                       float* out, int32_t channel) {
  if (channel < 0 || channel >= image.channels) {
    throw Error("resample: channel " + std::to_string(channel) + " of a " + std::to_string(image.channels) +
                "-channel image");
  }
  const int32_t c = image.channels;
  // Horizontal taps once per column, vertical once per row.
  std::vector<int32_t> x0(width), x1(width);
  std::vector<float> fx(width);
  for (int32_t x = 0; x < width; ++x) {
    const int32_t column = mirror ? width - 1 - x : x;
    const double src = std::clamp(window.x0 + (column + 0.5) * window.sx - 0.5, 0.0, double(image.width - 1));
    const int32_t left = int32_t(src);
    x0[x] = left * c + channel;
    x1[x] = std::min(left + 1, image.width - 1) * c + channel;
    fx[x] = float(src - left);
  }
  for (int32_t y = 0; y < height; ++y) {
    const double src = std::clamp(window.y0 + (y + 0.5) * window.sy - 0.5, 0.0, double(image.height - 1));
    const int32_t y0 = int32_t(src), y1 = std::min(y0 + 1, image.height - 1);
    const float fy = float(src - y0);
    const uint8_t* r0 = &image.pixels[size_t(y0) * image.width * c];
    const uint8_t* r1 = &image.pixels[size_t(y1) * image.width * c];
    for (int32_t x = 0; x < width; ++x) {
      const float top = r0[x0[x]] + fx[x] * (r0[x1[x]] - r0[x0[x]]);
      const float bottom = r1[x0[x]] + fx[x] * (r1[x1[x]] - r1[x0[x]]);
      out[size_t(y) * width + x] = top + fy * (bottom - top);
    }
  }
}

float sample_bilinear(const Image& image, double x, double y, int32_t channel) {
  const int32_t c = image.channels;
  x = std::clamp(x, 0.0, double(image.width - 1));
  y = std::clamp(y, 0.0, double(image.height - 1));
  const int32_t left = int32_t(x), top = int32_t(y);
  const int32_t right = std::min(left + 1, image.width - 1), bottom = std::min(top + 1, image.height - 1);
  const float fx = float(x - left), fy = float(y - top);
  const auto at = [&](int32_t row, int32_t column) {
    return float(image.pixels[(size_t(row) * image.width + column) * c + channel]);
  };
  const float upper = at(top, left) + fx * (at(top, right) - at(top, left));
  const float lower = at(bottom, left) + fx * (at(bottom, right) - at(bottom, left));
  return upper + fy * (lower - upper);
}

Image resize_bilinear(const Image& image, int32_t height, int32_t width) {
  if (height == image.height && width == image.width) return image;
  std::vector<float> values(size_t(height) * width);
  Image out(height, width, 0, image.channels);
  for (int32_t c = 0; c < image.channels; ++c) {
    resample_bilinear(image, full_window(image, height, width), height, width, false, values.data(), c);
    for (size_t i = 0; i < values.size(); ++i) out.pixels[i * image.channels + c] = uint8_t(std::lround(values[i]));
  }
  return out;
}

Image mirror_horizontal(const Image& image) {
  Image out = image;
  for (int32_t y = 0; y < image.height; ++y) {
    for (int32_t x = 0; x < image.width; ++x) {
      for (int32_t c = 0; c < image.channels; ++c) out.at(y, x, c) = image.at(y, image.width - 1 - x, c);
    }
  }
  return out;
}

Image equalize_histogram(const Image& image) {
  if (image.channels != 1) throw Error("equalize_histogram: expects a grey image");
  std::array<int64_t, 256> histogram{};
  for (const uint8_t v : image.pixels) ++histogram[v];
  std::array<uint8_t, 256> lut{};
  int64_t cdf = 0, cdf_min = 0;
  for (const int64_t count : histogram) {
    if (count) {
      cdf_min = count;
      break;
    }
  }
  const int64_t total = int64_t(image.pixels.size());
  for (int v = 0; v < 256; ++v) {
    cdf += histogram[size_t(v)];
    lut[size_t(v)] =
        total > cdf_min
            ? uint8_t(std::nearbyint(255.0 * double(std::max<int64_t>(0, cdf - cdf_min)) / double(total - cdf_min)))
            : uint8_t(v);
  }
  Image out = image;
  for (auto& v : out.pixels) v = lut[v];
  return out;
}

}  // namespace gaze
