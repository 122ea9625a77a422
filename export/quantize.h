/* Quantisation parameters and the integer reference of the two matrix ops DFT Gaze is made of
 * (SPEC §4): pointwise (Linear / 1x1, int8 in) and depthwise 7x7 (int16 residual stream in), int32 accumulators
 * out; requantisation is a separate step (fixed_point.h).
 *
 * Conventions: weights int8 symmetric per output channel (range +-127, zero point 0), biases
 * int32 in the accumulator's scale (s_x * s_w[c]), activations int8 asymmetric per tensor
 * (scale, zero point). Requantisation multipliers are computed once (gz_requant_compute) from
 * s_x * s_w[c] / s_y and stored with the weights. Tensors are channels-last (NHWC), the layout
 * the kernel runs in. No dependencies beyond fixed_point.h; these reference loops are what the
 * generated scalar/AVX2/NEON kernels must equal bit for bit.
 */
#ifndef LIBGAZE_EXPORT_QUANTIZE_H_
#define LIBGAZE_EXPORT_QUANTIZE_H_

#include <stdint.h>

#include "export/fixed_point.h"

typedef struct {
  float scale;
  int32_t zero_point;
} gz_qparams;

/* Asymmetric int8 parameters covering [min, max] (which always include 0). */
static inline gz_qparams gz_qparams_from_range(float min_value, float max_value) {
  if (min_value > 0.0f) min_value = 0.0f;
  if (max_value < 0.0f) max_value = 0.0f;
  gz_qparams q;
  q.scale = (max_value - min_value) / 255.0f;
  if (q.scale <= 0.0f) q.scale = 1.0f;
  const float zp = -128.0f - min_value / q.scale;
  q.zero_point = (int32_t)lrintf(zp < -128.0f ? -128.0f : zp > 127.0f ? 127.0f : zp);
  return q;
}

static inline int8_t gz_quantize_s8(float x, gz_qparams q) {
  const float v = rintf(x / q.scale) + (float)q.zero_point;
  return (int8_t)(v < -128.0f ? -128.0f : v > 127.0f ? 127.0f : v);
}

static inline float gz_dequantize_s8(int8_t x, gz_qparams q) { return q.scale * (float)((int32_t)x - q.zero_point); }

/* Symmetric per-output-channel int8 weights: w is [channels][per_channel] floats. */
static inline void gz_quantize_weights_per_channel(const float* w, int32_t channels, int32_t per_channel,
                                                   int8_t* q, float* scales) {
  for (int32_t c = 0; c < channels; ++c) {
    float max_abs = 0.0f;
    for (int32_t i = 0; i < per_channel; ++i) {
      const float a = fabsf(w[c * per_channel + i]);
      max_abs = a > max_abs ? a : max_abs;
    }
    scales[c] = max_abs > 0.0f ? max_abs / 127.0f : 1.0f;
    for (int32_t i = 0; i < per_channel; ++i) {
      const float v = rintf(w[c * per_channel + i] / scales[c]);
      q[c * per_channel + i] = (int8_t)(v < -127.0f ? -127.0f : v > 127.0f ? 127.0f : v);
    }
  }
}

/* Pointwise accumulators: acc[p][o] = bias[o] + sum_i (x[p][i] - zx) * w[o][i].
 * x: [positions][in], w: [out][in], bias: [out] int32 (or null). Requantise with
 * gz_requant_s32_to_s8 / _s16. */
static inline void gz_pointwise_acc_s8_ref(const int8_t* x, int32_t positions, int32_t in, int32_t x_zero_point,
                                           const int8_t* w, const int32_t* bias, int32_t out, int32_t* acc) {
  for (int32_t p = 0; p < positions; ++p) {
    for (int32_t o = 0; o < out; ++o) {
      int32_t a = bias ? bias[o] : 0;
      for (int32_t i = 0; i < in; ++i) a += ((int32_t)x[p * in + i] - x_zero_point) * (int32_t)w[o * in + i];
      acc[p * out + o] = a;
    }
  }
}

/* Depthwise 7x7 accumulators, stride 1, zero padding 3, on the int16 residual stream (zero
 * point 0, so padding is real 0). x, acc: [h][w][c]; weights: [c][7][7]; bias: [c] int32. */
static inline void gz_dwconv7x7_acc_s16_ref(const int16_t* x, int32_t h, int32_t w, int32_t c,
                                            const int8_t* weights, const int32_t* bias, int32_t* acc) {
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
