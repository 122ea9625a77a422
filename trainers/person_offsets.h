// Gaze decomposition for the adapters stage (train.person_offsets; Chen & Shi, "Offset
// Calibration for Appearance-Based Gaze Estimation via Gaze Decomposition", WACV 2020).
//
// A new person's error is mostly one offset (docs/results/conditions: the per-person offset
// split): part of it no image shows (the angle kappa between the eye's optical and visual axes),
// and a network trained on a dozen people can only fit the training people's part by learning to
// recognise them. Here each training participant (a person, or a recording where the data has no
// person ids) gets a learned (yaw, pitch) turn that is applied to the model's prediction during
// training only, so the offset that is each person's own goes into their turn and the network
// learns what all of them share. The turns are the stage's auxiliary module: checkpointed for
// resume, never in model.h5; evaluation and personalisation use the model alone.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <map>
#include <vector>

namespace gaze {

// `directions` [B, 3] (unit) turned by `angles` [B, 2] (radians): first about the x axis by
// angles[:, 1] (pitch: y towards z), then about the y axis by angles[:, 0] (yaw: z towards x).
// A rotation, so unit vectors stay unit and any direction can be turned (no branch cut where
// near-eye or MPII gaze points).
at::Tensor turn_directions(const at::Tensor& directions, const at::Tensor& angles);

class PersonOffsetsImpl : public torch::nn::Module {
 public:
  // One zero turn per distinct id in `participants` (the training items' label.participant).
  explicit PersonOffsetsImpl(const std::vector<int64_t>& participants);
  // `head_output` [B, >=3] with each item's prediction turned by its participant's offset (the
  // direction normalised first; further columns, such as the log-scale, pass through).
  at::Tensor forward(const at::Tensor& head_output, const std::vector<int64_t>& participants) const;
  // The mean size of the turns, in degrees (for the training log).
  double mean_offset_deg() const;

  at::Tensor angles;  // [people, 2]: (yaw, pitch) radians, one row per id in ascending order
 private:
  std::map<int64_t, int64_t> row_;
};
TORCH_MODULE(PersonOffsets);

}  // namespace gaze
