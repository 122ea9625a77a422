#include "datasets/preprocess.h"

#include <algorithm>
#include <cmath>
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
  o.warp = train && a.warp;
  o.roll = train ? a.roll : 0;
  return o;
}

namespace {

constexpr double kPi = 3.14159265358979323846;

// Rotations about one camera axis by `a`, as CameraTurn applies them.
Vec3 yaw_by(const Vec3& v, double a) {
  return {v.x * std::cos(a) + v.z * std::sin(a), v.y, -v.x * std::sin(a) + v.z * std::cos(a)};
}
Vec3 pitch_by(const Vec3& v, double a) {
  return {v.x, v.y * std::cos(a) - v.z * std::sin(a), v.y * std::sin(a) + v.z * std::cos(a)};
}
Vec3 roll_by(const Vec3& v, double a) {
  return {v.x * std::cos(a) - v.y * std::sin(a), v.x * std::sin(a) + v.y * std::cos(a), v.z};
}

}  // namespace

Vec3 CameraTurn::apply(const Vec3& v) const { return roll_by(pitch_by(yaw_by(v, yaw), pitch), roll); }
Vec3 CameraTurn::undo(const Vec3& v) const { return yaw_by(pitch_by(roll_by(v, -roll), -pitch), -yaw); }

CameraTurn camera_turn_for_shift(double shift_x, double shift_y, double roll, double focal_px) {
  // The yaw takes (0, 0, 1) to (-shift_x, 0, hypot(shift_y, focal_px)) (normalised), the pitch
  // then lifts it to (-shift_x, shift_y, focal_px).
  return {-std::atan2(shift_x, std::hypot(shift_y, focal_px)), -std::atan2(shift_y, focal_px), roll};
}

Vec3 turn_gaze(const Vec3& gaze, const CameraTurn& turn) {
  const Vec3 turned = turn.apply({gaze.x, gaze.y, -gaze.z});
  return {turned.x, turned.y, -turned.z};
}

void resample_turned(const Image& image, const SourceWindow& window, const CameraTurn& turn, double focal_px,
                     int32_t height, int32_t width, bool mirror, float* out, int32_t channel) {
  const double cx = (image.width - 1) / 2.0, cy = (image.height - 1) / 2.0;
  for (int32_t y = 0; y < height; ++y) {
    const double row = window.y0 + (y + 0.5) * window.sy - 0.5;
    for (int32_t x = 0; x < width; ++x) {
      const int32_t column = mirror ? width - 1 - x : x;
      const double col = window.x0 + (column + 0.5) * window.sx - 0.5;
      const Vec3 ray = turn.undo({col - cx, cy - row, focal_px});
      // Rays behind the source camera (turns near 90 degrees) sample the nearest edge.
      const double z = std::max(ray.z, 1e-6 * focal_px);
      out[size_t(y) * width + x] =
          sample_bilinear(image, cx + focal_px * ray.x / z, cy - focal_px * ray.y / z, channel);
    }
  }
}

GeometryDraw preprocess_image(const Image& image, const PreprocessOptions& o, uint64_t seed, float* out) {
  SourceWindow w = centred_window(image, o.height, o.width);
  SplitMix rng(seed);
  GeometryDraw draw;
  bool& flip = draw.mirrored;
  double contrast = 1, brightness = 0, gamma = 1, noise = 0;
  const bool turned = o.augment && (o.warp || o.roll > 0);
  if (turned && !(o.focal > 0)) {
    throw Error("preprocess: a camera turn (warp or roll) needs the camera's focal length (focal > 0)");
  }
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
    if (o.roll > 0) draw.roll = rng.uniform(-o.roll, o.roll) * kPi / 180;  // last, for the same reason
  }
  // Grey levels of each channel (a grey image into channel 0), then the same photometric draw on
  // every channel, then ImageNet's per-channel normalisation. A grey image's level is computed
  // once and replicated: the gamma's pow is the loader's costliest per-pixel call.
  const size_t plane = size_t(o.height) * o.width;
  const int32_t channels = image.channels == 3 ? 3 : 1;
  if (turned) {
    const double focal_px = o.focal * image.width;
    const CameraTurn turn = camera_turn_for_shift(draw.shift_x, draw.shift_y, draw.roll, focal_px);
    for (int32_t c = 0; c < channels; ++c)
      resample_turned(image, w, turn, focal_px, o.height, o.width, flip, out + c * plane, c);
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

Vec3 turn_gaze_for_shift(const Vec3& gaze, double shift_x, double shift_y, double focal_px) {
  return turn_gaze(gaze, camera_turn_for_shift(shift_x, shift_y, 0, focal_px));
}

SampleLabel preprocess_sample(const Sample& sample, const PreprocessOptions& options, uint64_t seed, float* out) {
  SampleLabel label = sample.label;
  const GeometryDraw draw = preprocess_image(sample.image, options, seed, out);
  if (options.focal > 0 && (draw.shift_x != 0 || draw.shift_y != 0 || draw.roll != 0)) {
    const CameraTurn turn =
        camera_turn_for_shift(draw.shift_x, draw.shift_y, draw.roll, options.focal * sample.image.width);
    const Vec3 g = turn_gaze({label.gaze[0], label.gaze[1], label.gaze[2]}, turn);
    label.gaze = {float(g.x), float(g.y), float(g.z)};
  }
  if (draw.mirrored) {
    label.gaze[0] = -label.gaze[0];
    label.head[1] = -label.head[1];  // (pitch, yaw): a mirror turns the head the other way
  }
  return label;
}

}  // namespace gaze
