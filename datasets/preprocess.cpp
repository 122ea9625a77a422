#include "datasets/preprocess.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "libgaze/core/random.h"

namespace gaze {

PreprocessOptions preprocess_options(const Config& config, bool train) {
  PreprocessOptions o;
  o.height = int32_t(config.data.input_size[0]);
  o.width = int32_t(config.data.input_size[1]);
  o.augment = train && config.train.augment;
  o.flip = train && config.train.flip;
  const AugmentConfig& a = config.train.augmentation;
  o.shift = a.shift;
  o.scale = a.scale;
  o.brightness = a.brightness;
  o.contrast = a.contrast;
  o.gamma = a.gamma;
  o.noise = a.noise;
  o.focal = train ? a.focal : 0;  // personalisation's augmented views keep their labels, as the kernel's do
  return o;
}

GeometryDraw preprocess_image(const Image& image, const PreprocessOptions& o, uint64_t seed, float* out) {
  SourceWindow w = centred_window(image, o.height, o.width);
  SplitMix rng(seed);
  GeometryDraw draw;
  bool& flip = draw.mirrored;
  double contrast = 1, brightness = 0, gamma = 1, noise = 0;
  if (o.augment) {
    draw.shift_y = rng.uniform(-o.shift, o.shift) * w.sy * o.height;
    draw.shift_x = rng.uniform(-o.shift, o.shift) * w.sx * o.width;
    w.y0 += draw.shift_y;
    w.x0 += draw.shift_x;
    flip = o.flip && rng.uniform() < 0.5;
    contrast = 1 + rng.uniform(-o.contrast, o.contrast);
    brightness = 255 * rng.uniform(-o.brightness, o.brightness);
    gamma = std::exp(rng.uniform(-o.gamma, o.gamma));
    noise = rng.uniform(0, o.noise);
    // Drawn last and only when asked for, so the other draws are those of runs without zoom.
    if (o.scale > 0) {
      const double zoom = 1 + rng.uniform(-o.scale, o.scale);
      w.y0 += (1 - zoom) * w.sy * o.height / 2;
      w.x0 += (1 - zoom) * w.sx * o.width / 2;
      w.sy *= zoom;
      w.sx *= zoom;
    }
  }
  // Grey levels of each channel (a grey image into channel 0), then the same photometric draw on
  // every channel, then ImageNet's per-channel normalisation. A grey image's level is computed
  // once and replicated: the gamma's pow is the loader's costliest per-pixel call.
  const size_t plane = size_t(o.height) * o.width;
  const int32_t channels = image.channels == 3 ? 3 : 1;
  for (int32_t c = 0; c < channels; ++c) resample_bilinear(image, w, o.height, o.width, flip, out + c * plane, c);
  for (size_t i = 0; i < plane; ++i) {
    const double noise_draw = o.augment ? noise * rng.normal() : 0.0;
    float level[3];
    for (int32_t c = 0; c < channels; ++c) {
      float v = out[c * plane + i];
      if (o.augment) {
        v = float(255.0 * std::pow(std::clamp(v / 255.0, 0.0, 1.0), gamma));
        v = float((v - 128.0) * contrast + 128.0 + brightness + noise_draw);
        v = std::clamp(v, 0.0f, 255.0f);
      }
      level[c] = v;
    }
    for (int32_t c = 0; c < 3; ++c)
      out[c * plane + i] = (level[channels == 3 ? c : 0] / 255.0f - kInputMean[c]) / kInputStd[c];
  }
  return draw;
}

Vec3 turn_gaze_for_shift(const Vec3& gaze, double shift_x, double shift_y, double focal_px) {
  // In the camera's frame (z along its view, x right, y up: the label with z negated), turn
  // about y, then about x, by the angles that take the view axis (0, 0, 1) to
  // (-shift_x, shift_y, focal_px) exactly.
  const double b = -std::atan2(shift_x, std::hypot(shift_y, focal_px)), p = -std::atan2(shift_y, focal_px);
  const Vec3 c{gaze.x, gaze.y, -gaze.z};
  const Vec3 yawed{c.x * std::cos(b) + c.z * std::sin(b), c.y, -c.x * std::sin(b) + c.z * std::cos(b)};
  const Vec3 turned{yawed.x, yawed.y * std::cos(p) - yawed.z * std::sin(p),
                    yawed.y * std::sin(p) + yawed.z * std::cos(p)};
  return {turned.x, turned.y, -turned.z};
}

SampleLabel preprocess_sample(const Sample& sample, const PreprocessOptions& options, uint64_t seed, float* out) {
  SampleLabel label = sample.label;
  const GeometryDraw draw = preprocess_image(sample.image, options, seed, out);
  if (options.focal > 0 && (draw.shift_x != 0 || draw.shift_y != 0)) {
    const Vec3 g = turn_gaze_for_shift({label.gaze[0], label.gaze[1], label.gaze[2]}, draw.shift_x, draw.shift_y,
                                       options.focal * sample.image.width);
    label.gaze = {float(g.x), float(g.y), float(g.z)};
  }
  if (draw.mirrored) {
    label.gaze[0] = -label.gaze[0];
    label.head[1] = -label.head[1];  // (pitch, yaw): a mirror turns the head the other way
  }
  return label;
}

}  // namespace gaze
