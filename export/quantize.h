/* Weight quantisation and the integer reference of the two matrix ops DFT Gaze is made of
 * (SPEC §4): pointwise (Linear / 1x1 / patch convs) and depthwise 7x7.
 *
 * Conventions (TFLite's "16x8" scheme): weights int8 symmetric per output channel (range +-127,
 * zero point 0); activations int16 symmetric per tensor (zero point 0, so padding is real 0);
 * biases int32 in the accumulator's scale (s_x * s_w[c]); requantisation multipliers computed
 * once (gz_requant_compute) from s_x * s_w[c] / s_y and stored with the weights. Layers where
 * int8 weights cost accuracy carry a second int8 plane (w16 = 256 * hi + lo, see
 * gz_split_weights_s16). Tensors are channels-last (NHWC), the layout the kernel runs in. These
 * naive loops are what the generated scalar/AVX2/NEON kernels must equal bit for bit.
 */
#ifndef LIBGAZE_EXPORT_QUANTIZE_H_
#define LIBGAZE_EXPORT_QUANTIZE_H_

#include <math.h>
#include <stdint.h>

#include "export/fixed_point.h"

/* Symmetric per-output-channel int8 weights: w is [channels][per_channel] floats. scales[c] =
 * max|w_c| / 127, raised to min_scales[c] where given (non-null): the caller's floor, so that a
 * channel's bias still fits int32 in the accumulator's scale when its weights are near zero. */
static inline void gz_quantize_weights_per_channel(const float* w, int32_t channels, int32_t per_channel,
                                                   const float* min_scales, int8_t* q, float* scales) {
  for (int32_t c = 0; c < channels; ++c) {
    float max_abs = 0.0f;
    for (int32_t i = 0; i < per_channel; ++i) {
      const float a = fabsf(w[c * per_channel + i]);
      max_abs = a > max_abs ? a : max_abs;
    }
    scales[c] = max_abs / 127.0f;
    if (min_scales && min_scales[c] > scales[c]) scales[c] = min_scales[c];
    if (!(scales[c] > 0.0f)) scales[c] = 1.0f;
    for (int32_t i = 0; i < per_channel; ++i) {
      const float v = rintf(w[c * per_channel + i] / scales[c]);
      q[c * per_channel + i] = (int8_t)(v < -127.0f ? -127.0f : v > 127.0f ? 127.0f : v);
    }
  }
}

/* 16-bit symmetric per-channel weights as two int8 planes: w16 = 256 * hi + lo with
 * |w16| <= 127 * 256 + 127, hi in [-127, 127], lo in [-128, 127]. scales[c] is w16's scale
 * (with the same optional floor min_scales[c]). */
static inline void gz_split_weights_s16(const float* w, int32_t channels, int32_t per_channel, const float* min_scales,
                                        int8_t* hi, int8_t* lo, float* scales) {
  const float top = 127.0f * 256.0f + 127.0f;
  for (int32_t c = 0; c < channels; ++c) {
    float max_abs = 0.0f;
    for (int32_t i = 0; i < per_channel; ++i) {
      const float a = fabsf(w[c * per_channel + i]);
      max_abs = a > max_abs ? a : max_abs;
    }
    scales[c] = max_abs / top;
    if (min_scales && min_scales[c] > scales[c]) scales[c] = min_scales[c];
    if (!(scales[c] > 0.0f)) scales[c] = 1.0f;
    for (int32_t i = 0; i < per_channel; ++i) {
      float v = rintf(w[c * per_channel + i] / scales[c]);
      v = v < -top ? -top : v > top ? top : v;
      const int32_t w16 = (int32_t)v;
      const int32_t h = (w16 + 128 - ((w16 + 128) & 255)) / 256; /* floor((w16 + 128) / 256) */
      hi[c * per_channel + i] = (int8_t)h;
      lo[c * per_channel + i] = (int8_t)(w16 - 256 * h);
    }
  }
}

/* Error codes of gz_quantize_linear_f32. */
#define GZ_QUANTIZE_BIAS_RANGE (-1) /* a bias does not fit int32 in the accumulator's scale */
#define GZ_QUANTIZE_OVERFLOW (-2)   /* some input could overflow the int32 accumulator */

/* The worst-case sum of an int16 input's products a layer's int32 accumulator must hold beside
 * its bias. A requantised layer (y_scale > 0) accumulates in int32; a dequantised one (y_scale 0:
 * the head, gz_head_acc_s16) in int64, where no sum of its products can overflow. */
static inline double gz_quantize_sum_bound(int32_t in, double y_scale) {
  return y_scale > 0 ? (double)in * 32768.0 * 128.0 : 0.0;
}

/* Step 1: the weights' scales and the nearest int8 (or two-plane 16-bit) weights. A channel whose
 * weights are tiny beside its bias (an adapter's zero-initialised up projection early in
 * training) gets a coarser weight scale, so that its bias fits the int32 accumulator with room
 * for the worst-case sum; its output is then the bias' anyway. */
static inline void gz_quantize_linear_weights_f32(const float* weight, const float* bias_in, int32_t out, int32_t in,
                                                  float x_scale, double y_scale, float* min_scales, int8_t* w8,
                                                  int8_t* w_lo, float* w_scale) {
  const int two_planes = w_lo != 0;
  const double bias_room = 0.5 * (2147483647.0 - gz_quantize_sum_bound(in, y_scale)) * (two_planes ? 256.0 : 1.0);
  for (int32_t o = 0; o < out; ++o) min_scales[o] = (float)(fabsf(bias_in[o]) / (x_scale * bias_room));
  if (two_planes) {
    gz_split_weights_s16(weight, out, in, min_scales, w8, w_lo, w_scale);
  } else {
    gz_quantize_weights_per_channel(weight, out, in, min_scales, w8, w_scale);
  }
}

/* Step 2: given the integer weights and their scales, the biases (bias-corrected against the
 * float weights), the requantisations and the accumulator's overflow check. */
static inline int gz_quantize_linear_bias_f32(const float* weight, const float* bias_in, int32_t out, int32_t in,
                                              float x_scale, int x_int8, double y_scale, const double* input_mean,
                                              const int8_t* w8, const int8_t* w_lo, const float* w_scale, int32_t* bias,
                                              int32_t* bias_lo, gz_requant* requant, gz_requant* requant_lo) {
  const int two_planes = w_lo != 0;
  for (int32_t o = 0; o < out; ++o) {
    float b_o = bias_in[o];
    if (input_mean) {
      double shift = 0;
      for (int32_t i = 0; i < in; ++i) {
        const size_t k = (size_t)o * (size_t)in + (size_t)i;
        const double q = two_planes ? 256.0 * w8[k] + w_lo[k] : (double)w8[k];
        shift += ((double)weight[k] - q * w_scale[o]) * input_mean[i];
      }
      b_o += (float)shift;
    }
    const double acc_scale = (double)x_scale * w_scale[o]; /* of w16 with two planes */
    const double b = b_o / acc_scale;
    if (two_planes) {
      if (!(fabs(b / 256.0) < 2e9)) return GZ_QUANTIZE_BIAS_RANGE;
      const int32_t hi = (int32_t)llround(b / 256.0);
      if (!(fabs(b - 256.0 * hi) < 2e9)) return GZ_QUANTIZE_BIAS_RANGE;
      bias[o] = hi;
      bias_lo[o] = (int32_t)llround(b - 256.0 * hi);
      if (y_scale > 0) {
        requant[o] = gz_requant_compute(256.0 * acc_scale / y_scale);
        requant_lo[o] = gz_requant_compute(acc_scale / y_scale);
      }
    } else {
      if (!(fabs(b) < 2e9)) return GZ_QUANTIZE_BIAS_RANGE;
      bias[o] = (int32_t)llround(b);
      if (y_scale > 0) requant[o] = gz_requant_compute(acc_scale / y_scale);
    }
    /* int32 accumulators must not overflow for any input (int16, or int8 in [-127, 127]). */
    const double sum_bound = gz_quantize_sum_bound(in, y_scale) * (x_int8 ? 127.0 / 32768.0 : 1.0);
    if (sum_bound + fabs((double)bias[o]) >= 2147483647.0) return GZ_QUANTIZE_OVERFLOW;
  }
  return 0;
}

/* A Linear layer w [out][in] + bias [out] quantised for an input of scale x_scale (int16, or
 * int8 in [-127, 127] when x_int8) and an output of scale y_scale (0: no requantisation, the
 * head's accumulators are dequantised instead): per-channel int8 weights, or 16-bit weights as
 * two planes (w_lo non-null), int32 biases in each plane's accumulator scale, requantisations.
 * `input_mean` (per input channel, or null) drives bias correction: the mean input times the
 * weights' rounding error moves into the bias. `min_scales` is [out] floats of scratch. The one
 * definition of this arithmetic: the exporter (export/quantizer.cpp) and personalisation on the
 * device (export/tune.h) both call it, so a user's adapters quantise alike in both places.
 * It is two steps, which the exporter may separate to round the weights its own way in between
 * (export.weight_rounding): gz_quantize_linear_weights_f32, then gz_quantize_linear_bias_f32.
 * Returns 0 or a GZ_QUANTIZE_* error. */
static inline int gz_quantize_linear_f32(const float* weight, const float* bias_in, int32_t out, int32_t in,
                                         float x_scale, int x_int8, double y_scale, const double* input_mean,
                                         float* min_scales, int8_t* w8, int8_t* w_lo, float* w_scale, int32_t* bias,
                                         int32_t* bias_lo, gz_requant* requant, gz_requant* requant_lo) {
  gz_quantize_linear_weights_f32(weight, bias_in, out, in, x_scale, y_scale, min_scales, w8, w_lo, w_scale);
  return gz_quantize_linear_bias_f32(weight, bias_in, out, in, x_scale, x_int8, y_scale, input_mean, w8, w_lo, w_scale,
                                     bias, bias_lo, requant, requant_lo);
}

/* The head's dequantisation: its two planes' int32 accumulators times these give the output
 * (the high plane's weights count 256 of the low plane's). x_scale: the head's int16 input. */
static inline void gz_head_dequant_compute(float x_scale, const float w_scale[4], float dequant[4],
                                           float dequant_lo[4]) {
  for (int32_t j = 0; j < 4; ++j) {
    dequant[j] = (float)(256.0 * x_scale * w_scale[j]);
    dequant_lo[j] = x_scale * w_scale[j];
  }
}

/* Pointwise accumulators: acc[p][o] = bias[o] + sum_i x[p][i] * w[o][i].
 * x: [positions][in] int16, w: [out][in] int8, bias: [out] int32 (or null). */
static inline void gz_pointwise_acc_s16_ref(const int16_t* x, int32_t positions, int32_t in, const int8_t* w,
                                            const int32_t* bias, int32_t out, int32_t* acc) {
  for (int32_t p = 0; p < positions; ++p) {
    for (int32_t o = 0; o < out; ++o) {
      int32_t a = bias ? bias[o] : 0;
      for (int32_t i = 0; i < in; ++i) a += (int32_t)x[p * in + i] * (int32_t)w[o * in + i];
      acc[p * out + o] = a;
    }
  }
}

/* Depthwise 7x7 accumulators, stride 1, zero padding 3. x, acc: [h][w][c]; weights: [c][7][7];
 * bias: [c] int32. */
static inline void gz_dwconv7x7_acc_s16_ref(const int16_t* x, int32_t h, int32_t w, int32_t c, const int8_t* weights,
                                            const int32_t* bias, int32_t* acc) {
  for (int32_t r = 0; r < h; ++r) {
    for (int32_t col = 0; col < w; ++col) {
      for (int32_t ch = 0; ch < c; ++ch) {
        int32_t a = bias ? bias[ch] : 0;
        for (int32_t ky = 0; ky < 7; ++ky) {
          const int32_t yy = r + ky - 3;
          if (yy < 0 || yy >= h) continue;
          for (int32_t kx = 0; kx < 7; ++kx) {
            const int32_t xx = col + kx - 3;
            if (xx < 0 || xx >= w) continue;
            a += (int32_t)x[(yy * w + xx) * c + ch] * (int32_t)weights[ch * 49 + ky * 7 + kx];
          }
        }
        acc[(r * w + col) * c + ch] = a;
      }
    }
  }
}

#endif /* LIBGAZE_EXPORT_QUANTIZE_H_ */
