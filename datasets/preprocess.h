// From a decoded eye image to the network's input (no torch).
//
// Geometry: the largest centred window of the input's aspect ratio is resampled
// (resample_bilinear, datasets/image.h) to height x width; augmentation jitters that window by up to `shift` of its
// size, scales it about its centre by 1 +- `scale` (when set) and may mirror it (flip), mirroring
// the gaze label's x with it. Photometry (augmentation
// only): contrast, brightness, gamma, Gaussian noise. Output: 3 x H x W floats, the grey image
// replicated to three channels and normalised with ImageNet's per-channel mean/std, so that
// imported ImageNet weights see the statistics they were trained on. Deterministic per seed.
#pragma once

#include <array>
#include <cstdint>

#include "datasets/dataset.h"
#include "libgaze/config/config.h"

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
// 3*height*width floats to `out`; returns whether the image was mirrored (augmentation only).
// An image already at height x width passes through the resampler unchanged.
bool preprocess_image(const Image& image, const PreprocessOptions& options, uint64_t seed, float* out);

// preprocess_image for a labelled sample; returns its label as the image now shows it (gaze x
// and head yaw mirrored with the image).
SampleLabel preprocess_sample(const Sample& sample, const PreprocessOptions& options, uint64_t seed, float* out);

}  // namespace gaze
