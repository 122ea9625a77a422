#include "datasets/concat.h"

#include <algorithm>

#include "libgaze/core/error.h"

namespace gaze {

void ConcatDataset::add(std::unique_ptr<Dataset> part, uint8_t split) {
  skipped_.merge(part->skipped());
  const int64_t n = part->size();
  parts_.push_back({std::move(part), split, total_});
  total_ += n;
}

std::pair<const ConcatDataset::Part*, int64_t> ConcatDataset::locate(int64_t index) const {
  if (index < 0 || index >= total_) throw Error("concat dataset: index " + std::to_string(index) + " out of range");
  const auto it =
      std::upper_bound(parts_.begin(), parts_.end(), index, [](int64_t i, const Part& p) { return i < p.start; }) - 1;
  return {&*it, index - it->start};
}

Sample ConcatDataset::get(int64_t index) const {
  const auto [part, local] = locate(index);
  return part->data->get(local);
}

const SampleLabel& ConcatDataset::label(int64_t index) const {
  const auto [part, local] = locate(index);
  return part->data->label(local);
}

std::string ConcatDataset::describe() const {
  std::string s;
  for (const auto& p : parts_) s += (s.empty() ? "" : " + ") + p.data->describe();
  return s;
}

std::string ConcatDataset::participant_unit() const {
  std::string unit;
  for (const Part& p : parts_) {
    const std::string u = p.data->participant_unit();
    if (!unit.empty() && u != unit) return "mixed";
    unit = u;
  }
  return unit.empty() ? "participant" : unit;
}

}  // namespace gaze
