// The quantised DFT Gaze network and its integer reference (SPEC §4). No torch.
//
// QuantizedNet holds every integer parameter the kernel needs, in the plain layouts of the
// float model ([out][in] weights, [c][7][7] depthwise), together with the float scales they came
// from (for reports). It is produced by export/quantizer (calibration on the float model),
// turned into C++ by export/codegen, and run here by qnet_predict(): a naive, untiled
// implementation of exactly the arithmetic the generated kernel performs, written for clarity.
// The generated kernel (tiled, packed, SIMD) must equal it bit for bit.
//
// Dataflow (s16 = int16 symmetric, s8 = int8 with zero point):
//   eye u8 --resample--> u8 HxW --(p - 128)--> stem 4x4/s4 (1 channel, folded normalisation)
//   --> s16 --LN--> residual s16 (one scale per stage)
//   block: dw7x7 s16->s16, LN s16->s8, pw1 s8->s8, GELU lut, GRN s8->s8, pw2 s8->s16 (residual
//          scale), adapter [s16->s8, down (BN folded) s8->s8, LeakyReLU lut, up s8->s16],
//          residual += pw2 + up (saturating)
//   downsample: LN s16->s8, 2x2/s2 as a pointwise over (ky, kx, c) patches -> s16
//   head: mean pool s16, LN s16->s8, Linear -> int32 -> float (one multiply per output), the
//         direction normalised to unit length, the 4th value the Laplace log-scale.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "export/layers.h"

namespace gaze {

struct QLinear {
  int32_t in = 0, out = 0;
  std::vector<int8_t> weight;        // [out][in]
  std::vector<float> weight_scale;   // [out]
  std::vector<int32_t> bias;         // [out], in the accumulator's scale
  std::vector<gz_requant> requant;   // [out]; empty for the head (dequantised to float)
  int32_t in_zero_point = 0;
  int32_t out_zero_point = 0;        // int8 outputs only
};

struct QLayerNorm {
  int32_t channels = 0;
  int64_t eps = 0;
  std::vector<gz_requant> gamma;
  std::vector<int32_t> beta;
  int32_t out_zero_point = 0;
  gz_layernorm_params params() const { return {channels, eps, gamma.data(), beta.data(), out_zero_point}; }
};

struct QGrn {
  int32_t channels = 0, in_zero_point = 0, out_zero_point = 0;
  int64_t eps = 0;
  std::vector<int32_t> gamma, beta;
  gz_requant scale{0, 0};
  gz_grn_params params() const {
    return {channels, in_zero_point, eps, gamma.data(), beta.data(), scale, out_zero_point};
  }
};

using Lut8 = std::array<int8_t, 256>;

struct QAdapter {
  gz_requant to_s8{0, 0};       // block output (residual scale) -> the down projection's int8 input
  int32_t in_zero_point = 0;
  QLinear down;                 // BatchNorm folded in
  Lut8 leaky_relu{};
  QLinear up;                   // -> residual scale
};

struct QBlock {
  int32_t dim = 0;
  std::vector<int8_t> dw_weight;      // [dim][49]
  std::vector<float> dw_weight_scale; // [dim]
  std::vector<int32_t> dw_bias;
  std::vector<gz_requant> dw_requant;
  QLayerNorm norm;                    // s16 -> s8
  QLinear pw1;                        // s8 -> s8 (before GELU)
  Lut8 gelu{};
  QGrn grn;
  QLinear pw2;                        // s8 -> s16 at the stage's residual scale
  bool has_adapter = false;
  QAdapter adapter;
};

struct QDownsample {
  QLayerNorm norm;  // s16 -> s8
  QLinear conv;     // in = 4 * C, input order (ky, kx, c)
};

// Activation scales, kept for reports and for quantising user adapters against a fixed base.
struct QScales {
  std::array<float, 4> residual{};  // per stage
  float stem = 0;                   // stem conv output (s16)
};

struct QuantizedNet {
  int32_t input_h = 0, input_w = 0;
  std::vector<int32_t> depths, dims;
  QLinear stem;                 // in = 16 (4x4 patch of p - 128), out = dims[0] -> s16
  QLayerNorm stem_norm;         // s16 -> s16 residual
  std::vector<QDownsample> downsamples;   // 3
  std::vector<std::vector<QBlock>> stages;
  QLayerNorm head_norm;         // s16 -> s8
  QLinear head;                 // -> int32
  std::array<float, 4> head_dequant{};  // s_in * s_w[j]
  QScales scales;

  size_t weight_bytes() const;  // int8 weights + int32 biases + per-channel parameters
  size_t macs() const;          // multiply-accumulates per frame (1-channel stem)
};

// Unit 3-D gaze direction and the Laplace log-scale from int32 head accumulators.
std::array<float, 4> qnet_head_output(const int32_t* acc, const std::array<float, 4>& dequant);

// Optional per-layer tensors of one qnet_predict() call, for debugging and tests.
struct QTrace {
  std::vector<int16_t> stem_output;       // [h][w][c], residual scale of stage 0
  std::vector<int16_t> stage_outputs[4];  // [h][w][c] per stage
  std::array<int32_t, 4> head_acc{};
};

// Runs the integer reference on one grey eye image of any size (>= 1 x 1).
std::array<float, 4> qnet_predict(const QuantizedNet& net, const uint8_t* eye, int32_t h, int32_t w,
                                  QTrace* trace = nullptr);

// The network's input, as the kernel sees it: the eye resampled to input_h x input_w.
std::vector<uint8_t> qnet_resample(const QuantizedNet& net, const uint8_t* eye, int32_t h, int32_t w);

}  // namespace gaze
