// The held-out renderer conditions (`gaze reproduce conditions`, issue 18): the demo pipeline
// run once per condition (experiments/conditions/<name>.yaml: the demo's recipe on data rendered
// with another camera pose, resolution, illumination, anatomy or people count), summarised in
// one table: per condition and dataset, the mean-gaze baseline, teacher and student errors
// (mean ± standard deviation over the run's seeds), the two ratios the demo checks, and
// personalisation before -> after, each check marked ok / FAIL / mixed (passes on some seeds),
// and the standard error of student / baseline over the held-out people (the seeds share them,
// so the seeds' spread cannot show how much a verdict rests on who was held out).
//
// The summary is built from each run's report.json (trainers/report.h), so it can be rebuilt
// from finished runs without training anything; summaries of runs over different seeds
// (conditions.json, e.g. one seed per machine) merge into one over all of their seeds.
//
// A summary of a pipeline variant (--variant grid: the rows student_grid, teacher_grid) reads
// those rows instead of the paper's pair, says so, and merges only with the same variant's.
//
// A summary names the recipe its numbers come from: the overrides given on top of each condition
// file (recipe_overrides). Summaries of different recipes do not merge, and --report-only checks
// each finished run against the condition file and overrides it is told (require_run_made_with),
// so one recipe's numbers never carry another's name.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "libgaze/config/config.h"
#include "trainers/report.h"

namespace gaze {

struct ConditionRun {
  std::string name;                 // "camera"
  std::string description;          // what the condition changes (its file's first comment line)
  std::string config;               // the condition's experiment file
  std::string report_json;          // the run's report.json
  std::vector<std::string> recipe;  // the recipe_overrides the run was made with
  // One of the run's pipeline.variants to summarise instead of the paper's pair: its student
  // (student_<variant>) against its teacher (teacher_<variant>, or the paper's teacher when the
  // variant trains the student only). "" = the paper's student and teacher.
  std::string variant = "";
};

// One condition's numbers per dataset, each seed's own: what the summary is made of.
struct ConditionResults {
  struct Cell {
    std::string dataset;                             // "openeds"
    double baseline = 0;                             // the mean-gaze baseline (the data's, the same on every seed)
    std::vector<SeedScores> student, teacher;        // one per seed, in `seeds` order
    std::string unit = "participant";                // what its held-out people are: participant, sequence, recording
    std::map<int64_t, double> baseline_people = {};  // the baseline's error per held-out person (empty: not kept)
  };
  std::string name, description, config;
  std::vector<std::string> sources;  // the report.json or conditions.json files the numbers come from
  std::vector<std::string> recipe;   // overrides on top of `config` ("key=value"); empty: the recipe as it is
  std::vector<int64_t> seeds;
  std::vector<Cell> datasets;  // in the run's order
  std::string variant = "";    // ConditionRun::variant: whose rows these are
};

struct ConditionsReport {
  std::string markdown_path, json_path, markdown;
  int64_t cells = 0, cells_passing = 0;  // condition x dataset cells, and those passing every check
};

// The overrides of a conditions command that change the recipe: all but pipeline.seeds and run.*
// (which seeds, where the runs go, how many threads), in which summaries to merge may differ.
std::vector<std::string> recipe_overrides(const std::vector<std::string>& overrides);

// Throws gaze::Error naming <run folder>/pipeline.yaml, the first key that differs and
// `condition_file` when the finished run in config's run folder was made from another config than
// `config` (the condition file with the overrides given).
void require_run_made_with(const Config& config, const std::string& condition_file);

// One finished run's numbers, from its report.json. Throws gaze::Error naming the file when the
// report is missing or lacks a number.
ConditionResults read_condition_run(const ConditionRun& run);

// The conditions of a summary this file wrote (conditions.json). Throws naming the file and key.
std::vector<ConditionResults> read_conditions_summary(const std::string& path);

// Several summaries over disjoint seeds as one: conditions matched by name (in the first
// summary's order, then any new ones), their seeds concatenated. Throws when a seed repeats in a
// condition, its baselines differ (not the same data) or its recipes differ.
std::vector<ConditionResults> merge_condition_results(const std::vector<std::vector<ConditionResults>>& summaries);

// Writes conditions.md and conditions.json into `folder`: per condition and dataset the means ±
// standard deviations over seeds and the demo's checks (trainers/report.h run_check).
ConditionsReport write_conditions_report(const std::vector<ConditionResults>& conditions, const std::string& folder);

// Two recipes on the same conditions and seeds, side by side (`gaze reproduce conditions
// --compare base.json,candidate.json`): per condition and dataset the teacher's and student's
// generalised error and the student's personalised error under each, over the seeds both
// summaries have; over the held-out cells of the same data (every condition but `reference`, the
// data the recipe was tuned on) the mean paired difference (candidate - base, per condition,
// dataset and seed) and its standard error. A change is called seen when its mean exceeds twice
// its standard error; an empty one has a NaN mean, one pair a NaN standard error.
//
// Where both summaries kept their held-out people (people_deg), each cell is also compared per
// person: every person both score, candidate - base of their generalised error (their mean over
// the seeds both have). The same people under both recipes, so who was drawn cancels out, which
// the per-cell means cannot do; a seed's training noise does not (one trained model against
// another), which is what the seeds are for. Two summaries of other training data (another
// mean-gaze baseline: more training people, say) are paired on the people both hold out only:
// their cell means are shown but stay out of the held-out means. An id is taken to name the same
// person in both, which holds while the recipes differ in no synth key but the people's count and
// split (synth draws a person from the seed and their index); where they differ in another, no
// cell is compared per person (the markdown says why; comparison.json lists the keys).
struct RecipeComparison {
  struct Change {
    double mean = 0, standard_error = 0;  // degrees, candidate - base
    int64_t pairs = 0, lower = 0;         // paired differences (seed-cells, or people), and those below zero
    bool seen() const { return pairs > 1 && std::abs(mean) > 2 * standard_error; }
  };
  struct Changes {
    Change teacher, student, personalised;
  };
  Changes held_out;                           // over every held-out seed-cell of the same data
  std::map<std::string, Changes> by_dataset;  // over those of one dataset
  // Per person, per cell ("camera/openeds"; cells where both kept people, unless the recipes
  // differ in a synth key that may redraw people): the teacher's and student's generalised change
  // (personalisation is not scored per person).
  struct PersonChanges {
    Change teacher, student;
  };
  std::map<std::string, PersonChanges> people_by_cell;
  // Over the held-out cells compared per person: in how many the candidate is seen lower, seen higher.
  struct Tally {
    int64_t cells = 0, seen_lower = 0, seen_higher = 0;
  };
  Tally teacher_people, student_people;
  std::string markdown_path, json_path, markdown;
};

// Throws gaze::Error naming the summaries when a condition or dataset of `candidate` is not in
// `base`, a cell has no seed in common, or its baselines differ (not the same data) and it has no
// held-out person in common either, or its baselines differ and the recipes differ in a synth
// key that may redraw people.
RecipeComparison write_recipe_comparison(const std::vector<ConditionResults>& base,
                                         const std::vector<ConditionResults>& candidate, const std::string& reference,
                                         const std::string& folder);

// The first comment line of an experiment file ("# Camera pose: ..." -> "Camera pose: ..."),
// empty when it has none.
std::string experiment_description(const std::string& path);

}  // namespace gaze
