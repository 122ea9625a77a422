#include "trainers/participant_offsets.h"

#include <ATen/ATen.h>

#include <cmath>
#include <set>
#include <string>

#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"
#include "libgaze/models/gaze_net.h"

namespace gaze {

at::Tensor turn_directions(const at::Tensor& directions, const at::Tensor& angles) {
  const at::Tensor x = directions.select(1, 0), y = directions.select(1, 1), z = directions.select(1, 2);
  const at::Tensor ca = angles.select(1, 0).cos(), sa = angles.select(1, 0).sin();
  const at::Tensor cb = angles.select(1, 1).cos(), sb = angles.select(1, 1).sin();
  const at::Tensor y1 = y * cb + z * sb, z1 = -y * sb + z * cb;    // pitch: about x
  const at::Tensor x2 = x * ca + z1 * sa, z2 = -x * sa + z1 * ca;  // yaw: about y
  return at::stack({x2, y1, z2}, 1);
}

OffsetGroup offset_group_of(const SampleLabel& label) {
  const std::string& key = label.key;
  const int eye = ends_with(key, "/L") || ends_with(key, "/left")    ? 1
                  : ends_with(key, "/R") || ends_with(key, "/right") ? 2
                                                                     : 0;
  return {label.participant, eye};
}

ParticipantOffsetsImpl::ParticipantOffsetsImpl(const std::vector<OffsetGroup>& groups) {
  for (const OffsetGroup& g : std::set<OffsetGroup>(groups.begin(), groups.end()))
    row_.emplace(g, int64_t(row_.size()));
  angles = register_parameter("angles", at::zeros({int64_t(row_.size()), 2}));
}

at::Tensor ParticipantOffsetsImpl::centred() const { return angles - angles.mean(0, /*keepdim=*/true); }

at::Tensor ParticipantOffsetsImpl::forward(const at::Tensor& head_output,
                                           const std::vector<OffsetGroup>& groups) const {
  if (int64_t(groups.size()) != head_output.size(0)) {
    throw Error("person offsets: " + std::to_string(groups.size()) + " items' groups for a batch of " +
                std::to_string(head_output.size(0)));
  }
  std::vector<int64_t> rows;
  rows.reserve(groups.size());
  for (const OffsetGroup& g : groups) {
    const auto it = row_.find(g);
    if (it == row_.end()) {
      throw Error("person offsets: participant " + std::to_string(g.first) +
                  (g.second ? (g.second == 1 ? " (left eye)" : " (right eye)") : "") + " is not in training");
    }
    rows.push_back(it->second);
  }
  const at::Tensor index = at::tensor(rows, at::kLong);
  const at::Tensor turned = turn_directions(gaze_directions(head_output), centred().index_select(0, index));
  if (head_output.size(1) == 3) return turned;
  return at::cat({turned, head_output.narrow(1, 3, head_output.size(1) - 3)}, 1);
}

double ParticipantOffsetsImpl::mean_offset_deg() const {
  if (row_.empty()) return 0;
  return centred().detach().norm(2, 1).mean().item<double>() * 180.0 / M_PI;
}

}  // namespace gaze
