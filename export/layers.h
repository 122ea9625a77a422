/* Per-position integer layers of DFT Gaze (SPEC §4): the arithmetic both the integer reference
 * (export/qnet.cpp) and the generated kernel run, defined once so the two agree bit for bit.
 * Same rules as fixed_point.h: dependency-free, no heap, no exceptions; copied verbatim into
 * the generated source.
 *
 *   gz_resample_u8()          centred window of the output's aspect ratio, bilinear in Q16,
 *                             edge-clamped: any eye image -> the network's input size
 *   gz_layernorm_s16()        LayerNorm over the C channels of one position, int16 in, int8
 *                             (with zero point) or int16 out; statistics in int64, integer
 *                             square root, one reciprocal per position
 *   gz_grn_coefficients()     GRN's per-image channel factors a_c = 1 + gamma_c * N_c in Q12
 *                             from the channels' sums of squares
 *   gz_grn_apply_s8()         one GRN output value: requant((g - zp) * a_c) + beta_c + zp
 *
 * LayerNorm in integers: with S = sum x and d_c = C*x_c - S (exact), C*sigma = sqrt(sum d^2 / C
 * + eps*C^2/s_x^2) is taken in Q4 by an exact integer square root; z_c = d_c / (C*sigma) in Q12
 * comes from one Q44 reciprocal per position (|d_c| <= sqrt(C)*C*sigma bounds the product below
 * 2^45); the affine part is a signed per-channel requantisation gamma_c / (s_y * 2^12) plus the
 * integer offset round(beta_c / s_y).
 */
#ifndef LIBGAZE_EXPORT_LAYERS_H_
#define LIBGAZE_EXPORT_LAYERS_H_

#include <stdint.h>

#include "export/fixed_point.h"
#include "export/nonlinear.h"

/* x / 2^e for int64, rounded to nearest with ties away from zero (0 <= e <= 62). */
static inline int64_t gz_rdivpot_s64(int64_t x, int32_t exponent) {
  if (exponent == 0) return x;
  const int64_t half = (int64_t)1 << (exponent - 1);
  return x >= 0 ? (x + half) >> exponent : -((-x + half) >> exponent);
}

static inline int32_t gz_clamp_s32(int64_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : v > hi ? hi : (int32_t)v;
}

/* Resample an h x w grey image to out_h x out_w (see the header comment). */
static inline void gz_resample_u8(const uint8_t* src, int32_t h, int32_t w, uint8_t* dst, int32_t out_h, int32_t out_w) {
  int64_t win_h16, win_w16; /* the centred window in Q16 source pixels */
  if ((int64_t)h * out_w >= (int64_t)w * out_h) {
    win_w16 = (int64_t)w << 16;
    win_h16 = ((int64_t)w * out_h << 16) / out_w;
  } else {
    win_h16 = (int64_t)h << 16;
    win_w16 = ((int64_t)h * out_w << 16) / out_h;
  }
  const int64_t y0 = (((int64_t)h << 16) - win_h16) / 2, x0 = (((int64_t)w << 16) - win_w16) / 2;
  const int64_t max_y = (int64_t)(h - 1) << 16, max_x = (int64_t)(w - 1) << 16;
  for (int32_t y = 0; y < out_h; ++y) {
    int64_t sy = y0 + win_h16 * (2 * y + 1) / (2 * out_h) - 32768;
    sy = sy < 0 ? 0 : sy > max_y ? max_y : sy;
    const int32_t iy = (int32_t)(sy >> 16), iy1 = iy + 1 < h ? iy + 1 : h - 1;
    const int64_t fy = sy & 0xFFFF;
    for (int32_t x = 0; x < out_w; ++x) {
      int64_t sx = x0 + win_w16 * (2 * x + 1) / (2 * out_w) - 32768;
      sx = sx < 0 ? 0 : sx > max_x ? max_x : sx;
      const int32_t ix = (int32_t)(sx >> 16), ix1 = ix + 1 < w ? ix + 1 : w - 1;
      const int64_t fx = sx & 0xFFFF;
      const int64_t top = src[iy * w + ix] * (65536 - fx) + src[iy * w + ix1] * fx;
      const int64_t bottom = src[iy1 * w + ix] * (65536 - fx) + src[iy1 * w + ix1] * fx;
      dst[y * out_w + x] = (uint8_t)((top * (65536 - fy) + bottom * fy + ((int64_t)1 << 31)) >> 32);
    }
  }
}

/* LayerNorm parameters of one norm, computed at export time. */
typedef struct {
  int32_t channels;
  int64_t eps;                /* eps * C^2 / s_x^2, rounded */
  const gz_requant* gamma;    /* [C] signed: gamma_c / (s_y * 2^12) */
  const int32_t* beta;        /* [C] round(beta_c / s_y) */
  int32_t out_zero_point;     /* int8 output only */
} gz_layernorm_params;

/* Q12 normalised values z[C] of one position: the shared first half of both output types. */
static inline void gz_layernorm_z12(const int16_t* x, const gz_layernorm_params* p, int32_t* z) {
  const int32_t c_count = p->channels;
  int32_t sum = 0;
  for (int32_t c = 0; c < c_count; ++c) sum += x[c];
  int64_t sum_sq = 0;
  for (int32_t c = 0; c < c_count; ++c) {
    const int64_t d = (int64_t)c_count * x[c] - sum;
    sum_sq += d * d;
  }
  const uint64_t variance = (uint64_t)(sum_sq / c_count + p->eps); /* (C*sigma)^2 */
  uint64_t sigma16 = gz_isqrt_u64(variance << 8);                  /* Q4 */
  if (sigma16 == 0) sigma16 = 1;
  const int64_t inverse = (int64_t)((((uint64_t)1 << 44) + sigma16 / 2) / sigma16); /* 2^44 / sigma16 */
  for (int32_t c = 0; c < c_count; ++c) {
    const int64_t d = (int64_t)c_count * x[c] - sum;
    z[c] = (int32_t)gz_rdivpot_s64(d * inverse, 28); /* d / sigma in Q12: 2^(16+44-28-16) */
  }
}

#define GZ_LAYERNORM_MAX_CHANNELS 512

static inline void gz_layernorm_s16_to_s8(const int16_t* x, const gz_layernorm_params* p, int8_t* y) {
  int32_t z[GZ_LAYERNORM_MAX_CHANNELS];
  gz_layernorm_z12(x, p, z);
  for (int32_t c = 0; c < p->channels; ++c) {
    const int64_t v = (int64_t)gz_requant_apply_s32(z[c], p->gamma[c]) + p->beta[c] + p->out_zero_point;
    y[c] = (int8_t)gz_clamp_s32(v, -128, 127);
  }
}

static inline void gz_layernorm_s16_to_s16(const int16_t* x, const gz_layernorm_params* p, int16_t* y) {
  int32_t z[GZ_LAYERNORM_MAX_CHANNELS];
  gz_layernorm_z12(x, p, z);
  for (int32_t c = 0; c < p->channels; ++c) {
    const int64_t v = (int64_t)gz_requant_apply_s32(z[c], p->gamma[c]) + p->beta[c];
    y[c] = (int16_t)gz_clamp_s32(v, -32768, 32767);
  }
}

/* GRN parameters, computed at export time. */
typedef struct {
  int32_t channels;
  int32_t in_zero_point;  /* of the GELU output g */
  int64_t eps;            /* 1e-6 in Q8 units of s_g, rounded */
  const int32_t* gamma;   /* [C] round(gamma_c * 2^16) */
  const int32_t* beta;    /* [C] round(beta_c / s_y) */
  gz_requant scale;       /* s_g / (s_y * 2^12) */
  int32_t out_zero_point;
} gz_grn_params;

#define GZ_GRN_A_MAX ((int32_t)1 << 23)

/* a[c] in Q12 from sum_sq[c] = sum over positions of (g - zp)^2. */
static inline void gz_grn_coefficients(const int64_t* sum_sq, const gz_grn_params* p, int32_t* a) {
  int64_t total = 0;
  for (int32_t c = 0; c < p->channels; ++c) {
    a[c] = (int32_t)gz_isqrt_u64((uint64_t)sum_sq[c] << 16); /* ||g_c|| in Q8 */
    total += a[c];
  }
  int64_t denominator = (total + p->channels / 2) / p->channels + p->eps;
  if (denominator < 1) denominator = 1;
  for (int32_t c = 0; c < p->channels; ++c) {
    const int64_t n16 = ((int64_t)a[c] << 16) / denominator;          /* N_c in Q16 */
    const int64_t v = 4096 + gz_rdivpot_s64((int64_t)p->gamma[c] * n16, 20); /* Q16 * Q16 -> Q12 */
    a[c] = gz_clamp_s32(v, -GZ_GRN_A_MAX, GZ_GRN_A_MAX);
  }
}

static inline int8_t gz_grn_apply_s8(int8_t g, int32_t a, int32_t beta, const gz_grn_params* p) {
  const int32_t v = gz_requant_apply_s32(((int32_t)g - p->in_zero_point) * a, p->scale);
  return (int8_t)gz_clamp_s32((int64_t)v + beta + p->out_zero_point, -128, 127);
}

/* Signed requantisation parameters: |scale| as usual, the sign carried by the multiplier. */
static inline gz_requant gz_requant_compute_signed(double scale) {
  gz_requant r = gz_requant_compute(scale < 0 ? -scale : scale);
  if (scale < 0) r.multiplier = -r.multiplier;
  return r;
}

#endif /* LIBGAZE_EXPORT_LAYERS_H_ */
