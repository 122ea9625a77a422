// The entries of a pipeline stage's `set` list (pipeline.stages.<stage>.set): overrides for that
// stage only. "key=value" applies to every run of the stage; "openeds:key=value" only to the run
// on that dataset, for the stages trained per dataset (the adapters, personalisation, the full
// fine-tuning and the baselines), so a recipe may differ per dataset. A dataset prefix that names
// no dataset is refused; one the pipeline does not cover is ignored. Torch-free.
#pragma once

#include <string>
#include <vector>

namespace gaze {

// The gaze datasets a pipeline covers (pipeline.datasets): openeds, aea, mpiigaze, mpiifacegaze.
const std::vector<std::string>& gaze_datasets();

// Whether the pipeline stage `stage` (its key under pipeline.stages) runs once per dataset:
// every stage but teacher_mae and distill, which train one model on every dataset's images.
bool stage_runs_per_dataset(const std::string& stage);

struct StageSetEntry {
  std::string dataset;     // "" = every run of the stage
  std::string assignment;  // "key.sub=value", as apply_override takes it
};

// Splits "openeds:train.steps=3" into {"openeds", "train.steps=3"}; "train.steps=3" into
// {"", "train.steps=3"}. Throws gaze::Error quoting the entry when the prefix is no dataset.
StageSetEntry parse_stage_set_entry(const std::string& entry);

}  // namespace gaze
