/* Integer building blocks for the non-linear layers (SPEC §4: LayerNorm, GELU, GRN, LeakyReLU in
 * integer arithmetic). Same rules as fixed_point.h: dependency-free, no heap, copied verbatim
 * into the generated kernel.
 *
 *   gz_isqrt_u64(v)        floor(sqrt(v)) exactly, for LayerNorm/GRN statistics
 *   gz_lut_s8_build(...)   a 256-entry int8 -> int8 table of any scalar function between two
 *                          quantised domains (GELU, LeakyReLU): built once at export time;
 *                          applying it is one load, and it is exact by construction
 */
#ifndef LIBGAZE_EXPORT_NONLINEAR_H_
#define LIBGAZE_EXPORT_NONLINEAR_H_

#include <math.h>
#include <stdint.h>

#include "export/quantize.h"

static inline uint32_t gz_isqrt_u64(uint64_t v) {
  /* Bit-by-bit square root: exact, branch-light, no floating point. */
  uint64_t result = 0, bit = (uint64_t)1 << 62;
  while (bit > v) bit >>= 2;
  while (bit != 0) {
    if (v >= result + bit) {
      v -= result + bit;
      result = (result >> 1) + bit;
    } else {
      result >>= 1;
    }
    bit >>= 2;
  }
  return (uint32_t)result;
}

typedef float (*gz_scalar_fn)(float);

static inline void gz_lut_s8_build(gz_scalar_fn f, gz_qparams in, gz_qparams out, int8_t lut[256]) {
  for (int32_t q = -128; q <= 127; ++q) lut[q + 128] = gz_quantize_s8(f(gz_dequantize_s8((int8_t)q, in)), out);
}

static inline int8_t gz_lut_s8_apply(const int8_t lut[256], int8_t x) { return lut[(int32_t)x + 128]; }

/* The exact (erf) GELU of the official ConvNeXt V2, for building its table. */
static inline float gz_gelu_f32(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

#endif /* LIBGAZE_EXPORT_NONLINEAR_H_ */
