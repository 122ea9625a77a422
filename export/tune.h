/* On-device personalisation (issue 17): the float forward and backward pass through the last
 * stage's adapters, the rest of that stage and the head, and the AdamW steps of
 * `gaze personalize`, for the generated kernel. Same rules as kernel.h: dependency-free C-style
 * C++17, no heap, no exceptions; every buffer is the caller's. Copied verbatim into the generated
 * source.
 *
 * What is trained. The last stage has `blocks` blocks, each with an adapter
 *   r_{b+1} = r_b + f_b + A_b(f_b),  f_b = pw2(GRN(GELU(pw1(LN(dw7x7(r_b)))))),
 *   A(f) = W_up leaky_relu(BN(W_down f + b_down)) + b_up   (BN in eval mode: frozen statistics)
 * then the head o = W_head LN(mean_p r_blocks) + b_head (the mean and the LayerNorm per cell of
 * the head's grid, W_head reading every cell: [4][cells * C]). Only the adapters (and, optionally, the
 * head Linear) learn, so everything before block 0's adapter is frozen: a frame enters as
 *   c = r_0 + f_0 and f_0   (two [positions][C] tensors; the integer network computes them once)
 * and the bodies of blocks 1.. run forward and backward at every step. The bodies' weights are
 * frozen, so their backward needs input gradients only: about the cost of the forward again.
 *
 * Parameters are one flat float vector in `gaze personalize`'s order (param_groups.h): per
 * block down.weight [H][C], down.bias [H], bn.weight [H], bn.bias [H], up.weight [C][H],
 * up.bias [C]; then, with train_head, head.weight [4][cells * C], head.bias [4]. The same layout holds
 * the gradients and AdamW's moments.
 *
 * Loss, as trainers/losses.cpp: "l1" is the mean absolute error of the unit direction's three
 * components (plus, when the head's 4th output is a trained Laplace log-scale, the NLL with the
 * residual detached, which trains only that output); "laplace_nll" is the mean of
 * sum|d - t| exp(-s) + s with s clamped to [-7, 7]. Batch means as in LibTorch.
 *
 *   gz_tune_param_count(g)          length of the parameter vector
 *   gz_tune_work_floats(g)          floats of scratch one gz_tune_frame() call needs
 *   gz_tune_frame(g, p, c, f, t, ...)  forward + backward of one frame; adds scale * dL/dp to grad
 *   gz_tune_predict(g, p, c, f, ...)   forward only: the head's 4 outputs
 *   gz_tune_adamw_step()            one AdamW step (LibTorch's update, weight decay 0)
 *
 * Layouts: activations [positions][channels] (channels last, as the kernel keeps them); frozen
 * pointwise weights [in][out] (row i holds input i's weight for every output), depthwise
 * weights [49][C]. Results are a pure function of the inputs: fixed summation orders, no
 * threads, so a run repeats bit for bit on one build.
 *
 * Paths: every loop has a generic form (the reference; x86 compilers vectorise it, so it is the
 * AVX2 path too) and, on AArch64, NEON loops whose bodies are cycle-model regions (layers.h's
 * GZ_MCA fences, `gaze bench --model pi4`): the products as register tiles of fused multiply-adds
 * at the A72's one FMLA a cycle, GELU with a polynomial erf and exp instead of libm calls. NEON
 * fuses products and sums in other orders, so the two agree to float rounding, not bit for bit
 * (kernel_ops_test holds each to a double reference).
 */
#ifndef LIBGAZE_EXPORT_TUNE_H_
#define LIBGAZE_EXPORT_TUNE_H_

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "export/kernel.h" /* GZ_SIMD_NEON, GZ_TRACE_VARIANT, the cycle-model fences */

#define GZ_TUNE_MAX_BLOCKS 4
#define GZ_TUNE_MAX_GRN 2048 /* GRN channels (4C) */

typedef struct {          /* a frozen block body, dequantised to float */
  const float* dw_weight; /* [49][C] */
  const float* dw_bias;   /* [C] */
  const float* norm_weight;
  const float* norm_bias;  /* [C] */
  const float* pw1_weight; /* [C][4C] */
  const float* pw1_bias;   /* [4C] */
  const float* grn_gamma;
  const float* grn_beta;   /* [4C] */
  const float* pw2_weight; /* [4C][C] */
  const float* pw2_bias;   /* [C] */
} gz_tune_body;

typedef struct {
  int32_t height, width, channels, hidden, blocks; /* the last stage's map; hidden = C / reduction */
  int32_t grid_h, grid_w;                          /* the head's cells (gz_pool_cell_bounds), >= 1 */
  float norm_eps;                                  /* the blocks' and the head's LayerNorm */
  gz_tune_body body[GZ_TUNE_MAX_BLOCKS];           /* body[0] is unused: block 0's body is frozen */
  const float* bn_mean[GZ_TUNE_MAX_BLOCKS];        /* the adapters' BatchNorm statistics [H] */
  const float* bn_var[GZ_TUNE_MAX_BLOCKS];
  float bn_eps, slope; /* BatchNorm eps, LeakyReLU negative slope */
  const float* head_norm_weight;
  const float* head_norm_bias; /* [C] */
  const float* head_weight;    /* [4][cells * C], used when !train_head */
  const float* head_bias;      /* [4] */
  int32_t train_head;
  int32_t laplace_nll;   /* 1: loss laplace_nll; 0: l1 */
  int32_t scale_trained; /* with l1: add the detached-residual NLL for the 4th output */
} gz_tune_graph;

/* ------------------------------------------------------------------------------------------ */
/* Parameter layout.                                                                           */

static inline size_t gz_tune_adapter_params(const gz_tune_graph* g) {
  const size_t c = (size_t)g->channels, h = (size_t)g->hidden;
  return h * c + 3 * h + c * h + c;
}

/* The head Linear's inputs: C channels of every cell. */
static inline size_t gz_tune_head_inputs(const gz_tune_graph* g) {
  return (size_t)g->channels * (size_t)g->grid_h * (size_t)g->grid_w;
}

static inline size_t gz_tune_param_count(const gz_tune_graph* g) {
  return (size_t)g->blocks * gz_tune_adapter_params(g) + (g->train_head ? 4 * gz_tune_head_inputs(g) + 4 : 0);
}

typedef struct { /* one adapter's tensors inside a parameter (or gradient) vector */
  float *down_w, *down_b, *bn_w, *bn_b, *up_w, *up_b;
} gz_tune_adapter_view;

static inline gz_tune_adapter_view gz_tune_adapter_at(const gz_tune_graph* g, float* v, int32_t block) {
  const size_t c = (size_t)g->channels, h = (size_t)g->hidden;
  float* p = v + (size_t)block * gz_tune_adapter_params(g);
  gz_tune_adapter_view a;
  a.down_w = p, p += h * c;
  a.down_b = p, p += h;
  a.bn_w = p, p += h;
  a.bn_b = p, p += h;
  a.up_w = p, p += c * h;
  a.up_b = p;
  return a;
}

/* ------------------------------------------------------------------------------------------ */
/* Dense products. Rows are positions; every matrix is row-major.                              */
/*                                                                                             */
/*   gz_tune_gemm_nn_f32  y[rows][out] += x[rows][in] w[in][out]        (w as the kernel keeps it) */
/*   gz_tune_gemm_nt_f32  y[rows][n] = acc y + bias + x[rows][k] w[n][k]^T  (dot products)     */
/*   gz_tune_gemm_tn_f32  g[n][k] += d[rows][n]^T x[rows][k]               (weight gradients)  */
/*                                                                                             */
/* Each has a generic loop (the reference; x86 compilers vectorise it) and, on AArch64, a NEON */
/* tile of fused multiply-adds whose body is a cycle-model region (layers.h), so the Pi 4 model */
/* times personalisation as it times predict. The NEON tiles need every size a multiple of 4    */
/* (the student's C, 4C and C/4 are); other shapes take the generic loop, which the cycle model */
/* does not see. A tile past the last row repeats the last row: its duplicate lanes compute and */
/* store the same values, so no tail loop is needed. The two paths round differently (fused    */
/* products, other lane orders): NEON and x86 results agree to float precision, not bit for bit. */

/* sum_i a[i] b[i] in eight independent lanes (one AVX register: compilers vectorise it without
 * reassociating anything), added pairwise at the end. */
static inline float gz_tune_dot_f32(const float* a, const float* b, int32_t n) {
  float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int32_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int32_t l = 0; l < 8; ++l) lane[l] += a[i + l] * b[i + l];
  float s = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

static inline void gz_tune_gemm_nn_f32_generic(const float* x, int32_t rows, int32_t in, const float* w, int32_t out,
                                               float* y) {
  GZ_TRACE_VARIANT();
  for (int32_t p = 0; p < rows; ++p) {
    float* yr = y + (size_t)p * out;
    const float* xr = x + (size_t)p * in;
    for (int32_t i = 0; i < in; ++i) {
      const float xi = xr[i];
      const float* wr = w + (size_t)i * out;
      for (int32_t o = 0; o < out; ++o) yr[o] += xi * wr[o];
    }
  }
}

static inline void gz_tune_gemm_nt_f32_generic(const float* x, int32_t rows, int32_t k, const float* w, int32_t n,
                                               const float* bias, float* y, int accumulate) {
  GZ_TRACE_VARIANT();
  for (int32_t p = 0; p < rows; ++p)
    for (int32_t j = 0; j < n; ++j) {
      float* yj = y + (size_t)p * n + j;
      const float v = (bias ? bias[j] : 0.0f) + gz_tune_dot_f32(x + (size_t)p * k, w + (size_t)j * k, k);
      *yj = accumulate ? *yj + v : v;
    }
}

static inline void gz_tune_gemm_tn_f32_generic(const float* d, int32_t rows, int32_t n, const float* x, int32_t k,
                                               float* g) {
  GZ_TRACE_VARIANT();
  for (int32_t j = 0; j < n; ++j) {
    float* gr = g + (size_t)j * k;
    for (int32_t p = 0; p < rows; ++p) {
      const float dj = d[(size_t)p * n + j];
      const float* xr = x + (size_t)p * k;
      for (int32_t i = 0; i < k; ++i) gr[i] += dj * xr[i];
    }
  }
}

#if defined(GZ_SIMD_NEON)
/* Rows p0..p0+3 of a [rows][stride] matrix, the last row repeated past the end. */
static inline void gz_tune_rows4(const float* m, int32_t rows, int32_t stride, int32_t p0, const float* r[4]) {
  for (int32_t t = 0; t < 4; ++t) r[t] = m + (size_t)(p0 + t < rows ? p0 + t : rows - 1) * stride;
}

/* acc[r][q] += w_q * x_r[lane], for the 4 rows r and the 4 vectors q of one weight row. */
#define GZ_TUNE_NN_LANE(l, wrow)                                                                \
  {                                                                                             \
    const float32x4_t w0 = vld1q_f32(wrow), w1 = vld1q_f32(wrow + 4), w2 = vld1q_f32(wrow + 8), \
                      w3 = vld1q_f32(wrow + 12);                                                \
    for (int32_t r = 0; r < 4; ++r) {                                                           \
      acc[r][0] = vfmaq_laneq_f32(acc[r][0], w0, xv[r], l);                                     \
      acc[r][1] = vfmaq_laneq_f32(acc[r][1], w1, xv[r], l);                                     \
      acc[r][2] = vfmaq_laneq_f32(acc[r][2], w2, xv[r], l);                                     \
      acc[r][3] = vfmaq_laneq_f32(acc[r][3], w3, xv[r], l);                                     \
    }                                                                                           \
  }
#define GZ_TUNE_NN4_LANE(l, wrow)                                                   \
  {                                                                                 \
    const float32x4_t w0 = vld1q_f32(wrow);                                         \
    for (int32_t r = 0; r < 4; ++r) acc[r] = vfmaq_laneq_f32(acc[r], w0, xv[r], l); \
  }

/* Tiles of 4 rows x 16 outputs (64 FMLA per 4 inputs), then 4 rows x 4 outputs. The two loops
 * stay written out: one tile function with a width flag (as the tn tiles below) made GCC hoist
 * all 16 weight loads beside the 16 accumulators and spill (68 cycles per pass against 64). */
static inline void gz_tune_gemm_nn_f32_neon(const float* x, int32_t rows, int32_t in, const float* w, int32_t out,
                                            float* y) {
  GZ_TRACE_VARIANT();
  for (int32_t p0 = 0; p0 < rows; p0 += 4) {
    const float *xr[4], *yr_c[4];
    gz_tune_rows4(x, rows, in, p0, xr);
    gz_tune_rows4(y, rows, out, p0, yr_c);
    float* yr[4] = {(float*)yr_c[0], (float*)yr_c[1], (float*)yr_c[2], (float*)yr_c[3]};
    int32_t o = 0;
    for (; o + 16 <= out; o += 16) {
      float32x4_t acc[4][4];
      for (int32_t r = 0; r < 4; ++r)
        for (int32_t q = 0; q < 4; ++q) acc[r][q] = vld1q_f32(yr[r] + o + 4 * q);
      for (int32_t i = 0; i < in; i += 4) {
        GZ_MCA_BEGIN(tune_nn16);
        float32x4_t xv[4];
        for (int32_t r = 0; r < 4; ++r) xv[r] = vld1q_f32(xr[r] + i);
        const float* wr = w + (size_t)i * out + o;
        GZ_TUNE_NN_LANE(0, wr);
        GZ_TUNE_NN_LANE(1, wr + out);
        GZ_TUNE_NN_LANE(2, wr + 2 * out);
        GZ_TUNE_NN_LANE(3, wr + 3 * out);
        GZ_MCA_END(tune_nn16);
      }
      for (int32_t r = 0; r < 4; ++r)
        for (int32_t q = 0; q < 4; ++q) vst1q_f32(yr[r] + o + 4 * q, acc[r][q]);
    }
    for (; o < out; o += 4) {
      float32x4_t acc[4];
      for (int32_t r = 0; r < 4; ++r) acc[r] = vld1q_f32(yr[r] + o);
      for (int32_t i = 0; i < in; i += 4) {
        GZ_MCA_BEGIN(tune_nn4);
        float32x4_t xv[4];
        for (int32_t r = 0; r < 4; ++r) xv[r] = vld1q_f32(xr[r] + i);
        const float* wr = w + (size_t)i * out + o;
        GZ_TUNE_NN4_LANE(0, wr);
        GZ_TUNE_NN4_LANE(1, wr + out);
        GZ_TUNE_NN4_LANE(2, wr + 2 * out);
        GZ_TUNE_NN4_LANE(3, wr + 3 * out);
        GZ_MCA_END(tune_nn4);
      }
      for (int32_t r = 0; r < 4; ++r) vst1q_f32(yr[r] + o, acc[r]);
    }
  }
}
#undef GZ_TUNE_NN_LANE
#undef GZ_TUNE_NN4_LANE

/* Tiles of 4 rows x 4 dot products, four lanes each (16 FMLA per 4 of k); the lanes are summed
 * pairwise (FADDP) into one vector of 4 results per row. */
static inline void gz_tune_gemm_nt_f32_neon(const float* x, int32_t rows, int32_t k, const float* w, int32_t n,
                                            const float* bias, float* y, int accumulate) {
  GZ_TRACE_VARIANT();
  for (int32_t p0 = 0; p0 < rows; p0 += 4) {
    const float *xr[4], *yr_c[4];
    gz_tune_rows4(x, rows, k, p0, xr);
    gz_tune_rows4(y, rows, n, p0, yr_c);
    for (int32_t j = 0; j < n; j += 4) {
      const float* wr = w + (size_t)j * k;
      float32x4_t acc[4][4];
      for (int32_t r = 0; r < 4; ++r)
        for (int32_t q = 0; q < 4; ++q) acc[r][q] = vdupq_n_f32(0.0f);
      for (int32_t i = 0; i < k; i += 4) {
        GZ_MCA_BEGIN(tune_nt);
        const float32x4_t w0 = vld1q_f32(wr + i), w1 = vld1q_f32(wr + k + i), w2 = vld1q_f32(wr + 2 * k + i),
                          w3 = vld1q_f32(wr + 3 * k + i);
        for (int32_t r = 0; r < 4; ++r) {
          const float32x4_t xv = vld1q_f32(xr[r] + i);
          acc[r][0] = vfmaq_f32(acc[r][0], xv, w0);
          acc[r][1] = vfmaq_f32(acc[r][1], xv, w1);
          acc[r][2] = vfmaq_f32(acc[r][2], xv, w2);
          acc[r][3] = vfmaq_f32(acc[r][3], xv, w3);
        }
        GZ_MCA_END(tune_nt);
      }
      GZ_MCA_BEGIN(tune_nt_sum);
      const float32x4_t b = bias ? vld1q_f32(bias + j) : vdupq_n_f32(0.0f);
      float32x4_t v[4];
      for (int32_t r = 0; r < 4; ++r) { /* every duplicate row reads y before any is written */
        v[r] = vaddq_f32(b, vpaddq_f32(vpaddq_f32(acc[r][0], acc[r][1]), vpaddq_f32(acc[r][2], acc[r][3])));
        if (accumulate) v[r] = vaddq_f32(vld1q_f32(yr_c[r] + j), v[r]);
      }
      for (int32_t r = 0; r < 4; ++r) vst1q_f32((float*)yr_c[r] + j, v[r]);
      GZ_MCA_END(tune_nt_sum);
    }
  }
}

/* acc[t][q] += x_q * d[lane t], for the 4 gradient rows t and the 4 vectors q of x's row. */
#define GZ_TUNE_TN_ROW(t)                              \
  acc[t][0] = vfmaq_laneq_f32(acc[t][0], x0, dv, t);   \
  if (wide) {                                          \
    acc[t][1] = vfmaq_laneq_f32(acc[t][1], x1, dv, t); \
    acc[t][2] = vfmaq_laneq_f32(acc[t][2], x2, dv, t); \
    acc[t][3] = vfmaq_laneq_f32(acc[t][3], x3, dv, t); \
  }

/* One tile of gradient rows j..j+3 and columns i..i+15 (wide) or i..i+3. */
static inline void gz_tune_gemm_tn_f32_tile(const float* d, int32_t rows, int32_t n, const float* x, int32_t k,
                                            float* g, int32_t j, int32_t i, int wide) {
  float32x4_t acc[4][4];
  for (int32_t t = 0; t < 4; ++t)
    for (int32_t q = 0; q < (wide ? 4 : 1); ++q) acc[t][q] = vld1q_f32(g + (size_t)(j + t) * k + i + 4 * q);
  for (int32_t p = 0; p < rows; ++p) {
    const float32x4_t dv = vld1q_f32(d + (size_t)p * n + j);
    const float* xr = x + (size_t)p * k + i;
    if (wide) {
      GZ_MCA_BEGIN(tune_tn16);
      const float32x4_t x0 = vld1q_f32(xr), x1 = vld1q_f32(xr + 4), x2 = vld1q_f32(xr + 8), x3 = vld1q_f32(xr + 12);
      GZ_TUNE_TN_ROW(0) GZ_TUNE_TN_ROW(1) GZ_TUNE_TN_ROW(2) GZ_TUNE_TN_ROW(3) GZ_MCA_END(tune_tn16);
    } else {
      GZ_MCA_BEGIN(tune_tn4);
      const float32x4_t x0 = vld1q_f32(xr), x1 = x0, x2 = x0, x3 = x0;
      GZ_TUNE_TN_ROW(0) GZ_TUNE_TN_ROW(1) GZ_TUNE_TN_ROW(2) GZ_TUNE_TN_ROW(3) GZ_MCA_END(tune_tn4);
    }
  }
  for (int32_t t = 0; t < 4; ++t)
    for (int32_t q = 0; q < (wide ? 4 : 1); ++q) vst1q_f32(g + (size_t)(j + t) * k + i + 4 * q, acc[t][q]);
}
#undef GZ_TUNE_TN_ROW

static inline void gz_tune_gemm_tn_f32_neon(const float* d, int32_t rows, int32_t n, const float* x, int32_t k,
                                            float* g) {
  GZ_TRACE_VARIANT();
  for (int32_t j = 0; j < n; j += 4) {
    int32_t i = 0;
    for (; i + 16 <= k; i += 16) gz_tune_gemm_tn_f32_tile(d, rows, n, x, k, g, j, i, 1);
    for (; i < k; i += 4) gz_tune_gemm_tn_f32_tile(d, rows, n, x, k, g, j, i, 0);
  }
}
#endif /* GZ_SIMD_NEON */

static inline void gz_tune_gemm_nn_f32(const float* x, int32_t rows, int32_t in, const float* w, int32_t out,
                                       float* y) {
#if defined(GZ_SIMD_NEON)
  if (in % 4 == 0 && out % 4 == 0) {
    gz_tune_gemm_nn_f32_neon(x, rows, in, w, out, y);
    return;
  }
#endif
  gz_tune_gemm_nn_f32_generic(x, rows, in, w, out, y);
}

static inline void gz_tune_gemm_nt_f32(const float* x, int32_t rows, int32_t k, const float* w, int32_t n,
                                       const float* bias, float* y, int accumulate) {
#if defined(GZ_SIMD_NEON)
  if (k % 4 == 0 && n % 4 == 0) {
    gz_tune_gemm_nt_f32_neon(x, rows, k, w, n, bias, y, accumulate);
    return;
  }
#endif
  gz_tune_gemm_nt_f32_generic(x, rows, k, w, n, bias, y, accumulate);
}

static inline void gz_tune_gemm_tn_f32(const float* d, int32_t rows, int32_t n, const float* x, int32_t k, float* g) {
#if defined(GZ_SIMD_NEON)
  if (k % 4 == 0 && n % 4 == 0) {
    gz_tune_gemm_tn_f32_neon(d, rows, n, x, k, g);
    return;
  }
#endif
  gz_tune_gemm_tn_f32_generic(d, rows, n, x, k, g);
}

/* out[i] += a[i] b[i]: a depthwise tap over the channels, GRN's per-channel sums (NEON: four a pass). */
static inline void gz_tune_mac_row_f32(float* out, const float* a, const float* b, int32_t n) {
  int32_t i = 0;
#if defined(GZ_SIMD_NEON)
  for (; i + 4 <= n; i += 4) {
    GZ_MCA_BEGIN(tune_mac4);
    vst1q_f32(out + i, vfmaq_f32(vld1q_f32(out + i), vld1q_f32(a + i), vld1q_f32(b + i)));
    GZ_MCA_END(tune_mac4);
  }
#endif
  for (; i < n; ++i) out[i] += a[i] * b[i];
}

/* y[i] = x[i] * scale[i] + shift[i] (GRN's output). */
static inline void gz_tune_scale_shift_row_f32(float* y, const float* x, const float* scale, const float* shift,
                                               int32_t n) {
  int32_t i = 0;
#if defined(GZ_SIMD_NEON)
  for (; i + 4 <= n; i += 4) {
    GZ_MCA_BEGIN(tune_scale4);
    vst1q_f32(y + i, vfmaq_f32(vld1q_f32(shift + i), vld1q_f32(x + i), vld1q_f32(scale + i)));
    GZ_MCA_END(tune_scale4);
  }
#endif
  for (; i < n; ++i) y[i] = x[i] * scale[i] + shift[i];
}

/* y[i] += x[i] (residual adds), or y[i] *= x[i] with multiply (GELU's slope in the backward). */
static inline void gz_tune_update_row_f32(float* y, const float* x, size_t n, int multiply) {
  size_t i = 0;
#if defined(GZ_SIMD_NEON)
  for (; i + 4 <= n; i += 4) {
    GZ_MCA_BEGIN(tune_update4);
    const float32x4_t a = vld1q_f32(y + i), b = vld1q_f32(x + i);
    vst1q_f32(y + i, multiply ? vmulq_f32(a, b) : vaddq_f32(a, b));
    GZ_MCA_END(tune_update4);
  }
#endif
  for (; i < n; ++i) y[i] = multiply ? y[i] * x[i] : y[i] + x[i];
}

/* The depthwise 7x7's (pad 3) tap pairs over an h x w map: with transpose 0 the convolution,
 * dst[y][x] += k[tap] src[y + ky - 3][x + kx - 3]; with transpose 1 its input gradient,
 * dst[y + ky - 3][x + kx - 3] += k[tap] src[y][x]. */
static inline void gz_tune_dw7x7_taps_f32(const float* src, int32_t h, int32_t w, int32_t c, const float* k, float* dst,
                                          int transpose) {
  for (int32_t y = 0; y < h; ++y)
    for (int32_t x = 0; x < w; ++x)
      for (int32_t ky = 0; ky < 7; ++ky) {
        const int32_t sy = y + ky - 3;
        if (sy < 0 || sy >= h) continue;
        for (int32_t kx = 0; kx < 7; ++kx) {
          const int32_t sx = x + kx - 3;
          if (sx < 0 || sx >= w) continue;
          const size_t at = ((size_t)y * w + x) * c, tap = ((size_t)sy * w + sx) * c;
          const float* in = src + (transpose ? at : tap);
          float* out = dst + (transpose ? tap : at);
          gz_tune_mac_row_f32(out, k + (size_t)(ky * 7 + kx) * c, in, c);
        }
      }
}

/* LayerNorm over the c channels of each row; keeps xhat and 1/sigma per row for the backward. */
static inline void gz_tune_layernorm_f32(const float* x, int32_t rows, int32_t c, const float* gamma, const float* beta,
                                         float eps, float* xhat, float* rstd, float* y) {
#if defined(GZ_SIMD_NEON)
  if (c % 4 == 0) { /* four channels a pass, float partial sums (the generic loop sums in double) */
    for (int32_t p = 0; p < rows; ++p) {
      const float* xr = x + (size_t)p * c;
      float32x4_t sum = vdupq_n_f32(0.0f);
      for (int32_t i = 0; i < c; i += 4) {
        GZ_MCA_BEGIN(tune_ln_sum);
        sum = vaddq_f32(sum, vld1q_f32(xr + i));
        GZ_MCA_END(tune_ln_sum);
      }
      const float32x4_t mean = vdupq_n_f32(vaddvq_f32(sum) / (float)c);
      float32x4_t var = vdupq_n_f32(0.0f);
      for (int32_t i = 0; i < c; i += 4) {
        GZ_MCA_BEGIN(tune_ln_var);
        const float32x4_t d = vsubq_f32(vld1q_f32(xr + i), mean);
        var = vfmaq_f32(var, d, d);
        GZ_MCA_END(tune_ln_var);
      }
      const float s = 1.0f / sqrtf(vaddvq_f32(var) / (float)c + eps);
      rstd[p] = s;
      for (int32_t i = 0; i < c; i += 4) {
        GZ_MCA_BEGIN(tune_ln_out);
        const float32x4_t n = vmulq_n_f32(vsubq_f32(vld1q_f32(xr + i), mean), s);
        vst1q_f32(xhat + (size_t)p * c + i, n);
        vst1q_f32(y + (size_t)p * c + i, vfmaq_f32(vld1q_f32(beta + i), n, vld1q_f32(gamma + i)));
        GZ_MCA_END(tune_ln_out);
      }
    }
    return;
  }
#endif
  for (int32_t p = 0; p < rows; ++p) {
    const float* xr = x + (size_t)p * c;
    double mean = 0, var = 0;
    for (int32_t i = 0; i < c; ++i) mean += xr[i];
    mean /= c;
    for (int32_t i = 0; i < c; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    const float s = (float)(1.0 / sqrt(var / c + eps));
    rstd[p] = s;
    for (int32_t i = 0; i < c; ++i) {
      const float n = (float)(xr[i] - mean) * s;
      xhat[(size_t)p * c + i] = n;
      y[(size_t)p * c + i] = n * gamma[i] + beta[i];
    }
  }
}

/* dx = the LayerNorm's input gradient (gamma, beta frozen) for output gradient dy. */
static inline void gz_tune_layernorm_dx_f32(const float* dy, const float* xhat, const float* rstd, int32_t rows,
                                            int32_t c, const float* gamma, float* dx) {
#if defined(GZ_SIMD_NEON)
  if (c % 4 == 0) {
    for (int32_t p = 0; p < rows; ++p) {
      const float* dr = dy + (size_t)p * c;
      const float* nr = xhat + (size_t)p * c;
      float32x4_t s1 = vdupq_n_f32(0.0f), s2 = vdupq_n_f32(0.0f);
      for (int32_t i = 0; i < c; i += 4) {
        GZ_MCA_BEGIN(tune_lndx_sum);
        const float32x4_t d = vmulq_f32(vld1q_f32(dr + i), vld1q_f32(gamma + i));
        s1 = vaddq_f32(s1, d);
        s2 = vfmaq_f32(s2, d, vld1q_f32(nr + i));
        GZ_MCA_END(tune_lndx_sum);
      }
      const float32x4_t m1 = vdupq_n_f32(vaddvq_f32(s1) / (float)c), m2 = vdupq_n_f32(vaddvq_f32(s2) / (float)c);
      for (int32_t i = 0; i < c; i += 4) {
        GZ_MCA_BEGIN(tune_lndx_out);
        const float32x4_t d = vmulq_f32(vld1q_f32(dr + i), vld1q_f32(gamma + i));
        const float32x4_t t = vfmsq_f32(vsubq_f32(d, m1), vld1q_f32(nr + i), m2);
        vst1q_f32(dx + (size_t)p * c + i, vmulq_n_f32(t, rstd[p]));
        GZ_MCA_END(tune_lndx_out);
      }
    }
    return;
  }
#endif
  for (int32_t p = 0; p < rows; ++p) {
    const float* dr = dy + (size_t)p * c;
    const float* nr = xhat + (size_t)p * c;
    double m1 = 0, m2 = 0; /* mean(dxhat), mean(dxhat * xhat) */
    for (int32_t i = 0; i < c; ++i) {
      const double d = (double)dr[i] * gamma[i];
      m1 += d;
      m2 += d * nr[i];
    }
    m1 /= c;
    m2 /= c;
    for (int32_t i = 0; i < c; ++i)
      dx[(size_t)p * c + i] = rstd[p] * (float)((double)dr[i] * gamma[i] - m1 - nr[i] * m2);
  }
}

/* GELU (erf form) without libm, so that it vectorises (and the cycle model can time it): erf by
 * Abramowitz & Stegun 7.1.26 (|error| <= 1.4e-7), whose exp(-z^2) at z = x / sqrt(2) is also the
 * normal density's exp(-x^2 / 2); exp by reduction to r in [-ln2/2, ln2/2] (n = round(y / ln2)),
 * a degree-6 Taylor polynomial (relative error < 2e-7) and 2^n written into the exponent bits. */
static inline float gz_tune_exp_neg_f32(float y) { /* y <= 0 */
  /* y = max(y, -87), so that 2^n stays normal. As integers, negative floats order by magnitude; an
   * integer select, unlike a float one (it might trap), lets compilers vectorise the loop. */
  int32_t y_bits;
  memcpy(&y_bits, &y, sizeof y);
  const int32_t minus_87 = (int32_t)0xC2AE0000u; /* -87.0f */
  y_bits = y_bits > minus_87 ? minus_87 : y_bits;
  memcpy(&y, &y_bits, sizeof y);
  const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
  const float n = (y * 1.44269504f + magic) - magic;
  const float r = (y - n * 0.693359375f) - n * -2.12194440e-4f; /* ln 2 in two parts (Cody-Waite) */
  const float p =
      1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
  const int32_t bits = ((int32_t)n + 127) * (1 << 23);
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/* GELU of h -> g; h is replaced by the derivative GELU'(h) = Phi(h) + h phi(h), kept for the
 * backward (dh = dg * GELU'(h)). In place, so the work buffer holds one [P][4C] tensor less. */
static inline void gz_tune_gelu_f32(float* h, size_t n, float* g) {
  float* slope = h;
  size_t i = 0;
#if defined(GZ_SIMD_NEON)
  for (; i + 4 <= n; i += 4) { /* the steps below, four values at a time */
    GZ_MCA_BEGIN(tune_gelu4);
    const float32x4_t x = vld1q_f32(h + i), one = vdupq_n_f32(1.0f);
    const float32x4_t t = vdivq_f32(one, vfmaq_n_f32(one, vabsq_f32(x), 0.231641888f));
    const float32x4_t y = vmaxq_f32(vmulq_f32(vmulq_n_f32(x, -0.5f), x), vdupq_n_f32(-87.0f));
    const float32x4_t nf = vrndnq_f32(vmulq_n_f32(y, 1.44269504f));
    const float32x4_t r = vfmsq_f32(vfmsq_f32(y, nf, vdupq_n_f32(0.693359375f)), nf, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vfmaq_n_f32(vdupq_n_f32(1.0f / 120), r, 1.0f / 720);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24), r, p);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6), r, p);
    p = vfmaq_f32(vdupq_n_f32(0.5f), r, p);
    p = vfmaq_f32(one, r, p);
    p = vfmaq_f32(one, r, p);
    const int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(nf), vdupq_n_s32(127)), 23);
    const float32x4_t e = vmulq_f32(p, vreinterpretq_f32_s32(bits));
    float32x4_t poly = vfmaq_n_f32(vdupq_n_f32(-1.453152027f), t, 1.061405429f);
    poly = vfmaq_f32(vdupq_n_f32(1.421413741f), t, poly);
    poly = vfmaq_f32(vdupq_n_f32(-0.284496736f), t, poly);
    poly = vfmaq_f32(vdupq_n_f32(0.254829592f), t, poly);
    const float32x4_t tail = vmulq_f32(vmulq_n_f32(vmulq_f32(t, poly), 0.5f), e); /* P(N > |x|) */
    const float32x4_t half = vdupq_n_f32(0.5f),
                      signed_half = vbslq_f32(vdupq_n_u32(0x80000000u), x, vsubq_f32(half, tail));
    const float32x4_t cdf = vaddq_f32(half, signed_half);
    vst1q_f32(g + i, vmulq_f32(x, cdf));
    vst1q_f32(slope + i, vfmaq_f32(cdf, vmulq_n_f32(x, 0.39894228f), e));
    GZ_MCA_END(tune_gelu4);
  }
#endif
  for (; i < n; ++i) {
    const float x = h[i];
    const float t = 1.0f / (1.0f + 0.231641888f * fabsf(x)); /* 0.3275911 / sqrt(2) */
    const float e = gz_tune_exp_neg_f32(-0.5f * x * x);
    const float poly =
        t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    const float tail = 0.5f * poly * e;                 /* P(N > |x|) */
    const float cdf = 0.5f + copysignf(0.5f - tail, x); /* 1 - tail for x >= 0, else tail */
    g[i] = x * cdf;
    slope[i] = cdf + x * 0.39894228f * e; /* 1 / sqrt(2 pi) */
  }
}

/* GRN over one image (rows = positions): y = x * (gamma * N + 1) + beta, N = |x|_c / (mean |x| + 1e-6);
 * keeps the per-channel norms |x|_c for the backward. */
static inline void gz_tune_grn_f32(const float* x, int32_t rows, int32_t c, const float* gamma, const float* beta,
                                   float* norms, float* y) {
  for (int32_t k = 0; k < c; ++k) norms[k] = 0;
  for (int32_t p = 0; p < rows; ++p) /* sums of squares, position by position (contiguous) */
    gz_tune_mac_row_f32(norms, x + (size_t)p * c, x + (size_t)p * c, c);
  double mean = 0;
  for (int32_t k = 0; k < c; ++k) {
    norms[k] = sqrtf(norms[k]);
    mean += norms[k];
  }
  const double denom = mean / c + 1e-6;
  float factor[GZ_TUNE_MAX_GRN]; /* gamma * N + 1 */
  for (int32_t k = 0; k < c; ++k) factor[k] = (float)(gamma[k] * (norms[k] / denom) + 1.0);
  for (int32_t p = 0; p < rows; ++p) gz_tune_scale_shift_row_f32(y + (size_t)p * c, x + (size_t)p * c, factor, beta, c);
}

/* dy is replaced by the GRN's input gradient dx (gamma, beta frozen); `scratch` holds 2c floats. */
static inline void gz_tune_grn_dx_f32(float* dy, const float* x, const float* norms, int32_t rows, int32_t c,
                                      const float* gamma, float* scratch) {
  float* dx = dy;
  double mean = 0;
  for (int32_t k = 0; k < c; ++k) mean += norms[k];
  const double denom = mean / c + 1e-6;
  for (int32_t k = 0; k < c; ++k) scratch[k] = 0;
  for (int32_t p = 0; p < rows; ++p) /* sum_p dy x per channel, position by position */
    gz_tune_mac_row_f32(scratch, dy + (size_t)p * c, x + (size_t)p * c, c);
  double cross = 0;
  for (int32_t k = 0; k < c; ++k) cross += gamma[k] * (double)scratch[k] * norms[k];
  cross /= (double)c * denom * denom;
  float* b = scratch + c;
  for (int32_t k = 0; k < c; ++k) {
    /* N_c = |x|_c / denom: d|x|_c = gamma_c dot_c / denom - cross; d x through the norm: x / |x|_c */
    const double dnorm = gamma[k] * (double)scratch[k] / denom - cross;
    b[k] = norms[k] > 0 ? (float)(dnorm / norms[k]) : 0.0f;
    scratch[k] = (float)(gamma[k] * (norms[k] / denom) + 1.0);
  }
  for (int32_t p = 0; p < rows; ++p) {
    const size_t at = (size_t)p * c;
    int32_t k = 0;
#if defined(GZ_SIMD_NEON)
    for (; k + 4 <= c; k += 4) {
      GZ_MCA_BEGIN(tune_grn_dx);
      const float32x4_t d = vmulq_f32(vld1q_f32(dy + at + k), vld1q_f32(scratch + k));
      vst1q_f32(dx + at + k, vfmaq_f32(d, vld1q_f32(x + at + k), vld1q_f32(b + k)));
      GZ_MCA_END(tune_grn_dx);
    }
#endif
    for (; k < c; ++k) dx[at + k] = dy[at + k] * scratch[k] + x[at + k] * b[k];
  }
}

/* ------------------------------------------------------------------------------------------ */
/* The adapter: forward keeps what its backward needs.                                         */

typedef struct {
  float* n; /* [P][H] BatchNorm-normalised down projection (before gamma, beta) */
  float* s; /* [P][H] BatchNorm output (LeakyReLU's input) */
  float* a; /* [P][H] LeakyReLU output */
} gz_tune_adapter_state;

/* out[p][:] (+)= A(f)[p][:] - f: the adapter's up projection added onto `out`. */
static inline void gz_tune_adapter_forward(const gz_tune_graph* g, int32_t block, const gz_tune_adapter_view* a,
                                           const float* f, gz_tune_adapter_state* st, float* out) {
  const int32_t c = g->channels, hd = g->hidden, rows = g->height * g->width;
  const float* mean = g->bn_mean[block];
  const float* var = g->bn_var[block];
  gz_tune_gemm_nt_f32(f, rows, c, a->down_w, hd, a->down_b, st->n, 0); /* z, normalised in place */
  for (int32_t j = 0; j < hd; ++j) {
    const float k = 1.0f / sqrtf(var[j] + g->bn_eps);
    for (int32_t p = 0; p < rows; ++p) {
      const size_t i = (size_t)p * hd + j;
      const float n = (st->n[i] - mean[j]) * k;
      const float s = n * a->bn_w[j] + a->bn_b[j];
      st->n[i] = n;
      st->s[i] = s;
      st->a[i] = s > 0 ? s : s * g->slope;
    }
  }
  gz_tune_gemm_nt_f32(st->a, rows, hd, a->up_w, c, a->up_b, out, 1);
}

/* Backward of out += A(f) - f for output gradient dy: adds the parameter gradients into `grad`,
 * and, when df is not null, the gradient through the down projection into df. `dz` holds P * H
 * floats of scratch. */
static inline void gz_tune_adapter_backward(const gz_tune_graph* g, int32_t block, const gz_tune_adapter_view* a,
                                            gz_tune_adapter_view* grad, const float* f, const gz_tune_adapter_state* st,
                                            const float* dy, float* dz, float* df) {
  const int32_t c = g->channels, hd = g->hidden, rows = g->height * g->width;
  const float* var = g->bn_var[block];
  gz_tune_gemm_tn_f32(dy, rows, c, st->a, hd, grad->up_w); /* d up.weight = dy^T a */
  for (int32_t p = 0; p < rows; ++p)
    for (int32_t o = 0; o < c; ++o) grad->up_b[o] += dy[(size_t)p * c + o];
  memset(dz, 0, (size_t)rows * hd * sizeof(float));
  gz_tune_gemm_nn_f32(dy, rows, c, a->up_w, hd, dz); /* d(LeakyReLU output) = dy up.weight */
  for (int32_t j = 0; j < hd; ++j) {
    const float k = a->bn_w[j] / sqrtf(var[j] + g->bn_eps);
    for (int32_t p = 0; p < rows; ++p) {
      const size_t i = (size_t)p * hd + j;
      const float ds = st->s[i] > 0 ? dz[i] : dz[i] * g->slope;
      grad->bn_w[j] += ds * st->n[i];
      grad->bn_b[j] += ds;
      grad->down_b[j] += ds * k;
      dz[i] = ds * k; /* d(down projection) */
    }
  }
  gz_tune_gemm_tn_f32(dz, rows, hd, f, c, grad->down_w); /* d down.weight = dz^T f */
  if (df) gz_tune_gemm_nn_f32(dz, rows, hd, a->down_w, c, df);
}

/* ------------------------------------------------------------------------------------------ */
/* One frame.                                                                                  */

typedef struct {                           /* a body's saved activations */
  float *xhat, *rstd, *slope, *gl, *norms; /* slope: GELU'(pw1 output) */
} gz_tune_body_state;

typedef struct {
  gz_tune_adapter_state adapter[GZ_TUNE_MAX_BLOCKS];
  gz_tune_body_state body[GZ_TUNE_MAX_BLOCKS];
  float* f[GZ_TUNE_MAX_BLOCKS]; /* each adapter's input (block 0: a copy of the frame's f) */
  float *r, *t, *u, *dr, *q, *scratch, *dz, *pooled, *zhat, *z, *dz_head; /* the last four: [cells][C] */
  float* head_rstd;                                                       /* [cells] */
} gz_tune_work;

/* Lays the work state out in `base`; returns the floats it takes (base may be null: sizes only). */
static inline size_t gz_tune_work_carve(const gz_tune_graph* g, float* base, gz_tune_work* w) {
  const size_t p = (size_t)g->height * (size_t)g->width, c = (size_t)g->channels, c4 = 4 * c;
  const size_t h = (size_t)g->hidden;
  size_t at = 0;
#define GZ_TUNE_TAKE(field, floats) (w->field = base ? base + at : 0, at += (floats))
  memset(w, 0, sizeof *w);
  for (int32_t b = 0; b < g->blocks; ++b) {
    GZ_TUNE_TAKE(adapter[b].n, p * h);
    GZ_TUNE_TAKE(adapter[b].s, p * h);
    GZ_TUNE_TAKE(adapter[b].a, p * h);
    GZ_TUNE_TAKE(f[b], p * c);
    if (b == 0) continue; /* block 0's body is frozen: nothing of it is kept */
    GZ_TUNE_TAKE(body[b].xhat, p * c);
    GZ_TUNE_TAKE(body[b].rstd, p);
    GZ_TUNE_TAKE(body[b].slope, p * c4);
    GZ_TUNE_TAKE(body[b].gl, p * c4);
    GZ_TUNE_TAKE(body[b].norms, c4);
  }
  GZ_TUNE_TAKE(r, p * c);
  GZ_TUNE_TAKE(t, p * c);
  GZ_TUNE_TAKE(u, p * c);
  GZ_TUNE_TAKE(dr, p * c);
  GZ_TUNE_TAKE(q, p * c4);
  GZ_TUNE_TAKE(scratch, 2 * c4);
  GZ_TUNE_TAKE(dz, p * h);
  const size_t head_in = gz_tune_head_inputs(g);
  GZ_TUNE_TAKE(pooled, head_in);
  GZ_TUNE_TAKE(zhat, head_in);
  GZ_TUNE_TAKE(z, head_in);
  GZ_TUNE_TAKE(dz_head, head_in);
  GZ_TUNE_TAKE(head_rstd, (size_t)g->grid_h * (size_t)g->grid_w);
#undef GZ_TUNE_TAKE
  return at;
}

/* Scratch of one gz_tune_frame() call, in floats. */
static inline size_t gz_tune_work_floats(const gz_tune_graph* g) {
  gz_tune_work w;
  return gz_tune_work_carve(g, 0, &w);
}

static inline const float* gz_tune_head_weight(const gz_tune_graph* g, float* params) {
  return g->train_head ? params + (size_t)g->blocks * gz_tune_adapter_params(g) : g->head_weight;
}

static inline const float* gz_tune_head_bias(const gz_tune_graph* g, float* params) {
  return g->train_head ? params + (size_t)g->blocks * gz_tune_adapter_params(g) + 4 * gz_tune_head_inputs(g)
                       : g->head_bias;
}

/* Every one of `rows` rows of y (n wide) set to `bias`: a layer's output before its products. */
static inline void gz_tune_fill_rows_f32(float* y, int32_t rows, const float* bias, int32_t n) {
  for (int32_t q = 0; q < rows; ++q) memcpy(y + (size_t)q * n, bias, (size_t)n * sizeof(float));
}

/* The head's pool: the mean of the [positions][C] map r over each cell (double sums), [cells][C];
 * with `backward`, its adjoint instead: each position's dr += d pooled of its cells / cell size
 * (cells may share a row, gz_pool_cell_bounds). */
static inline void gz_tune_cells_f32(const gz_tune_graph* g, float* r, float* pooled, int backward) {
  const int32_t c = g->channels;
  for (int32_t gy = 0; gy < g->grid_h; ++gy) {
    int32_t y0, y1;
    gz_pool_cell_bounds(gy, g->height, g->grid_h, &y0, &y1);
    for (int32_t gx = 0; gx < g->grid_w; ++gx) {
      int32_t x0, x1;
      gz_pool_cell_bounds(gx, g->width, g->grid_w, &x0, &x1);
      float* cell = pooled + ((size_t)gy * g->grid_w + gx) * c;
      const double count = (double)(y1 - y0) * (x1 - x0);
      for (int32_t k = 0; k < c; ++k) {
        if (backward) {
          const float d = (float)(cell[k] / count);
          for (int32_t y = y0; y < y1; ++y)
            for (int32_t x = x0; x < x1; ++x) r[((size_t)y * g->width + x) * c + k] += d;
          continue;
        }
        double s = 0;
        for (int32_t y = y0; y < y1; ++y)
          for (int32_t x = x0; x < x1; ++x) s += r[((size_t)y * g->width + x) * c + k];
        cell[k] = (float)(s / count);
      }
    }
  }
}

static inline void gz_tune_pool_cells_f32(const gz_tune_graph* g, float* r, float* pooled) {
  gz_tune_cells_f32(g, r, pooled, 0);
}

/* The forward pass from (c, f) to the head's 4 outputs, keeping what the backward needs. */
static inline void gz_tune_forward_work(const gz_tune_graph* g, float* params, const float* c_in, const float* f_in,
                                        gz_tune_work* w, float out[4]) {
  const int32_t p = g->height * g->width, c = g->channels, c4 = 4 * c;
  const size_t n = (size_t)p * c;
  memcpy(w->f[0], f_in, n * sizeof(float));
  memcpy(w->r, c_in, n * sizeof(float));
  for (int32_t b = 0; b < g->blocks; ++b) {
    if (b > 0) { /* the frozen body: f_b from r_b, then r += f_b */
      const gz_tune_body* body = &g->body[b];
      gz_tune_body_state* s = &w->body[b];
      gz_tune_fill_rows_f32(w->t, p, body->dw_bias, c);
      gz_tune_dw7x7_taps_f32(w->r, g->height, g->width, c, body->dw_weight, w->t, 0);
      gz_tune_layernorm_f32(w->t, p, c, body->norm_weight, body->norm_bias, g->norm_eps, s->xhat, s->rstd, w->u);
      gz_tune_fill_rows_f32(s->slope, p, body->pw1_bias, c4);
      gz_tune_gemm_nn_f32(w->u, p, c, body->pw1_weight, c4, s->slope); /* pw1's output ... */
      gz_tune_gelu_f32(s->slope, (size_t)p * c4, s->gl);               /* ... becomes GELU's slope */
      gz_tune_grn_f32(s->gl, p, c4, body->grn_gamma, body->grn_beta, s->norms, w->q);
      gz_tune_fill_rows_f32(w->f[b], p, body->pw2_bias, c);
      gz_tune_gemm_nn_f32(w->q, p, c4, body->pw2_weight, c, w->f[b]);
      gz_tune_update_row_f32(w->r, w->f[b], n, 0);
    }
    const gz_tune_adapter_view a = gz_tune_adapter_at(g, params, b);
    gz_tune_adapter_forward(g, b, &a, w->f[b], &w->adapter[b], w->r);
  }
  gz_tune_pool_cells_f32(g, w->r, w->pooled);
  gz_tune_layernorm_f32(w->pooled, g->grid_h * g->grid_w, c, g->head_norm_weight, g->head_norm_bias, g->norm_eps,
                        w->zhat, w->head_rstd, w->z);
  const float* hw = gz_tune_head_weight(g, params);
  const float* hb = gz_tune_head_bias(g, params);
  const size_t in = gz_tune_head_inputs(g);
  for (int32_t j = 0; j < 4; ++j) {
    float y = hb[j];
    for (size_t k = 0; k < in; ++k) y += hw[(size_t)j * in + k] * w->z[k];
    out[j] = y;
  }
}

/* The loss of one frame (the batch loss is the mean of these) and its gradient d out. */
static inline float gz_tune_loss(const gz_tune_graph* g, const float out[4], const float target[3], float d_out[4]) {
  const double len = sqrt((double)out[0] * out[0] + (double)out[1] * out[1] + (double)out[2] * out[2]);
  const double n = len > 1e-12 ? len : 1e-12;
  double dir[3], d_dir[3], residual = 0;
  for (int k = 0; k < 3; ++k) {
    dir[k] = out[k] / n;
    residual += fabs(dir[k] - target[k]);
  }
  const double s = out[3] < -7 ? -7 : out[3] > 7 ? 7 : out[3];
  const double in_range = out[3] >= -7 && out[3] <= 7 ? 1.0 : 0.0;
  const double e = exp(-s);
  double loss = 0, d_s = 0, dir_weight = 1.0 / 3.0;
  if (g->laplace_nll) {
    loss = residual * e + s;
    dir_weight = e;
    d_s = (1.0 - residual * e) * in_range;
  } else {
    loss = residual / 3.0;
    if (g->scale_trained) {
      loss += residual * e + s;
      d_s = (1.0 - residual * e) * in_range;
    }
  }
  double dot = 0;
  for (int k = 0; k < 3; ++k) {
    const double diff = dir[k] - target[k];
    d_dir[k] = (diff > 0 ? 1.0 : diff < 0 ? -1.0 : 0.0) * dir_weight;
    dot += d_dir[k] * dir[k];
  }
  for (int k = 0; k < 3; ++k) d_out[k] = (float)(len > 1e-12 ? (d_dir[k] - dir[k] * dot) / n : d_dir[k] / n);
  d_out[3] = (float)d_s;
  return (float)loss;
}

/* Forward and backward of one frame: returns its loss; adds `scale` * d loss / d params to grad. */
static inline float gz_tune_frame(const gz_tune_graph* g, float* params, float* grad, const float* c_in,
                                  const float* f_in, const float target[3], float scale, float* work) {
  gz_tune_work w;
  gz_tune_work_carve(g, work, &w);
  const int32_t p = g->height * g->width, c = g->channels, c4 = 4 * c;
  const size_t n = (size_t)p * c;
  float out[4], d_out[4];
  gz_tune_forward_work(g, params, c_in, f_in, &w, out);
  const float loss = gz_tune_loss(g, out, target, d_out);
  for (int j = 0; j < 4; ++j) d_out[j] *= scale;

  /* Head: Linear (trained or not), LayerNorm per cell, mean pool: every position gets d pooled
   * of its cells / cell size. */
  const float* hw = gz_tune_head_weight(g, params);
  const size_t in = gz_tune_head_inputs(g);
  if (g->train_head) {
    float* gw = grad + (size_t)g->blocks * gz_tune_adapter_params(g);
    for (int32_t j = 0; j < 4; ++j) {
      for (size_t k = 0; k < in; ++k) gw[(size_t)j * in + k] += d_out[j] * w.z[k];
      gw[4 * in + j] += d_out[j];
    }
  }
  for (size_t k = 0; k < in; ++k) {
    float d = 0;
    for (int32_t j = 0; j < 4; ++j) d += d_out[j] * hw[(size_t)j * in + k];
    w.dz_head[k] = d;
  }
  gz_tune_layernorm_dx_f32(w.dz_head, w.zhat, w.head_rstd, g->grid_h * g->grid_w, c, g->head_norm_weight, w.pooled);
  memset(w.dr, 0, n * sizeof(float));
  gz_tune_cells_f32(g, w.dr, w.pooled, 1);

  /* Blocks, last first: r_{b+1} = r_b + f_b + A_b(f_b). */
  for (int32_t b = g->blocks - 1; b >= 0; --b) {
    float* df = w.u;
    memcpy(df, w.dr, n * sizeof(float));
    const gz_tune_adapter_view a = gz_tune_adapter_at(g, params, b);
    gz_tune_adapter_view ga = gz_tune_adapter_at(g, grad, b);
    gz_tune_adapter_backward(g, b, &a, &ga, w.f[b], &w.adapter[b], w.dr, w.dz, b > 0 ? df : 0);
    if (b == 0) break;
    const gz_tune_body* body = &g->body[b];
    const gz_tune_body_state* s = &w.body[b];
    gz_tune_gemm_nt_f32(df, p, c, body->pw2_weight, c4, 0, w.q, 0);
    gz_tune_grn_dx_f32(w.q, s->gl, s->norms, p, c4, body->grn_gamma, w.scratch);
    gz_tune_update_row_f32(w.q, s->slope, (size_t)p * c4, 1); /* GELU */
    gz_tune_gemm_nt_f32(w.q, p, c4, body->pw1_weight, c, 0, w.t, 0);
    gz_tune_layernorm_dx_f32(w.t, s->xhat, s->rstd, p, c, body->norm_weight, w.u);
    gz_tune_dw7x7_taps_f32(w.u, g->height, g->width, c, body->dw_weight, w.dr, 1);
  }
  return loss;
}

/* The head's 4 outputs for one frame (forward only). */
static inline void gz_tune_predict(const gz_tune_graph* g, float* params, const float* c_in, const float* f_in,
                                   float* work, float out[4]) {
  gz_tune_work w;
  gz_tune_work_carve(g, work, &w);
  gz_tune_forward_work(g, params, c_in, f_in, &w, out);
}

/* One AdamW step as LibTorch takes it (betas 0.9 / 0.999, eps 1e-8, weight decay 0); `step`
 * counts from 1. */
static inline void gz_tune_adamw_step(float* params, const float* grad, float* m, float* v, size_t count, float lr,
                                      int32_t step) {
  const double bias1 = 1.0 - pow(0.9, step), bias2 = 1.0 - pow(0.999, step);
  const float step_size = (float)(lr / bias1), root2 = (float)sqrt(bias2);
  size_t i = 0;
#if defined(GZ_SIMD_NEON)
  for (; i + 4 <= count; i += 4) {
    GZ_MCA_BEGIN(tune_adamw4);
    const float32x4_t g = vld1q_f32(grad + i);
    const float32x4_t mi = vfmaq_n_f32(vmulq_n_f32(vld1q_f32(m + i), 0.9f), g, 0.1f);
    const float32x4_t vi = vfmaq_f32(vmulq_n_f32(vld1q_f32(v + i), 0.999f), vmulq_n_f32(g, 0.001f), g);
    const float32x4_t denom = vaddq_f32(vdivq_f32(vsqrtq_f32(vi), vdupq_n_f32(root2)), vdupq_n_f32(1e-8f));
    vst1q_f32(m + i, mi);
    vst1q_f32(v + i, vi);
    vst1q_f32(params + i, vsubq_f32(vld1q_f32(params + i), vdivq_f32(vmulq_n_f32(mi, step_size), denom)));
    GZ_MCA_END(tune_adamw4);
  }
#endif
  for (; i < count; ++i) {
    m[i] = 0.9f * m[i] + 0.1f * grad[i];
    v[i] = 0.999f * v[i] + 0.001f * grad[i] * grad[i];
    params[i] -= step_size * m[i] / (sqrtf(v[i]) / root2 + 1e-8f);
  }
}

#endif /* LIBGAZE_EXPORT_TUNE_H_ */
