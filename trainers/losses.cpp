#include "trainers/losses.h"

#include <cmath>
#include <numeric>
#include <vector>

#include "libgaze/core/error.h"
#include "libgaze/core/random.h"
#include "libgaze/models/gaze_net.h"

namespace gaze {

at::Tensor direction_l1_loss(const at::Tensor& head_output, const at::Tensor& target) {
  return (gaze_directions(head_output) - target).abs().mean();
}

at::Tensor laplace_nll_loss(const at::Tensor& head_output, const at::Tensor& target) {
  const at::Tensor r = (gaze_directions(head_output) - target).abs().sum(1);
  const at::Tensor s = gaze_log_scales(head_output).clamp(-7.0, 7.0);
  return (r * at::exp(-s) + s).mean();
}

at::Tensor detached_scale_nll(const at::Tensor& head_output, const at::Tensor& target) {
  const at::Tensor r = (gaze_directions(head_output) - target).abs().sum(1).detach();
  const at::Tensor s = gaze_log_scales(head_output).clamp(-7.0, 7.0);
  return (r * at::exp(-s) + s).mean();
}

at::Tensor gaze_loss(const at::Tensor& head_output, const at::Tensor& target, const std::string& loss,
                     bool uncertainty) {
  if (loss == "laplace_nll") return laplace_nll_loss(head_output, target);
  const at::Tensor l1 = direction_l1_loss(head_output, target);
  return uncertainty ? l1 + detached_scale_nll(head_output, target) : l1;
}

at::Tensor masked_patch_mse(const at::Tensor& pred, const at::Tensor& image, const at::Tensor& mask, int64_t patch,
                            bool norm_pix) {
  const int64_t n = image.size(0), c = image.size(1), h = image.size(2) / patch, w = image.size(3) / patch;
  TORCH_CHECK(pred.size(1) == c * patch * patch && pred.size(2) == h && pred.size(3) == w, "prediction ", pred.sizes(),
              " does not match patches of ", image.sizes());
  // [N, C, h, p, w, p] -> [N, C, p, p, h, w] -> [N, C*p*p, h, w]
  at::Tensor target =
      image.reshape({n, c, h, patch, w, patch}).permute({0, 1, 3, 5, 2, 4}).reshape({n, c * patch * patch, h, w});
  if (norm_pix) {
    const at::Tensor mean = target.mean(1, true);
    const at::Tensor var = target.var(1, /*unbiased=*/true, /*keepdim=*/true);
    target = (target - mean) / at::sqrt(var + 1e-6);
  }
  const at::Tensor per_patch = (pred - target).pow(2).mean(1);  // [N, h, w]
  const at::Tensor m = resize_mask(mask, h, w).squeeze(1);
  return (per_patch * m).sum() / m.sum().clamp_min(1.0);
}

at::Tensor masked_feature_mse(const at::Tensor& target, const at::Tensor& pred, const at::Tensor& mask) {
  TORCH_CHECK(target.sizes() == pred.sizes(), "feature shapes differ: ", target.sizes(), " vs ", pred.sizes());
  const at::Tensor per_position = (pred - target).pow(2).mean(1);  // [N, h, w]
  const at::Tensor m = resize_mask(mask, target.size(2), target.size(3)).squeeze(1);
  return (per_position * m).sum() / m.sum().clamp_min(1.0);
}

at::Tensor random_patch_mask(int64_t batch, int64_t grid_h, int64_t grid_w, double ratio, uint64_t seed) {
  const int64_t patches = grid_h * grid_w;
  const int64_t hidden = std::llround(ratio * patches);
  at::Tensor mask = at::zeros({batch, 1, grid_h, grid_w});
  float* m = mask.data_ptr<float>();
  SplitMix rng(seed);
  std::vector<int64_t> order(patches);
  for (int64_t b = 0; b < batch; ++b) {
    std::iota(order.begin(), order.end(), 0);
    for (int64_t i = patches; i > 1; --i) std::swap(order[i - 1], order[rng.next() % uint64_t(i)]);
    for (int64_t i = 0; i < hidden; ++i) m[b * patches + order[i]] = 1.0f;
  }
  return mask;
}

at::Tensor resize_mask(const at::Tensor& mask, int64_t height, int64_t width) {
  if (mask.size(2) == height && mask.size(3) == width) return mask;
  if (height % mask.size(2) == 0 && width % mask.size(3) == 0) {
    return mask.repeat_interleave(height / mask.size(2), 2).repeat_interleave(width / mask.size(3), 3);
  }
  TORCH_CHECK(mask.size(2) % height == 0 && mask.size(3) % width == 0, "mask ", mask.sizes(), " cannot be resized to ",
              height, "x", width);
  // Coarser target: a position is hidden when any of its mask cells is.
  return at::max_pool2d(mask, {mask.size(2) / height, mask.size(3) / width});
}

at::Tensor mean_angular_error_deg(const at::Tensor& head_output, const at::Tensor& target) {
  const at::Tensor d = gaze_directions(head_output).to(at::kDouble);
  const at::Tensor t = target.to(at::kDouble);
  const at::Tensor t_unit = t / t.norm(2, 1, true);
  const at::Tensor cross = at::cross(d, t_unit, 1).norm(2, 1);
  const at::Tensor dot = (d * t_unit).sum(1);
  return (at::atan2(cross, dot) * (180.0 / M_PI)).mean();
}

}  // namespace gaze
