/* Fixed-point requantisation, the gemmlowp / TFLite convention (SPEC §4).
 *
 * Contract: plain C99-compatible C++17, no dependencies, no heap, no exceptions — the exporter
 * copies this file verbatim into the generated kernel, so the integer reference in libgaze and
 * the device code share one definition of every rounding step.
 *
 *   gz_srdhm_s32(a, b)      saturating rounding doubling high multiply: a*b / 2^31 rounded to
 *                           nearest, ties upward (gemmlowp's nudge: 1.5 -> 2, -1.5 -> -1);
 *                           INT32_MIN * INT32_MIN saturates to INT32_MAX
 *   gz_rdivpot_s32(x, e)    x / 2^e rounded to nearest, ties away from zero (0 <= e <= 31)
 *   gz_requant_compute(s)   a real scale s (0 <= s < 2^31) as a 31-bit multiplier in
 *                           [2^30, 2^31) and a power-of-two shift (positive = left); computed
 *                           once at export time and stored in the weights
 *   gz_requant_apply_s32()  x * s in integer arithmetic: left shift, high multiply, rounding
 *                           right shift — never further than 1 from round(x * s)
 */
#ifndef LIBGAZE_EXPORT_FIXED_POINT_H_
#define LIBGAZE_EXPORT_FIXED_POINT_H_

#include <math.h>
#include <stdint.h>

typedef struct {
  int32_t multiplier; /* in [2^30, 2^31), or 0 for a zero scale */
  int32_t shift;      /* applied as 2^shift: > 0 left shift before, < 0 rounding right shift after */
} gz_requant;

static inline int32_t gz_srdhm_s32(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  const int64_t ab = (int64_t)a * (int64_t)b;
  const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

static inline int32_t gz_rdivpot_s32(int32_t x, int32_t exponent) {
  const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static inline gz_requant gz_requant_compute(double scale) {
  gz_requant r = {0, 0};
  if (scale <= 0.0) return r;
  int exponent = 0;
  const double fraction = frexp(scale, &exponent); /* scale = fraction * 2^exponent, fraction in [0.5, 1) */
  int64_t q = (int64_t)llround(fraction * (double)((int64_t)1 << 31));
  if (q == ((int64_t)1 << 31)) { /* rounding carried into the next power of two */
    q /= 2;
    ++exponent;
  }
  if (exponent < -31) return r; /* smaller than anything an int32 product can express */
  r.multiplier = (int32_t)q;
  r.shift = exponent;
  return r;
}

static inline int32_t gz_requant_apply_s32(int32_t x, gz_requant r) {
  const int32_t left = r.shift > 0 ? r.shift : 0;
  const int32_t right = r.shift > 0 ? 0 : -r.shift;
  return gz_rdivpot_s32(gz_srdhm_s32((int32_t)((int64_t)x * ((int64_t)1 << left)), r.multiplier), right);
}

/* Requantise to int8, symmetric (zero point 0) and saturating to [-127, 127]: -128 never occurs,
 * so with int8 weights in [-127, 127] two products sum within int16 (the NEON int8 x int8 loop
 * accumulates pairs of products in 16-bit lanes before widening). */
static inline int8_t gz_requant_s32_to_s8(int32_t x, gz_requant r) {
  int32_t v = gz_requant_apply_s32(x, r);
  v = v < -127 ? -127 : v;
  v = v > 127 ? 127 : v;
  return (int8_t)v;
}

/* Requantise an int32 accumulator to int16 (symmetric, zero point 0), saturating. */
static inline int16_t gz_requant_s32_to_s16(int32_t acc, gz_requant r) {
  int32_t v = gz_requant_apply_s32(acc, r);
  v = v < -32768 ? -32768 : v;
  v = v > 32767 ? 32767 : v;
  return (int16_t)v;
}

#endif /* LIBGAZE_EXPORT_FIXED_POINT_H_ */
