// From a decoded eye image to the network's input (no torch).
//
// Geometry: the largest centred window of the input's aspect ratio is resampled
// (resample_bilinear, datasets/image.h) to height x width; augmentation jitters that window by up to `shift` of its
// size, scales it about its centre by 1 +- `scale` (when set) and may mirror it (flip), mirroring
// the gaze label's x with it. With `focal` (the camera's focal length in image widths) the shift
// also turns the gaze label, as moving the eye in the frame does (preprocess_sample), in the
// camera's frame (`tilt`: its tilt against the label frame). With `warp` the shift is not a
// translation but the camera turn it stands for (camera_turn.h), `roll` adds a turn about the
// view axis: the image is resampled through that rotation (a homography about the image centre,
// the principal point) and the label turned by it, so an eye is seen as a camera turned so
// would see it (to the renderer's own floor; synth_test). Photometry (augmentation only): contrast, brightness, gamma,
// Gaussian noise. Output: 3 x H x W floats, the grey image replicated to three channels and normalised with ImageNet's
// per-channel mean/std, so that imported ImageNet weights see the statistics they were trained on. Deterministic per
// seed.
#pragma once

#include <array>
#include <cstdint>

#include "datasets/camera_turn.h"
#include "datasets/dataset.h"
#include "libgaze/config/config.h"
#include "libgaze/metrics/gaze_vector.h"

namespace gaze {

struct PreprocessOptions {
  int32_t height = 96, width = 128;
  bool augment = false;
  double brightness = 0.1;  // +/- fraction of full scale
  double contrast = 0.15;   // +/- relative
  double gamma = 0.15;      // +/- in log space
  double noise = 2.0;       // grey levels, standard deviation (upper bound when augmenting)
  double shift = 0.04;      // +/- fraction of the window
  double scale = 0.0;       // +/- relative window size (0: no zoom, and no draw for it)
  bool flip = false;        // random horizontal mirror (with the label)
  double focal = 0;         // focal length / image width: a shift turns the label (0: it stays)
  CameraTilt tilt;          // the camera against the label frame: the label turns in the camera's frame
  bool warp = false;        // the shift as the camera turn it stands for (needs focal)
  double roll = 0;          // +/- degrees the camera turns about its view axis (needs warp; 0: no draw)
};

// What one augmentation draw did to the geometry: the shift in source pixels (x right, y down:
// the window's move, or with warp the camera turn's, camera_turn_for_shift), the camera's roll
// (radians) and whether the output is mirrored.
struct GeometryDraw {
  double shift_x = 0, shift_y = 0;
  double roll = 0;
  bool mirrored = false;
};

// The options a config asks for: training (augmentation per train.augment, train.augmentation)
// or evaluation (none).
PreprocessOptions preprocess_options(const Config& config, bool train);

// ImageNet's per-channel statistics the grey image is normalised with (the exporter folds them
// into the 1-channel stem).
constexpr float kInputMean[3] = {0.485f, 0.456f, 0.406f};
constexpr float kInputStd[3] = {0.229f, 0.224f, 0.225f};

// The one path from an eye image to the network input, used by training batches, evaluation,
// Python's predict, the quantiser's calibration and the export comparison: writes
// 3*height*width floats to `out`; returns the geometry drawn (none without augmentation).
// An image already at height x width passes through the resampler unchanged (without a warp).
GeometryDraw preprocess_image(const Image& image, const PreprocessOptions& options, uint64_t seed, float* out);

// One channel of `image` as the camera turned by `turn` sees it through `window` (SourceWindow's
// pixel convention): each output pixel's ray (focal length `focal_px`, principal point at the
// image centre) is undone into the source camera's ray, projected and sampled (sample_bilinear,
// edge-clamped; a ray behind the camera samples the edge its direction points to). `mirror`
// flips the output left-right, as resample_bilinear's does. Without a turn it is
// resample_bilinear, up to rounding.
void resample_turned(const Image& image, const SourceWindow& window, const CameraTurn& turn, double focal_px,
                     int32_t height, int32_t width, bool mirror, float* out, int32_t channel = 0);

// preprocess_image for a labelled sample; returns its label as the image now shows it: with
// `focal` > 0 turned by the draw's camera turn in the camera's frame (turn_gaze with `tilt`), then
// gaze x and head yaw mirrored with the image. The head pose is not turned: it is zero on the
// near-eye data a turn is allowed on (MPII's normalised data refuses `focal`).
SampleLabel preprocess_sample(const Sample& sample, const PreprocessOptions& options, uint64_t seed, float* out);

}  // namespace gaze
