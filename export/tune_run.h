/* Personalisation on the device (issue 17): a wearer's k calibration frames through the frozen
 * integer network, AdamW on the last stage's adapters (and, with train_head, the head's Linear)
 * in float (export/tune.h) with the replay mixing of `gaze personalize`, then the adapters and
 * the head quantised and packed into the user blob that dftgaze_set_user() takes. Same rules as
 * kernel.h: no heap beyond the caller's work buffer, no exceptions; copied into the generated
 * source.
 *
 * The procedure, as trainers/personalize.cpp runs it on a workstation:
 *   1. each calibration frame in `views` copies (view 0 plain, the others augmented like
 *      train.augmentation: window shift, contrast, brightness, gamma, noise) through the integer
 *      network up to the last stage's first adapter: (c, f) per view, int16 (gz_net_stages)
 *   2. `steps` AdamW steps on batches of `batch_size`: round(batch_size * replay_fraction) drawn
 *      from the replay pack (the export's K-means-balanced (c, f) of the generalised training
 *      set, made by the same integer network), the rest from the calibration views; draws with
 *      replacement from one SplitMix64 stream, own frames first, as the workstation draws them
 *   3. the trained adapters and the head (trained, or the base's float head) quantised like the
 *      exporter quantises a user's (gz_quantize_linear_f32; BatchNorm folded into the down
 *      projection; the head in two planes): the down projection's output scale and every
 *      bias-correction mean are measured on the frames the device holds (calibration views and
 *      replay pack); the residual scale, the LeakyReLU's requantisation and the head's input
 *      scale are the base's (the head's LayerNorm is not trained)
 *   4. the blob (GZ_USER_BLOB_VERSION, export/kernel.h): "GZUA", version, the base's
 *      fingerprint, payload size, CRC-32, payload (the layout export/codegen.cpp writes for
 *      `gaze export --users`).
 *
 * The bodies of the blocks after the first run in float with the kernel's own int8 weights,
 * dequantised once per call into the work buffer (gz_tune_model.scales). Everything is
 * deterministic: the same frames, options and build give the same blob, bit for bit.
 */
#ifndef LIBGAZE_EXPORT_TUNE_RUN_H_
#define LIBGAZE_EXPORT_TUNE_RUN_H_

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "export/kernel.h"
#include "export/quantize.h"
#include "export/tune.h"

#define GZ_TUNE_ERROR_ARGUMENT (-1) /* null pointer, k < 1, bad option */
#define GZ_TUNE_ERROR_ARENA (-3)    /* the kernel's arena is too small */
#define GZ_TUNE_ERROR_WORK (-4)     /* the work buffer is smaller than gz_tune_work_bytes() */
#define GZ_TUNE_ERROR_BLOB (-5)     /* blob_out is smaller than gz_tune_blob_bytes() */
#define GZ_TUNE_ERROR_QUANTIZE (-6) /* the trained adapters do not fit the integer format */
#define GZ_TUNE_ERROR_DIVERGED (-7) /* a parameter became NaN or infinite */

typedef struct { /* per-output-channel scales of a body's int8 weights */
  const float *dw, *pw1, *pw2;
} gz_tune_body_scales;

typedef struct {
  gz_tune_graph graph;                            /* float constants; body weights come from `blocks` */
  const gz_block* blocks;                         /* the kernel's last stage */
  gz_tune_body_scales scales[GZ_TUNE_MAX_BLOCKS]; /* [0] unused */
  const float* base_params;                       /* the base's adapters, gz_tune order */
  float residual_scale;                           /* of the last stage's int16 residual */
  float head_norm_scale;                          /* of the head's int16 input (its LayerNorm's output) */
  gz_requant slope;                               /* the adapters' LeakyReLU, as the base quantised it */
  int32_t replay_count;
  const int16_t* replay_c; /* [count][P][C] */
  const int16_t* replay_f;
  const float* replay_gaze; /* [count][3] */
  uint32_t fingerprint;     /* the base's, for the blob header */
} gz_tune_model;

typedef struct {
  int32_t steps, batch_size, views;
  float lr, replay_fraction;
  uint64_t seed;
  float shift, brightness, contrast, gamma, noise; /* augmentation of views 1.. */
  int32_t train_head;                              /* 1: the head's Linear learns too */
} gz_tune_options;

/* ------------------------------------------------------------------------------------------ */
/* Sizes.                                                                                      */

static inline size_t gz_tune_align16(size_t n) { return (n + 15) / 16 * 16; }

/* One adapter's blob payload (the layout of put_adapter_payload in export/codegen.cpp): the
 * LeakyReLU's {multiplier, shift}, {bias, multiplier, left, right}[out16] of the down projection's
 * two planes (out = H) and of the up projection (out = C), then their packed weights. */
typedef struct {
  int32_t h16, c16;    /* padded output counts of the down and up projections */
  size_t field_bytes;  /* the int32 part */
  size_t down_w_bytes; /* one packed down plane, [ceil(C/2)][H8][2] */
  size_t up_w_bytes;   /* the packed up projection, [ceil(H/2)][C8][2] */
} gz_tune_payload_layout;

static inline gz_tune_payload_layout gz_tune_payload_layout_of(int32_t c, int32_t h) {
  gz_tune_payload_layout l;
  l.h16 = (h + 15) / 16 * 16;
  l.c16 = (c + 15) / 16 * 16;
  l.field_bytes = (size_t)(2 + 4 * (2 * l.h16 + l.c16)) * 4;
  l.down_w_bytes = (size_t)(c + 1) / 2 * (size_t)((h + 7) / 8 * 8) * 2;
  l.up_w_bytes = (size_t)(h + 1) / 2 * (size_t)((c + 7) / 8 * 8) * 2;
  return l;
}

static inline size_t gz_tune_adapter_payload_bytes(int32_t c, int32_t h) {
  const gz_tune_payload_layout l = gz_tune_payload_layout_of(c, h);
  return l.field_bytes + 2 * l.down_w_bytes + l.up_w_bytes;
}

static inline size_t gz_tune_blob_bytes(const gz_tune_model* m) {
  const gz_tune_graph* g = &m->graph;
  return 20 + (size_t)g->blocks * gz_tune_adapter_payload_bytes(g->channels, g->hidden) +
         gz_head_payload_bytes((int32_t)gz_tune_head_inputs(g));
}

typedef struct { /* the work buffer, carved */
  float* body;   /* dequantised body weights */
  float *params, *grad, *m, *v;
  int16_t* views; /* [k * views][2][P][C]: c then f */
  float* frame;   /* gz_tune_work_floats */
  float *c, *f;   /* the current frame in float */
  double* stats;  /* per block: C means of f, H means of a, |s| max; then the head's input means */
  float* quant;   /* quantisation scratch */
} gz_tune_buffers;

static inline size_t gz_tune_body_floats(const gz_tune_graph* g) {
  const size_t c = (size_t)g->channels;
  return 49 * c + 8 * c * c;
}

static inline size_t gz_tune_quant_floats(const gz_tune_graph* g) {
  const size_t c = (size_t)g->channels, h = (size_t)g->hidden;
  /* gz_tune_quantize_adapter's carve-up: folded weight [H][C], five [C] float / int32 arrays,
   * two [C] requantisations (two words each), the payload, two unpacked int8 planes [H][C] */
  const size_t adapter = h * c + 9 * c + (gz_tune_adapter_payload_bytes((int32_t)c, (int32_t)h) + 2 * h * c + 3) / 4;
  /* gz_tune_quantize_head's: four [4] float / int32 arrays, two int8 planes [4][head inputs] */
  const size_t head = 16 + 2 * gz_tune_head_inputs(g);
  return adapter > head ? adapter : head;
}

static inline size_t gz_tune_stats_doubles(const gz_tune_graph* g) {
  return (size_t)g->blocks * (size_t)(g->channels + g->hidden + 1) + gz_tune_head_inputs(g);
}

/* The graph a run trains: the model's, with or without the head's Linear among the parameters. */
static inline gz_tune_graph gz_tune_graph_for(const gz_tune_model* m, const gz_tune_options* o) {
  gz_tune_graph g = m->graph;
  g.train_head = o->train_head != 0;
  return g;
}

/* Carves `work` (null: sizes only) for k calibration frames and options o; returns the bytes
 * needed. The body weights, parameters, statistics and calibration views live throughout; after
 * them the quantisation scratch (the blob) shares the bytes of the gradient, AdamW's moments and
 * one frame's activations (training and statistics). */
static inline size_t gz_tune_carve(const gz_tune_model* m, int32_t k, const gz_tune_options* o, uint8_t* work,
                                   gz_tune_buffers* b) {
  const gz_tune_graph graph = gz_tune_graph_for(m, o);
  const gz_tune_graph* g = &graph;
  const int32_t views = o->views;
  const size_t pc = (size_t)g->height * (size_t)g->width * (size_t)g->channels;
  const size_t n = gz_tune_param_count(g);
  size_t at = 0;
#define GZ_TUNE_SECTION(field, type, count) \
  (b->field = work ? (type*)(void*)(work + at) : 0, at += gz_tune_align16((count) * sizeof(type)))
  memset(b, 0, sizeof *b);
  GZ_TUNE_SECTION(body, float, (size_t)(g->blocks - 1) * gz_tune_body_floats(g));
  GZ_TUNE_SECTION(params, float, n);
  GZ_TUNE_SECTION(stats, double, gz_tune_stats_doubles(g));
  GZ_TUNE_SECTION(views, int16_t, (size_t)k * (size_t)views * 2 * pc);
  const size_t shared = at;
  GZ_TUNE_SECTION(grad, float, n); /* 2-3. training, statistics */
  GZ_TUNE_SECTION(m, float, n);
  GZ_TUNE_SECTION(v, float, n);
  GZ_TUNE_SECTION(frame, float, gz_tune_work_floats(g));
  GZ_TUNE_SECTION(c, float, pc);
  GZ_TUNE_SECTION(f, float, pc);
  const size_t end = at;
  at = shared;
  GZ_TUNE_SECTION(quant, float, gz_tune_quant_floats(g)); /* 4. the blob */
#undef GZ_TUNE_SECTION
  return at > end ? at : end;
}

/* Bytes of work buffer gz_tune_run() needs for k calibration frames and options o (views,
 * train_head). */
static inline size_t gz_tune_work_bytes(const gz_tune_model* m, int32_t k, const gz_tune_options* o) {
  gz_tune_buffers b;
  return gz_tune_carve(m, k, o, 0, &b);
}

/* ------------------------------------------------------------------------------------------ */
/* Pieces.                                                                                     */

static inline uint64_t gz_tune_next(uint64_t* state) { /* splitmix64, as libgaze/core/random.h */
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static inline double gz_tune_uniform(uint64_t* state, double lo, double hi) {
  return lo + (hi - lo) * ((double)(gz_tune_next(state) >> 11) * 0x1.0p-53);
}

/* The bodies' float weights from the kernel's int8 ones: depthwise [49][C], pw1 [C][4C], pw2 [4C][C]. */
static inline void gz_tune_dequantise_bodies(const gz_tune_model* m, float* out, gz_tune_graph* g) {
  const int32_t c = g->channels, c4 = 4 * c;
  for (int32_t b = 1; b < g->blocks; ++b) {
    const gz_block* q = &m->blocks[b];
    const gz_tune_body_scales* s = &m->scales[b];
    float* dw = out;
    float* pw1 = dw + 49 * (size_t)c;
    float* pw2 = pw1 + (size_t)c * c4;
    out = pw2 + (size_t)c4 * c;
    for (int32_t k = 0; k < 49; ++k)
      for (int32_t ch = 0; ch < c; ++ch) dw[(size_t)k * c + ch] = q->dw.weight[(size_t)k * c + ch] * s->dw[ch];
    for (int32_t i = 0; i < c; ++i)
      for (int32_t o = 0; o < c4; ++o) pw1[(size_t)i * c4 + o] = gz_pw_weight_at(&q->pw1, o, i) * s->pw1[o];
    for (int32_t i = 0; i < c4; ++i)
      for (int32_t o = 0; o < c; ++o) pw2[(size_t)i * c + o] = gz_pw_weight_at(&q->pw2, o, i) * s->pw2[o];
    g->body[b].dw_weight = dw;
    g->body[b].pw1_weight = pw1;
    g->body[b].pw2_weight = pw2;
  }
}

/* An augmented view of calibration frame `eye` (eye_h x eye_w) as the network's input `image`
 * (h x w), like datasets/preprocess.cpp's training path on a grey image: the resampling window
 * shifted by up to `shift` of its size (bilinear from the frame itself, so the shifted-in border
 * is the frame's own content), then gamma, contrast, brightness and Gaussian noise on the grey
 * levels. */
static inline void gz_tune_augment(const uint8_t* eye, int32_t eye_h, int32_t eye_w, uint8_t* image, int32_t h,
                                   int32_t w, const gz_tune_options* o, uint64_t* rng) {
  const int32_t shift_y = (int32_t)lrint(gz_tune_uniform(rng, -o->shift, o->shift) * 65536);
  const int32_t shift_x = (int32_t)lrint(gz_tune_uniform(rng, -o->shift, o->shift) * 65536);
  const double contrast = 1 + gz_tune_uniform(rng, -o->contrast, o->contrast);
  const double brightness = 255 * gz_tune_uniform(rng, -o->brightness, o->brightness);
  const double gamma = exp(gz_tune_uniform(rng, -o->gamma, o->gamma));
  const double noise = gz_tune_uniform(rng, 0, o->noise);
  gz_resample_shifted_u8(eye, eye_h, eye_w, image, h, w, shift_y, shift_x);
  float level[256]; /* gamma, contrast and brightness of every grey level */
  for (int32_t v = 0; v < 256; ++v)
    level[v] = (float)((255.0 * pow(v / 255.0, gamma) - 128.0) * contrast + 128.0 + brightness);
  for (size_t i = 0; i < (size_t)h * (size_t)w; ++i) {
    const double u1 = 1.0 - gz_tune_uniform(rng, 0, 1), u2 = gz_tune_uniform(rng, 0, 1);
    const double normal = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    const double v = level[image[i]] + noise * normal;
    image[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrint(v));
  }
}

static inline void gz_tune_dequantise_frame(const int16_t* c16, const int16_t* f16, size_t n, float scale, float* c,
                                            float* f) {
  for (size_t i = 0; i < n; ++i) c[i] = c16[i] * scale, f[i] = f16[i] * scale;
}

/* The frames the device holds, calibration views then replay: index i's int16 (c, f) and target. */
static inline void gz_tune_frame_at(const gz_tune_model* m, const gz_tune_buffers* b, const float* gazes, int32_t own,
                                    int32_t views_k, int32_t i, const int16_t** c, const int16_t** f,
                                    const float** target) {
  const size_t pc = (size_t)m->graph.height * (size_t)m->graph.width * (size_t)m->graph.channels;
  if (i < own) {
    *c = b->views + (size_t)i * 2 * pc;
    *f = *c + pc;
    *target = gazes + (size_t)(i % views_k) * 3;
  } else {
    const size_t r = (size_t)(i - own);
    *c = m->replay_c + r * pc;
    *f = m->replay_f + r * pc;
    *target = m->replay_gaze + r * 3;
  }
}

/* Quantises block `blk`'s trained adapter (params) into the blob payload at `out` (any
 * alignment); returns the bytes written or a negative GZ_TUNE_ERROR_*. stats: C means of its
 * input f, H means of its LeakyReLU output, max |BatchNorm output|. `scratch`:
 * gz_tune_quant_floats() floats. */
static inline long gz_tune_quantize_adapter(const gz_tune_model* m, float* params, int32_t blk, const double* stats,
                                            float* scratch, uint8_t* out) {
  const gz_tune_graph* g = &m->graph;
  const int32_t c = g->channels, h = g->hidden;
  const gz_tune_payload_layout l = gz_tune_payload_layout_of(c, h);
  const int32_t c16 = l.c16, h16 = l.h16;
  const size_t down_w_bytes = l.down_w_bytes, up_w_bytes = l.up_w_bytes;
  const gz_tune_adapter_view a = gz_tune_adapter_at(g, params, blk);
  /* scratch, every piece 4-byte aligned */
  float* w = scratch;                             /* [H][C] BatchNorm folded into the down projection */
  float* bias = w + (size_t)h * c;                /* [C] (H used) */
  float* min_scales = bias + c;                   /* [C] */
  float* w_scale = min_scales + c;                /* [C] */
  int32_t* b_hi = (int32_t*)(void*)(w_scale + c); /* [C] */
  int32_t* b_lo = b_hi + c;
  gz_requant* r_hi = (gz_requant*)(void*)(b_lo + c); /* [C] */
  gz_requant* r_lo = r_hi + c;
  int32_t* fields = (int32_t*)(void*)(r_lo + c);        /* the payload's int32 part */
  int8_t* weights = (int8_t*)fields + l.field_bytes;    /* its int8 part */
  int8_t* q8 = weights + 2 * down_w_bytes + up_w_bytes; /* [H][C] x 2: unpacked planes */
  double means[GZ_LAYERNORM_MAX_CHANNELS];
  for (int32_t j = 0; j < h; ++j) { /* as quantize_block: k = gamma / sqrt(var + eps), in float */
    const float k = a.bn_w[j] / sqrtf(g->bn_var[blk][j] + g->bn_eps);
    for (int32_t i = 0; i < c; ++i) w[(size_t)j * c + i] = a.down_w[(size_t)j * c + i] * k;
    bias[j] = (a.down_b[j] - g->bn_mean[blk][j]) * k + a.bn_b[j];
  }
  const double absmax = stats[c + h];
  const float d = absmax > 0 ? (float)absmax * 1.25f / 32767.0f : 1.0f; /* int16_scale's headroom */
  int32_t* hi_f = fields + 2;
  int32_t* lo_f = hi_f + 4 * h16;
  int32_t* up_f = lo_f + 4 * h16;
  fields[0] = m->slope.multiplier;
  fields[1] = m->slope.shift;
  for (int32_t i = 0; i < c; ++i) means[i] = stats[i];
  if (gz_quantize_linear_f32(w, bias, h, c, m->residual_scale, 0, d, means, min_scales, q8, q8 + (size_t)h * c, w_scale,
                             b_hi, b_lo, r_hi, r_lo) ||
      gz_pack_pw_plane(q8, b_hi, r_hi, c, h, weights, hi_f, hi_f + h16, hi_f + 2 * h16, hi_f + 3 * h16) ||
      gz_pack_pw_plane(q8 + (size_t)h * c, b_lo, r_lo, c, h, weights + down_w_bytes, lo_f, lo_f + h16, lo_f + 2 * h16,
                       lo_f + 3 * h16))
    return GZ_TUNE_ERROR_QUANTIZE;
  /* the up projection: input the LeakyReLU output at scale d, output the residual scale */
  for (int32_t j = 0; j < h; ++j) means[j] = stats[c + j];
  if (gz_quantize_linear_f32(a.up_w, a.up_b, c, h, d, 0, m->residual_scale, means, min_scales, q8, 0, w_scale, b_hi, 0,
                             r_hi, 0) ||
      gz_pack_pw_plane(q8, b_hi, r_hi, h, c, weights + 2 * down_w_bytes, up_f, up_f + c16, up_f + 2 * c16,
                       up_f + 3 * c16))
    return GZ_TUNE_ERROR_QUANTIZE;
  memcpy(out, fields, l.field_bytes + 2 * down_w_bytes + up_w_bytes); /* fields and weights are contiguous */
  return (long)(l.field_bytes + 2 * down_w_bytes + up_w_bytes);
}

/* Quantises the head's Linear of graph g (trained in params, or the base's float head) into the
 * blob payload at `out` (any alignment), as the exporter quantises it: two planes, input at the
 * base's head-norm scale, bias correction from `means` (the means of its inputs). Returns the bytes
 * written or GZ_TUNE_ERROR_QUANTIZE. `scratch`: gz_tune_quant_floats() floats. */
static inline long gz_tune_quantize_head(const gz_tune_model* m, const gz_tune_graph* g, float* params,
                                         const double* means, float* scratch, uint8_t* out) {
  const int32_t c = (int32_t)gz_tune_head_inputs(g);
  float* min_scales = scratch; /* [4] */
  float* w_scale = min_scales + 4;
  int32_t* b_hi = (int32_t*)(void*)(w_scale + 4);
  int32_t* b_lo = b_hi + 4;
  int8_t* w_hi = (int8_t*)(b_lo + 4); /* [4][head inputs] */
  int8_t* w_lo = w_hi + 4 * (size_t)c;
  if (gz_quantize_linear_f32(gz_tune_head_weight(g, params), gz_tune_head_bias(g, params), 4, c, m->head_norm_scale, 0,
                             0, means, min_scales, w_hi, w_lo, w_scale, b_hi, b_lo, 0, 0))
    return GZ_TUNE_ERROR_QUANTIZE;
  gz_head head = {w_hi, w_lo, b_hi, b_lo, {0, 0, 0, 0}, {0, 0, 0, 0}};
  gz_head_dequant_compute(m->head_norm_scale, w_scale, head.dequant, head.dequant_lo);
  gz_head_write_payload(&head, c, out);
  return (long)gz_head_payload_bytes(c);
}

/* ------------------------------------------------------------------------------------------ */
/* The procedure.                                                                              */

static inline int gz_tune_run(const gz_net* net, const gz_tune_model* m, uint8_t* arena, size_t arena_bytes,
                              const uint8_t* const* eyes, int32_t eye_h, int32_t eye_w, const float* gazes, int32_t k,
                              const gz_tune_options* o, void* work, size_t work_bytes, uint8_t* blob,
                              size_t blob_bytes) {
  if (!net || !m || !arena || !eyes || !gazes || !o || !work || !blob || k < 1 || (uintptr_t)work % 16)
    return GZ_TUNE_ERROR_ARGUMENT;
  if (o->views < 1 || o->steps < 0 || o->batch_size < 1 || !(o->lr >= 0) || !(o->replay_fraction >= 0) ||
      !(o->shift >= 0 && o->shift <= 1) || !(o->replay_fraction <= 1) || k > (1 << 20) / o->views ||
      (o->train_head != 0 && o->train_head != 1))
    return GZ_TUNE_ERROR_ARGUMENT;
  for (int32_t i = 0; i < k; ++i)
    if (!eyes[i]) return GZ_TUNE_ERROR_ARGUMENT;
  if (m->graph.blocks < 1 || m->graph.blocks > GZ_TUNE_MAX_BLOCKS || 4 * m->graph.channels > GZ_TUNE_MAX_GRN ||
      m->graph.channels > GZ_LAYERNORM_MAX_CHANNELS || m->graph.grid_h < 1 || m->graph.grid_w < 1 ||
      gz_tune_head_inputs(&m->graph) > GZ_HEAD_MAX_FEATURES)
    return GZ_TUNE_ERROR_ARGUMENT;
  gz_tune_buffers b;
  if (gz_tune_carve(m, k, o, 0, &b) > work_bytes) return GZ_TUNE_ERROR_WORK;
  if (blob_bytes < gz_tune_blob_bytes(m)) return GZ_TUNE_ERROR_BLOB;
  gz_tune_carve(m, k, o, (uint8_t*)work, &b);
  gz_tune_graph g = gz_tune_graph_for(m, o);
  gz_tune_dequantise_bodies(m, b.body, &g);
  const size_t n = gz_tune_param_count(&g);
  const size_t pc = (size_t)g.height * (size_t)g.width * (size_t)g.channels;
  const size_t adapters = (size_t)g.blocks * gz_tune_adapter_params(&g);
  memcpy(b.params, m->base_params, adapters * sizeof(float));
  if (g.train_head) { /* the head's Linear after the adapters (export/tune.h's order) */
    memcpy(b.params + adapters, g.head_weight, 4 * gz_tune_head_inputs(&g) * sizeof(float));
    memcpy(b.params + adapters + 4 * gz_tune_head_inputs(&g), g.head_bias, 4 * sizeof(float));
  }

  /* 1. Calibration views through the integer network (view-major, as the workstation concatenates them). */
  const int32_t own = k * o->views;
  for (int32_t v = 0; v < o->views; ++v)
    for (int32_t i = 0; i < k; ++i) {
      gz_arena_plan plan;
      const int rc = gz_net_input(net, arena, arena_bytes, eyes[i], eye_h, eye_w, &plan);
      if (rc) return rc == -3 ? GZ_TUNE_ERROR_ARENA : GZ_TUNE_ERROR_ARGUMENT;
      if (v > 0) {
        uint64_t rng = o->seed ^ (0x7669657773ULL + (uint64_t)(v * k + i) * 0x9e3779b97f4a7c15ULL); /* "views" */
        gz_tune_augment(eyes[i], eye_h, eye_w, arena + plan.image, net->input_h, net->input_w, o, &rng);
      }
      int16_t* cf = b.views + (size_t)(v * k + i) * 2 * pc;
      const int16_t* r = gz_net_stages(net, arena, &plan, cf + pc);
      memcpy(cf, r, pc * sizeof(int16_t));
    }

  /* 2. AdamW steps on calibration + replay batches. */
  memset(b.m, 0, n * sizeof(float));
  memset(b.v, 0, n * sizeof(float));
  const int32_t replay_n = m->replay_count > 0 ? (int32_t)lround(o->batch_size * (double)o->replay_fraction) : 0;
  const int32_t own_n = o->batch_size - replay_n;
  uint64_t rng = o->seed;
  for (int32_t step = 1; step <= o->steps; ++step) {
    memset(b.grad, 0, n * sizeof(float));
    for (int32_t j = 0; j < o->batch_size; ++j) {
      const int32_t i = j < own_n ? (int32_t)(gz_tune_next(&rng) % (uint64_t)own)
                                  : own + (int32_t)(gz_tune_next(&rng) % (uint64_t)m->replay_count);
      const int16_t *c16, *f16;
      const float* target;
      gz_tune_frame_at(m, &b, gazes, own, k, i, &c16, &f16, &target);
      gz_tune_dequantise_frame(c16, f16, pc, m->residual_scale, b.c, b.f);
      gz_tune_frame(&g, b.params, b.grad, b.c, b.f, target, 1.0f / (float)o->batch_size, b.frame);
    }
    gz_tune_adamw_step(b.params, b.grad, b.m, b.v, n, o->lr, step);
  }
  for (size_t i = 0; i < n; ++i)
    if (!isfinite(b.params[i])) return GZ_TUNE_ERROR_DIVERGED;

  /* 3. Statistics of the trained adapters and the head's input over every frame the device holds. */
  const int32_t c = g.channels, h = g.hidden, per = c + h + 1;
  const int32_t p = g.height * g.width, total = own + m->replay_count;
  const size_t head_in = gz_tune_head_inputs(&g);
  double* head_means = b.stats + (size_t)g.blocks * per;
  memset(b.stats, 0, gz_tune_stats_doubles(&g) * sizeof(double));
  gz_tune_work w;
  gz_tune_work_carve(&g, b.frame, &w);
  for (int32_t i = 0; i < total; ++i) {
    const int16_t *c16, *f16;
    const float* target;
    float out[4];
    gz_tune_frame_at(m, &b, gazes, own, k, i, &c16, &f16, &target);
    gz_tune_dequantise_frame(c16, f16, pc, m->residual_scale, b.c, b.f);
    gz_tune_forward_work(&g, b.params, b.c, b.f, &w, out);
    for (int32_t blk = 0; blk < g.blocks; ++blk) {
      double* s = b.stats + (size_t)blk * per;
      for (size_t q = 0; q < pc; ++q) s[q % (size_t)c] += w.f[blk][q];
      for (size_t q = 0; q < (size_t)p * h; ++q) {
        s[c + q % (size_t)h] += w.adapter[blk].a[q];
        const double mag = fabs(w.adapter[blk].s[q]);
        if (mag > s[c + h]) s[c + h] = mag;
      }
    }
    for (size_t q = 0; q < head_in; ++q) head_means[q] += w.z[q];
  }
  for (int32_t blk = 0; blk < g.blocks; ++blk)
    for (int32_t q = 0; q < c + h; ++q) b.stats[(size_t)blk * per + q] /= (double)total * p;
  for (size_t q = 0; q < head_in; ++q) head_means[q] /= total;

  /* 4. The quantised adapters, then the head, into the blob. */
  size_t at = 20;
  for (int32_t blk = 0; blk < g.blocks; ++blk) {
    const long bytes = gz_tune_quantize_adapter(m, b.params, blk, b.stats + (size_t)blk * per, b.quant, blob + at);
    if (bytes < 0) return (int)bytes;
    at += (size_t)bytes;
  }
  const long head_bytes = gz_tune_quantize_head(m, &g, b.params, head_means, b.quant, blob + at);
  if (head_bytes < 0) return (int)head_bytes;
  at += (size_t)head_bytes;
  const uint32_t header[5] = {0x41555a47u /* "GZUA" */, GZ_USER_BLOB_VERSION, m->fingerprint, (uint32_t)(at - 20),
                              gz_crc32(blob + 20, at - 20)};
  memcpy(blob, header, sizeof header);
  return 0;
}

#endif /* LIBGAZE_EXPORT_TUNE_RUN_H_ */
