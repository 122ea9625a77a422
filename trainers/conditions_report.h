// The held-out renderer conditions (`gaze reproduce conditions`, issue 18): the demo pipeline
// run once per condition (experiments/conditions/<name>.yaml: the demo's recipe on data rendered
// with another camera pose, resolution, illumination, anatomy or people count), summarised in
// one table: per condition and dataset, the mean-gaze baseline, teacher and student errors
// (mean ± standard deviation over the run's seeds), the two ratios the demo checks, and
// personalisation before -> after, each check marked ok / FAIL / mixed (passes on some seeds).
//
// The summary is built from each run's report.json (trainers/report.h), so it can be rebuilt
// from finished runs without training anything; summaries of runs over different seeds
// (conditions.json, e.g. one seed per machine) merge into one over all of their seeds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainers/report.h"

namespace gaze {

struct ConditionRun {
  std::string name;         // "camera"
  std::string description;  // what the condition changes (its file's first comment line)
  std::string config;       // the condition's experiment file
  std::string report_json;  // the run's report.json
};

// One condition's numbers per dataset, each seed's own: what the summary is made of.
struct ConditionResults {
  struct Cell {
    std::string dataset;                       // "openeds"
    double baseline = 0;                       // the mean-gaze baseline (the data's, the same on every seed)
    std::vector<SeedScores> student, teacher;  // one per seed, in `seeds` order
  };
  std::string name, description, config;
  std::vector<std::string> sources;  // the report.json or conditions.json files the numbers come from
  std::vector<int64_t> seeds;
  std::vector<Cell> datasets;  // in the run's order
};

struct ConditionsReport {
  std::string markdown_path, json_path, markdown;
  int64_t cells = 0, cells_passing = 0;  // condition x dataset cells, and those passing every check
};

// One finished run's numbers, from its report.json. Throws gaze::Error naming the file when the
// report is missing or lacks a number.
ConditionResults read_condition_run(const ConditionRun& run);

// The conditions of a summary this file wrote (conditions.json). Throws naming the file and key.
std::vector<ConditionResults> read_conditions_summary(const std::string& path);

// Several summaries over disjoint seeds as one: conditions matched by name (in the first
// summary's order, then any new ones), their seeds concatenated. Throws when a seed repeats in a
// condition or its baselines differ (not the same data).
std::vector<ConditionResults> merge_condition_results(const std::vector<std::vector<ConditionResults>>& summaries);

// Writes conditions.md and conditions.json into `folder`: per condition and dataset the means ±
// standard deviations over seeds and the demo's checks (trainers/report.h run_check).
ConditionsReport write_conditions_report(const std::vector<ConditionResults>& conditions, const std::string& folder);

// The first comment line of an experiment file ("# Camera pose: ..." -> "Camera pose: ..."),
// empty when it has none.
std::string experiment_description(const std::string& path);

}  // namespace gaze
