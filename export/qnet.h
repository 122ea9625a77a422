// The quantised DFT Gaze network and its integer reference (SPEC §4). No torch.
//
// QuantizedNet holds every integer parameter the kernel needs, in the plain layouts of the
// float model ([out][in] weights, [c][7][7] depthwise), together with the float scales they came
// from (for reports). It is produced by export/quantizer (calibration on the float model),
// turned into C++ by export/codegen, and run here by qnet_predict(): a naive, untiled
// implementation of exactly the arithmetic the generated kernel performs, written for clarity.
// The generated kernel (tiled, packed, SIMD) must equal it bit for bit.
//
// Dataflow (every activation int16, zero point 0; weights int8 per output channel; a pointwise
// layer may take int8 inputs: it first requantises its int16 input to [-127, 127], the choice of
// export.int8, so that the Pi 4 multiplies int8 x int8):
//   eye u8 --resample--> u8 HxW --(p - 128)--> stem 4x4/s4 (1 channel, folded normalisation)
//   --> LN --> residual (one scale per stage)
//   block: dw7x7, LN, pw1, GELU (table), GRN (per-image channel requantisations), pw2 at the
//          residual scale (blocks with hidden_s8: GELU's output to int8, GRN int8 -> int8); adapter: down (16-bit
//          weights as two int8 planes, BN folded), LeakyReLU, up at the residual scale; residual += pw2 + up
//          (saturating)
//   downsample: LN, 2x2/s2 as a pointwise over (ky, kx, c) patches
//   head: mean pool (per cell of model.head.grid), LN (per cell), Linear (two planes) -> int32 -> float (one multiply
//   per plane), the
//         direction normalised to unit length, the 4th value the Laplace log-scale.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "export/layers.h"
#include "export/tune_data.h"

namespace gaze {

struct QLinear {
  int32_t in = 0, out = 0;
  std::vector<int8_t> weight;                   // [out][in]; the high plane when weight_lo is set
  std::vector<int8_t> weight_lo;                // optional low plane: w16 = 256 * weight + weight_lo
  std::vector<float> weight_scale;              // [out], of the 8-bit weight or of w16
  std::vector<int32_t> bias, bias_lo;           // [out], in each plane's accumulator scale
  std::vector<gz_requant> requant, requant_lo;  // [out]; empty for the head (dequantised)
  gz_requant to_s8{0, 0};                       // multiplier != 0: int8 input, the int16 input requantised by it first
  bool two_planes() const { return !weight_lo.empty(); }
  bool int8_input() const { return to_s8.multiplier != 0; }
};

struct QLayerNorm {
  int32_t channels = 0;
  int64_t eps = 0;
  std::vector<int32_t> gamma_multiplier, gamma_shift, beta;
  gz_layernorm_params params() const {
    return {channels, eps, gamma_multiplier.data(), gamma_shift.data(), beta.data()};
  }
};

struct QGrn {
  int32_t channels = 0;
  int64_t eps = 0;
  std::vector<int32_t> gamma, beta;
  gz_requant scale{0, 0};
  gz_grn_params params() const { return {channels, eps, gamma.data(), beta.data(), scale}; }
};

struct QAdapter {
  QLinear down;            // two planes, BatchNorm folded in; input: the block's pw2 output
  gz_requant slope{0, 0};  // LeakyReLU's negative slope
  QLinear up;              // -> residual scale
};

struct QBlock {
  int32_t dim = 0;
  std::vector<int8_t> dw_weight;       // [dim][49]
  std::vector<float> dw_weight_scale;  // [dim]
  std::vector<int32_t> dw_bias;
  std::vector<gz_requant> dw_requant;
  QLayerNorm norm;
  QLinear pw1;
  std::vector<int16_t> gelu;  // GZ_GELU_TABLE entries, pw1's scale in and out
  // multiplier != 0: the GELU outputs are requantised to int8 by it and kept so (half the
  // kernel's memory for them); GRN then takes and gives int8 (its parameters scaled to pw2's int8
  // input) and pw2 takes its output as is. Only with an int8-input pw2.
  gz_requant hidden_s8{0, 0};
  QGrn grn;
  QLinear pw2;  // -> the stage's residual scale
  bool int8_hidden() const { return hidden_s8.multiplier != 0; }
  bool has_adapter = false;
  QAdapter adapter;
};

struct QDownsample {
  QLayerNorm norm;
  QLinear conv;  // in = 4 * C, input order (ky, kx, c)
};

// Activation scales, kept for reports and for quantising user adapters against a fixed base.
struct QScales {
  std::array<float, 4> residual{};           // per stage
  float stem = 0;                            // stem conv output
  std::map<std::string, float> activations;  // every quantised activation, by calibration name
};

struct QuantizedNet {
  int32_t input_h = 0, input_w = 0;
  bool scale_trained = true;  // whether the 4th output (log Laplace scale) was trained
  std::vector<int32_t> depths, dims;
  QLinear stem;                          // in = 16 (4x4 patch of p - 128), out = dims[0]
  QLayerNorm stem_norm;                  // -> residual
  std::vector<QDownsample> downsamples;  // 3
  std::vector<std::vector<QBlock>> stages;
  std::array<int32_t, 2> head_grid{1, 1};                  // cells the head pools the last map to (model.head.grid)
  QLayerNorm head_norm;                                    // applied to each cell
  QLinear head;                                            // two planes -> int32 accumulators
  std::array<float, 4> head_dequant{}, head_dequant_lo{};  // 256 * s_in * s_w[j], s_in * s_w[j]
  QScales scales;
  TuneData tune;  // on-device personalisation's float side and replay pack (empty: none)

  size_t weight_bytes() const;  // int8 weight planes + int32 biases
  size_t macs() const;          // multiply-accumulates per frame (1-channel stem)
  size_t int8_macs() const;     // of which int8 x int8 (pointwise layers with int8 inputs)
  // The pointwise layers that can take int8 inputs, by name ("stem", "ds.1".."ds.3",
  // "<stage>.<block>.pw1" / ".pw2"; the adapters and the head keep 16-bit products), and the
  // layer of a name (null when there is none).
  std::vector<std::string> int8_candidates() const;
  const QLinear* layer(const std::string& name) const;
};

// Optional per-layer tensors of one qnet_predict() call, for debugging and tests.
struct QTrace {
  std::vector<int16_t> stem_output;       // [h][w][c], residual scale of stage 0
  std::vector<int16_t> stage_outputs[4];  // [h][w][c] per stage
  // Every block's intermediate tensors by calibration name ("0.1.pw1", ...; scales in
  // QuantizedNet::scales.activations, except ".grn" of a block with int8 GELU outputs: int8
  // values at its pw2's int8 input scale), recorded only when `record_blocks` is set.
  bool record_blocks = false;
  std::map<std::string, std::vector<int16_t>> blocks;
  std::array<int64_t, 4> head_acc{}, head_acc_lo{};
  // Where personalisation on the device starts (export/tune.h): the last stage's first block's
  // r + f before its adapter (saturated) and its pw2 output f, [h][w][c] at the residual scale.
  std::vector<int16_t> tune_c, tune_f;
};

// Runs the integer reference on one grey eye image of any size (>= 1 x 1).
std::array<float, 4> qnet_predict(const QuantizedNet& net, const uint8_t* eye, int32_t h, int32_t w,
                                  QTrace* trace = nullptr);

// The network's input, as the kernel sees it: the eye resampled to input_h x input_w.
std::vector<uint8_t> qnet_resample(const QuantizedNet& net, const uint8_t* eye, int32_t h, int32_t w);

}  // namespace gaze
