/* Integer building blocks for the non-linear layers (SPEC §4: LayerNorm, GELU, GRN, LeakyReLU in
 * integer arithmetic). Same rules as fixed_point.h: dependency-free, no heap, copied verbatim
 * into the generated kernel.
 *
 *   gz_isqrt_u64(v)   floor(sqrt(v)) exactly, for LayerNorm/GRN statistics: a floating-point
 *                     estimate corrected by integer comparisons, so the result is exact and the
 *                     same on every target whatever the estimate's rounding
 *   gz_gelu_f32(x)    the exact (erf) GELU of the official ConvNeXt V2, for building tables at
 *                     export time (never called by the kernel)
 */
#ifndef LIBGAZE_EXPORT_NONLINEAR_H_
#define LIBGAZE_EXPORT_NONLINEAR_H_

#include <math.h>
#include <stdint.h>

static inline uint32_t gz_isqrt_u64(uint64_t v) {
  uint64_t r = (uint64_t)sqrt((double)v);
  if (r > 0xFFFFFFFFu) r = 0xFFFFFFFFu;
  while (r * r > v) --r;                                 /* estimate too high */
  while (r < 0xFFFFFFFFu && (r + 1) * (r + 1) <= v) ++r; /* estimate too low */
  return (uint32_t)r;
}

static inline float gz_gelu_f32(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

#endif /* LIBGAZE_EXPORT_NONLINEAR_H_ */
