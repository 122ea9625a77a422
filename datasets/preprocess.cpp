#include "datasets/preprocess.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "libgaze/core/error.h"
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
  // Personalisation's augmented views keep their labels (and so their geometry), as the kernel's do.
  o.focal = train ? a.focal : 0;
  o.tilt = {a.tilt[0] * M_PI / 180, a.tilt[1] * M_PI / 180};
  o.warp = train && a.warp;
  o.roll = train ? a.roll : 0;
  return o;
}

void resample_turned(const Image& image, const SourceWindow& window, const CameraTurn& turn, double focal_px,
                     int32_t height, int32_t width, bool mirror, float* out, int32_t channel) {
  if (channel < 0 || channel >= image.channels) {
    throw Error("resample_turned: channel " + std::to_string(channel) + " of a " + std::to_string(image.channels) +
                "-channel image");
  }
  const double cx = (image.width - 1) / 2.0, cy = (image.height - 1) / 2.0;
  // The undone turn as a matrix (its columns: where the axes go), once per image, not per pixel.
  const Vec3 ux = turn.undo({1, 0, 0}), uy = turn.undo({0, 1, 0}), uz = turn.undo({0, 0, 1});
  for (int32_t y = 0; y < height; ++y) {
    const double dy = cy - (window.y0 + (y + 0.5) * window.sy - 0.5);
    const Vec3 row{uy.x * dy + uz.x * focal_px, uy.y * dy + uz.y * focal_px, uy.z * dy + uz.z * focal_px};
    for (int32_t x = 0; x < width; ++x) {
      const int32_t column = mirror ? width - 1 - x : x;
      const double dx = window.x0 + (column + 0.5) * window.sx - 0.5 - cx;
      const Vec3 ray{row.x + ux.x * dx, row.y + ux.y * dx, row.z + ux.z * dx};
      const double z = std::max(ray.z, 1e-6 * focal_px);  // behind the camera: the edge it points to
      out[size_t(y) * width + x] =
          sample_bilinear(image, cx + focal_px * ray.x / z, cy - focal_px * ray.y / z, channel);
    }
  }
}

namespace {

// The camera turn a draw stands for (image and label share it).
CameraTurn draw_turn(const GeometryDraw& draw, const PreprocessOptions& o, int32_t image_width) {
  return camera_turn_for_shift(draw.shift_x, draw.shift_y, draw.roll, o.focal * image_width);
}

}  // namespace

GeometryDraw preprocess_image(const Image& image, const PreprocessOptions& o, uint64_t seed, float* out) {
  SourceWindow w = centred_window(image, o.height, o.width);
  SplitMix rng(seed);
  GeometryDraw draw;
  bool& flip = draw.mirrored;
  double contrast = 1, brightness = 0, gamma = 1, noise = 0;
  const bool turned = o.augment && o.warp;
  if (turned && !(o.focal > 0)) throw Error("preprocess: warp turns the camera: needs its focal length (focal > 0)");
  if (o.augment && o.roll > 0 && !o.warp) throw Error("preprocess: roll turns the camera through the warp: needs warp");
  if (o.augment) {
    draw.shift_y = rng.uniform(-o.shift, o.shift) * w.sy * o.height;
    draw.shift_x = rng.uniform(-o.shift, o.shift) * w.sx * o.width;
    if (!turned) {
      w.y0 += draw.shift_y;
      w.x0 += draw.shift_x;
    }
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
    // Last too, so a run without it draws the same geometry (the noise draws after it do move).
    if (o.roll > 0) draw.roll = rng.uniform(-o.roll, o.roll) * M_PI / 180;
  }
  // Grey levels of each channel (a grey image into channel 0), then the same photometric draw on
  // every channel, then ImageNet's per-channel normalisation. A grey image's level is computed
  // once and replicated: the gamma's pow is the loader's costliest per-pixel call.
  const size_t plane = size_t(o.height) * o.width;
  const int32_t channels = image.channels == 3 ? 3 : 1;
  if (turned) {
    const CameraTurn turn = draw_turn(draw, o, image.width);
    for (int32_t c = 0; c < channels; ++c)
      resample_turned(image, w, turn, o.focal * image.width, o.height, o.width, flip, out + c * plane, c);
  } else {
    for (int32_t c = 0; c < channels; ++c) resample_bilinear(image, w, o.height, o.width, flip, out + c * plane, c);
  }
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

SampleLabel preprocess_sample(const Sample& sample, const PreprocessOptions& options, uint64_t seed, float* out) {
  SampleLabel label = sample.label;
  const GeometryDraw draw = preprocess_image(sample.image, options, seed, out);
  if (options.focal > 0 && (draw.shift_x != 0 || draw.shift_y != 0 || draw.roll != 0)) {
    const Vec3 g = turn_gaze({label.gaze[0], label.gaze[1], label.gaze[2]},
                             draw_turn(draw, options, sample.image.width), options.tilt);
    label.gaze = {float(g.x), float(g.y), float(g.z)};
  }
  if (draw.mirrored) {
    label.gaze[0] = -label.gaze[0];
    label.head[1] = -label.head[1];  // (pitch, yaw): a mirror turns the head the other way
  }
  return label;
}

}  // namespace gaze
