/* The DFT Gaze fixed-point kernel: packed layers, per-ISA inner loops and the tiled network
 * executor that `gaze export` copies, with the weights, into the generated source (SPEC §4).
 *
 * Contract: dependency-free C-style C++17, no heap, no exceptions; floating point only in the
 * head's final dequantisation and as estimates that integer steps then correct exactly (square
 * root, reciprocal); every buffer comes from one caller-provided arena whose layout
 * gz_arena_plan_compute() fixes (the generator sizes the static arena with the same function).
 * Results equal the naive integer reference (export/qnet.cpp) bit for bit: the per-position
 * arithmetic is shared (layers.h) and the matrix loops below only reorder exact int32 sums.
 *
 * Code paths, chosen at build time like ncnn: GZ_SIMD_AVX2 (x86-64 with -mavx2), GZ_SIMD_NEON
 * (AArch64; the Cortex-A72 has no dot-product instructions: int16 x int8 by SMLAL, int8-input
 * layers int8 x int8 by SMULL/SMLAL2 + SADALP), else portable scalar. Define GZ_FORCE_SCALAR to
 * force the latter.
 *
 * Activations are int16 (zero point 0), weights int8; the SIMD paths multiply int16 x int16
 * pairs into int32 (AVX2 VPMADDWD, NEON SMLAL), exact for every input. A pointwise layer may take
 * int8 inputs (gz_pw.to_s8, export.int8): its input rows are requantised to [-127, 127] as they
 * are packed into a tile, and NEON then multiplies int8 x int8 as dot products along the input
 * (SMULL + SMLAL2 into 16-bit lanes, |sum| <= 2 * 127 * 127, widened pairwise by SADALP, weights
 * in their own rows layout, GZ_PW_S8_ROWS): 8 MACs per multiply instruction where SMLAL on int16
 * does 4, the A72's one integer multiply pipe being the limit. AVX2 has no such gain without
 * VNNI (VPMADDUBSW needs an unsigned operand), so its int8 tiles are widened and run through the
 * int16 loop.
 *
 * Routine names (XNNPACK style): gz_<op>_<types>[_<tile>]_<isa>
 *   types  s16 = int16 activations, s16s8 = int16 activations x int8 weights, s8s8 = int8
 *          activations x int8 weights, s16_s8 = int16 in, int8 out, s32 = int32 lanes
 *   tile   tile4x16 = up to 4 positions x 16 outputs per register block (tile4x4: 4 outputs);
 *          row = one position's channels (LayerNorm, GRN) or one output row of all channels
 *          (depthwise); col = one output column; s16x8 / s16x16 = 8 / 16 int16 outputs
 *   isa    scalar (always compiled: the reference every SIMD routine is tested against,
 *          export/kernel_ops_test.cpp; [[maybe_unused]], as a SIMD build calls none of the
 *          dispatched ones), avx2 (under GZ_SIMD_AVX2), neon (under GZ_SIMD_NEON)
 * The name without the ISA suffix is the dispatcher: it calls the variant compiled in, the one
 * gz_simd_name() reports.
 *
 *   routine                               scalar       avx2         neon         dispatcher
 *   gz_requant_s32_*                      1 lane       8 lanes      4 lanes      -
 *   gz_requant_shift_s32_*                (*)          8 lanes      4 lanes      -
 *   gz_store_s16x8_avx2                   -            8 lanes      -            -
 *   gz_layernorm_s16_row_*                1 channel    8 channels   4 channels   gz_layernorm_s16_row
 *   gz_gelu_s16_row_*                     1 value      8 values     8 values     gz_gelu_s16_row
 *   gz_grn_s16_row_*                      1 channel    8 channels   4 channels   gz_grn_s16_row
 *   gz_grn_s8_row_*                       1 channel    8 channels   8 channels   gz_grn_s8_row
 *   gz_sum_sq_s16_rows_*                  1 value      (scalar)     8 channels   gz_sum_sq_s16_rows
 *   gz_sum_sq_s8_rows_*                   1 value      (scalar)     8 channels   gz_sum_sq_s8_rows
 *   gz_pw_s16s8_tile4x16_*                4 x 16       4 x 16       4 x 16       gz_pw_s16s8_tile4x16
 *   gz_pw_s8s8_tile4x16_* / tile4x4_neon  (widened)    (widened)    4 x 4 (dot)  gz_pw_s8s8_tile
 *   gz_cvt_s16_s8_row_*                   1 value      8 values     8 values     gz_cvt_s16_s8_row
 *   gz_pw_accumulate_s16s8_tile4x16_avx2  -            4 x 16       -            -
 *   gz_pw_store_s16x16_*                  16 outputs   16 outputs   -            -
 *   gz_dw7x7_s16s8_row_*                  1 channel    8 channels   8 channels   gz_dw7x7_s16s8_row
 *                                         (NEON: two interior columns per weight load, and a
 *                                         block of 4 channels, gz_dw7x7_s16s8_col4_neon)
 *   gz_dw7x7_s16s8_col_scalar             1 channel (also the SIMD rows' channel tail)
 *   gz_add_s16_*                          1 value      16 values    8 values     gz_add_s16
 *   gz_leaky_relu_s16_row_*               1 value      8 values     8 values     gz_leaky_relu_s16_row
 *   (*) gz_requant_apply_s32 (fixed_point.h), which every scalar routine uses
 * Drivers above them: gz_pw_run (pads rows, int8 layers' requantisation, cuts positions into
 * tiles), gz_pw1_gelu_row, gz_block_run, gz_net_stages (stem and stages; personalisation stops
 * it where its training starts, export/tune_run.h), gz_net_input (checks, resampling),
 * gz_net_predict. Define GZ_TRACE_VARIANT() before including this header to
 * observe which variant a dispatcher runs (every dispatched variant invokes it with __func__
 * in scope; empty by default).
 *
 * Packed layouts (made by export/codegen.cpp):
 *   pointwise  weight [ceil(in/2)][out8][2] int8 (input pairs interleaved per output, outputs
 *              padded to 8 with zeros), int8-input layers on NEON [out4][in8] (rows along the
 *              input, gz_pack_pw_rows_s8); bias [out16] int32; requantisation as multiplier /
 *              left shift / right shift [out16] (padded lanes: multiplier 0)
 *   depthwise  weight [49][C] int8 (channels contiguous), bias / multiplier / shifts [C]
 * Memory: one arena. GRN needs statistics over the whole pw1/GELU output before it can apply, so
 * a block either keeps a row's pw1/GELU output (int16, 4C per position; int8 in a stage the
 * quantiser gave int8 GELU outputs, gz_block.hidden_s8) or only its LayerNorm output (C per
 * position) and recomputes pw1 + GELU for that row after the statistics (the same values either
 * way). The generator keeps as many rows as its arena budget allows, whole stages from the last,
 * then the leading rows of the first stage that does not fit whole.
 */
#ifndef LIBGAZE_EXPORT_KERNEL_H_
#define LIBGAZE_EXPORT_KERNEL_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "export/layers.h"

#if !defined(GZ_FORCE_SCALAR) && defined(__AVX2__)
#define GZ_SIMD_AVX2 1
#include <immintrin.h>
#elif !defined(GZ_FORCE_SCALAR) && defined(__aarch64__) && defined(__ARM_NEON)
#define GZ_SIMD_NEON 1
#include <arm_neon.h>
#endif

#if !defined(GZ_TRACE_VARIANT)
#define GZ_TRACE_VARIANT() ((void)0)
#endif

static inline const char* gz_simd_name(void) {
#if defined(GZ_SIMD_AVX2)
  return "avx2";
#elif defined(GZ_SIMD_NEON)
  return "neon";
#else
  return "scalar";
#endif
}

/* ------------------------------------------------------------------------------------------ */
/* Layer descriptions (pointers into the generated constant arrays).                         */

/* int8-input layers' weights on NEON: rows along the input, [out4][in8] (in rounded up to 8, out
 * to 4, zero padded), for the int8 x int8 dot products of gz_pw_s8s8_tile4x4_neon; every other
 * layer and target has input pairs per output, [ceil(in/2)][out8][2]. The generated source holds
 * both for such layers and compiles the one its target reads. */
#if !defined(GZ_FORCE_SCALAR) && defined(__aarch64__) && defined(__ARM_NEON)
#define GZ_PW_S8_ROWS 1
#else
#define GZ_PW_S8_ROWS 0
#endif

typedef struct {
  int32_t in, out, out8, out16;
  const int8_t* weight;      /* [ceil(in/2)][out8][2], or [out4][in8] (int8 inputs, GZ_PW_S8_ROWS) */
  const int32_t* bias;       /* [out16] */
  const int32_t* multiplier; /* [out16] */
  const int32_t* left;       /* [out16] left shift before the high multiply */
  const int32_t* right;      /* [out16] rounding right shift after it */
  gz_requant to_s8;          /* multiplier != 0: int8 inputs, x requantised to [-127, 127] by it */
} gz_pw;

/* Packs one weight plane of a pointwise layer into the layout above: w [out][in] int8 ->
 * [ceil(in/2)][out8][2]; bias and requantisation [out] -> [out16] arrays (a requantisation split
 * into multiplier, left and right shift); padding zero. The exporter (export/codegen.cpp) and
 * personalisation on the device (export/tune.h) both pack with it. Returns 0, or -1 when a shift
 * is outside what gz_requant_split_valid accepts. */
static inline int gz_pack_pw_plane(const int8_t* w, const int32_t* bias, const gz_requant* requant, int32_t in,
                                   int32_t out, int8_t* weight, int32_t* bias16, int32_t* multiplier, int32_t* left,
                                   int32_t* right) {
  const int32_t out8 = (out + 7) / 8 * 8, out16 = (out + 15) / 16 * 16;
  memset(weight, 0, (size_t)((in + 1) / 2) * (size_t)out8 * 2);
  for (int32_t o = 0; o < out16; ++o) bias16[o] = multiplier[o] = left[o] = right[o] = 0;
  for (int32_t o = 0; o < out; ++o) {
    for (int32_t i = 0; i < in; ++i)
      weight[((size_t)(i / 2) * (size_t)out8 + (size_t)o) * 2 + (size_t)(i % 2)] =
          w[(size_t)o * (size_t)in + (size_t)i];
    bias16[o] = bias[o];
    const gz_requant r = requant[o];
    multiplier[o] = r.multiplier;
    left[o] = r.shift > 0 ? r.shift : 0;
    right[o] = r.shift > 0 ? 0 : -r.shift;
    if (left[o] > 30 || right[o] > 31) return -1;
  }
  return 0;
}

/* The rows layout's padded sizes: each output's row of inputs to a multiple of 8 (one SMULL),
 * the outputs to a multiple of 4 (one dot tile). */
static inline int32_t gz_pw_rows_in(int32_t in) { return (in + 7) / 8 * 8; }
static inline int32_t gz_pw_rows_out(int32_t out) { return (out + 3) / 4 * 4; }

/* The weight of output o, input i, in the layout the layer has on this target. */
static inline int8_t gz_pw_weight_at(const gz_pw* l, int32_t o, int32_t i) {
  if (GZ_PW_S8_ROWS && l->to_s8.multiplier != 0) return l->weight[(size_t)o * (size_t)gz_pw_rows_in(l->in) + (size_t)i];
  return l->weight[((size_t)(i / 2) * (size_t)l->out8 + (size_t)o) * 2 + (size_t)(i % 2)];
}

/* The rows layout of an int8-input layer on NEON: w [out][in] -> [out4][in8], zero padded. */
static inline void gz_pack_pw_rows_s8(const int8_t* w, int32_t in, int32_t out, int8_t* weight) {
  const int32_t in8 = gz_pw_rows_in(in);
  memset(weight, 0, (size_t)gz_pw_rows_out(out) * (size_t)in8);
  for (int32_t o = 0; o < out; ++o) memcpy(weight + (size_t)o * (size_t)in8, w + (size_t)o * (size_t)in, (size_t)in);
}

typedef struct {
  int32_t channels;
  const int8_t* weight; /* [49][C] */
  const int32_t* bias;
  const int32_t* multiplier;
  const int32_t* left;
  const int32_t* right;
} gz_dw;

typedef struct {
  gz_pw down_hi, down_lo; /* 16-bit weights as two planes: out = sat(hi(x) + lo(x)) */
  gz_requant slope;       /* LeakyReLU */
  gz_pw up;
} gz_adapter;

typedef struct {
  int32_t dim;
  gz_dw dw;
  gz_layernorm_params norm;
  gz_pw pw1;
  const int16_t* gelu;  /* [GZ_GELU_TABLE] */
  gz_requant hidden_s8; /* multiplier != 0: GELU outputs kept as int8, GRN int8 -> int8 into pw2 */
  gz_grn_params grn;
  gz_pw pw2;
  const gz_adapter* adapter; /* null: no adapter */
} gz_block;

typedef struct {
  gz_layernorm_params norm;
  gz_pw conv; /* in = 4 * C, input order (ky, kx, c) */
} gz_downsample;

/* The head's Linear(C -> 4): 16-bit weights as two int8 planes (w = 256 hi + lo) with a bias
 * per plane in its accumulator's scale, and the two planes' dequantisation multipliers. */
typedef struct {
  const int8_t* weight;    /* [4][C], high plane */
  const int8_t* weight_lo; /* [4][C], low plane */
  const int32_t* bias;     /* [4] */
  const int32_t* bias_lo;  /* [4] */
  float dequant[4], dequant_lo[4];
} gz_head;

/* User blobs (dftgaze_set_user): "GZUA", this version, the base's fingerprint, the payload's
 * size and CRC-32 (gz_crc32), the payload: the last stage's adapters, then the head. Version 1
 * blobs held adapters only. */
#define GZ_USER_BLOB_VERSION 2u

/* A head in a user blob's payload (export/codegen.cpp writes it for `gaze export --users`,
 * export/tune_run.h on the device, dftgaze_set_user reads it): bias [4] and bias_lo [4] int32,
 * dequant [4] and dequant_lo [4] float, weight [4][C] and weight_lo [4][C] int8. */
static inline size_t gz_head_payload_bytes(int32_t c) { return 64 + 8 * (size_t)c; }

static inline void gz_head_write_payload(const gz_head* head, int32_t c, uint8_t* out) {
  memcpy(out, head->bias, 16);
  memcpy(out + 16, head->bias_lo, 16);
  memcpy(out + 32, head->dequant, 16);
  memcpy(out + 48, head->dequant_lo, 16);
  memcpy(out + 64, head->weight, 4 * (size_t)c);
  memcpy(out + 64 + 4 * (size_t)c, head->weight_lo, 4 * (size_t)c);
}

/* Whether a payload's head (any alignment) is safe to run: every dequantisation finite and not
 * negative, and no bias with which some int16 input could overflow an int32 accumulator (the
 * exporter's own bound, quantize.h). Returns 1 or 0. */
static inline int gz_head_payload_valid(const uint8_t* p, int32_t c) {
  int32_t bias[8];
  float dequant[8];
  memcpy(bias, p, sizeof bias);
  memcpy(dequant, p + 32, sizeof dequant);
  const int64_t reach = (int64_t)c * 32768 * 128;
  for (int32_t j = 0; j < 8; ++j) {
    const int64_t b = bias[j];
    if (reach + (b < 0 ? -b : b) >= INT32_MAX) return 0;
    if (!(dequant[j] >= 0 && dequant[j] <= 3.4e38f)) return 0; /* also false for NaN */
  }
  return 1;
}

/* The head a payload holds; `p` 4-byte aligned, and the weights and biases stay in it. */
static inline void gz_head_read_payload(const uint8_t* p, int32_t c, gz_head* head) {
  head->bias = (const int32_t*)(const void*)p;
  head->bias_lo = head->bias + 4;
  memcpy(head->dequant, p + 32, 16);
  memcpy(head->dequant_lo, p + 48, 16);
  head->weight = (const int8_t*)(p + 64);
  head->weight_lo = head->weight + 4 * (size_t)c;
}

typedef struct {
  int32_t input_h, input_w;
  int32_t depths[4], dims[4];
  int32_t keep_rows[4]; /* stage s's first keep_rows[s] rows keep their pw1/GELU outputs; the rest recompute them */
  int32_t hidden_s8[4]; /* 1: stage s's blocks keep those outputs as int8 (their gz_block.hidden_s8) */
  gz_pw stem;           /* in = 16: the 4x4 patch of p - 128 */
  gz_layernorm_params stem_norm;
  gz_downsample downsample[3];
  const gz_block* blocks[4];
  int32_t head_grid[2]; /* the cells the head pools the last map to; [1, 1]: the paper's global pool */
  gz_layernorm_params head_norm;
  const gz_head* head; /* after head_norm; a user blob may replace it */
} gz_net;

/* ------------------------------------------------------------------------------------------ */
/* Arena layout.                                                                               */

typedef struct {
  size_t image, res_a, res_b, hidden, row_a, row_b, row_c, row_d, ds_rows, gather, sum_sq, norms, grn_m, grn_s, grn16,
      total;
} gz_arena_plan;

static inline size_t gz_align32(size_t n) { return (n + 31) & ~(size_t)31; }

/* Rows of an h-row stage that keep their pw1/GELU outputs (keep_rows clamped to [0, h]). */
static inline int32_t gz_kept_rows(int32_t keep_rows, int32_t h) {
  return keep_rows < 0 ? 0 : keep_rows < h ? keep_rows : h;
}

static inline gz_arena_plan gz_arena_plan_compute(int32_t input_h, int32_t input_w, const int32_t dims[4],
                                                  const int32_t keep_rows[4], const int32_t hidden_s8[4]) {
  size_t res[2] = {0, 0}, hidden = 0, row = 0, hidden_c = 0, ds_rows = 0;
  size_t gather = 16 * 2 * (size_t)(input_w / 4);
  for (int32_t s = 0; s < 4; ++s) {
    const size_t h = (size_t)(input_h / 4) >> s, w = (size_t)(input_w / 4) >> s, c = (size_t)dims[s];
    const size_t k = (size_t)gz_kept_rows(keep_rows[s], (int32_t)h);
    const size_t kept_bytes = hidden_s8[s] ? 1 : 2; /* per kept pw1/GELU output */
    const size_t r = h * w * c * 2, kept = (k * 4 * c * kept_bytes + (h - k) * c * 2) * w;
    res[s % 2] = r > res[s % 2] ? r : res[s % 2];
    hidden = kept > hidden ? kept : hidden;
    row = w * 4 * c * 2 > row ? w * 4 * c * 2 : row;
    hidden_c = 4 * c > hidden_c ? 4 * c : hidden_c;
    if (s > 0) {
      const size_t pw = w * 2, pc = (size_t)dims[s - 1]; /* the input of downsample s */
      ds_rows = 2 * pw * pc * 2 > ds_rows ? 2 * pw * pc * 2 : ds_rows;
      gather = w * 4 * pc * 2 > gather ? w * 4 * pc * 2 : gather;
    }
  }
  gz_arena_plan p;
  size_t at = 0;
#define GZ_TAKE(field, bytes) (p.field = at, at += gz_align32(bytes))
  GZ_TAKE(image, (size_t)input_h * (size_t)input_w);
  GZ_TAKE(res_a, res[0]);
  GZ_TAKE(res_b, res[1]);
  GZ_TAKE(hidden, hidden);
  GZ_TAKE(row_a, row);
  GZ_TAKE(row_b, row);
  GZ_TAKE(row_c, row);
  GZ_TAKE(row_d, row);
  GZ_TAKE(ds_rows, ds_rows);
  GZ_TAKE(gather, gather);
  GZ_TAKE(sum_sq, hidden_c * 8);
  GZ_TAKE(norms, hidden_c * 4);
  GZ_TAKE(grn_m, hidden_c * 4);
  GZ_TAKE(grn_s, hidden_c * 4);
  GZ_TAKE(grn16, hidden_c * 3 * 2); /* gz_grn_requants_s8's multiplier, -right, beta */
#undef GZ_TAKE
  p.total = at;
  return p;
}

/* ------------------------------------------------------------------------------------------ */
/* Requantisation of 1 / 8 / 4 lanes: (x << left) high-multiplied, rounding right shift, equal
 * to gz_requant_apply_s32 lane by lane (srdhm is floor((a*b + 2^30) / 2^31), see fixed_point.h)
 * for left, right in [0, 31], at most one non-zero, and multiplier > INT32_MIN: what codegen
 * emits and gz_requant_compute / gz_requant_from_product make (LayerNorm's zero-variance rows
 * reach left = 48, with x = 0: 0 in every path). Outside that, the AVX2 lanes do not saturate
 * x << left == multiplier == INT32_MIN (the scalar and NEON lanes give INT32_MAX). */

/* The ranges above, checked where parameters arrive from outside the generated source (user
 * blobs): in split form (left, right) and in gz_requant form (positive shift = left). */
static inline int gz_requant_split_valid(int32_t multiplier, int32_t left, int32_t right) {
  return multiplier != INT32_MIN && left >= 0 && left <= 30 && right >= 0 && right <= 31 && (left == 0 || right == 0);
}

static inline int gz_requant_valid(gz_requant r) {
  return r.multiplier != INT32_MIN && r.shift >= -31 && r.shift <= 30;
}

static inline int32_t gz_requant_s32_scalar(int32_t x, int32_t multiplier, int32_t left, int32_t right) {
  const gz_requant r = {multiplier, left - right}; /* at most one of the two shifts is non-zero */
  return gz_requant_apply_s32(x, r);
}

#if defined(GZ_SIMD_AVX2)
static inline __m256i gz_requant_s32_avx2(__m256i x, __m256i multiplier, __m256i left, __m256i right) {
  x = _mm256_sllv_epi32(x, left);
  /* srdhm: bits 31..62 of a*b + 2^30, from 64-bit products of the even and the odd lanes */
  const __m256i nudge = _mm256_set1_epi64x((int64_t)1 << 30);
  const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, multiplier), nudge), 31);
  const __m256i odd = _mm256_slli_epi64(
      _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(multiplier, 32)), nudge), 1);
  const __m256i high = _mm256_blend_epi32(even, odd, 0xAA);
  /* rounding divide by 2^right, ties away from zero: + 1 when remainder > mask/2 + (high < 0) */
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
  const __m256i threshold = _mm256_add_epi32(_mm256_srli_epi32(mask, 1), _mm256_srli_epi32(high, 31));
  const __m256i round_up = _mm256_cmpgt_epi32(_mm256_and_si256(high, mask), threshold); /* -1 or 0 */
  return _mm256_sub_epi32(_mm256_srav_epi32(high, right), round_up);
}

/* Same with the shift in gz_requant form (positive = left). */
static inline __m256i gz_requant_shift_s32_avx2(__m256i x, __m256i multiplier, __m256i shift) {
  const __m256i zero = _mm256_setzero_si256();
  return gz_requant_s32_avx2(x, multiplier, _mm256_max_epi32(shift, zero),
                             _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero));
}

/* 8 int32 lanes -> 8 int16, saturating (== clamp). */
static inline void gz_store_s16x8_avx2(int16_t* y, __m256i v) {
  _mm_storeu_si128((__m128i*)y, _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}
#endif

#if defined(GZ_SIMD_NEON)
/* gz_requant_s32_neon (below) without the left shift and with the right shift given negated
 * (-right), for loops that hoist the negation; gz_requant_negr_s32_neon adds the left shift. */
static inline int32x4_t gz_requant_right_s32_neon(int32x4_t x, int32x4_t multiplier, int32x4_t neg_right) {
  const int32x4_t high = vqrdmulhq_s32(x, multiplier); /* = gz_srdhm_s32 lane by lane */
  /* RoundingDivideByPOT as gemmlowp's NEON code does it: VRSHL rounds ties up, so a negative
   * value (when there is a shift) first steps down by one, which makes its ties go away from
   * zero. Three instructions where the remainder-and-threshold form took seven. */
  const int32x4_t fixup = vshrq_n_s32(vandq_s32(high, neg_right), 31);
  return vrshlq_s32(vqaddq_s32(high, fixup), neg_right);
}

static inline int32x4_t gz_requant_negr_s32_neon(int32x4_t x, int32x4_t multiplier, int32x4_t left,
                                                 int32x4_t neg_right) {
  return gz_requant_right_s32_neon(vshlq_s32(x, left), multiplier, neg_right);
}

static inline int32x4_t gz_requant_s32_neon(int32x4_t x, int32x4_t multiplier, int32x4_t left, int32x4_t right) {
  return gz_requant_negr_s32_neon(x, multiplier, left, vnegq_s32(right));
}

static inline int32x4_t gz_requant_shift_s32_neon(int32x4_t x, int32x4_t multiplier, int32x4_t shift) {
  const int32x4_t zero = vdupq_n_s32(0); /* left = max(shift, 0), -right = min(shift, 0) */
  return gz_requant_negr_s32_neon(x, multiplier, vmaxq_s32(shift, zero), vminq_s32(shift, zero));
}
#endif

/* ------------------------------------------------------------------------------------------ */
/* Row versions of the per-position layers (layers.h): the scalar routines are the reference's
 * per-element functions in a loop; the SIMD ones end with the same scalar code for the tail.
 * The SIMD ones add beta in int32 where the reference adds in int64: equal unless requantised
 * value + beta leaves int32, an output 2^16 times int16's range before the clamp (calibrated
 * output scales stay orders of magnitude below; see export/kernel_ops_test.cpp). */

/* LayerNorm outputs c..n-1 of a position whose sum is `sum` (d_c = n*x_c - sum), in chunks:
 * keeps GCC from mis-bounding a constant layer's tail. */
static inline void gz_layernorm_s16_tail_scalar(const int16_t* x, int32_t sum, gz_requant to_z,
                                                const gz_layernorm_params* p, int32_t c, int32_t n, int16_t* y) {
  for (; c < n; c += 8) {
    int32_t chunk[8];
    const int32_t rest = n - c < 8 ? n - c : 8;
    for (int32_t k = 0; k < rest; ++k) chunk[k] = n * (int32_t)x[c + k] - sum;
    for (int32_t k = 0; k < rest; ++k) {
      GZ_MCA_BEGIN(ln_tail);
      y[c + k] = gz_layernorm_out(chunk[k], to_z, p, c + k);
      GZ_MCA_END(ln_tail);
    }
  }
}

[[maybe_unused]] static inline void gz_layernorm_s16_row_scalar(const int16_t* x, const gz_layernorm_params* p,
                                                                int16_t* y) {
  GZ_TRACE_VARIANT();
  const int32_t n = p->channels < GZ_LAYERNORM_MAX_CHANNELS ? p->channels : GZ_LAYERNORM_MAX_CHANNELS;
  int32_t sum = 0;
  int64_t sum_sq = 0;
  gz_layernorm_sums(x, n, &sum, &sum_sq);
  gz_layernorm_s16_tail_scalar(x, sum, gz_layernorm_to_z(sum, sum_sq, n, p->eps), p, 0, n, y);
}

#if defined(GZ_SIMD_AVX2)
static inline void gz_layernorm_s16_row_avx2(const int16_t* x, const gz_layernorm_params* p, int16_t* y) {
  GZ_TRACE_VARIANT();
  const int32_t n = p->channels < GZ_LAYERNORM_MAX_CHANNELS ? p->channels : GZ_LAYERNORM_MAX_CHANNELS;
  /* S and Q 16 values at a time: VPMADDWD pair sums of x (with 1) and of x^2. A pair of squares
   * is in [0, 2^31]: read as unsigned 32-bit (only -32768 twice reaches 2^31), then widened. */
  __m256i s = _mm256_setzero_si256(), q = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  int32_t c = 0;
  for (; c + 16 <= n; c += 16) {
    const __m256i v = _mm256_loadu_si256((const __m256i*)(x + c)), sq = _mm256_madd_epi16(v, v);
    s = _mm256_add_epi32(s, _mm256_madd_epi16(v, ones));
    q = _mm256_add_epi64(q, _mm256_cvtepu32_epi64(_mm256_castsi256_si128(sq)));
    q = _mm256_add_epi64(q, _mm256_cvtepu32_epi64(_mm256_extracti128_si256(sq, 1)));
  }
  int32_t s_lanes[8];
  int64_t q_lanes[4];
  _mm256_storeu_si256((__m256i*)s_lanes, s);
  _mm256_storeu_si256((__m256i*)q_lanes, q);
  int32_t sum = 0;
  int64_t sum_sq = q_lanes[0] + q_lanes[1] + q_lanes[2] + q_lanes[3];
  for (int k = 0; k < 8; ++k) sum += s_lanes[k];
  gz_layernorm_sums(x + c, n - c, &sum, &sum_sq);
  const gz_requant to_z = gz_layernorm_to_z(sum, sum_sq, n, p->eps);

  const __m256i zm = _mm256_set1_epi32(to_z.multiplier);
  const __m256i zl = _mm256_set1_epi32(to_z.shift > 0 ? to_z.shift : 0);
  const __m256i zr = _mm256_set1_epi32(to_z.shift > 0 ? 0 : -to_z.shift);
  const __m256i count = _mm256_set1_epi32(n), sum8 = _mm256_set1_epi32(sum);
  for (c = 0; c + 8 <= n; c += 8) {
    const __m256i xc = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i*)(x + c)));
    const __m256i z = gz_requant_s32_avx2(_mm256_sub_epi32(_mm256_mullo_epi32(xc, count), sum8), zm, zl, zr);
    const __m256i v = gz_requant_shift_s32_avx2(z, _mm256_loadu_si256((const __m256i*)(p->gamma_multiplier + c)),
                                                _mm256_loadu_si256((const __m256i*)(p->gamma_shift + c)));
    gz_store_s16x8_avx2(y + c, _mm256_add_epi32(v, _mm256_loadu_si256((const __m256i*)(p->beta + c))));
  }
  gz_layernorm_s16_tail_scalar(x, sum, to_z, p, c, n, y);
}
#endif

#if defined(GZ_SIMD_NEON)
static inline void gz_layernorm_s16_row_neon(const int16_t* x, const gz_layernorm_params* p, int16_t* y) {
  GZ_TRACE_VARIANT();
  const int32_t n = p->channels < GZ_LAYERNORM_MAX_CHANNELS ? p->channels : GZ_LAYERNORM_MAX_CHANNELS;
  /* S and Q 8 values at a time: pairwise-widening adds of x, squares (< 2^30 each) widened into
   * int64 lanes pairwise. */
  int32x4_t s = vdupq_n_s32(0);
  int64x2_t q = vdupq_n_s64(0);
  int32_t c = 0;
  for (; c + 8 <= n; c += 8) {
    GZ_MCA_BEGIN(ln_sum);
    const int16x8_t v = vld1q_s16(x + c);
    s = vpadalq_s16(s, v);
    q = vpadalq_s32(q, vmull_s16(vget_low_s16(v), vget_low_s16(v)));
    q = vpadalq_s32(q, vmull_high_s16(v, v));
    GZ_MCA_END(ln_sum);
  }
  int32_t sum = vaddvq_s32(s);
  int64_t sum_sq = vaddvq_s64(q);
  gz_layernorm_sums(x + c, n - c, &sum, &sum_sq);
  const gz_requant to_z = gz_layernorm_to_z(sum, sum_sq, n, p->eps);

  const int32x4_t zm = vdupq_n_s32(to_z.multiplier);
  const int32x4_t zl = vdupq_n_s32(to_z.shift > 0 ? to_z.shift : 0);
  const int32x4_t zr = vdupq_n_s32(to_z.shift > 0 ? 0 : -to_z.shift);
  const int32x4_t sum4 = vdupq_n_s32(sum);
  for (c = 0; c + 4 <= n; c += 4) {
    GZ_MCA_BEGIN(ln_out);
    const int32x4_t d = vsubq_s32(vmulq_n_s32(vmovl_s16(vld1_s16(x + c)), n), sum4);
    const int32x4_t z = gz_requant_s32_neon(d, zm, zl, zr);
    const int32x4_t v = gz_requant_shift_s32_neon(z, vld1q_s32(p->gamma_multiplier + c), vld1q_s32(p->gamma_shift + c));
    vst1_s16(y + c, vqmovn_s32(vaddq_s32(v, vld1q_s32(p->beta + c))));
    GZ_MCA_END(ln_out);
  }
  gz_layernorm_s16_tail_scalar(x, sum, to_z, p, c, n, y);
}
#endif

/* LayerNorm over one position's p->channels values. */
static inline void gz_layernorm_s16_row(const int16_t* x, const gz_layernorm_params* p, int16_t* y) {
#if defined(GZ_SIMD_AVX2)
  gz_layernorm_s16_row_avx2(x, p, y);
#elif defined(GZ_SIMD_NEON)
  gz_layernorm_s16_row_neon(x, p, y);
#else
  gz_layernorm_s16_row_scalar(x, p, y);
#endif
}

/* GELU over n values in place. */
[[maybe_unused]] static inline void gz_gelu_s16_row_scalar(int16_t* x, size_t n, const int16_t* table) {
  GZ_TRACE_VARIANT();
  for (size_t i = 0; i < n; ++i) {
    GZ_MCA_BEGIN(gelu);
    x[i] = gz_gelu_s16(x[i], table);
    GZ_MCA_END(gelu);
  }
}

#if defined(GZ_SIMD_AVX2)
static inline void gz_gelu_s16_row_avx2(int16_t* x, size_t n, const int16_t* table) {
  GZ_TRACE_VARIANT();
  size_t i = 0;
  const __m256i offset = _mm256_set1_epi32(32768), mask6 = _mm256_set1_epi32(63), one = _mm256_set1_epi32(1);
  const __m256i threshold = _mm256_set1_epi32(31);
  for (; i + 8 <= n; i += 8) {
    const __m256i u = _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i*)(x + i))), offset);
    const __m256i index = _mm256_srli_epi32(u, 6), f = _mm256_and_si256(u, mask6);
    /* one 32-bit load at &table[i] brings table[i] (low half) and table[i + 1] (high half); eight
     * scalar loads beat VPGATHERDD, which is microcoded and slow on AMD cores */
    int32_t at[8], pair_values[8];
    _mm256_storeu_si256((__m256i*)at, index);
    for (int k = 0; k < 8; ++k) memcpy(&pair_values[k], table + at[k], 4);
    const __m256i pair = _mm256_loadu_si256((const __m256i*)pair_values);
    const __m256i lo = _mm256_srai_epi32(_mm256_slli_epi32(pair, 16), 16), hi = _mm256_srai_epi32(pair, 16);
    const __m256i prod = _mm256_mullo_epi32(_mm256_sub_epi32(hi, lo), f);
    /* gz_rdivpot_s32(prod, 6): ties away from zero */
    const __m256i rem = _mm256_and_si256(prod, mask6);
    const __m256i thr =
        _mm256_add_epi32(threshold, _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), prod), one));
    const __m256i step =
        _mm256_add_epi32(_mm256_srai_epi32(prod, 6), _mm256_and_si256(_mm256_cmpgt_epi32(rem, thr), one));
    gz_store_s16x8_avx2(x + i, _mm256_add_epi32(lo, step));
  }
  for (; i < n; ++i) x[i] = gz_gelu_s16(x[i], table);
}
#endif

#if defined(GZ_SIMD_NEON)
/* Eight values per pass in int16 lanes (the table's steps are at most GZ_GELU_MAX_STEP, so the
 * interpolation's product fits). NEON has no gather: the eight byte offsets leave the vector as
 * two 64-bit lanes (each FMOV/UMOV takes the A72's one load pipe, as the table loads do, so
 * eight UMOV.H would cost six more) and one 32-bit load per value brings table[i] and
 * table[i + 1]; UZP then splits the pairs into lo and hi. Ties away from zero as
 * gz_rdivpot_s32: a rounding shift of prod - 1 for negative prod. Pi 4 model: 21 cycles per
 * eight values (int32 lanes and per-value index moves: 31). */
static inline void gz_gelu_s16_row_neon(int16_t* x, size_t n, const int16_t* table) {
  GZ_TRACE_VARIANT();
  const uint8_t* bytes = (const uint8_t*)table;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    GZ_MCA_BEGIN(gelu8);
    /* u = x + 32768 in [0, 65535]: the int16 bits with the sign bit flipped; entry u >> 6 */
    const uint16x8_t u = veorq_u16(vreinterpretq_u16_s16(vld1q_s16(x + i)), vdupq_n_u16(0x8000));
    const uint64x2_t offset = vreinterpretq_u64_u16(vbicq_u16(vshrq_n_u16(u, 5), vdupq_n_u16(1)));
    const uint64_t first = vgetq_lane_u64(offset, 0), second = vgetq_lane_u64(offset, 1);
    int32_t pair_values[8];
    for (int k = 0; k < 4; ++k) {
      memcpy(&pair_values[k], bytes + ((first >> (16 * k)) & 0xFFFF), 4);
      memcpy(&pair_values[4 + k], bytes + ((second >> (16 * k)) & 0xFFFF), 4);
    }
    const int16x8x2_t lo_hi =
        vuzpq_s16(vreinterpretq_s16_s32(vld1q_s32(pair_values)), vreinterpretq_s16_s32(vld1q_s32(pair_values + 4)));
    const int16x8_t f = vreinterpretq_s16_u16(vandq_u16(u, vdupq_n_u16(63)));
    const int16x8_t prod = vmulq_s16(vsubq_s16(lo_hi.val[1], lo_hi.val[0]), f);
    const int16x8_t step = vrshrq_n_s16(vsraq_n_s16(prod, prod, 15), 6);
    vst1q_s16(x + i, vqaddq_s16(lo_hi.val[0], step));
    GZ_MCA_END(gelu8);
  }
  for (; i < n; ++i) {
    GZ_MCA_BEGIN(gelu);
    x[i] = gz_gelu_s16(x[i], table);
    GZ_MCA_END(gelu);
  }
}
#endif

/* GELU over n values in place. */
static inline void gz_gelu_s16_row(int16_t* x, size_t n, const int16_t* table) {
#if defined(GZ_SIMD_AVX2)
  gz_gelu_s16_row_avx2(x, n, table);
#elif defined(GZ_SIMD_NEON)
  gz_gelu_s16_row_neon(x, n, table);
#else
  gz_gelu_s16_row_scalar(x, n, table);
#endif
}

/* GRN on one position's c4 values in place. */
[[maybe_unused]] static inline void gz_grn_s16_row_scalar(int16_t* v, int32_t c4, const int32_t* multiplier,
                                                          const int32_t* shift, const int32_t* beta) {
  GZ_TRACE_VARIANT();
  for (int32_t k = 0; k < c4; ++k) v[k] = gz_grn_apply_s16(v[k], multiplier[k], shift[k], beta[k]);
}

#if defined(GZ_SIMD_AVX2)
static inline void gz_grn_s16_row_avx2(int16_t* v, int32_t c4, const int32_t* multiplier, const int32_t* shift,
                                       const int32_t* beta) {
  GZ_TRACE_VARIANT();
  int32_t k = 0;
  for (; k + 8 <= c4; k += 8) {
    const __m256i g = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i*)(v + k)));
    const __m256i r = gz_requant_shift_s32_avx2(g, _mm256_loadu_si256((const __m256i*)(multiplier + k)),
                                                _mm256_loadu_si256((const __m256i*)(shift + k)));
    gz_store_s16x8_avx2(v + k, _mm256_add_epi32(r, _mm256_loadu_si256((const __m256i*)(beta + k))));
  }
  for (; k < c4; ++k) v[k] = gz_grn_apply_s16(v[k], multiplier[k], shift[k], beta[k]);
}
#endif

#if defined(GZ_SIMD_NEON)
static inline void gz_grn_s16_row_neon(int16_t* v, int32_t c4, const int32_t* multiplier, const int32_t* shift,
                                       const int32_t* beta) {
  GZ_TRACE_VARIANT();
  int32_t k = 0;
  for (; k + 4 <= c4; k += 4) {
    GZ_MCA_BEGIN(grn_apply);
    const int32x4_t g = vmovl_s16(vld1_s16(v + k));
    const int32x4_t r = gz_requant_shift_s32_neon(g, vld1q_s32(multiplier + k), vld1q_s32(shift + k));
    vst1_s16(v + k, vqmovn_s32(vaddq_s32(r, vld1q_s32(beta + k))));
    GZ_MCA_END(grn_apply);
  }
  for (; k < c4; ++k) {
    GZ_MCA_BEGIN(grn_tail);
    v[k] = gz_grn_apply_s16(v[k], multiplier[k], shift[k], beta[k]);
    GZ_MCA_END(grn_tail);
  }
}
#endif

static inline void gz_grn_s16_row(int16_t* v, int32_t c4, const int32_t* multiplier, const int32_t* shift,
                                  const int32_t* beta) {
#if defined(GZ_SIMD_AVX2)
  gz_grn_s16_row_avx2(v, c4, multiplier, shift, beta);
#elif defined(GZ_SIMD_NEON)
  gz_grn_s16_row_neon(v, c4, multiplier, shift, beta);
#else
  gz_grn_s16_row_scalar(v, c4, multiplier, shift, beta);
#endif
}

/* GRN's statistics: sum_sq[k] += x[p][k]^2 over `rows` rows of c channels (int64 sums, exact).
 * The _cols helpers do channels [from, c) only: the scalar variants, and the SIMD ones' tails. */
static inline void gz_sum_sq_s16_cols(const int16_t* x, int32_t rows, int32_t c, int32_t from, int64_t* sum_sq) {
  for (int32_t p = 0; p < rows; ++p)
    for (int32_t k = from; k < c; ++k) {
      GZ_MCA_BEGIN(grn_sum_sq);
      const int64_t v = x[(size_t)p * c + k];
      sum_sq[k] += v * v;
      GZ_MCA_END(grn_sum_sq);
    }
}

[[maybe_unused]] static inline void gz_sum_sq_s16_rows_scalar(const int16_t* x, int32_t rows, int32_t c,
                                                              int64_t* sum_sq) {
  GZ_TRACE_VARIANT();
  gz_sum_sq_s16_cols(x, rows, c, 0, sum_sq);
}

#if defined(GZ_SIMD_NEON)
/* 8 channels at a time down the rows: squares by SMULL (|x|^2 <= 2^30 fits int32), widened into
 * int64 sums by SADDW; the sums stay in registers over the rows (the scalar loop loaded and
 * stored one int64 per element: 3 cycles each in the Pi 4 model). */
static inline void gz_sum_sq_s16_rows_neon(const int16_t* x, int32_t rows, int32_t c, int64_t* sum_sq) {
  GZ_TRACE_VARIANT();
  int32_t k = 0;
  for (; k + 8 <= c; k += 8) {
    int64x2_t a0 = vld1q_s64(sum_sq + k), a1 = vld1q_s64(sum_sq + k + 2);
    int64x2_t a2 = vld1q_s64(sum_sq + k + 4), a3 = vld1q_s64(sum_sq + k + 6);
    for (int32_t p = 0; p < rows; ++p) {
      GZ_MCA_BEGIN(grn_sum_sq8);
      const int16x8_t v = vld1q_s16(x + (size_t)p * c + k);
      const int32x4_t lo = vmull_s16(vget_low_s16(v), vget_low_s16(v)), hi = vmull_high_s16(v, v);
      a0 = vaddw_s32(a0, vget_low_s32(lo));
      a1 = vaddw_high_s32(a1, lo);
      a2 = vaddw_s32(a2, vget_low_s32(hi));
      a3 = vaddw_high_s32(a3, hi);
      GZ_MCA_END(grn_sum_sq8);
    }
    vst1q_s64(sum_sq + k, a0);
    vst1q_s64(sum_sq + k + 2, a1);
    vst1q_s64(sum_sq + k + 4, a2);
    vst1q_s64(sum_sq + k + 6, a3);
  }
  gz_sum_sq_s16_cols(x, rows, c, k, sum_sq);
}
#endif

/* AVX2 has no variant: GCC vectorises the scalar loop well enough there. */
static inline void gz_sum_sq_s16_rows(const int16_t* x, int32_t rows, int32_t c, int64_t* sum_sq) {
#if defined(GZ_SIMD_NEON)
  gz_sum_sq_s16_rows_neon(x, rows, c, sum_sq);
#else
  gz_sum_sq_s16_rows_scalar(x, rows, c, sum_sq);
#endif
}

/* The int8 versions, for blocks that keep their GELU outputs as int8 (gz_block.hidden_s8): GRN
 * int8 -> int8 in its 16-bit form (gz_grn_requants_s8: multiplier, -right, beta per channel,
 * once per image) and its sums of squares. */
[[maybe_unused]] static inline void gz_grn_s8_row_scalar(int8_t* v, int32_t c4, const int16_t* multiplier,
                                                         const int16_t* neg_right, const int16_t* beta) {
  GZ_TRACE_VARIANT();
  for (int32_t k = 0; k < c4; ++k) v[k] = gz_grn_apply_s8(v[k], multiplier[k], neg_right[k], beta[k]);
}

#if defined(GZ_SIMD_AVX2)
/* VPMULHRSW is the high multiply; AVX2 shifts 16-bit lanes by one count only, so the rounding
 * shift runs on int32 lanes. */
static inline void gz_grn_s8_row_avx2(int8_t* v, int32_t c4, const int16_t* multiplier, const int16_t* neg_right,
                                      const int16_t* beta) {
  GZ_TRACE_VARIANT();
  int32_t k = 0;
  const __m256i one = _mm256_set1_epi32(1);
  for (; k + 8 <= c4; k += 8) {
    const __m128i g = _mm_slli_epi16(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i*)(v + k))), 8);
    const __m256i t = _mm256_cvtepi16_epi32(_mm_mulhrs_epi16(g, _mm_loadu_si128((const __m128i*)(multiplier + k))));
    const __m256i right = _mm256_sub_epi32(_mm256_setzero_si256(),
                                           _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i*)(neg_right + k))));
    /* ties away from zero: + 1 when the remainder exceeds half the divisor (- 1 for t < 0) */
    const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
    const __m256i threshold = _mm256_add_epi32(_mm256_srli_epi32(mask, 1), _mm256_srli_epi32(t, 31));
    const __m256i round_up = _mm256_cmpgt_epi32(_mm256_and_si256(t, mask), threshold);
    const __m256i y = _mm256_add_epi32(_mm256_sub_epi32(_mm256_srav_epi32(t, right), round_up),
                                       _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i*)(beta + k))));
    const __m128i y16 = _mm_packs_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
    _mm_storel_epi64((__m128i*)(v + k), _mm_max_epi8(_mm_packs_epi16(y16, y16), _mm_set1_epi8(-127)));
  }
  for (; k < c4; ++k) v[k] = gz_grn_apply_s8(v[k], multiplier[k], neg_right[k], beta[k]);
}
#endif

#if defined(GZ_SIMD_NEON)
/* Eight channels per pass in int16 lanes: SQRDMULH, then the rounding shift with the fixup of
 * gz_requant_right_s32_neon (int32 lanes and a 32-bit requantisation took 18 cycles per eight
 * channels in the Pi 4 model). */
static inline void gz_grn_s8_row_neon(int8_t* v, int32_t c4, const int16_t* multiplier, const int16_t* neg_right,
                                      const int16_t* beta) {
  GZ_TRACE_VARIANT();
  int32_t k = 0;
  for (; k + 8 <= c4; k += 8) {
    GZ_MCA_BEGIN(grn8_apply);
    const int16x8_t g = vshlq_n_s16(vmovl_s8(vld1_s8(v + k)), 8);
    const int16x8_t nr = vld1q_s16(neg_right + k);
    const int16x8_t t = vqrdmulhq_s16(g, vld1q_s16(multiplier + k));
    const int16x8_t y = vrshlq_s16(vqaddq_s16(t, vshrq_n_s16(vandq_s16(t, nr), 15)), nr);
    vst1_s8(v + k, vmax_s8(vqmovn_s16(vqaddq_s16(y, vld1q_s16(beta + k))), vdup_n_s8(-127)));
    GZ_MCA_END(grn8_apply);
  }
  for (; k < c4; ++k) {
    GZ_MCA_BEGIN(grn_tail);
    v[k] = gz_grn_apply_s8(v[k], multiplier[k], neg_right[k], beta[k]);
    GZ_MCA_END(grn_tail);
  }
}
#endif

static inline void gz_grn_s8_row(int8_t* v, int32_t c4, const int16_t* multiplier, const int16_t* neg_right,
                                 const int16_t* beta) {
#if defined(GZ_SIMD_AVX2)
  gz_grn_s8_row_avx2(v, c4, multiplier, neg_right, beta);
#elif defined(GZ_SIMD_NEON)
  gz_grn_s8_row_neon(v, c4, multiplier, neg_right, beta);
#else
  gz_grn_s8_row_scalar(v, c4, multiplier, neg_right, beta);
#endif
}

static inline void gz_sum_sq_s8_cols(const int8_t* x, int32_t rows, int32_t c, int32_t from, int64_t* sum_sq) {
  for (int32_t p = 0; p < rows; ++p)
    for (int32_t k = from; k < c; ++k) sum_sq[k] += (int32_t)x[(size_t)p * c + k] * x[(size_t)p * c + k];
}

[[maybe_unused]] static inline void gz_sum_sq_s8_rows_scalar(const int8_t* x, int32_t rows, int32_t c,
                                                             int64_t* sum_sq) {
  GZ_TRACE_VARIANT();
  gz_sum_sq_s8_cols(x, rows, c, 0, sum_sq);
}

#if defined(GZ_SIMD_NEON)
/* 8 channels down the rows: squares by SMULL.8B (<= 16384), int32 sums (a row of positions is
 * at most 4096 long: <= 2^26), added to the int64 sums once per call. */
static inline void gz_sum_sq_s8_rows_neon(const int8_t* x, int32_t rows, int32_t c, int64_t* sum_sq) {
  GZ_TRACE_VARIANT();
  int32_t k = 0;
  for (; k + 8 <= c; k += 8) {
    int32x4_t lo = vdupq_n_s32(0), hi = vdupq_n_s32(0);
    for (int32_t p = 0; p < rows; ++p) {
      GZ_MCA_BEGIN(grn8_sum_sq);
      const int8x8_t v = vld1_s8(x + (size_t)p * c + k);
      const int16x8_t sq = vmull_s8(v, v);
      lo = vaddw_s16(lo, vget_low_s16(sq));
      hi = vaddw_high_s16(hi, sq);
      GZ_MCA_END(grn8_sum_sq);
    }
    vst1q_s64(sum_sq + k, vaddw_s32(vld1q_s64(sum_sq + k), vget_low_s32(lo)));
    vst1q_s64(sum_sq + k + 2, vaddw_high_s32(vld1q_s64(sum_sq + k + 2), lo));
    vst1q_s64(sum_sq + k + 4, vaddw_s32(vld1q_s64(sum_sq + k + 4), vget_low_s32(hi)));
    vst1q_s64(sum_sq + k + 6, vaddw_high_s32(vld1q_s64(sum_sq + k + 6), hi));
  }
  gz_sum_sq_s8_cols(x, rows, c, k, sum_sq);
}
#endif

static inline void gz_sum_sq_s8_rows(const int8_t* x, int32_t rows, int32_t c, int64_t* sum_sq) {
#if defined(GZ_SIMD_NEON)
  gz_sum_sq_s8_rows_neon(x, rows, c, sum_sq);
#else
  gz_sum_sq_s8_rows_scalar(x, rows, c, sum_sq);
#endif
}

/* ------------------------------------------------------------------------------------------ */
/* Pointwise: y[p][o] (int16) for `positions` rows of x[p][in] (int16). The tile routines take */
/* up to GZ_PW_TILE positions of x16 (rows padded to 2 * pairs with a zero) and produce every  */
/* output in blocks of 16. The int32 sums are exact in every path; only their order differs.  */

#define GZ_PW_MAX_IN 640
#define GZ_PW_TILE 4

/* Requantises and stores outputs o0..o0+count-1 (count <= 16) from acc[0..count-1]. */
static inline void gz_pw_store_s16x16_scalar(const gz_pw* l, const int32_t* acc, int32_t o0, int32_t count,
                                             int16_t* y) {
  for (int32_t k = 0; k < count; ++k) {
    const int32_t o = o0 + k;
    y[o] =
        (int16_t)gz_clamp_s32(gz_requant_s32_scalar(acc[k], l->multiplier[o], l->left[o], l->right[o]), -32768, 32767);
  }
}

[[maybe_unused]] static inline void gz_pw_s16s8_tile4x16_scalar(const gz_pw* l, const int16_t* x16, int32_t pairs,
                                                                int32_t np, int16_t* y) {
  GZ_TRACE_VARIANT();
  for (int32_t p = 0; p < np; ++p) {
    const int16_t* xp = x16 + (size_t)p * 2 * pairs;
    for (int32_t o0 = 0; o0 < l->out; o0 += 16) {
      int32_t acc[16];
      const int32_t count = l->out - o0 < 16 ? l->out - o0 : 16;
      for (int32_t k = 0; k < count; ++k) {
        const int8_t* wp = l->weight + (size_t)(o0 + k) * 2;
        int32_t a = l->bias[o0 + k];
        for (int32_t i = 0; i < pairs; ++i, wp += (size_t)l->out8 * 2) a += xp[2 * i] * wp[0] + xp[2 * i + 1] * wp[1];
        acc[k] = a;
      }
      gz_pw_store_s16x16_scalar(l, acc, o0, count, y + (size_t)p * l->out);
    }
  }
}

#if defined(GZ_SIMD_AVX2)
/* Requantises and stores 16 lanes (o0..o0+15, `count` of them valid); packs saturate exactly
 * like the scalar clamp. */
static inline void gz_pw_store_s16x16_avx2(const gz_pw* l, __m256i a0, __m256i a1, int32_t o0, int32_t count,
                                           int16_t* y) {
  a0 = gz_requant_s32_avx2(_mm256_add_epi32(a0, _mm256_loadu_si256((const __m256i*)(l->bias + o0))),
                           _mm256_loadu_si256((const __m256i*)(l->multiplier + o0)),
                           _mm256_loadu_si256((const __m256i*)(l->left + o0)),
                           _mm256_loadu_si256((const __m256i*)(l->right + o0)));
  a1 = gz_requant_s32_avx2(_mm256_add_epi32(a1, _mm256_loadu_si256((const __m256i*)(l->bias + o0 + 8))),
                           _mm256_loadu_si256((const __m256i*)(l->multiplier + o0 + 8)),
                           _mm256_loadu_si256((const __m256i*)(l->left + o0 + 8)),
                           _mm256_loadu_si256((const __m256i*)(l->right + o0 + 8)));
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(a0, a1), 0xD8);
  if (count == 16) {
    _mm256_storeu_si256((__m256i*)(y + o0), packed);
  } else {
    int16_t tmp[16];
    _mm256_storeu_si256((__m256i*)tmp, packed);
    memcpy(y + o0, tmp, (size_t)count * 2);
  }
}

/* acc[p] += x[p] . w for np positions; inlined with np = GZ_PW_TILE for the full tiles, so
 * the compiler unrolls the position loop there. */
static inline void gz_pw_accumulate_s16s8_tile4x16_avx2(__m256i acc[GZ_PW_TILE][2], const int16_t* x16, int32_t pairs,
                                                        int32_t np, const int8_t* wp, int32_t stride, int full) {
  for (int32_t i = 0; i < pairs; ++i, wp += stride) {
    const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)wp));
    const __m256i w1 = full ? _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(wp + 16))) : _mm256_setzero_si256();
    for (int32_t p = 0; p < np; ++p) {
      int32_t pair;
      memcpy(&pair, x16 + (size_t)p * 2 * pairs + 2 * i, 4);
      const __m256i xb = _mm256_set1_epi32(pair);
      acc[p][0] = _mm256_add_epi32(acc[p][0], _mm256_madd_epi16(xb, w0));
      acc[p][1] = _mm256_add_epi32(acc[p][1], _mm256_madd_epi16(xb, w1));
    }
  }
}

static inline void gz_pw_s16s8_tile4x16_avx2(const gz_pw* l, const int16_t* x16, int32_t pairs, int32_t np,
                                             int16_t* y) {
  GZ_TRACE_VARIANT();
  for (int32_t o0 = 0; o0 < l->out8; o0 += 16) {
    __m256i acc[GZ_PW_TILE][2];
    for (int32_t p = 0; p < GZ_PW_TILE; ++p) acc[p][0] = acc[p][1] = _mm256_setzero_si256();
    const int8_t* wp = l->weight + (size_t)o0 * 2;
    const int full = o0 + 16 <= l->out8; /* else the last 8 outputs */
    if (np == GZ_PW_TILE) {
      gz_pw_accumulate_s16s8_tile4x16_avx2(acc, x16, pairs, GZ_PW_TILE, wp, l->out8 * 2, full);
    } else {
      gz_pw_accumulate_s16s8_tile4x16_avx2(acc, x16, pairs, np, wp, l->out8 * 2, full);
    }
    const int32_t count = l->out - o0 < 16 ? l->out - o0 : 16;
    for (int32_t p = 0; p < np; ++p)
      gz_pw_store_s16x16_avx2(l, acc[p][0], acc[p][1], o0, count, y + (size_t)p * l->out);
  }
}
#endif

#if defined(GZ_SIMD_NEON)
/* A cycle-model region per tile height NP (the markers' names must be literals). */
#define GZ_MCA_NP(marker, prefix, NP) \
  do {                                \
    if constexpr (NP == 4)            \
      marker(prefix##4);              \
    else if constexpr (NP == 3)       \
      marker(prefix##3);              \
    else if constexpr (NP == 2)       \
      marker(prefix##2);              \
    else                              \
      marker(prefix##1);              \
  } while (0)
#define GZ_MCA_BEGIN_NP(prefix, NP) GZ_MCA_NP(GZ_MCA_BEGIN, prefix, NP)
#define GZ_MCA_END_NP(prefix, NP) GZ_MCA_NP(GZ_MCA_END, prefix, NP)

/* Loops over positions and accumulators unrolled before GCC decides where arrays live. */
#define GZ_UNROLL _Pragma("GCC unroll 4")

/* Requantises and stores outputs o0..o0+15 (those below l->out) of NP positions from acc[p][k]
 * (outputs o0 + 4k .. o0 + 4k + 3). Each block of four outputs' parameters is loaded once for
 * the NP positions: per position they were 16 loads on the A72's one load pipe for 16 outputs. */
template <int NP>
static inline void gz_pw_store_tile_neon(const gz_pw* l, const int32x4_t acc[NP][4], int32_t o0, int16_t* y) {
  const int32_t count = l->out - o0 < 16 ? l->out - o0 : 16;
  int16_t r[NP][16];
  GZ_MCA_BEGIN_NP(pw_store, NP);
  GZ_UNROLL for (int32_t k = 0; k < 4; ++k) {
    const int32_t o = o0 + 4 * k;
    const int32x4_t bias = vld1q_s32(l->bias + o), multiplier = vld1q_s32(l->multiplier + o);
    const int32x4_t left = vld1q_s32(l->left + o), right = vld1q_s32(l->right + o);
    GZ_UNROLL for (int p = 0; p < NP; ++p) {
      vst1_s16(r[p] + 4 * k, vqmovn_s32(gz_requant_s32_neon(vaddq_s32(acc[p][k], bias), multiplier, left, right)));
    }
  }
  GZ_MCA_END_NP(pw_store, NP);
  GZ_UNROLL for (int p = 0; p < NP; ++p) memcpy(y + (size_t)p * l->out + o0, r[p], (size_t)count * 2);
}

/* NP positions: a compile-time count, with its loops unrolled, so the NP x 4 accumulators stay in
 * registers. With a run-time count GCC kept them on the stack: llvm-mca's A72 model (gaze bench
 * --model pi4) showed a 32-byte load and store beside every two SMLAL, 53 cycles per input pair
 * of a 4-position tile against 33 now (32 SMLAL on the A72's one integer multiply pipe). Per
 * input pair: the weights of 16 outputs (or the last 8) widened once, then multiplied into every
 * position's accumulators. */
template <int NP>
static inline void gz_pw_s16s8_tile_neon(const gz_pw* l, const int16_t* x16, int32_t pairs, int16_t* y) {
  for (int32_t o0 = 0; o0 < l->out8; o0 += 16) {
    int32x4_t acc[NP][4];
    GZ_UNROLL for (int p = 0; p < NP; ++p) GZ_UNROLL for (int k = 0; k < 4; ++k) acc[p][k] = vdupq_n_s32(0);
    const int8_t* wp = l->weight + (size_t)o0 * 2;
    const size_t step = (size_t)l->out8 * 2;
    if (o0 + 16 <= l->out8) {
      for (int32_t i = 0; i < pairs; ++i, wp += step) {
        GZ_MCA_BEGIN_NP(pw_step, NP);
        const int8x16x2_t w = vld2q_s8(wp); /* val[0]: input 2i, val[1]: input 2i+1 */
        const int16x8_t a_lo = vmovl_s8(vget_low_s8(w.val[0])), a_hi = vmovl_s8(vget_high_s8(w.val[0]));
        const int16x8_t b_lo = vmovl_s8(vget_low_s8(w.val[1])), b_hi = vmovl_s8(vget_high_s8(w.val[1]));
        GZ_UNROLL for (int p = 0; p < NP; ++p) {
          const int16_t xa = x16[(size_t)p * 2 * pairs + 2 * i], xb = x16[(size_t)p * 2 * pairs + 2 * i + 1];
          acc[p][0] = vmlal_n_s16(vmlal_n_s16(acc[p][0], vget_low_s16(a_lo), xa), vget_low_s16(b_lo), xb);
          acc[p][1] = vmlal_n_s16(vmlal_n_s16(acc[p][1], vget_high_s16(a_lo), xa), vget_high_s16(b_lo), xb);
          acc[p][2] = vmlal_n_s16(vmlal_n_s16(acc[p][2], vget_low_s16(a_hi), xa), vget_low_s16(b_hi), xb);
          acc[p][3] = vmlal_n_s16(vmlal_n_s16(acc[p][3], vget_high_s16(a_hi), xa), vget_high_s16(b_hi), xb);
        }
        GZ_MCA_END_NP(pw_step, NP);
      }
    } else { /* the last 8 outputs: the upper accumulators stay zero */
      for (int32_t i = 0; i < pairs; ++i, wp += step) {
        GZ_MCA_BEGIN_NP(pw_half, NP);
        const int8x8x2_t w = vld2_s8(wp);
        const int16x8_t a = vmovl_s8(w.val[0]), b = vmovl_s8(w.val[1]);
        GZ_UNROLL for (int p = 0; p < NP; ++p) {
          const int16_t xa = x16[(size_t)p * 2 * pairs + 2 * i], xb = x16[(size_t)p * 2 * pairs + 2 * i + 1];
          acc[p][0] = vmlal_n_s16(vmlal_n_s16(acc[p][0], vget_low_s16(a), xa), vget_low_s16(b), xb);
          acc[p][1] = vmlal_n_s16(vmlal_n_s16(acc[p][1], vget_high_s16(a), xa), vget_high_s16(b), xb);
        }
        GZ_MCA_END_NP(pw_half, NP);
      }
    }
    gz_pw_store_tile_neon<NP>(l, acc, o0, y);
  }
}

static inline void gz_pw_s16s8_tile4x16_neon(const gz_pw* l, const int16_t* x16, int32_t pairs, int32_t np,
                                             int16_t* y) {
  GZ_TRACE_VARIANT();
  switch (np) {
    case 4:
      gz_pw_s16s8_tile_neon<4>(l, x16, pairs, y);
      break;
    case 3:
      gz_pw_s16s8_tile_neon<3>(l, x16, pairs, y);
      break;
    case 2:
      gz_pw_s16s8_tile_neon<2>(l, x16, pairs, y);
      break;
    default:
      gz_pw_s16s8_tile_neon<1>(l, x16, pairs, y);
      break;
  }
}
#endif

/* One tile of np <= GZ_PW_TILE positions with the routine compiled in. */
static inline void gz_pw_s16s8_tile4x16(const gz_pw* l, const int16_t* x16, int32_t pairs, int32_t np, int16_t* y) {
#if defined(GZ_SIMD_AVX2)
  gz_pw_s16s8_tile4x16_avx2(l, x16, pairs, np, y);
#elif defined(GZ_SIMD_NEON)
  gz_pw_s16s8_tile4x16_neon(l, x16, pairs, np, y);
#else
  gz_pw_s16s8_tile4x16_scalar(l, x16, pairs, np, y);
#endif
}

/* ------------------------------------------------------------------------------------------ */
/* int8 inputs: a layer's int16 input rows requantised to [-127, 127] (gz_requant_s32_to_s8),   */
/* then int8 x int8 tiles: widened over the pairs layout (scalar, AVX2), or on NEON dot        */
/* products over the rows layout [out4][in8] (GZ_PW_S8_ROWS).                                   */

[[maybe_unused]] static inline void gz_cvt_s16_s8_row_scalar(const int16_t* x, int32_t n, gz_requant r, int8_t* y) {
  GZ_TRACE_VARIANT();
  for (int32_t i = 0; i < n; ++i) y[i] = gz_requant_s32_to_s8(x[i], r);
}

#if defined(GZ_SIMD_AVX2)
static inline void gz_cvt_s16_s8_row_avx2(const int16_t* x, int32_t n, gz_requant r, int8_t* y) {
  GZ_TRACE_VARIANT();
  const __m256i m = _mm256_set1_epi32(r.multiplier), sh = _mm256_set1_epi32(r.shift);
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i v = gz_requant_shift_s32_avx2(_mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i*)(x + i))), m, sh);
    v = _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
    const __m128i v16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64((__m128i*)(y + i), _mm_packs_epi16(v16, v16));
  }
  for (; i < n; ++i) y[i] = gz_requant_s32_to_s8(x[i], r);
}
#endif

#if defined(GZ_SIMD_NEON)
static inline void gz_cvt_s16_s8_row_neon(const int16_t* x, int32_t n, gz_requant r, int8_t* y) {
  GZ_TRACE_VARIANT();
  /* the shift split and negated once, outside the loop */
  const int32x4_t m = vdupq_n_s32(r.multiplier), left = vdupq_n_s32(r.shift > 0 ? r.shift : 0);
  const int32x4_t neg_right = vdupq_n_s32(r.shift > 0 ? 0 : r.shift);
  const int8x8_t lowest = vdup_n_s8(-127);
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    GZ_MCA_BEGIN(cvt_s8);
    const int16x8_t v = vld1q_s16(x + i);
    const int32x4_t a = gz_requant_negr_s32_neon(vmovl_s16(vget_low_s16(v)), m, left, neg_right);
    const int32x4_t b = gz_requant_negr_s32_neon(vmovl_s16(vget_high_s16(v)), m, left, neg_right);
    /* saturated to [-128, 127] by the narrowing, then -128 to -127: the clamp to [-127, 127] */
    vst1_s8(y + i, vmax_s8(vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b))), lowest));
    GZ_MCA_END(cvt_s8);
  }
  for (; i < n; ++i) y[i] = gz_requant_s32_to_s8(x[i], r);
}
#endif

static inline void gz_cvt_s16_s8_row(const int16_t* x, int32_t n, gz_requant r, int8_t* y) {
#if defined(GZ_SIMD_AVX2)
  gz_cvt_s16_s8_row_avx2(x, n, r, y);
#elif defined(GZ_SIMD_NEON)
  gz_cvt_s16_s8_row_neon(x, n, r, y);
#else
  gz_cvt_s16_s8_row_scalar(x, n, r, y);
#endif
}

/* Scalar and AVX2: the int8 tile widened, then the int16 tile routine (same sums). */
[[maybe_unused]] static inline void gz_pw_s8s8_tile4x16_scalar(const gz_pw* l, const int8_t* x8, int32_t pairs,
                                                               int32_t np, int16_t* y) {
  int16_t x16[GZ_PW_TILE * GZ_PW_MAX_IN];
  for (int32_t i = 0; i < np * 2 * pairs; ++i) x16[i] = x8[i];
  gz_pw_s16s8_tile4x16_scalar(l, x16, pairs, np, y);
  GZ_TRACE_VARIANT();
}

#if defined(GZ_SIMD_AVX2)
static inline void gz_pw_s8s8_tile4x16_avx2(const gz_pw* l, const int8_t* x8, int32_t pairs, int32_t np, int16_t* y) {
  int16_t x16[GZ_PW_TILE * GZ_PW_MAX_IN];
  const int32_t n = np * 2 * pairs;
  int32_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256((__m256i*)(x16 + i), _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(x8 + i))));
  for (; i < n; ++i) x16[i] = x8[i];
  gz_pw_s16s8_tile4x16_avx2(l, x16, pairs, np, y);
  GZ_TRACE_VARIANT();
}
#endif

#if defined(GZ_SIMD_NEON)
/* NP positions x 4 outputs as dot products along the input (the A72 has no SDOT): weights in the
 * rows layout [out4][in8], inputs [NP][in8]. Per 16 inputs of one position and one output, SMULL
 * and SMLAL2 leave two products in each 16-bit lane (|sum| <= 2 * 127 * 127 < 2^15) and SADALP
 * adds lane pairs into that pair's int32 accumulator; an 8-input tail takes SMULL alone. A full
 * tile loads 8 vectors per 16 inputs and issues 32 multiplies (256 MACs, the A72's one integer
 * multiply pipe's bound) and nothing else on that pipe: no broadcast of inputs, and 16
 * accumulators + 8 operands fit the 32 registers. The accumulators' lanes are summed at the end. */
template <int NP>
static inline void gz_pw_s8s8_tile_neon(const gz_pw* l, const int8_t* x8, int32_t in8, int16_t* y) {
  for (int32_t o0 = 0; o0 < l->out; o0 += 4) {
    int32x4_t acc[NP][4];
    GZ_UNROLL for (int p = 0; p < NP; ++p) GZ_UNROLL for (int k = 0; k < 4; ++k) acc[p][k] = vdupq_n_s32(0);
    const int8_t* w = l->weight + (size_t)o0 * (size_t)in8;
    int32_t i = 0;
    for (; i + 16 <= in8; i += 16) {
      GZ_MCA_BEGIN_NP(pw8_dot, NP);
      int8x16_t wv[4];
      GZ_UNROLL for (int k = 0; k < 4; ++k) wv[k] = vld1q_s8(w + (size_t)k * (size_t)in8 + i);
      GZ_UNROLL for (int p = 0; p < NP; ++p) {
        const int8x16_t xv = vld1q_s8(x8 + (size_t)p * (size_t)in8 + i);
        GZ_UNROLL for (int k = 0; k < 4; ++k) {
          acc[p][k] = vpadalq_s16(acc[p][k], vmlal_high_s8(vmull_s8(vget_low_s8(xv), vget_low_s8(wv[k])), xv, wv[k]));
        }
      }
      GZ_MCA_END_NP(pw8_dot, NP);
    }
    if (i < in8) { /* the last 8 inputs */
      int8x8_t wv[4];
      GZ_UNROLL for (int k = 0; k < 4; ++k) wv[k] = vld1_s8(w + (size_t)k * (size_t)in8 + i);
      GZ_UNROLL for (int p = 0; p < NP; ++p) {
        const int8x8_t xv = vld1_s8(x8 + (size_t)p * (size_t)in8 + i);
        GZ_UNROLL for (int k = 0; k < 4; ++k) acc[p][k] = vpadalq_s16(acc[p][k], vmull_s8(xv, wv[k]));
      }
    }
    const int32x4_t bias = vld1q_s32(l->bias + o0), multiplier = vld1q_s32(l->multiplier + o0);
    const int32x4_t left = vld1q_s32(l->left + o0), neg_right = vnegq_s32(vld1q_s32(l->right + o0));
    /* each position's four sums (lanes added pairwise), + bias, requantised */
#define GZ_PW8_SUM(p) vaddq_s32(vpaddq_s32(vpaddq_s32(acc[p][0], acc[p][1]), vpaddq_s32(acc[p][2], acc[p][3])), bias)
    int16x4_t out[NP];
    if (vmaxvq_s32(left) == 0) { /* nearly every block: a multiplier below 1 needs no left shift */
      GZ_MCA_BEGIN_NP(pw8_dot_store, NP);
      GZ_UNROLL for (int p = 0; p < NP; ++p) {
        out[p] = vqmovn_s32(gz_requant_right_s32_neon(GZ_PW8_SUM(p), multiplier, neg_right));
      }
      GZ_MCA_END_NP(pw8_dot_store, NP);
    } else {
      GZ_MCA_BEGIN_NP(pw8_dot_shl, NP);
      GZ_UNROLL for (int p = 0; p < NP; ++p) {
        out[p] = vqmovn_s32(gz_requant_negr_s32_neon(GZ_PW8_SUM(p), multiplier, left, neg_right));
      }
      GZ_MCA_END_NP(pw8_dot_shl, NP);
    }
#undef GZ_PW8_SUM
    const int32_t count = l->out - o0 < 4 ? l->out - o0 : 4;
    GZ_UNROLL for (int p = 0; p < NP; ++p) {
      if (count == 4) {
        vst1_s16(y + (size_t)p * l->out + o0, out[p]);
      } else {
        int16_t r[4];
        vst1_s16(r, out[p]);
        memcpy(y + (size_t)p * l->out + o0, r, (size_t)count * 2);
      }
    }
  }
}

static inline void gz_pw_s8s8_tile4x4_neon(const gz_pw* l, const int8_t* x8, int32_t in8, int32_t np, int16_t* y) {
  GZ_TRACE_VARIANT();
  switch (np) {
    case 4:
      gz_pw_s8s8_tile_neon<4>(l, x8, in8, y);
      break;
    case 3:
      gz_pw_s8s8_tile_neon<3>(l, x8, in8, y);
      break;
    case 2:
      gz_pw_s8s8_tile_neon<2>(l, x8, in8, y);
      break;
    default:
      gz_pw_s8s8_tile_neon<1>(l, x8, in8, y);
      break;
  }
}
#endif

/* The length of an int8 tile's input rows: in rounded up to 8 for the rows layout, else to 2. */
static inline int32_t gz_pw_s8_row(const gz_pw* l) {
  return GZ_PW_S8_ROWS ? gz_pw_rows_in(l->in) : (l->in + 1) / 2 * 2;
}

/* One int8 tile of np <= GZ_PW_TILE positions (rows of gz_pw_s8_row(l), zero padded, |x| <= 127). */
static inline void gz_pw_s8s8_tile(const gz_pw* l, const int8_t* x8, int32_t row, int32_t np, int16_t* y) {
#if defined(GZ_SIMD_AVX2)
  gz_pw_s8s8_tile4x16_avx2(l, x8, row / 2, np, y);
#elif defined(GZ_SIMD_NEON)
  gz_pw_s8s8_tile4x4_neon(l, x8, row, np, y);
#else
  gz_pw_s8s8_tile4x16_scalar(l, x8, row / 2, np, y);
#endif
}

/* y[p] = l(x[p]) for `positions` rows: rows copied into tiles of GZ_PW_TILE, padded to an even
 * length for the pair loads (int8 rows on NEON: to a multiple of 8), requantised to int8 on the
 * way for an int8-input layer. */
static inline void gz_pw_run(const gz_pw* l, const int16_t* x, int32_t positions, int16_t* y) {
  const int32_t pairs = (l->in + 1) / 2;
  if (l->to_s8.multiplier != 0) {
    int8_t x8[GZ_PW_TILE * GZ_PW_MAX_IN];
    const int32_t row = gz_pw_s8_row(l);
    for (int32_t p0 = 0; p0 < positions; p0 += GZ_PW_TILE) {
      const int32_t np = positions - p0 < GZ_PW_TILE ? positions - p0 : GZ_PW_TILE;
      for (int32_t p = 0; p < np; ++p) {
        gz_cvt_s16_s8_row(x + (size_t)(p0 + p) * l->in, l->in, l->to_s8, x8 + (size_t)p * row);
        memset(x8 + (size_t)p * row + l->in, 0, (size_t)(row - l->in));
      }
      gz_pw_s8s8_tile(l, x8, row, np, y + (size_t)p0 * l->out);
    }
    return;
  }
  int16_t x16[GZ_PW_TILE * GZ_PW_MAX_IN];
  for (int32_t p0 = 0; p0 < positions; p0 += GZ_PW_TILE) {
    const int32_t np = positions - p0 < GZ_PW_TILE ? positions - p0 : GZ_PW_TILE;
    for (int32_t p = 0; p < np; ++p) {
      memcpy(x16 + (size_t)p * 2 * pairs, x + (size_t)(p0 + p) * l->in, (size_t)l->in * 2);
      if (l->in % 2) x16[(size_t)p * 2 * pairs + l->in] = 0;
    }
    gz_pw_s16s8_tile4x16(l, x16, pairs, np, y + (size_t)p0 * l->out);
  }
}

/* y[p] = l(x8[p]) for an int8-input layer fed int8 values as they are (a block's int8 GELU
 * outputs after GRN): rows as long as the tile row (gz_pw_s8_row) go to the tiles in place,
 * others through a zero-padded copy. */
static inline void gz_pw_run_s8(const gz_pw* l, const int8_t* x8, int32_t positions, int16_t* y) {
  const int32_t row = gz_pw_s8_row(l);
  int8_t padded[GZ_PW_TILE * GZ_PW_MAX_IN];
  for (int32_t p0 = 0; p0 < positions; p0 += GZ_PW_TILE) {
    const int32_t np = positions - p0 < GZ_PW_TILE ? positions - p0 : GZ_PW_TILE;
    const int8_t* tile = x8 + (size_t)p0 * l->in;
    if (row != l->in) {
      for (int32_t p = 0; p < np; ++p) {
        memcpy(padded + (size_t)p * row, tile + (size_t)p * l->in, (size_t)l->in);
        memset(padded + (size_t)p * row + l->in, 0, (size_t)(row - l->in));
      }
      tile = padded;
    }
    gz_pw_s8s8_tile(l, tile, row, np, y + (size_t)p0 * l->out);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Depthwise 7x7 of one output row y of x [h][w][C] (int16) into out [w][C] (int16). The SIMD  */
/* routines take 8 channels per step and finish the channels with the scalar code.            */

/* The taps [*lo, *hi) of a 7-tap window centred at pos that fall inside [0, size). */
static inline void gz_dw7x7_taps(int32_t pos, int32_t size, int32_t* lo, int32_t* hi) {
  *lo = pos < 3 ? 3 - pos : 0;
  *hi = size - pos + 3 < 7 ? size - pos + 3 : 7;
}

/* Output column col, channels c..C-1; ky0..ky1 / kx0..kx1: the taps inside the image. */
static inline void gz_dw7x7_s16s8_col_scalar(const gz_dw* l, const int16_t* x, int32_t w, int32_t y, int32_t col,
                                             int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1, int32_t c,
                                             int16_t* out) {
  const int32_t c_count = l->channels;
  for (; c < c_count; ++c) {
    int32_t acc = l->bias[c];
    for (int32_t ky = ky0; ky < ky1; ++ky)
      for (int32_t kx = kx0; kx < kx1; ++kx) {
        GZ_MCA_BEGIN(dw_tail);
        acc += x[((size_t)(y + ky - 3) * w + (size_t)(col + kx - 3)) * c_count + c] *
               l->weight[(size_t)(ky * 7 + kx) * c_count + c];
        GZ_MCA_END(dw_tail);
      }
    out[(size_t)col * c_count + c] =
        (int16_t)gz_clamp_s32(gz_requant_s32_scalar(acc, l->multiplier[c], l->left[c], l->right[c]), -32768, 32767);
  }
}

[[maybe_unused]] static inline void gz_dw7x7_s16s8_row_scalar(const gz_dw* l, const int16_t* x, int32_t h, int32_t w,
                                                              int32_t y, int16_t* out) {
  GZ_TRACE_VARIANT();
  int32_t ky0, ky1;
  gz_dw7x7_taps(y, h, &ky0, &ky1);
  for (int32_t col = 0; col < w; ++col) {
    int32_t kx0, kx1;
    gz_dw7x7_taps(col, w, &kx0, &kx1);
    gz_dw7x7_s16s8_col_scalar(l, x, w, y, col, ky0, ky1, kx0, kx1, 0, out);
  }
}

#if defined(GZ_SIMD_AVX2)
static inline void gz_dw7x7_s16s8_row_avx2(const gz_dw* l, const int16_t* x, int32_t h, int32_t w, int32_t y,
                                           int16_t* out) {
  GZ_TRACE_VARIANT();
  const int32_t c_count = l->channels;
  int32_t ky0, ky1;
  gz_dw7x7_taps(y, h, &ky0, &ky1);
  for (int32_t col = 0; col < w; ++col) {
    int32_t kx0, kx1;
    gz_dw7x7_taps(col, w, &kx0, &kx1);
    int32_t c = 0;
    for (; c + 8 <= c_count; c += 8) {
      __m256i acc = _mm256_loadu_si256((const __m256i*)(l->bias + c));
      for (int32_t ky = ky0; ky < ky1; ++ky) {
        const int16_t* xr = x + ((size_t)(y + ky - 3) * w + (size_t)(col + kx0 - 3)) * c_count + c;
        const int8_t* wr = l->weight + (size_t)(ky * 7 + kx0) * c_count + c;
        for (int32_t kx = 0; kx < kx1 - kx0; ++kx) {
          const __m256i xv = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i*)(xr + (size_t)kx * c_count)));
          const __m256i wv = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(wr + (size_t)kx * c_count)));
          acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(xv, wv));
        }
      }
      acc = gz_requant_s32_avx2(acc, _mm256_loadu_si256((const __m256i*)(l->multiplier + c)),
                                _mm256_loadu_si256((const __m256i*)(l->left + c)),
                                _mm256_loadu_si256((const __m256i*)(l->right + c)));
      const __m128i packed = _mm_packs_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
      _mm_storeu_si128((__m128i*)(out + (size_t)col * c_count + c), packed);
    }
    gz_dw7x7_s16s8_col_scalar(l, x, w, y, col, ky0, ky1, kx0, kx1, c, out);
  }
}
#endif

#if defined(GZ_SIMD_NEON)
/* Requantises and stores 8 channels of one output column. */
static inline void gz_dw7x7_store_s32x8_neon(const gz_dw* l, int32x4_t lo, int32x4_t hi, int32_t c, int16_t* out) {
  GZ_MCA_BEGIN(dw_store);
  lo = gz_requant_s32_neon(lo, vld1q_s32(l->multiplier + c), vld1q_s32(l->left + c), vld1q_s32(l->right + c));
  hi = gz_requant_s32_neon(hi, vld1q_s32(l->multiplier + c + 4), vld1q_s32(l->left + c + 4),
                           vld1q_s32(l->right + c + 4));
  vst1q_s16(out + c, vcombine_s16(vqmovn_s32(lo), vqmovn_s32(hi)));
  GZ_MCA_END(dw_store);
}

/* Channels c..c+3 of output column col (taps ky0..ky1 x kx0..kx1 inside the image), when at
 * least four remain after the blocks of 8 (stage 2's 20 leaves 4): one SMLAL per tap where the
 * scalar tail took four multiply-adds. Returns the next channel. */
static inline int32_t gz_dw7x7_s16s8_col4_neon(const gz_dw* l, const int16_t* x, int32_t w, int32_t y, int32_t col,
                                               int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1, int32_t c,
                                               int16_t* out) {
  const int32_t c_count = l->channels;
  if (c + 4 > c_count) return c;
  int32x4_t acc = vld1q_s32(l->bias + c);
  for (int32_t ky = ky0; ky < ky1; ++ky) {
    const int16_t* xr = x + ((size_t)(y + ky - 3) * w + (size_t)(col + kx0 - 3)) * c_count + c;
    const int8_t* wr = l->weight + (size_t)(ky * 7 + kx0) * c_count + c;
    for (int32_t kx = 0; kx < kx1 - kx0; ++kx) {
      GZ_MCA_BEGIN(dw_mac4);
      int32_t w4; /* four int8 weights: a 4-byte load, not 8 past the array's end */
      memcpy(&w4, wr + (size_t)kx * c_count, 4);
      const int16x4_t wv = vget_low_s16(vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(w4))));
      acc = vmlal_s16(acc, vld1_s16(xr + (size_t)kx * c_count), wv);
      GZ_MCA_END(dw_mac4);
    }
  }
  acc = gz_requant_s32_neon(acc, vld1q_s32(l->multiplier + c), vld1q_s32(l->left + c), vld1q_s32(l->right + c));
  vst1_s16(out + (size_t)col * c_count + c, vqmovn_s32(acc));
  return c + 4;
}

/* Two neighbouring output columns whose 7x7 windows lie inside the row (3 <= col, col + 4 < w):
 * per kernel row, the 8 input columns col-3 .. col+4 are loaded once and each of the 7 weights
 * once, and serve both outputs (one column at a time loaded 14 inputs and 14 weights per 7 taps:
 * the Pi 4 model had the one-column loop at 4 cycles per 8 multiply-accumulates, load-bound). */
static inline void gz_dw7x7_s16s8_pair_neon(const gz_dw* l, const int16_t* x, int32_t w, int32_t y, int32_t ky0,
                                            int32_t ky1, int32_t col, int16_t* out) {
  const int32_t c_count = l->channels;
  int32_t c = 0;
  for (; c + 8 <= c_count; c += 8) {
    int32x4_t a_lo = vld1q_s32(l->bias + c), a_hi = vld1q_s32(l->bias + c + 4);
    int32x4_t b_lo = a_lo, b_hi = a_hi;
    for (int32_t ky = ky0; ky < ky1; ++ky) {
      const int16_t* xr = x + ((size_t)(y + ky - 3) * w + (size_t)(col - 3)) * c_count + c;
      const int8_t* wr = l->weight + (size_t)(ky * 7) * c_count + c;
      GZ_MCA_BEGIN(dw_pair_row);
      int16x8_t xv[8];
      _Pragma("GCC unroll 8") for (int32_t k = 0; k < 8; ++k) xv[k] = vld1q_s16(xr + (size_t)k * c_count);
      _Pragma("GCC unroll 8") for (int32_t kx = 0; kx < 7; ++kx) {
        const int16x8_t wv = vmovl_s8(vld1_s8(wr + (size_t)kx * c_count));
        a_lo = vmlal_s16(a_lo, vget_low_s16(xv[kx]), vget_low_s16(wv));
        a_hi = vmlal_high_s16(a_hi, xv[kx], wv);
        b_lo = vmlal_s16(b_lo, vget_low_s16(xv[kx + 1]), vget_low_s16(wv));
        b_hi = vmlal_high_s16(b_hi, xv[kx + 1], wv);
      }
      GZ_MCA_END(dw_pair_row);
    }
    gz_dw7x7_store_s32x8_neon(l, a_lo, a_hi, c, out + (size_t)col * c_count);
    gz_dw7x7_store_s32x8_neon(l, b_lo, b_hi, c, out + (size_t)(col + 1) * c_count);
  }
  for (int32_t k = 0; k < 2; ++k) {
    const int32_t tail = gz_dw7x7_s16s8_col4_neon(l, x, w, y, col + k, ky0, ky1, 0, 7, c, out);
    gz_dw7x7_s16s8_col_scalar(l, x, w, y, col + k, ky0, ky1, 0, 7, tail, out);
  }
}

static inline void gz_dw7x7_s16s8_row_neon(const gz_dw* l, const int16_t* x, int32_t h, int32_t w, int32_t y,
                                           int16_t* out) {
  GZ_TRACE_VARIANT();
  const int32_t c_count = l->channels;
  int32_t ky0, ky1;
  gz_dw7x7_taps(y, h, &ky0, &ky1);
  for (int32_t col = 0; col < w;) {
    if (col >= 3 && col + 4 < w) { /* two interior columns */
      gz_dw7x7_s16s8_pair_neon(l, x, w, y, ky0, ky1, col, out);
      col += 2;
      continue;
    }
    int32_t kx0, kx1;
    gz_dw7x7_taps(col, w, &kx0, &kx1);
    int32_t c = 0;
    for (; c + 8 <= c_count; c += 8) {
      int32x4_t lo = vld1q_s32(l->bias + c), hi = vld1q_s32(l->bias + c + 4);
      for (int32_t ky = ky0; ky < ky1; ++ky) {
        const int16_t* xr = x + ((size_t)(y + ky - 3) * w + (size_t)(col + kx0 - 3)) * c_count + c;
        const int8_t* wr = l->weight + (size_t)(ky * 7 + kx0) * c_count + c;
        for (int32_t kx = 0; kx < kx1 - kx0; ++kx) {
          GZ_MCA_BEGIN(dw_mac);
          const int16x8_t xv = vld1q_s16(xr + (size_t)kx * c_count);
          const int16x8_t wv = vmovl_s8(vld1_s8(wr + (size_t)kx * c_count));
          lo = vmlal_s16(lo, vget_low_s16(xv), vget_low_s16(wv));
          hi = vmlal_s16(hi, vget_high_s16(xv), vget_high_s16(wv));
          GZ_MCA_END(dw_mac);
        }
      }
      gz_dw7x7_store_s32x8_neon(l, lo, hi, c, out + (size_t)col * c_count);
    }
    c = gz_dw7x7_s16s8_col4_neon(l, x, w, y, col, ky0, ky1, kx0, kx1, c, out);
    gz_dw7x7_s16s8_col_scalar(l, x, w, y, col, ky0, ky1, kx0, kx1, c, out);
    ++col;
  }
}
#endif

static inline void gz_dw7x7_s16s8_row(const gz_dw* l, const int16_t* x, int32_t h, int32_t w, int32_t y, int16_t* out) {
#if defined(GZ_SIMD_AVX2)
  gz_dw7x7_s16s8_row_avx2(l, x, h, w, y, out);
#elif defined(GZ_SIMD_NEON)
  gz_dw7x7_s16s8_row_neon(l, x, h, w, y, out);
#else
  gz_dw7x7_s16s8_row_scalar(l, x, h, w, y, out);
#endif
}

/* ------------------------------------------------------------------------------------------ */
/* Residual add r += f, saturating (== clamp).                                                 */

[[maybe_unused]] static inline void gz_add_s16_scalar(int16_t* r, const int16_t* f, size_t n) {
  GZ_TRACE_VARIANT();
  for (size_t i = 0; i < n; ++i) r[i] = (int16_t)gz_clamp_s32((int64_t)r[i] + f[i], -32768, 32767);
}

#if defined(GZ_SIMD_AVX2)
static inline void gz_add_s16_avx2(int16_t* r, const int16_t* f, size_t n) {
  GZ_TRACE_VARIANT();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i v =
        _mm256_adds_epi16(_mm256_loadu_si256((const __m256i*)(r + i)), _mm256_loadu_si256((const __m256i*)(f + i)));
    _mm256_storeu_si256((__m256i*)(r + i), v);
  }
  for (; i < n; ++i) r[i] = (int16_t)gz_clamp_s32((int64_t)r[i] + f[i], -32768, 32767);
}
#endif

#if defined(GZ_SIMD_NEON)
static inline void gz_add_s16_neon(int16_t* r, const int16_t* f, size_t n) {
  GZ_TRACE_VARIANT();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    GZ_MCA_BEGIN(add);
    vst1q_s16(r + i, vqaddq_s16(vld1q_s16(r + i), vld1q_s16(f + i)));
    GZ_MCA_END(add);
  }
  for (; i < n; ++i) {
    GZ_MCA_BEGIN(add_tail);
    r[i] = (int16_t)gz_clamp_s32((int64_t)r[i] + f[i], -32768, 32767);
    GZ_MCA_END(add_tail);
  }
}
#endif

static inline void gz_add_s16(int16_t* r, const int16_t* f, size_t n) {
#if defined(GZ_SIMD_AVX2)
  gz_add_s16_avx2(r, f, n);
#elif defined(GZ_SIMD_NEON)
  gz_add_s16_neon(r, f, n);
#else
  gz_add_s16_scalar(r, f, n);
#endif
}

/* LeakyReLU over n values in place (the adapters' bottleneck). */
[[maybe_unused]] static inline void gz_leaky_relu_s16_row_scalar(int16_t* x, size_t n, gz_requant slope) {
  GZ_TRACE_VARIANT();
  for (size_t i = 0; i < n; ++i) {
    GZ_MCA_BEGIN(leaky_relu);
    x[i] = gz_leaky_relu_s16(x[i], slope);
    GZ_MCA_END(leaky_relu);
  }
}

#if defined(GZ_SIMD_AVX2)
static inline void gz_leaky_relu_s16_row_avx2(int16_t* x, size_t n, gz_requant slope) {
  GZ_TRACE_VARIANT();
  const __m256i multiplier = _mm256_set1_epi32(slope.multiplier), shift = _mm256_set1_epi32(slope.shift);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i v = _mm_loadu_si128((const __m128i*)(x + i));
    int16_t scaled[8];
    gz_store_s16x8_avx2(scaled, gz_requant_shift_s32_avx2(_mm256_cvtepi16_epi32(v), multiplier, shift));
    const __m128i negative = _mm_cmplt_epi16(v, _mm_setzero_si128());
    _mm_storeu_si128((__m128i*)(x + i), _mm_blendv_epi8(v, _mm_loadu_si128((const __m128i*)scaled), negative));
  }
  for (; i < n; ++i) x[i] = gz_leaky_relu_s16(x[i], slope);
}
#endif

#if defined(GZ_SIMD_NEON)
/* Eight values per pass (the scalar loop took 16 cycles per value in the Pi 4 model). */
static inline void gz_leaky_relu_s16_row_neon(int16_t* x, size_t n, gz_requant slope) {
  GZ_TRACE_VARIANT();
  const int32x4_t multiplier = vdupq_n_s32(slope.multiplier);
  const int32x4_t left = vdupq_n_s32(slope.shift > 0 ? slope.shift : 0);
  const int32x4_t neg_right = vdupq_n_s32(slope.shift > 0 ? 0 : slope.shift);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    GZ_MCA_BEGIN(leaky_relu8);
    const int16x8_t v = vld1q_s16(x + i);
    const int32x4_t lo = gz_requant_negr_s32_neon(vmovl_s16(vget_low_s16(v)), multiplier, left, neg_right);
    const int32x4_t hi = gz_requant_negr_s32_neon(vmovl_high_s16(v), multiplier, left, neg_right);
    vst1q_s16(x + i, vbslq_s16(vcltzq_s16(v), vcombine_s16(vqmovn_s32(lo), vqmovn_s32(hi)), v));
    GZ_MCA_END(leaky_relu8);
  }
  for (; i < n; ++i) {
    GZ_MCA_BEGIN(leaky_relu);
    x[i] = gz_leaky_relu_s16(x[i], slope);
    GZ_MCA_END(leaky_relu);
  }
}
#endif

static inline void gz_leaky_relu_s16_row(int16_t* x, size_t n, gz_requant slope) {
#if defined(GZ_SIMD_AVX2)
  gz_leaky_relu_s16_row_avx2(x, n, slope);
#elif defined(GZ_SIMD_NEON)
  gz_leaky_relu_s16_row_neon(x, n, slope);
#else
  gz_leaky_relu_s16_row_scalar(x, n, slope);
#endif
}

/* ------------------------------------------------------------------------------------------ */
/* The network.                                                                                */

/* pw1 then GELU for one row of `w` positions. */
static inline void gz_pw1_gelu_row(const gz_block* b, const int16_t* u, int32_t w, int16_t* out) {
  gz_pw_run(&b->pw1, u, w, out);
  gz_gelu_s16_row(out, (size_t)w * 4 * b->dim, b->gelu);
}

/* The same, then the outputs requantised to int8 (b->hidden_s8) into out8; out is scratch. */
static inline void gz_pw1_gelu_s8_row(const gz_block* b, const int16_t* u, int32_t w, int16_t* out, int8_t* out8) {
  gz_pw1_gelu_row(b, u, w, out);
  gz_cvt_s16_s8_row(out, w * 4 * b->dim, b->hidden_s8, out8);
}

/* One block on the residual r (h x w x C) in place; its first `keep` rows (<= h) keep their
 * pw1/GELU outputs (as int8 when b->hidden_s8 is set: GRN then runs int8 -> int8 and pw2 takes
 * its output as is), the others their LayerNorm outputs. With `f_out` (personalisation), the
 * block's pw2 output is also written there and its adapter is skipped: r ends as r + f. */
static inline void gz_block_run(const gz_block* b, int16_t* r, int32_t h, int32_t w, int32_t keep, uint8_t* arena,
                                const gz_arena_plan* plan, int16_t* f_out) {
  const int32_t c = b->dim, c4 = 4 * c;
  const int s8 = b->hidden_s8.multiplier != 0;
  const size_t row = (size_t)w * c, row4 = (size_t)w * c4, kept_row_bytes = row4 * (s8 ? 1 : 2);
  uint8_t* kept = arena + plan->hidden;                               /* rows [0, keep): pw1/GELU outputs */
  int16_t* normed = (int16_t*)(kept + (size_t)keep * kept_row_bytes); /* rows [keep, h): LayerNorm outputs */
  int16_t* t_row = (int16_t*)(arena + plan->row_a);
  int16_t* h_row = (int16_t*)(arena + plan->row_b);
  int8_t* g8_row = (int8_t*)(arena + plan->row_d); /* a recomputed row's int8 outputs */
  int64_t* sum_sq = (int64_t*)(arena + plan->sum_sq);
  for (int32_t k = 0; k < c4; ++k) sum_sq[k] = 0;

  /* Pass A, row by row: depthwise, LayerNorm, pw1 + GELU (+ int8); GRN's sums of squares. */
  for (int32_t y = 0; y < h; ++y) {
    gz_dw7x7_s16s8_row(&b->dw, r, h, w, y, t_row);
    int16_t* u = y < keep ? (int16_t*)(arena + plan->row_c) : normed + (size_t)(y - keep) * row;
    for (int32_t x = 0; x < w; ++x) gz_layernorm_s16_row(t_row + (size_t)x * c, &b->norm, u + (size_t)x * c);
    if (s8) {
      int8_t* g8 = y < keep ? (int8_t*)(kept + (size_t)y * kept_row_bytes) : g8_row;
      gz_pw1_gelu_s8_row(b, u, w, h_row, g8);
      gz_sum_sq_s8_rows(g8, w, c4, sum_sq);
    } else {
      int16_t* g = y < keep ? (int16_t*)(kept + (size_t)y * kept_row_bytes) : h_row;
      gz_pw1_gelu_row(b, u, w, g);
      gz_sum_sq_s16_rows(g, w, c4, sum_sq);
    }
  }
  uint32_t* norms = (uint32_t*)(arena + plan->norms);
  int32_t* grn_m = (int32_t*)(arena + plan->grn_m);
  int32_t* grn_s = (int32_t*)(arena + plan->grn_s);
  gz_grn_requants(sum_sq, &b->grn, norms, grn_m, grn_s);
  int16_t* grn16_m = (int16_t*)(arena + plan->grn16);
  int16_t* grn16_r = grn16_m + c4;
  int16_t* grn16_b = grn16_r + c4;
  if (s8) gz_grn_requants_s8(grn_m, grn_s, &b->grn, grn16_m, grn16_r, grn16_b);

  /* Pass B, row by row: (pw1 + GELU again,) GRN, pw2, adapter, residual. */
  int16_t* f_row = (int16_t*)(arena + plan->row_a);
  for (int32_t y = 0; y < h; ++y) {
    uint8_t* kept_row = y < keep ? kept + (size_t)y * kept_row_bytes : 0;
    if (s8) {
      int8_t* g8 = kept_row ? (int8_t*)kept_row : g8_row;
      if (!kept_row) gz_pw1_gelu_s8_row(b, normed + (size_t)(y - keep) * row, w, h_row, g8);
      for (int32_t x = 0; x < w; ++x) gz_grn_s8_row(g8 + (size_t)x * c4, c4, grn16_m, grn16_r, grn16_b);
      gz_pw_run_s8(&b->pw2, g8, w, f_row);
    } else {
      int16_t* g = kept_row ? (int16_t*)kept_row : h_row;
      if (!kept_row) gz_pw1_gelu_row(b, normed + (size_t)(y - keep) * row, w, g);
      for (int32_t x = 0; x < w; ++x) gz_grn_s16_row(g + (size_t)x * c4, c4, grn_m, grn_s, b->grn.beta);
      gz_pw_run(&b->pw2, g, w, f_row);
    }
    int16_t* r_row = r + (size_t)y * row;
    gz_add_s16(r_row, f_row, row);
    if (f_out) memcpy(f_out + (size_t)y * row, f_row, row * sizeof(int16_t));
    if (b->adapter && !f_out) {
      const gz_adapter* a = b->adapter;
      int16_t* d_row = (int16_t*)(arena + plan->row_c);
      int16_t* lo_row = (int16_t*)(arena + plan->row_d);
      const size_t bottleneck = (size_t)w * a->down_hi.out;
      gz_pw_run(&a->down_hi, f_row, w, d_row);
      gz_pw_run(&a->down_lo, f_row, w, lo_row);
      gz_add_s16(d_row, lo_row, bottleneck);
      gz_leaky_relu_s16_row(d_row, bottleneck, a->slope);
      gz_pw_run(&a->up, d_row, w, lo_row);
      gz_add_s16(r_row, lo_row, row);
    }
  }
}

/* The stem and the stages on the resampled image in the arena; returns the last stage's residual
 * (h x w x dims[3]). With `tune_f` (personalisation, export/tune_run.h) it stops inside the last
 * stage's first block: the residual holds r_0 + f_0 (saturated, as the kernel adds them) and
 * tune_f that block's pw2 output f_0; neither its adapter nor the blocks after it run. */
static inline int16_t* gz_net_stages(const gz_net* net, uint8_t* arena, const gz_arena_plan* plan, int16_t* tune_f) {
  const uint8_t* image = arena + plan->image;
  /* Stem: 4x4/s4 patches of p - 128 -> LayerNorm -> residual (row by row). */
  int32_t h = net->input_h / 4, w = net->input_w / 4;
  int16_t* r = (int16_t*)(arena + plan->res_a);
  int16_t* gather = (int16_t*)(arena + plan->gather);
  int16_t* t_row = (int16_t*)(arena + plan->row_a);
  for (int32_t y = 0; y < h; ++y) {
    for (int32_t x = 0; x < w; ++x)
      for (int32_t ky = 0; ky < 4; ++ky)
        for (int32_t kx = 0; kx < 4; ++kx)
          gather[x * 16 + ky * 4 + kx] =
              (int16_t)((int32_t)image[(size_t)(4 * y + ky) * net->input_w + 4 * x + kx] - 128);
    gz_pw_run(&net->stem, gather, w, t_row);
    for (int32_t x = 0; x < w; ++x) {
      gz_layernorm_s16_row(t_row + (size_t)x * net->dims[0], &net->stem_norm, r + ((size_t)y * w + x) * net->dims[0]);
    }
  }

  for (int32_t s = 0; s < 4; ++s) {
    if (s > 0) {
      /* Downsample: LayerNorm on two input rows, gather 2x2 patches, pointwise -> new residual. */
      const gz_downsample* d = &net->downsample[s - 1];
      const int32_t c = net->dims[s - 1];
      int16_t* next = (int16_t*)(arena + (s % 2 ? plan->res_b : plan->res_a));
      int16_t* rows = (int16_t*)(arena + plan->ds_rows);
      for (int32_t y = 0; y < h / 2; ++y) {
        for (int32_t ky = 0; ky < 2; ++ky)
          for (int32_t x = 0; x < w; ++x)
            gz_layernorm_s16_row(r + ((size_t)(2 * y + ky) * w + x) * c, &d->norm, rows + ((size_t)ky * w + x) * c);
        for (int32_t x = 0; x < w / 2; ++x)
          for (int32_t ky = 0; ky < 2; ++ky)
            for (int32_t kx = 0; kx < 2; ++kx)
              memcpy(gather + (size_t)x * 4 * c + (size_t)(ky * 2 + kx) * c, rows + ((size_t)ky * w + 2 * x + kx) * c,
                     (size_t)c * 2);
        gz_pw_run(&d->conv, gather, w / 2, next + (size_t)y * (w / 2) * net->dims[s]);
      }
      h /= 2;
      w /= 2;
      r = next;
    }
    const int32_t keep = gz_kept_rows(net->keep_rows[s], h);
    for (int32_t b = 0; b < net->depths[s]; ++b) {
      if (s == 3 && tune_f) {
        gz_block_run(&net->blocks[s][b], r, h, w, keep, arena, plan, tune_f);
        return r;
      }
      gz_block_run(&net->blocks[s][b], r, h, w, keep, arena, plan, 0);
    }
  }
  return r;
}

/* Checks the arguments of a call with an eye image and resamples it into the arena; returns 0
 * or the negative error of gz_net_predict. */
static inline int gz_net_input(const gz_net* net, uint8_t* arena, size_t arena_bytes, const uint8_t* eye, int32_t eye_h,
                               int32_t eye_w, gz_arena_plan* plan) {
  if (!net || !arena || !eye) return -1;
  if (eye_h < 1 || eye_w < 1 || eye_h > 16384 || eye_w > 16384) return -2;
  *plan = gz_arena_plan_compute(net->input_h, net->input_w, net->dims, net->keep_rows, net->hidden_s8);
  if (plan->total > arena_bytes) return -3;
  gz_resample_u8(eye, eye_h, eye_w, arena + plan->image, net->input_h, net->input_w);
  return 0;
}

/* Runs the network on an eye image of any size; out: unit gaze direction, Laplace log-scale. */
static inline int gz_net_predict(const gz_net* net, uint8_t* arena, size_t arena_bytes, const uint8_t* eye,
                                 int32_t eye_h, int32_t eye_w, float out[4]) {
  if (!out) return -1;
  gz_arena_plan plan;
  const int rc = gz_net_input(net, arena, arena_bytes, eye, eye_h, eye_w, &plan);
  if (rc) return rc;
  const int16_t* r = gz_net_stages(net, arena, &plan, 0);
  const int32_t h = net->input_h / 32, w = net->input_w / 32;

  /* Head: mean pool per cell, LayerNorm per cell, Linear(4) over every cell in two weight
   * planes, dequantise. */
  const int32_t cells = net->head_grid[0] * net->head_grid[1], c = net->dims[3] * cells;
  int16_t pooled[GZ_HEAD_MAX_FEATURES];
  int16_t normed[GZ_HEAD_MAX_FEATURES];
  gz_pool_cells_s16(r, h, w, net->dims[3], net->head_grid[0], net->head_grid[1], pooled);
  for (int32_t i = 0; i < cells; ++i) {
    gz_layernorm_s16_row(pooled + (size_t)i * net->dims[3], &net->head_norm, normed + (size_t)i * net->dims[3]);
  }
  const gz_head* head = net->head;
  int64_t acc[4], acc_lo[4];
  gz_head_acc_s16(normed, c, head->weight, head->weight_lo, head->bias, head->bias_lo, acc, acc_lo);
  gz_head_output(acc, acc_lo, head->dequant, head->dequant_lo, out);
  return 0;
}

/* CRC-32 (IEEE, reflected) of user-adapter blobs. */
static inline uint32_t gz_crc32(const uint8_t* data, size_t size) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

#endif /* LIBGAZE_EXPORT_KERNEL_H_ */
