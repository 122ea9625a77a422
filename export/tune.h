/* On-device personalisation (issue 17): the float forward and backward pass through the last
 * stage's adapters, the rest of that stage and the head, and the AdamW steps of
 * `gaze personalize`, for the generated kernel. Same rules as kernel.h: dependency-free C-style
 * C++17, no heap, no exceptions; every buffer is the caller's. Copied verbatim into the generated
 * source.
 *
 * What is trained. The last stage has `blocks` blocks, each with an adapter
 *   r_{b+1} = r_b + f_b + A_b(f_b),  f_b = pw2(GRN(GELU(pw1(LN(dw7x7(r_b)))))),
 *   A(f) = W_up leaky_relu(BN(W_down f + b_down)) + b_up   (BN in eval mode: frozen statistics)
 * then the head o = W_head LN(mean_p r_blocks) + b_head. Only the adapters (and, optionally, the
 * head Linear) learn, so everything before block 0's adapter is frozen: a frame enters as
 *   c = r_0 + f_0 and f_0   (two [positions][C] tensors; the integer network computes them once)
 * and the bodies of blocks 1.. run forward and backward at every step. The bodies' weights are
 * frozen, so their backward needs input gradients only: about the cost of the forward again.
 *
 * Parameters are one flat float vector in `gaze personalize`'s order (param_groups.h): per
 * block down.weight [H][C], down.bias [H], bn.weight [H], bn.bias [H], up.weight [C][H],
 * up.bias [C]; then, with train_head, head.weight [4][C], head.bias [4]. The same layout holds
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
 */
#ifndef LIBGAZE_EXPORT_TUNE_H_
#define LIBGAZE_EXPORT_TUNE_H_

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
  float norm_eps;                                  /* the blocks' and the head's LayerNorm */
  gz_tune_body body[GZ_TUNE_MAX_BLOCKS];           /* body[0] is unused: block 0's body is frozen */
  const float* bn_mean[GZ_TUNE_MAX_BLOCKS];        /* the adapters' BatchNorm statistics [H] */
  const float* bn_var[GZ_TUNE_MAX_BLOCKS];
  float bn_eps, slope; /* BatchNorm eps, LeakyReLU negative slope */
  const float* head_norm_weight;
  const float* head_norm_bias; /* [C] */
  const float* head_weight;    /* [4][C], used when !train_head */
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

static inline size_t gz_tune_param_count(const gz_tune_graph* g) {
  return (size_t)g->blocks * gz_tune_adapter_params(g) + (g->train_head ? 4 * (size_t)g->channels + 4 : 0);
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
/* Dense pieces. Rows are positions.                                                           */

/* y[p][:] = b + x[p][:] W for W [in][out]. */
static inline void gz_tune_linear_f32(const float* x, int32_t rows, int32_t in, const float* w, const float* b,
                                      int32_t out, float* y) {
  for (int32_t p = 0; p < rows; ++p) {
    float* yr = y + (size_t)p * out;
    const float* xr = x + (size_t)p * in;
    for (int32_t o = 0; o < out; ++o) yr[o] = b[o];
    for (int32_t i = 0; i < in; ++i) {
      const float xi = xr[i];
      const float* wr = w + (size_t)i * out;
      for (int32_t o = 0; o < out; ++o) yr[o] += xi * wr[o];
    }
  }
}

/* sum_i a[i] b[i] in eight independent lanes (one AVX register, two NEON ones: compilers
 * vectorise it without reassociating anything), added pairwise at the end. */
static inline float gz_tune_dot_f32(const float* a, const float* b, int32_t n) {
  float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int32_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int32_t l = 0; l < 8; ++l) lane[l] += a[i + l] * b[i + l];
  float s = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

/* dx[p][i] = sum_o dy[p][o] W[i][o] for W [in][out]: the input gradient of the layer above. */
static inline void gz_tune_linear_dx_f32(const float* dy, int32_t rows, int32_t out, const float* w, int32_t in,
                                         float* dx) {
  for (int32_t p = 0; p < rows; ++p)
    for (int32_t i = 0; i < in; ++i)
      dx[(size_t)p * in + i] = gz_tune_dot_f32(dy + (size_t)p * out, w + (size_t)i * out, out);
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
          const float* kr = k + (size_t)(ky * 7 + kx) * c;
          for (int32_t ch = 0; ch < c; ++ch) out[ch] += kr[ch] * in[ch];
        }
      }
}

/* LayerNorm over the c channels of each row; keeps xhat and 1/sigma per row for the backward. */
static inline void gz_tune_layernorm_f32(const float* x, int32_t rows, int32_t c, const float* gamma, const float* beta,
                                         float eps, float* xhat, float* rstd, float* y) {
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

/* GELU (erf) of h -> g, keeping its derivative GELU'(h) = Phi(h) + h phi(h) for the backward
 * (dh = dg * GELU'(h)): one erf per value and step instead of two. */
static inline void gz_tune_gelu_f32(const float* h, size_t n, float* g, float* slope) {
  for (size_t i = 0; i < n; ++i) {
    const float x = h[i];
    const float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
    g[i] = x * cdf;
    slope[i] = cdf + x * 0.39894228040143268f * expf(-0.5f * x * x);
  }
}

/* GRN over one image (rows = positions): y = x * (gamma * N + 1) + beta, N = |x|_c / (mean |x| + 1e-6);
 * keeps the per-channel norms |x|_c for the backward. */
static inline void gz_tune_grn_f32(const float* x, int32_t rows, int32_t c, const float* gamma, const float* beta,
                                   float* norms, float* y) {
  for (int32_t k = 0; k < c; ++k) norms[k] = 0;
  for (int32_t p = 0; p < rows; ++p) /* sums of squares, position by position (contiguous) */
    for (int32_t k = 0; k < c; ++k) norms[k] += x[(size_t)p * c + k] * x[(size_t)p * c + k];
  double mean = 0;
  for (int32_t k = 0; k < c; ++k) {
    norms[k] = sqrtf(norms[k]);
    mean += norms[k];
  }
  const double denom = mean / c + 1e-6;
  float factor[GZ_TUNE_MAX_GRN]; /* gamma * N + 1 */
  for (int32_t k = 0; k < c; ++k) factor[k] = (float)(gamma[k] * (norms[k] / denom) + 1.0);
  for (int32_t p = 0; p < rows; ++p)
    for (int32_t k = 0; k < c; ++k) y[(size_t)p * c + k] = x[(size_t)p * c + k] * factor[k] + beta[k];
}

/* dx of GRN for output gradient dy (gamma, beta frozen); `scratch` holds 2c floats. */
static inline void gz_tune_grn_dx_f32(const float* dy, const float* x, const float* norms, int32_t rows, int32_t c,
                                      const float* gamma, float* scratch, float* dx) {
  double mean = 0;
  for (int32_t k = 0; k < c; ++k) mean += norms[k];
  const double denom = mean / c + 1e-6;
  for (int32_t k = 0; k < c; ++k) scratch[k] = 0;
  for (int32_t p = 0; p < rows; ++p) /* sum_p dy x per channel, position by position */
    for (int32_t k = 0; k < c; ++k) scratch[k] += dy[(size_t)p * c + k] * x[(size_t)p * c + k];
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
  for (int32_t p = 0; p < rows; ++p)
    for (int32_t k = 0; k < c; ++k) {
      const size_t i = (size_t)p * c + k;
      dx[i] = dy[i] * scratch[k] + x[i] * b[k];
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
  for (int32_t j = 0; j < hd; ++j) {
    const float k = 1.0f / sqrtf(var[j] + g->bn_eps);
    const float* wr = a->down_w + (size_t)j * c;
    for (int32_t p = 0; p < rows; ++p) {
      const float z = a->down_b[j] + gz_tune_dot_f32(wr, f + (size_t)p * c, c);
      const float n = (z - mean[j]) * k;
      const float s = n * a->bn_w[j] + a->bn_b[j];
      st->n[(size_t)p * hd + j] = n;
      st->s[(size_t)p * hd + j] = s;
      st->a[(size_t)p * hd + j] = s > 0 ? s : s * g->slope;
    }
  }
  for (int32_t p = 0; p < rows; ++p) {
    const float* ar = st->a + (size_t)p * hd;
    float* orow = out + (size_t)p * c;
    for (int32_t o = 0; o < c; ++o) {
      orow[o] += a->up_b[o] + gz_tune_dot_f32(a->up_w + (size_t)o * hd, ar, hd);
    }
  }
}

/* Backward of out += A(f) - f for output gradient dy: adds the parameter gradients into `grad`,
 * and, when df is not null, the gradient through the down projection into df. `dz` holds P * H
 * floats of scratch. */
static inline void gz_tune_adapter_backward(const gz_tune_graph* g, int32_t block, const gz_tune_adapter_view* a,
                                            gz_tune_adapter_view* grad, const float* f, const gz_tune_adapter_state* st,
                                            const float* dy, float* dz, float* df) {
  const int32_t c = g->channels, hd = g->hidden, rows = g->height * g->width;
  const float* var = g->bn_var[block];
  for (int32_t p = 0; p < rows; ++p) {
    const float* dr = dy + (size_t)p * c;
    const float* ar = st->a + (size_t)p * hd;
    float* dzr = dz + (size_t)p * hd;
    for (int32_t j = 0; j < hd; ++j) dzr[j] = 0;
    for (int32_t o = 0; o < c; ++o) {
      const float d = dr[o];
      const float* wr = a->up_w + (size_t)o * hd;
      float* gw = grad->up_w + (size_t)o * hd;
      grad->up_b[o] += d;
      for (int32_t j = 0; j < hd; ++j) {
        gw[j] += d * ar[j];
        dzr[j] += d * wr[j]; /* d(LeakyReLU output) */
      }
    }
    for (int32_t j = 0; j < hd; ++j) {
      const size_t i = (size_t)p * hd + j;
      const float ds = st->s[i] > 0 ? dzr[j] : dzr[j] * g->slope;
      grad->bn_w[j] += ds * st->n[i];
      grad->bn_b[j] += ds;
      dzr[j] = ds * a->bn_w[j] / sqrtf(var[j] + g->bn_eps); /* d(down projection) */
    }
  }
  for (int32_t j = 0; j < hd; ++j) {
    float* gw = grad->down_w + (size_t)j * c;
    for (int32_t p = 0; p < rows; ++p) {
      const float d = dz[(size_t)p * hd + j];
      const float* fr = f + (size_t)p * c;
      grad->down_b[j] += d;
      for (int32_t i = 0; i < c; ++i) gw[i] += d * fr[i];
    }
  }
  if (df) {
    for (int32_t p = 0; p < rows; ++p) {
      float* dfr = df + (size_t)p * c;
      for (int32_t j = 0; j < hd; ++j) {
        const float d = dz[(size_t)p * hd + j];
        const float* wr = a->down_w + (size_t)j * c;
        for (int32_t i = 0; i < c; ++i) dfr[i] += d * wr[i];
      }
    }
  }
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
  float *r, *t, *u, *dr, *q, *dh, *scratch, *dz, *pooled, *zhat, *z;
  float head_rstd;
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
  GZ_TUNE_TAKE(dh, p * c4);
  GZ_TUNE_TAKE(scratch, 2 * c4);
  GZ_TUNE_TAKE(dz, p * h);
  GZ_TUNE_TAKE(pooled, c);
  GZ_TUNE_TAKE(zhat, c);
  GZ_TUNE_TAKE(z, c);
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
  return g->train_head ? params + (size_t)g->blocks * gz_tune_adapter_params(g) + 4 * (size_t)g->channels
                       : g->head_bias;
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
      for (int32_t q = 0; q < p; ++q) memcpy(w->t + (size_t)q * c, body->dw_bias, (size_t)c * sizeof(float));
      gz_tune_dw7x7_taps_f32(w->r, g->height, g->width, c, body->dw_weight, w->t, 0);
      gz_tune_layernorm_f32(w->t, p, c, body->norm_weight, body->norm_bias, g->norm_eps, s->xhat, s->rstd, w->u);
      gz_tune_linear_f32(w->u, p, c, body->pw1_weight, body->pw1_bias, c4, w->dh); /* dh: scratch here */
      gz_tune_gelu_f32(w->dh, (size_t)p * c4, s->gl, s->slope);
      gz_tune_grn_f32(s->gl, p, c4, body->grn_gamma, body->grn_beta, s->norms, w->q);
      gz_tune_linear_f32(w->q, p, c4, body->pw2_weight, body->pw2_bias, c, w->f[b]);
      for (size_t i = 0; i < n; ++i) w->r[i] += w->f[b][i];
    }
    const gz_tune_adapter_view a = gz_tune_adapter_at(g, params, b);
    gz_tune_adapter_forward(g, b, &a, w->f[b], &w->adapter[b], w->r);
  }
  for (int32_t k = 0; k < c; ++k) {
    double s = 0;
    for (int32_t q = 0; q < p; ++q) s += w->r[(size_t)q * c + k];
    w->pooled[k] = (float)(s / p);
  }
  gz_tune_layernorm_f32(w->pooled, 1, c, g->head_norm_weight, g->head_norm_bias, g->norm_eps, w->zhat, &w->head_rstd,
                        w->z);
  const float* hw = gz_tune_head_weight(g, params);
  const float* hb = gz_tune_head_bias(g, params);
  for (int32_t j = 0; j < 4; ++j) {
    float y = hb[j];
    for (int32_t k = 0; k < c; ++k) y += hw[(size_t)j * c + k] * w->z[k];
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

  /* Head: Linear (trained or not), LayerNorm, mean pool: every position gets d pooled / P. */
  const float* hw = gz_tune_head_weight(g, params);
  if (g->train_head) {
    float* gw = grad + (size_t)g->blocks * gz_tune_adapter_params(g);
    for (int32_t j = 0; j < 4; ++j) {
      for (int32_t k = 0; k < c; ++k) gw[(size_t)j * c + k] += d_out[j] * w.z[k];
      gw[4 * (size_t)c + j] += d_out[j];
    }
  }
  for (int32_t k = 0; k < c; ++k) {
    float d = 0;
    for (int32_t j = 0; j < 4; ++j) d += d_out[j] * hw[(size_t)j * c + k];
    w.t[k] = d;
  }
  gz_tune_layernorm_dx_f32(w.t, w.zhat, &w.head_rstd, 1, c, g->head_norm_weight, w.pooled);
  for (int32_t q = 0; q < p; ++q)
    for (int32_t k = 0; k < c; ++k) w.dr[(size_t)q * c + k] = w.pooled[k] / (float)p;

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
    gz_tune_linear_dx_f32(df, p, c, body->pw2_weight, c4, w.q);
    gz_tune_grn_dx_f32(w.q, s->gl, s->norms, p, c4, body->grn_gamma, w.scratch, w.dh);
    for (size_t i = 0; i < (size_t)p * c4; ++i) w.dh[i] *= s->slope[i]; /* GELU */
    gz_tune_linear_dx_f32(w.dh, p, c4, body->pw1_weight, c, w.t);
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
  for (size_t i = 0; i < count; ++i) {
    m[i] = 0.9f * m[i] + 0.1f * grad[i];
    v[i] = 0.999f * v[i] + 0.001f * grad[i] * grad[i];
    params[i] -= step_size * m[i] / (sqrtf(v[i]) / root2 + 1e-8f);
  }
}

#endif /* LIBGAZE_EXPORT_TUNE_H_ */
