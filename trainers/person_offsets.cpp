#include "trainers/person_offsets.h"

#include <ATen/ATen.h>

#include <cmath>
#include <set>

#include "libgaze/core/error.h"
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

PersonOffsetsImpl::PersonOffsetsImpl(const std::vector<int64_t>& participants) {
  for (const int64_t id : std::set<int64_t>(participants.begin(), participants.end()))
    row_.emplace(id, int64_t(row_.size()));
  angles = register_parameter("angles", at::zeros({int64_t(row_.size()), 2}));
}

at::Tensor PersonOffsetsImpl::forward(const at::Tensor& head_output, const std::vector<int64_t>& participants) const {
  if (int64_t(participants.size()) != head_output.size(0)) {
    throw Error("person offsets: " + std::to_string(participants.size()) + " participants for a batch of " +
                std::to_string(head_output.size(0)));
  }
  std::vector<int64_t> rows;
  rows.reserve(participants.size());
  for (const int64_t id : participants) {
    const auto it = row_.find(id);
    if (it == row_.end()) throw Error("person offsets: participant " + std::to_string(id) + " is not in training");
    rows.push_back(it->second);
  }
  const at::Tensor index = at::tensor(rows, at::kLong);
  const at::Tensor turned = turn_directions(gaze_directions(head_output), angles.index_select(0, index));
  if (head_output.size(1) == 3) return turned;
  return at::cat({turned, head_output.narrow(1, 3, head_output.size(1) - 3)}, 1);
}

double PersonOffsetsImpl::mean_offset_deg() const {
  if (row_.empty()) return 0;
  return angles.detach().norm(2, 1).mean().item<double>() * 180.0 / M_PI;
}

}  // namespace gaze
