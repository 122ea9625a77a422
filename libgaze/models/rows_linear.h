// rows_linear: y = x W^T + b on rows, the per-position Linear of a ConvNeXt block (pwconv1,
// pwconv2), as one autograd op whose products go through oneDNN instead of BLAS.
//
//   x: [R, K] rows (a block's positions, channels last), weight: [N, K], bias: [N] or
//   undefined  ->  y: [R, N]
//
// Why: these products are tall and thin (R = batch x positions, up to ~10^5; K, N <= 4 x 80 for
// the student), a shape OpenBLAS runs poorly on two threads (2 threads ~ 1 thread, and a
// separate single-threaded pass to zero the output). oneDNN's 1x1 convolution on a channels-last
// view of the same rows ([1, K, R, 1], no copy) computes y, and the input gradient as the same
// convolution with W^T, about 1.5-2x faster on the student's first stage (scripts/bench-train
// measures the whole step). The weight gradient g^T x has a small output and stays on BLAS.
// Gradients are computed only for the inputs that require them (a frozen block: input only).
//
// Results equal at::linear up to float summation order (rows_linear_test, 1e-5 relative).
#pragma once

#include <ATen/ATen.h>

namespace gaze {

at::Tensor rows_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

}  // namespace gaze
