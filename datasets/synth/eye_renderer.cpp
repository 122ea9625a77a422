#include "datasets/synth/eye_renderer.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "datasets/camera_turn.h"

namespace gaze {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kCorneaIndex = 1.376;
constexpr double kLedRingRadius = 12.0;  // mm around the camera

Vec3 add(const Vec3& a, const Vec3& b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
Vec3 sub(const Vec3& a, const Vec3& b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }

double hash01(uint64_t seed, int64_t x, int64_t y) {
  const uint64_t h = hash64(seed ^ hash64(uint64_t(x) * 0x9e3779b97f4a7c15ULL + uint64_t(y) * 0xc2b2ae3d27d4eb4fULL));
  return (h >> 11) * 0x1.0p-53;
}

double smoothstep(double e0, double e1, double x) {
  const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
  return t * t * (3 - 2 * t);
}

// Smooth value noise in [0,1] and a 3-octave sum of it.
double value_noise(uint64_t seed, double x, double y) {
  const double fx = std::floor(x), fy = std::floor(y);
  const int64_t ix = int64_t(fx), iy = int64_t(fy);
  const double tx = smoothstep(0, 1, x - fx), ty = smoothstep(0, 1, y - fy);
  const double a = hash01(seed, ix, iy), b = hash01(seed, ix + 1, iy);
  const double c = hash01(seed, ix, iy + 1), d = hash01(seed, ix + 1, iy + 1);
  return (a + (b - a) * tx) + ((c + (d - c) * tx) - (a + (b - a) * tx)) * ty;
}

double fbm(uint64_t seed, double x, double y) {
  return (0.5 * value_noise(seed, x, y) + 0.25 * value_noise(seed + 1, 2 * x, 2 * y) +
          0.125 * value_noise(seed + 2, 4 * x, 4 * y)) /
         0.875;
}

// Nearest intersection distance of the ray t*d (from the origin) with a sphere; <0 if none.
double hit_sphere(const Vec3& d, const Vec3& centre, double radius) {
  const double b = dot(d, centre);
  const double disc = b * b - (dot(centre, centre) - radius * radius);
  if (disc < 0) return -1;
  return b - std::sqrt(disc);
}

// The iris seen through the cornea: radial fibres, a collarette, crypts, a dark limbal ring.
double iris_intensity(const EyeParticipant& p, double rho_n, double theta) {
  const uint64_t s = p.texture_seed;
  const double f1 = 17 + double(s % 13), f2 = 29 + double((s >> 8) % 17), f3 = 53 + double((s >> 16) % 19);
  double fibres = 0.45 * std::sin(f1 * theta + 3.0 * rho_n + double(s % 7)) +
                  0.35 * std::sin(f2 * theta - 5.0 * rho_n + double((s >> 4) % 11)) +
                  0.20 * std::sin(f3 * theta + 9.0 * rho_n);
  const double grain = fbm(s + 11, 6 * rho_n, 2.5 * (theta + kPi));
  const double collarette = 0.18 * std::exp(-std::pow((rho_n - 0.42) / 0.06, 2));
  const double crypts = grain > 0.68 ? -0.35 * (grain - 0.68) / 0.32 : 0.0;
  double v = p.iris_brightness * (0.78 + 0.12 * fibres + 0.25 * (grain - 0.5) + collarette + crypts);
  v *= 1.0 - 0.55 * smoothstep(0.82, 1.0, rho_n);  // limbal ring
  return v;
}

// Image-plane (up-positive) eyelid curves around the projected eye, in eye radii.
struct Lids {
  double upper, lower, width;
  double upper_at(double x) const {
    const double q = (x / width) * (x / width);
    return upper * (1 - q) - 0.12 * q;
  }
  double lower_at(double x) const {
    const double q = (x / width) * (x / width);
    return lower * (1 - q) - 0.12 * q;
  }
  bool open_at(double x, double y) const { return std::fabs(x) < width && y > lower_at(x) && y < upper_at(x); }
};

}  // namespace

EyeParticipant sample_participant(uint64_t seed, int64_t id, const EyePopulation& population) {
  SplitMix r(seed_mix(seed, stream::kParticipant, uint64_t(id)));
  // Each draw is a deviation from its mean, scaled by the population's spread; the draws are
  // taken in the same order whatever the population, so person i of a held-out condition is
  // person i of the demo, only further from (or nearer to) the mean.
  const double spread = population.anatomy_spread;
  const auto normal = [&](double mean, double sd) { return mean + spread * sd * r.normal(); };
  const auto uniform = [&](double lo, double hi) {
    const double x = r.uniform(lo, hi);
    return spread == 1.0 ? x : (lo + hi) / 2 + spread * (x - (lo + hi) / 2);
  };
  EyeParticipant p;
  p.id = id;
  // Clamped so that a wide spread still draws an eye the renderer can draw.
  p.eyeball_radius = std::clamp(normal(12.0, 0.35), 10.5, 13.5);
  p.cornea_radius = std::clamp(normal(7.8, 0.25), 6.8, 8.8);
  // The limbus, where the cornea sphere leaves the eyeball, is drawn (about 11.7 mm across in
  // adults) and the cornea placed so that the two spheres meet there. Drawing the cornea's
  // offset instead let a small cornea sink into the eyeball: some people had a 1.5 mm iris,
  // smaller than their pupil.
  const double limbus = std::clamp(normal(5.85, 0.2), 5.0, 6.4);                      // < the smallest cornea radius
  const double a = std::sqrt(p.eyeball_radius * p.eyeball_radius - limbus * limbus);  // centre to limbus plane
  p.cornea_offset = a - std::sqrt(p.cornea_radius * p.cornea_radius - limbus * limbus);
  p.iris_radius = limbus - 0.1;  // the iris ends just inside the limbus
  p.iris_depth = a - 0.9;
  p.pupil_radius = std::clamp(uniform(1.4, 2.4), 1.0, 0.6 * p.iris_radius);
  p.kappa_yaw = normal(-5.0, 2.0) * kPi / 180;  // nasal: toward the wearer's right
  p.kappa_pitch = normal(1.5, 1.5) * kPi / 180;
  p.eye_distance = r.uniform(population.eye_distance_min, population.eye_distance_max);
  p.eye_offset_x = r.uniform(-population.eye_offset, population.eye_offset);
  p.eye_offset_y = r.uniform(-population.eye_offset, population.eye_offset);
  p.lid_open = std::clamp(uniform(0.48, 0.75), 0.3, 0.95);
  p.lid_follow = std::max(0.1, uniform(0.4, 0.7));
  p.lid_width = std::clamp(uniform(1.25, 1.5), 1.1, 1.8);
  p.lower_lid = std::clamp(uniform(0.35, 0.5), 0.2, 0.65);
  p.skin = std::clamp(uniform(120, 175), 60.0, 235.0);
  p.sclera = std::clamp(uniform(175, 215), 120.0, 250.0);
  p.iris_brightness = r.uniform(population.iris_brightness_min, population.iris_brightness_max);
  p.lash_density = std::clamp(uniform(0.3, 0.9), 0.0, 1.0);
  p.texture_seed = r.next();
  p.camera_yaw = population.camera_yaw_deg * kPi / 180;
  p.camera_pitch = population.camera_pitch_deg * kPi / 180;
  p.leds = population.leds;
  return p;
}

Vec3 optical_axis(const EyeParticipant& p, const Vec3& visual_axis) {
  const YawPitch v = aria_angles(visual_axis);
  return aria_direction({v.yaw - p.kappa_yaw, v.pitch - p.kappa_pitch});
}

double synth_focal_px(double width) { return 0.55 * width * 32.0 / (2 * 12.0); }

Image render_eye(const EyeParticipant& p, const EyeFrameState& s, int32_t height, int32_t width, bool mirror) {
  Vec3 g = normalized(s.visual_axis);
  if (mirror) g.x = -g.x;  // render the mirrored left eye, flip the image at the end
  const Vec3 o_label = optical_axis(p, g);
  const Vec3 o = CameraTilt{p.camera_yaw, p.camera_pitch}.apply({o_label.x, o_label.y, -o_label.z});  // label -> camera
  const Vec3 eye{p.eye_offset_x + s.slip_x, p.eye_offset_y + s.slip_y, p.eye_distance + s.slip_z};
  const Vec3 cornea = add(eye, scale(o, p.cornea_offset));
  const Vec3 iris_centre = add(eye, scale(o, p.iris_depth));
  const double pupil = p.pupil_radius * s.pupil_scale;
  const double R = p.eyeball_radius;
  // Iris-plane axes for the texture angle.
  const Vec3 e1 = normalized(cross(o, {0, 1, 0}));
  const Vec3 e2 = cross(e1, o);

  const double f = synth_focal_px(width);
  const double cx = width / 2.0, cy = height / 2.0;
  const double eye_u = f * eye.x / eye.z, eye_v = f * eye.y / eye.z, eye_px = f * R / eye.z;
  const double cr = std::cos(s.roll), sr = std::sin(s.roll);

  // Lids follow vertical gaze (they rise when looking up) and close when blinking.
  const double look_up = std::asin(std::clamp(g.y, -1.0, 1.0));
  Lids lids{p.lid_open + p.lid_follow * look_up, -p.lower_lid + 0.25 * look_up, p.lid_width};
  lids.upper = lids.upper * (1 - s.blink) + (lids.lower + 0.02) * s.blink;

  std::vector<float> buffer(size_t(height) * width);
  for (int32_t v = 0; v < height; ++v) {
    for (int32_t u = 0; u < width; ++u) {
      const double du = u + 0.5 - cx, dv = cy - (v + 0.5);
      const double px = du * cr - dv * sr, py = du * sr + dv * cr;  // camera roll
      const double xn = (px - eye_u) / eye_px, yn = (py - eye_v) / eye_px;
      double value;
      if (lids.open_at(xn, yn)) {
        const Vec3 d = normalized({px / f, py / f, 1.0});
        const double t_eye = hit_sphere(d, eye, R);
        const double t_cornea = hit_sphere(d, cornea, p.cornea_radius);
        const Vec3 pc = scale(d, t_cornea);
        const bool on_cornea = t_cornea > 0 && norm(sub(pc, eye)) >= R - 1e-9 && (t_eye < 0 || t_cornea <= t_eye);
        if (on_cornea) {
          // Refract into the cornea and continue to the iris plane.
          const Vec3 n = scale(sub(pc, cornea), 1.0 / p.cornea_radius);
          const double eta = 1.0 / kCorneaIndex, cosi = -dot(n, d);
          const double k = 1 - eta * eta * (1 - cosi * cosi);
          const Vec3 t = normalized(add(scale(d, eta), scale(n, eta * cosi - std::sqrt(std::max(0.0, k)))));
          const double along = dot(t, o);
          const Vec3 q = add(pc, scale(t, dot(sub(iris_centre, pc), o) / (along == 0 ? 1e-9 : along)));
          const Vec3 rel = sub(q, iris_centre);
          const double rho = norm(rel);
          if (rho < pupil) {
            value = 14 + 8 * value_noise(p.texture_seed + 5, rel.x * 4, rel.y * 4);
          } else if (rho < p.iris_radius) {
            value = iris_intensity(p, rho / p.iris_radius, std::atan2(dot(rel, e2), dot(rel, e1)));
            value *= 1.0 - 0.5 * smoothstep(pupil + 0.25, pupil, rho);  // pupil margin
          } else {
            value = 0.8 * p.sclera;
          }
          value += 6;  // tear film sheen
        } else if (t_eye > 0) {
          const Vec3 pe = scale(d, t_eye);
          const Vec3 n = scale(sub(pe, eye), 1.0 / R);
          const double lambert = std::max(0.0, -dot(n, d));
          // Thin vessels: the iso-line of a noise field.
          const double field = fbm(p.texture_seed + 21, pe.x * 0.6, pe.y * 0.6 + pe.z * 0.2);
          const double vessel = 1.0 - smoothstep(0.0, 0.025, std::fabs(field - 0.5));
          value = p.sclera * (0.5 + 0.5 * lambert) * (1.0 - 0.18 * vessel);
        } else {
          value = 0.55 * p.skin;  // the caruncle / socket in the eye corners
        }
        // Shadow of the upper lid and lashes on the eye.
        value *= 1.0 - 0.45 * std::exp(-(lids.upper_at(xn) - yn) / 0.07);
      } else {
        // Skin, with a crease above the lid and lashes hanging from the upper lid margin.
        value = p.skin * (0.82 + 0.3 * fbm(p.texture_seed + 31, xn * 2.5 + 7, yn * 2.5 + 3));
        const double above = yn - lids.upper_at(xn);
        value *= 1.0 - 0.22 * std::exp(-std::pow((above - 0.38) / 0.09, 2));
        if (above > 0 && above < 0.22 && std::fabs(xn) < lids.width) {
          const double strand = value_noise(p.texture_seed + 41, xn * 70 * p.lash_density, above * 4);
          const double density = p.lash_density * (1 - above / 0.22) * (1 - std::pow(xn / lids.width, 4));
          if (strand > 0.55) value *= 1.0 - 0.85 * density * smoothstep(0.55, 0.75, strand);
        }
        if (std::fabs(yn - lids.lower_at(xn)) < 0.04 && std::fabs(xn) < lids.width) value *= 0.8;
      }
      buffer[size_t(v) * width + u] = float(value);
    }
  }

  // Corneal glints: mirror points of the LED ring (camera at the origin) on the cornea sphere.
  const double glint_sigma = 0.9 * width / 320.0;
  for (int k = 0; k < p.leds; ++k) {
    const double angle = 2 * kPi * k / p.leds + 0.3;
    const Vec3 led{kLedRingRadius * std::cos(angle), kLedRingRadius * std::sin(angle), 0};
    Vec3 n = normalized(add(normalized(sub(led, cornea)), normalized(scale(cornea, -1))));
    Vec3 point = add(cornea, scale(n, p.cornea_radius));
    for (int it = 0; it < 4; ++it) {
      n = normalized(add(normalized(sub(led, point)), normalized(scale(point, -1))));
      point = add(cornea, scale(n, p.cornea_radius));
    }
    if (norm(sub(point, eye)) < R) continue;  // the reflection would be on the sclera: none
    const double gx = f * point.x / point.z, gy = f * point.y / point.z;
    if (!lids.open_at((gx - eye_u) / eye_px, (gy - eye_v) / eye_px)) continue;
    // Undo the roll to get pixel coordinates.
    const double du = gx * cr + gy * sr, dv = -gx * sr + gy * cr;
    const double gu = cx + du - 0.5, gv = cy - dv - 0.5;
    const int32_t r = int32_t(std::ceil(3 * glint_sigma));
    for (int32_t y = int32_t(gv) - r; y <= int32_t(gv) + r + 1; ++y) {
      for (int32_t x = int32_t(gu) - r; x <= int32_t(gu) + r + 1; ++x) {
        if (x < 0 || y < 0 || x >= width || y >= height) continue;
        const double d2 = (x - gu) * (x - gu) + (y - gv) * (y - gv);
        buffer[size_t(y) * width + x] += float(230 * std::exp(-d2 / (2 * glint_sigma * glint_sigma)));
      }
    }
  }

  // Optics and sensor: blur, vignetting, exposure, noise, 8-bit quantisation.
  if (s.blur_sigma > 0.3) {
    const int32_t r = int32_t(std::ceil(2.5 * s.blur_sigma));
    std::vector<float> kernel(2 * r + 1);
    float total = 0;
    for (int32_t i = -r; i <= r; ++i)
      total += kernel[i + r] = float(std::exp(-i * i / (2 * s.blur_sigma * s.blur_sigma)));
    for (auto& k : kernel) k /= total;
    std::vector<float> tmp(buffer.size());
    for (int32_t y = 0; y < height; ++y)
      for (int32_t x = 0; x < width; ++x) {
        float acc = 0;
        for (int32_t i = -r; i <= r; ++i)
          acc += kernel[i + r] * buffer[size_t(y) * width + std::clamp(x + i, 0, width - 1)];
        tmp[size_t(y) * width + x] = acc;
      }
    for (int32_t y = 0; y < height; ++y)
      for (int32_t x = 0; x < width; ++x) {
        float acc = 0;
        for (int32_t i = -r; i <= r; ++i)
          acc += kernel[i + r] * tmp[size_t(std::clamp(y + i, 0, height - 1)) * width + x];
        buffer[size_t(y) * width + x] = acc;
      }
  }
  SplitMix noise(s.noise_seed);
  const double light_x = s.light_gradient * std::cos(s.light_angle),
               light_y = s.light_gradient * std::sin(s.light_angle);
  Image image(height, width);
  for (int32_t y = 0; y < height; ++y) {
    for (int32_t x = 0; x < width; ++x) {
      const double rx = (x + 0.5 - cx) / cx, ry = (y + 0.5 - cy) / cy;
      const double light = 1.0 + light_x * rx + light_y * ry;
      double v = buffer[size_t(y) * width + x] * s.exposure * light * (1.0 - 0.22 * (rx * rx + ry * ry) / 2);
      v += s.noise_sigma * noise.normal();
      image.at(y, x) = uint8_t(std::clamp(std::lround(v), 0L, 255L));
    }
  }
  return mirror ? mirror_horizontal(image) : image;
}

}  // namespace gaze
