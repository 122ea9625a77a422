// The held-out renderer conditions (`gaze reproduce conditions`, issue 18): the demo pipeline
// run once per condition (experiments/conditions/<name>.yaml: the demo's recipe on data rendered
// with another camera pose, resolution, illumination, anatomy or people count), summarised in
// one table: per condition and dataset, the mean-gaze baseline, teacher and student errors
// (mean ± standard deviation over the run's seeds), the two ratios the demo checks, and
// personalisation before -> after, each check marked ok / FAIL / mixed (passes on some seeds).
//
// The summary is built from each run's report.json (trainers/report.h), so it can be rebuilt
// from finished runs without training anything.
#pragma once

#include <string>
#include <vector>

namespace gaze {

struct ConditionRun {
  std::string name;         // "camera"
  std::string description;  // what the condition changes (its file's first comment line)
  std::string config;       // the condition's experiment file
  std::string report_json;  // the run's report.json
};

struct ConditionsReport {
  std::string markdown_path, json_path, markdown;
  int64_t cells = 0, cells_passing = 0;  // condition x dataset cells, and those passing every check
};

// Reads every run's report.json and writes conditions.md and conditions.json into `folder`.
// Throws gaze::Error naming the file when a report is missing or lacks a number.
ConditionsReport write_conditions_report(const std::vector<ConditionRun>& runs, const std::string& folder);

// The first comment line of an experiment file ("# Camera pose: ..." -> "Camera pose: ..."),
// empty when it has none.
std::string experiment_description(const std::string& path);

}  // namespace gaze
