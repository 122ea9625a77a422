// The losses of every stage, on plain tensors (tested on hand-made values).
//
//   direction_l1_loss     mean |normalise(out[:, :3]) - target| over batch and components
//   laplace_nll_loss      Laplace NLL with the head's 4th output as log-scale s:
//                           r = sum_k |d_k - t_k|,  loss = mean(r * exp(-s) + s)
//                         (s clamped to [-7, 7]); large s = "unsure", e.g. a blink
//   detached_scale_nll    the 4th output's own loss beside L1: the Laplace NLL above with the
//                         residual detached, so the scale learns E|r| without re-weighting the
//                         gaze loss (and the gaze loss never moves the scale)
//   masked_patch_mse      FCMAE pixel loss: MSE between predicted and true patches, averaged
//                         over hidden patches only; norm_pix normalises each target patch
//   masked_feature_mse    feature distillation: MSE over channels, averaged over hidden
//                         positions only (the mask is resized to the feature map)
//   random_patch_mask     exactly round(ratio * patches) hidden patches per image, seeded
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace gaze {

at::Tensor direction_l1_loss(const at::Tensor& head_output, const at::Tensor& target);
at::Tensor laplace_nll_loss(const at::Tensor& head_output, const at::Tensor& target);
at::Tensor detached_scale_nll(const at::Tensor& head_output, const at::Tensor& target);
// The adapters' and personalisation's loss. loss = "l1": direction_l1_loss, plus
// detached_scale_nll when the head has an uncertainty output; "laplace_nll": laplace_nll_loss.
at::Tensor gaze_loss(const at::Tensor& head_output, const at::Tensor& target, const std::string& loss,
                     bool uncertainty);

// pred: [N, C*p*p, h, w] (one patch per position), image: [N, C, h*p, w*p], mask: [N, 1, h, w]
// with 1 = hidden.
at::Tensor masked_patch_mse(const at::Tensor& pred, const at::Tensor& image, const at::Tensor& mask, int64_t patch,
                            bool norm_pix);
at::Tensor masked_feature_mse(const at::Tensor& target, const at::Tensor& pred, const at::Tensor& mask);

at::Tensor random_patch_mask(int64_t batch, int64_t grid_h, int64_t grid_w, double ratio, uint64_t seed);

// Nearest-neighbour resize of a [N,1,h,w] mask to (height, width); sizes must divide.
at::Tensor resize_mask(const at::Tensor& mask, int64_t height, int64_t width);

// Mean angular error in degrees between head outputs and targets (for logging).
at::Tensor mean_angular_error_deg(const at::Tensor& head_output, const at::Tensor& target);

}  // namespace gaze
