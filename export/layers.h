/* Per-position integer layers of DFT Gaze (SPEC §4): the arithmetic both the integer reference
 * (export/qnet.cpp) and the generated kernel run, defined once so the two agree bit for bit.
 * Same rules as fixed_point.h: dependency-free, no heap, no exceptions; copied verbatim into
 * the generated source.
 *
 *   gz_resample_u8()          centred window of the output's aspect ratio, bilinear in Q16,
 *                             edge-clamped: any eye image -> the network's input size
 * Every activation is int16 with zero point 0 (TFLite's "16x8" scheme: int16 activations, int8
 * weights); int8 activations everywhere cost DFT Gaze about half a degree of gaze, int16 about
 * 0.01 degree, so only the pointwise layers a sensitivity pass picks take int8 inputs
 * (export/quantizer.h, choose_int8_layers), requantised from the int16 tensor.
 *
 *   gz_layernorm_s16()        LayerNorm over the C channels of one position; statistics in int64,
 *                             exact integer square root, one integer reciprocal per position
 *   gz_grn_requants()         GRN's per-image channel factors a_c = 1 + gamma_c * N_c, folded
 *                             into one requantisation per channel
 *   gz_gelu_s16()             GELU by a 1025-entry table with linear interpolation; adjacent
 *                             entries differ by at most GZ_GELU_MAX_STEP (gz_gelu_table_check)
 *   gz_leaky_relu_s16()       x, or x * slope requantised
 *
 * LayerNorm in integers: with S = sum x and d_c = C*x_c - S (exact), C*sigma = sqrt(sum d^2 / C
 * + eps*C^2/s_x^2), where sum d^2 / C = C * sum x^2 - S^2 (exact; SIMD rows sum x and x^2), is
 * taken with as many fractional bits as 64 bits allow by an exact integer square root; z_c =
 * d_c / (C*sigma) in Q16 is one requantisation whose multiplier is the exact integer reciprocal
 * floor(2^62 / sigma); the affine part is a signed per-channel requantisation
 * gamma_c / (s_y * 2^16) plus the integer offset round(beta_c / s_y). Runtime multipliers
 * (LayerNorm's reciprocal, GRN's a_c) are derived with integer arithmetic only
 * (gz_requant_from_product), so all targets agree.
 */
#ifndef LIBGAZE_EXPORT_LAYERS_H_
#define LIBGAZE_EXPORT_LAYERS_H_

#include <stdint.h>

#include "export/fixed_point.h"
#include "export/nonlinear.h"

/* Cycle-model regions (export/cycle_model.h, `gaze bench --model pi4`): the body of each hot
 * innermost loop is fenced by GZ_MCA_BEGIN(name) / GZ_MCA_END(name). Compiled to assembly with
 * GZ_MCA_REGIONS they become llvm-mca's region comments, so llvm-mca times each body on the
 * target core; compiled with GZ_MCA_COUNT every pass through a body is counted, so a frame's
 * passes per region are known. Otherwise they are nothing. A region must be straight-line code
 * without calls (llvm-mca runs it as one block). */
/* clang-format off */
#define GZ_MCA_REGION_LIST(X)                                                                       \
  X(pw_step4) X(pw_step3) X(pw_step2) X(pw_step1) X(pw_half4) X(pw_half3) X(pw_half2) X(pw_half1)   \
  X(pw8_dot4) X(pw8_dot3) X(pw8_dot2) X(pw8_dot1) X(pw8_dot_store4) X(pw8_dot_store3)                \
  X(pw8_dot_store2) X(pw8_dot_store1) X(pw8_dot_shl4) X(pw8_dot_shl3) X(pw8_dot_shl2) X(pw8_dot_shl1)  \
  X(cvt_s8) X(pw_store4) X(pw_store3) X(pw_store2) X(pw_store1)                                     \
  X(dw_mac) X(dw_mac4) X(dw_pair_row) X(dw_store) X(dw_tail) X(ln_sum) X(ln_out) X(ln_tail) X(gelu) X(gelu8)   \
  X(grn_sum_sq) X(grn_sum_sq8) X(grn_apply) X(grn_tail) X(grn8_apply) X(grn8_sum_sq) X(add) X(add_tail) X(leaky_relu) X(leaky_relu8)                  \
  X(tune_nn16) X(tune_nn4) X(tune_nt) X(tune_nt_sum) X(tune_tn16) X(tune_tn4) X(tune_mac4) X(tune_gelu4)         \
  X(tune_ln_sum) X(tune_ln_var) X(tune_ln_out) X(tune_lndx_sum) X(tune_lndx_out) X(tune_grn_dx) X(tune_scale4)      \
  X(tune_update4) X(tune_adamw4)
/* clang-format on */
#define GZ_MCA_ID(name) GZ_MCA_##name,
enum { GZ_MCA_REGION_LIST(GZ_MCA_ID) GZ_MCA_REGION_COUNT };
#undef GZ_MCA_ID
#if defined(GZ_MCA_REGIONS)
#define GZ_MCA_BEGIN(name) __asm__ volatile("# LLVM-MCA-BEGIN " #name)
#define GZ_MCA_END(name) __asm__ volatile("# LLVM-MCA-END " #name)
#elif defined(GZ_MCA_COUNT)
static uint64_t gz_mca_passes[GZ_MCA_REGION_COUNT];
#define GZ_MCA_BEGIN(name) (++gz_mca_passes[GZ_MCA_##name])
#define GZ_MCA_END(name) ((void)0)
#else
#define GZ_MCA_BEGIN(name) ((void)0)
#define GZ_MCA_END(name) ((void)0)
#endif

/* x / 2^e for int64, rounded to nearest with ties away from zero (0 <= e <= 62). */
static inline int64_t gz_rdivpot_s64(int64_t x, int32_t exponent) {
  if (exponent == 0) return x;
  const int64_t half = (int64_t)1 << (exponent - 1);
  return x >= 0 ? (x + half) >> exponent : -((-x + half) >> exponent);
}

static inline int32_t gz_clamp_s32(int64_t v, int32_t lo, int32_t hi) { return v < lo ? lo : v > hi ? hi : (int32_t)v; }

/* As gz_resample_u8, with the window moved by (shift_y, shift_x) Q16 fractions of its own height
 * and width (on-device personalisation's augmented views shift it as the loaders' augmentation
 * does); samples past the image's edge take the edge. */
static inline void gz_resample_shifted_u8(const uint8_t* src, int32_t h, int32_t w, uint8_t* dst, int32_t out_h,
                                          int32_t out_w, int32_t shift_y, int32_t shift_x) {
  int64_t win_h16, win_w16; /* the centred window in Q16 source pixels */
  if ((int64_t)h * out_w >= (int64_t)w * out_h) {
    win_w16 = (int64_t)w << 16;
    win_h16 = ((int64_t)w * out_h << 16) / out_w;
  } else {
    win_h16 = (int64_t)h << 16;
    win_w16 = ((int64_t)h * out_w << 16) / out_h;
  }
  const int64_t y0 = (((int64_t)h << 16) - win_h16) / 2 + win_h16 * shift_y / 65536;
  const int64_t x0 = (((int64_t)w << 16) - win_w16) / 2 + win_w16 * shift_x / 65536;
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

/* Resample an h x w grey image to out_h x out_w (see the header comment). */
static inline void gz_resample_u8(const uint8_t* src, int32_t h, int32_t w, uint8_t* dst, int32_t out_h,
                                  int32_t out_w) {
  gz_resample_shifted_u8(src, h, w, dst, out_h, out_w, 0, 0);
}

/* Signed requantisation parameters: |scale| as usual, the sign carried by the multiplier. */
static inline gz_requant gz_requant_compute_signed(double scale) {
  gz_requant r = gz_requant_compute(scale < 0 ? -scale : scale);
  if (scale < 0) r.multiplier = -r.multiplier;
  return r;
}

static inline int32_t gz_bit_length_u64(uint64_t v) {
#if defined(__GNUC__)
  return v ? 64 - __builtin_clzll(v) : 0;
#else
  int32_t n = 0;
  while (v) {
    ++n;
    v >>= 1;
  }
  return n;
#endif
}

/* floor(2^62 / d) for d >= 1, exactly: a floating-point estimate corrected by integer steps (a
 * 64-bit division costs several times more on the cores this runs on). */
static inline uint64_t gz_reciprocal_q62(uint64_t d) {
  const uint64_t one = (uint64_t)1 << 62;
  double estimate = 4611686018427387904.0 / (double)d;
  if (estimate > 4611686018427387904.0) estimate = 4611686018427387904.0;
  uint64_t q = (uint64_t)estimate;
  while (q * d > one) --q;        /* too high (the estimate is within a few units: no overflow) */
  while ((q + 1) * d <= one) ++q; /* too low */
  return q;
}

/* A requantisation from an exact integer product m * 2^e (|m| < 2^63): the mantissa truncated to
 * 31 bits. Integer-only, so every platform derives the same runtime multipliers. */
static inline gz_requant gz_requant_from_product(int64_t m, int32_t e) {
  gz_requant r = {0, 0};
  if (m == 0) return r;
  const uint64_t a = m < 0 ? (uint64_t)(-m) : (uint64_t)m;
  const int32_t bits = gz_bit_length_u64(a);
  const uint64_t mantissa = bits > 31 ? a >> (bits - 31) : a << (31 - bits);
  r.multiplier = m < 0 ? -(int32_t)mantissa : (int32_t)mantissa;
  r.shift = bits + e; /* m * 2^e ~ mantissa * 2^(bits - 31 + e) = (mantissa / 2^31) * 2^(bits + e) */
  if (r.shift < -31) r.multiplier = r.shift = 0; /* below what any int32 product can express */
  return r;
}

/* LayerNorm parameters of one norm, computed at export time. Input and output int16 (zero point 0). */
typedef struct {
  int32_t channels;
  int64_t eps;                     /* eps * C^2 / s_x^2, rounded */
  const int32_t* gamma_multiplier; /* [C] signed requantisation gamma_c / (s_y * 2^16) ... */
  const int32_t* gamma_shift;      /* [C] ... and its power-of-two shift */
  const int32_t* beta;             /* [C] round(beta_c / s_y) */
} gz_layernorm_params;

#define GZ_LAYERNORM_MAX_CHANNELS 512

/* The requantisation d -> z (Q16) of one position from its sum S = sum x_c and sum of squares
 * Q = sum x_c^2 over C <= GZ_LAYERNORM_MAX_CHANNELS channels: sum_c d_c^2 / C = C*Q - S^2
 * exactly (|S| < 2^24, Q < 2^39), so SIMD code may sum x and x^2 in any order. */
static inline gz_requant gz_layernorm_to_z(int64_t sum, int64_t sum_sq_x, int32_t c_count, int64_t eps) {
  const uint64_t variance = (uint64_t)((int64_t)c_count * sum_sq_x - sum * sum + eps); /* (C*sigma)^2 */
  /* C*sigma with k fractional bits, k as large as the 64-bit square allows (at least 31
   * significant bits whatever the input's spread) */
  const int32_t k = (62 - gz_bit_length_u64(variance)) / 2;
  uint64_t sigma = gz_isqrt_u64(variance << (2 * k));
  if (sigma == 0) sigma = 1;
  /* z = d * 2^(16 + k) / sigma in Q16, as a requantisation: floor(2^62 / sigma) * 2^(16 + k - 62) */
  return gz_requant_from_product((int64_t)gz_reciprocal_q62(sigma), 16 + k - 62);
}

/* S and Q of n values (n <= GZ_LAYERNORM_MAX_CHANNELS), added to *sum and *sum_sq. */
static inline void gz_layernorm_sums(const int16_t* x, int32_t n, int32_t* sum, int64_t* sum_sq) {
  for (int32_t c = 0; c < n; ++c) {
    *sum += x[c];
    *sum_sq += (int32_t)x[c] * x[c];
  }
}

/* The per-position part: d_c = C*x_c - S into d, and the requantisation d -> z (Q16). */
static inline gz_requant gz_layernorm_stats(const int16_t* x, int32_t c_count, int64_t eps, int32_t* d) {
  c_count = c_count < GZ_LAYERNORM_MAX_CHANNELS ? c_count : GZ_LAYERNORM_MAX_CHANNELS; /* export checks */
  int32_t sum = 0;
  int64_t sum_sq = 0;
  gz_layernorm_sums(x, c_count, &sum, &sum_sq);
  for (int32_t c = 0; c < c_count; ++c) d[c] = c_count * (int32_t)x[c] - sum;
  return gz_layernorm_to_z(sum, sum_sq, c_count, eps);
}

/* One output channel: z = d / (C sigma) in Q16, then gamma, beta. */
static inline int16_t gz_layernorm_out(int32_t d, gz_requant to_z, const gz_layernorm_params* p, int32_t c) {
  const int32_t z = gz_requant_apply_s32(d, to_z);
  const gz_requant gamma = {p->gamma_multiplier[c], p->gamma_shift[c]};
  return (int16_t)gz_clamp_s32((int64_t)gz_requant_apply_s32(z, gamma) + p->beta[c], -32768, 32767);
}

static inline void gz_layernorm_s16(const int16_t* x, const gz_layernorm_params* p, int16_t* y) {
  int32_t d[GZ_LAYERNORM_MAX_CHANNELS];
  const gz_requant to_z = gz_layernorm_stats(x, p->channels, p->eps, d);
  const int32_t n = p->channels < GZ_LAYERNORM_MAX_CHANNELS ? p->channels : GZ_LAYERNORM_MAX_CHANNELS;
  for (int32_t c = 0; c < n; ++c) y[c] = gz_layernorm_out(d[c], to_z, p, c);
}

/* GRN parameters, computed at export time. Input and output int16, or both int8 (gz_grn_requants_s8). */
typedef struct {
  int32_t channels;
  int64_t eps;          /* 1e-6 in Q8 units of s_g, rounded */
  const int32_t* gamma; /* [C] round(gamma_c * 2^16) */
  const int32_t* beta;  /* [C] round(beta_c / s_y) */
  gz_requant scale;     /* s_g / (s_y * 2^12) */
} gz_grn_params;

#define GZ_GRN_A_MAX ((int32_t)1 << 23)

/* Per-image requantisations (multiplier[c], shift[c]) = a_c * s_g / s_y with
 * a_c = 1 + gamma_c * N_c, from sum_sq[c] = sum over positions of g^2. */
static inline void gz_grn_requants(const int64_t* sum_sq, const gz_grn_params* p, uint32_t* norms, int32_t* multiplier,
                                   int32_t* shift) {
  int64_t total = 0;
  for (int32_t c = 0; c < p->channels; ++c) {
    norms[c] = gz_isqrt_u64((uint64_t)sum_sq[c] << 16); /* ||g_c|| in Q8 */
    total += norms[c];
  }
  int64_t denominator = (total + p->channels / 2) / p->channels + p->eps;
  if (denominator < 1) denominator = 1;
  for (int32_t c = 0; c < p->channels; ++c) {
    const int64_t n16 = ((int64_t)norms[c] << 16) / denominator;             /* N_c in Q16 */
    const int64_t a = 4096 + gz_rdivpot_s64((int64_t)p->gamma[c] * n16, 20); /* Q16 * Q16 -> Q12 */
    const int32_t a12 = gz_clamp_s32(a, -GZ_GRN_A_MAX, GZ_GRN_A_MAX);
    /* a12 * s_g / (2^12 s_y) */
    const gz_requant r = gz_requant_from_product((int64_t)a12 * p->scale.multiplier, p->scale.shift - 31);
    multiplier[c] = r.multiplier;
    shift[c] = r.shift;
  }
}

static inline int16_t gz_grn_apply_s16(int16_t g, int32_t multiplier, int32_t shift, int32_t beta) {
  const gz_requant r = {multiplier, shift};
  return (int16_t)gz_clamp_s32((int64_t)gz_requant_apply_s32(g, r) + beta, -32768, 32767);
}

/* GRN in a block that keeps its GELU outputs as int8 (gz_grn_params then scaled from those to
 * the next layer's int8 inputs), in 16-bit arithmetic so SIMD applies eight channels per
 * register: each channel's per-image requantisation (gz_grn_requants) becomes a Q15 multiplier
 * m and a right shift r, y = clamp(round((g * 2^8) * m / 2^15 / 2^r) + beta, -127, 127). The
 * high multiply rounds ties up (SQRDMULH, VPMULHRSW), the shift ties away from zero; |g| <= 127,
 * so g * 2^8 and the product fit int16. 15 bits of the factor are kept (the output has 8);
 * factors of 2^8 and above are clamped just below it, r is at most 15 (factors under 2^-7 give
 * 0 or +-1), and beta is clamped to int16 (far outside any calibrated output). */
static inline void gz_grn_requants_s8(const int32_t* multiplier, const int32_t* shift, const gz_grn_params* p,
                                      int16_t* m16, int16_t* neg_right, int16_t* beta16) {
  for (int32_t c = 0; c < p->channels; ++c) {
    int32_t m = gz_rdivpot_s32(multiplier[c], 16), e = shift[c]; /* m / 2^15 * 2^e, |m| <= 2^15 */
    if (m == 32768 || m == -32768) m /= 2, ++e;
    int32_t right = 8 - e;
    if (right < 0) m = m < 0 ? -32767 : m > 0 ? 32767 : 0, right = 0;
    m16[c] = (int16_t)m;
    neg_right[c] = (int16_t)(right > 15 ? -15 : -right);
    beta16[c] = (int16_t)gz_clamp_s32(p->beta[c], -32767, 32767);
  }
}

static inline int8_t gz_grn_apply_s8(int8_t g, int16_t multiplier, int16_t neg_right, int16_t beta) {
  const int32_t t = (2 * ((int32_t)g * 256) * multiplier + (1 << 15)) >> 16; /* SQRDMULH: ties up */
  return (int8_t)gz_clamp_s32((int64_t)gz_rdivpot_s32(t, -neg_right) + beta, -127, 127);
}

/* GELU on int16 with the same scale in and out: a 1025-entry table of the function at every
 * 64th input value, linear interpolation between entries (rounded, ties away from zero).
 * Adjacent entries differ by at most GZ_GELU_MAX_STEP, so (hi - lo) * f with f <= 63, plus the
 * rounding constant, fits an int16 lane (the NEON routine interpolates eight values per
 * register); GELU's slope stays within [-0.17, 1.13], so its tables step by at most 74. */
#define GZ_GELU_TABLE 1025
#define GZ_GELU_MAX_STEP 512

/* The first i with |table[i + 1] - table[i]| > GZ_GELU_MAX_STEP, or -1 when the table is fit
 * for the kernel. */
static inline int32_t gz_gelu_table_check(const int16_t* table) {
  for (int32_t i = 0; i + 1 < GZ_GELU_TABLE; ++i) {
    const int32_t step = (int32_t)table[i + 1] - (int32_t)table[i];
    if (step > GZ_GELU_MAX_STEP || step < -GZ_GELU_MAX_STEP) return i;
  }
  return -1;
}

static inline int16_t gz_gelu_s16(int16_t x, const int16_t* table) {
  const int32_t u = (int32_t)x + 32768;
  const int32_t i = u >> 6, f = u & 63;
  const int32_t lo = table[i], hi = table[i + 1];
  return (int16_t)gz_clamp_s32((int64_t)lo + gz_rdivpot_s32((hi - lo) * f, 6), -32768, 32767);
}

/* LeakyReLU on int16 with the same scale in and out. */
static inline int16_t gz_leaky_relu_s16(int16_t x, gz_requant slope) {
  return x >= 0 ? x : (int16_t)gz_clamp_s32(gz_requant_apply_s32(x, slope), -32768, 32767);
}

/* x / n rounded to nearest, ties away from zero (n > 0): the head's mean pool. */
static inline int64_t gz_div_round_s64(int64_t x, int64_t n) { return x >= 0 ? (x + n / 2) / n : -((-x + n / 2) / n); }

/* The head's input features (channels x cells) the kernel holds on its stack; the exporter
 * refuses a model with more. */
#define GZ_HEAD_MAX_FEATURES 4096

/* Cell i of `cells` over `size` positions, as adaptive average pooling (PyTorch's) bounds it:
 * [floor(i * size / cells), ceil((i + 1) * size / cells)); neighbouring cells may share a row. */
static inline void gz_pool_cell_bounds(int32_t i, int32_t size, int32_t cells, int32_t* begin, int32_t* end) {
  *begin = (int32_t)(((int64_t)i * size) / cells);
  *end = (int32_t)((((int64_t)i + 1) * size + cells - 1) / cells);
}

/* The head's pool: the h x w x c map `x` averaged over each of grid_h x grid_w cells (each mean
 * rounded as gz_div_round_s64), `pooled` cell-major [grid_h][grid_w][c]. A 1 x 1 grid is the
 * paper's global average pool. */
static inline void gz_pool_cells_s16(const int16_t* x, int32_t h, int32_t w, int32_t c, int32_t grid_h, int32_t grid_w,
                                     int16_t* pooled) {
  for (int32_t gy = 0; gy < grid_h; ++gy) {
    int32_t y0, y1;
    gz_pool_cell_bounds(gy, h, grid_h, &y0, &y1);
    for (int32_t gx = 0; gx < grid_w; ++gx) {
      int32_t x0, x1;
      gz_pool_cell_bounds(gx, w, grid_w, &x0, &x1);
      int16_t* out = pooled + ((size_t)gy * grid_w + gx) * c;
      for (int32_t k = 0; k < c; ++k) {
        int64_t sum = 0;
        for (int32_t y = y0; y < y1; ++y)
          for (int32_t xx = x0; xx < x1; ++xx) sum += x[((size_t)y * w + xx) * c + k];
        out[k] = (int16_t)gz_div_round_s64(sum, (int64_t)(y1 - y0) * (x1 - x0));
      }
    }
  }
}

/* The head's Linear(in -> 4) on its int16 input x, both weight planes ([4][in] each): bias plus
 * products, in int64, since a grid head's inputs (up to GZ_HEAD_MAX_FEATURES) can overflow an
 * int32 sum of int16 x int8 products. */
static inline void gz_head_acc_s16(const int16_t* x, int32_t in, const int8_t* w, const int8_t* w_lo,
                                   const int32_t* bias, const int32_t* bias_lo, int64_t acc[4], int64_t acc_lo[4]) {
  for (int32_t j = 0; j < 4; ++j) {
    acc[j] = bias[j];
    acc_lo[j] = bias_lo[j];
    for (int32_t k = 0; k < in; ++k) {
      acc[j] += (int32_t)x[k] * w[(size_t)j * in + k];
      acc_lo[j] += (int32_t)x[k] * w_lo[(size_t)j * in + k];
    }
  }
}

/* The head's answer from its two weight planes' accumulators: each dequantised by one
 * multiply, summed, the direction normalised to unit length; out[3] is the Laplace log-scale.
 * Plain float operations, to be compiled without FP contraction so every target rounds alike. */
static inline void gz_head_output(const int64_t acc[4], const int64_t acc_lo[4], const float dequant[4],
                                  const float dequant_lo[4], float out[4]) {
  float v[4];
  for (int32_t j = 0; j < 4; ++j) {
    const float hi = (float)acc[j] * dequant[j];
    const float lo = (float)acc_lo[j] * dequant_lo[j];
    v[j] = hi + lo;
  }
  const float length = sqrtf(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  if (length > 0) {
    for (int32_t j = 0; j < 3; ++j) v[j] = v[j] / length;
  }
  for (int32_t j = 0; j < 4; ++j) out[j] = v[j];
}

#endif /* LIBGAZE_EXPORT_LAYERS_H_ */
