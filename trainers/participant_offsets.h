// Gaze decomposition for the adapters stage (train.person_offsets; Chen & Shi, "Offset
// Calibration for Appearance-Based Gaze Estimation via Gaze Decomposition", WACV 2020).
//
// A new person's error is mostly one offset (docs/results/conditions: the per-person offset
// split): part of it no image shows (the angle kappa between the eye's optical and visual axes),
// and a network trained on a dozen people can only fit the training people's part by learning to
// recognise them. Here each training group (a participant's eye: a person, or a recording where
// the data has no person ids, and the eye its key names, since a mirrored right eye's offset is
// mirrored too) gets a learned (yaw, pitch) turn applied to the model's prediction during
// training only, so the offset that is each group's own goes into its turn and the network learns
// what all of them share. The turns are centred (their mean is subtracted before use): a turn
// shared by everyone would be a bias of the whole model, which must stay in the model, where
// evaluation sees it. They are the stage's auxiliary module: checkpointed for resume, never in
// model.h5; evaluation and personalisation use the model alone.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "datasets/dataset.h"

namespace gaze {

// `directions` [B, 3] (unit) turned by `angles` [B, 2] (radians): first about the x axis by
// angles[:, 1] (pitch: z towards +y), then about the y axis by angles[:, 0] (yaw: z towards
// +x). A rotation, so unit vectors stay unit and any direction can be turned (no branch cut
// where near-eye or MPII gaze points).
at::Tensor turn_directions(const at::Tensor& directions, const at::Tensor& angles);

// The group a label's offset belongs to: its participant, and the eye its key names (AEA's
// ".../L" and ".../R", MPIIGaze's ".../left" and ".../right"; 0 where it names none).
using OffsetGroup = std::pair<int64_t, int>;
OffsetGroup offset_group_of(const SampleLabel& label);

class ParticipantOffsetsImpl : public torch::nn::Module {
 public:
  // One zero turn per distinct group in `groups` (the training items' offset_group_of).
  explicit ParticipantOffsetsImpl(const std::vector<OffsetGroup>& groups);
  // `head_output` [B, >=3] with each item's prediction turned by its group's centred offset (the
  // direction normalised first; further columns, such as the log-scale, pass through).
  at::Tensor forward(const at::Tensor& head_output, const std::vector<OffsetGroup>& groups) const;
  // The centred turns, [groups, 2], and their mean size in degrees (for the training log).
  at::Tensor centred() const;
  double mean_offset_deg() const;

  at::Tensor angles;  // [groups, 2]: (yaw, pitch) radians, one row per group in ascending order
 private:
  std::map<OffsetGroup, int64_t> row_;
};
TORCH_MODULE(ParticipantOffsets);

}  // namespace gaze
