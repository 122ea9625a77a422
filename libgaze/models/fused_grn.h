// fused_grn: ConvNeXt V2's Global Response Normalisation as one autograd op with hand-written
// forward and backward loops.
//
//   x: [N, H, W, C] (channels last, as the block's MLP produces it), gamma, beta: [1, 1, 1, C]
//   gx[n,c] = sqrt(sum_hw x^2),  nx = gx / (mean_c gx + 1e-6),  y = gamma * (x * nx) + beta + x
//
// The same function as the official module (and as the composite of ATen ops it replaced), but
// it reads and writes the tensor twice in each direction instead of a dozen times: the forward
// is one pass for the per-(n, c) norms and one for y = x * (gamma * nx + 1) + beta; the backward
// is one pass for sum_hw dy * x and one for dx = dy * A[n,c] + x * B[n,c]. GRN sits on the
// widest tensor of every block (4C channels), so this is a large share of a training step
// (scripts/bench-train). Sums are accumulated in double.
//
// fused_grn_rows is the same op on the visible rows of a masked batch (an FCMAE forward that
// computes the block MLP only where the mask shows the image): rows [R, C], image n owning rows
// [offsets[n], offsets[n+1]). Its norms are those of the dense [N, H, W, C] tensor whose hidden
// positions are zero; its output is y on the given rows (the hidden positions' y would be beta).
//
// Float and double inputs; any other dtype throws. The backward is not itself differentiable
// (no double backward). Where gx is 0 (a hidden position's channel under an FCMAE mask) the
// gradient through the norm is 0, as in ATen's norm backward.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace gaze {

at::Tensor fused_grn(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta);
at::Tensor fused_grn_rows(const at::Tensor& rows, at::IntArrayRef offsets, const at::Tensor& gamma,
                          const at::Tensor& beta);
// Offsets of `images` images of `positions` rows each: 0, positions, 2 * positions, ...
std::vector<int64_t> grn_image_offsets(int64_t images, int64_t positions);

}  // namespace gaze
