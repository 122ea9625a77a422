// Post-training quantisation of a trained student into a QuantizedNet (SPEC §4).
//
// calibrate() runs a float "shadow" of the model's forward pass — the same modules in the same
// order, laid out channels-last like the kernel — over calibration frames and records every
// activation the integer network quantises (observers: exact min/max, plus a deterministic
// subsample for percentiles). quantize_model() turns weights and those ranges into integers:
//   - int8 symmetric per-output-channel weights, int32 biases in the accumulator's scale; 16-bit
//     weights (two int8 planes) for the adapters' down projections and the head, where int8
//     weights cost ~0.1 degree each (their outputs are amplified by BatchNorm / are the answer);
//   - int16 symmetric activations everywhere, the observed range x 1.25 of headroom; pointwise
//     layers named in options.int8_layers take int8 inputs instead (symmetric, [-127, 127], the
//     observed range without headroom), chosen per layer by choose_int8_layers();
//   - bias correction (Nagel et al., "Data-Free Quantization", 2019): each layer's bias absorbs
//     the mean output shift its weight rounding causes, E[x] . (W - W_q), with E[x] measured per
//     input channel during calibration, per tap for the depthwise 7x7 convs (a border tap sees
//     the zero padding: on a 6x8 or 3x4 map most of them do);
//   - the adapters' BatchNorm folded into their down projection; the 3-channel stem folded to 1
//     channel, ImageNet normalisation and the /255 included, so the kernel eats raw pixels;
//   - LayerNorm/GRN affine parameters as per-channel multipliers, GELU as an interpolated table.
// Frames are grey images already at the kernel's input size (qnet_resample / gz_resample_u8).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "export/qnet.h"
#include "libgaze/models/gaze_net.h"

namespace gaze {

struct ActivationRange {
  float min = 0, max = 0;            // observed extremes
  float low = 0, high = 0;           // what the int16 scale covers (percentile or min/max)
  std::vector<double> channel_mean;  // mean of each channel (last axis): for bias correction
  // With QuantizeOptions::weight_rounding "gptq", for an activation that feeds a backbone
  // pointwise layer (a block's norm -> pw1, grn -> pw2, a downsample's norm -> its 2x2 conv, as
  // (ky, kx, c) patches): the mean of x x^T over the layer's input rows, [in][in] row-major.
  std::vector<double> gram;
  // For a block's input ("s.b.in", the depthwise 7x7 conv's input, zero-padded by 3): the mean
  // of what each tap sees, [C][49] (taps in (ky, kx) order; near the border a tap sees the
  // padding's zeros, so this is not the channel mean: the depthwise bias correction), and with
  // "gptq" each channel's mean p p^T over its 7x7 patches, [C][49][49].
  std::vector<double> tap_mean, tap_gram;
};
using ActivationRanges = std::map<std::string, ActivationRange>;

struct QuantizeOptions {
  int32_t input_h = 96, input_w = 128;
  std::string observer = "minmax";  // minmax | percentile
  double percentile = 99.99;
  std::set<std::string> int8_layers;  // QuantizedNet::int8_candidates() names fed int8 inputs
  // Stages whose blocks keep their GELU outputs as int8 (QBlock::hidden_s8; every block's pw2
  // must be in int8_layers): half the kernel memory for them, so a large input's stage 1 can keep
  // every row instead of recomputing pw1 + GELU (export.hidden_s8, int8_hidden_stages()).
  std::set<int32_t> int8_hidden_stages;
  // How the backbone's int8 weights are rounded: "gptq" (each column's rounding error spread
  // over the columns not yet rounded through the inverse of the input's Gram matrix, as GPTQ
  // does: the pointwise layers over their input channels, each depthwise 7x7 channel over its 49
  // taps; calibrate() then measures those matrices), or "nearest". Adapters and the head round
  // to nearest either way, as the device rounds a user's.
  std::string weight_rounding = "gptq";
};

using Frame = std::vector<uint8_t>;  // input_h * input_w grey pixels

// The float model's input for frames [begin, end): [n, 3, h, w] through preprocess_image (the
// path training and evaluation use; frames already at h x w pass its resampler unchanged).
at::Tensor frames_to_batch(const std::vector<Frame>& frames, size_t begin, size_t end, int32_t h, int32_t w);

// Throws, naming the key, unless the exported kernel and the ONNX graph compute `config`'s
// head: key points (model.head.keypoints) are a training-side experiment, not lowered yet.
void require_exportable_head(const ModelConfig& config);

ActivationRanges calibrate(GazeNet& model, const std::vector<Frame>& frames, const QuantizeOptions& options);

QuantizedNet quantize_model(GazeNet& model, const ActivationRanges& ranges, const QuantizeOptions& options);

// A user's personalised model quantised against a fixed base: every activation range is the
// base's except those inside the last stage's adapters, which are measured on `frames` with the
// user's adapters, and the channel means of the head's input (its bias correction; the scale
// stays the base's). The result differs from `base_ranges`' network only in those adapters and
// the head's Linear: exactly what dftgaze_set_user() swaps in.
ActivationRanges user_adapter_ranges(GazeNet& user_model, const std::vector<Frame>& frames,
                                     const ActivationRanges& base_ranges, const QuantizeOptions& options);

// The float model's activations for one frame, channels-last, by calibration name ("0.1.pw1",
// "residual.2", ...; for names seen several times, the last): compare with QTrace::blocks.
std::map<std::string, at::Tensor> float_activations(GazeNet& model, const Frame& frame, const QuantizeOptions& options);

// The float model's prediction for one frame: unit direction and log-scale, like qnet_predict.
std::array<float, 4> float_predict(GazeNet& model, const Frame& frame, int32_t h, int32_t w);

// Float vs fixed point on frames: mean / max angle between the predicted directions (degrees)
// and mean |difference| of the log-scale.
struct QuantizationError {
  double mean_deg = 0, max_deg = 0, mean_log_scale = 0;
  size_t frames = 0;
};
QuantizationError compare_float_fixed(GazeNet& model, const QuantizedNet& net, const std::vector<Frame>& frames);

// The sensitivity pass behind export.int8=auto. Every candidate layer is made int8 alone and
// the float vs fixed-point mean angle measured on `frames` (cost: that angle minus the all-16-bit
// one); candidates are ranked by cost per int8 multiply-accumulate, and the longest prefix of
// the ranking whose combined angle stays within the bound is chosen (found by bisection, every
// accepted prefix measured). The bound: the all-16-bit angle + budget_deg, and never above
// max_deg (unless the all-16-bit angle already is: then only layers that add nothing). Choose
// on frames other than the ones the export reports on.
struct Int8Choice {
  std::vector<std::string> layers;                      // chosen, best ranked first
  std::vector<std::pair<std::string, double>> ranking;  // every candidate and its cost (degrees)
  double base_deg = 0, chosen_deg = 0;                  // all 16-bit / chosen, on `frames`
  double budget_deg = 0, max_deg = 0, bound_deg = 0;    // the limits asked for, the bound applied
  size_t frames = 0, evaluations = 0;                   // integer networks measured
};
Int8Choice choose_int8_layers(GazeNet& model, const ActivationRanges& ranges, const QuantizeOptions& options,
                              const std::vector<Frame>& frames, double budget_deg, double max_deg);

}  // namespace gaze
