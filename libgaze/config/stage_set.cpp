#include "libgaze/config/stage_set.h"

#include <algorithm>

#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"

namespace gaze {

const std::vector<std::string>& gaze_datasets() {
  static const std::vector<std::string> datasets = {"openeds", "aea", "mpiigaze", "mpiifacegaze"};
  return datasets;
}

bool stage_runs_per_dataset(const std::string& stage) { return stage != "teacher_mae" && stage != "distill"; }

StageSetEntry parse_stage_set_entry(const std::string& entry) {
  // A prefix is a dataset only before the '=': values may hold ':' ("data.source=pack:x.h5").
  const size_t colon = entry.find(':'), equals = entry.find('=');
  if (colon == std::string::npos || (equals != std::string::npos && equals < colon)) return {"", entry};
  const std::string dataset = trim(entry.substr(0, colon));
  const auto& known = gaze_datasets();
  if (std::find(known.begin(), known.end(), dataset) == known.end()) {
    throw Error("'" + entry + "': '" + dataset + "' is not a dataset (" + join(known, ", ") + ")");
  }
  return {dataset, trim(entry.substr(colon + 1))};
}

}  // namespace gaze
