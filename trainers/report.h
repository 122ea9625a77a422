// The report of `gaze run`: Table 3 (teacher / student x generalised / personalised, per
// dataset) beside the paper's numbers, the checks the demo must pass, and the error-vs-k curves.
//
// Written as report.md (Markdown), table3.csv, report.json and k_curve.svg (a small SVG line
// chart) into one folder, each atomically. A run with baselines or MPII datasets also writes
// Tables 1 (generalised) and 2 (personalised) as table1.md/.csv and table2.md/.csv: every row
// of the paper's table, our value beside the paper's, "not run" with the reason where we have none;
// and PNG charts per dataset: every model's error CDF (table1_cdf_<dataset>.png) and error vs
// calibration shots k (table2_k_<dataset>.png). Every number in it comes from the run: the
// parameter counts are counted on the trained models, not typed in.
//
// With several training seeds (pipeline.seeds) every error cell reads "mean ± standard
// deviation over seeds" (CSV: the mean, and the deviation in a _sd column beside it), report.json
// holds each seed's numbers, and a check that passes on some seeds and fails on others is
// flagged "mixed" with the seeds that fail.
//
// How far the people drawn for the generalised check move it is reported beside the seeds, which
// are all scored on the same people: each held-out (validation) person's error is kept
// (report.json: people_deg, by participant id: a recording on AEA, a sequence on OpenEDS without
// a participants file), with the mean-gaze baseline's error on each (baseline_people_deg), and
// the checks table gives the standard error over those people of student / baseline, the two
// paired person by person (people_ratio_standard_error).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "datasets/splits.h"
#include "libgaze/core/json.h"

namespace gaze {

// One seed's headline numbers of a model on a dataset (pipeline.seeds), what the checks need.
struct SeedScores {
  int64_t seed = 0;
  double generalised = 0, personalised = 0, before = 0, baseline = 0;
  std::map<int64_t, double> people = {};  // generalised, per held-out person: id -> mean error
};

// What one model scored on one dataset.
struct DatasetScores {
  double generalised = 0;   // mean error on the validation split (people unseen in training)
  double personalised = 0;  // after k-shot personalisation, mean over test people
  double before = 0;        // the same test people before personalisation
  double baseline = 0;      // always predicting the training set's mean gaze
  double blink_auc = -1;    // -1: not measurable
  std::map<int64_t, double> k_curve;
  double seconds_per_user = 0;
  double calibrate_seconds_per_user = 0;  // one calibration at k (personalize.h)
  CalibrationProtocol protocol = {};      // what a personalised "user" is, where its calibration came from
  std::vector<double> errors = {};        // generalised: each open-eye validation frame's error (CDFs)
  // Generalised, per held-out person: id -> the mean error over their open-eye frames (over
  // seeds, each person's mean; over leave-one-out folds, each fold's person). Empty: not kept.
  std::map<int64_t, double> people = {};
  // The mean-gaze baseline's error per held-out person, as `people` (empty: not kept).
  std::map<int64_t, double> baseline_people = {};
  // With several pipeline.seeds the fields above are means over seeds (errors: every seed's
  // frames) and `seeds` holds each seed's own numbers; empty for a single seed.
  std::vector<SeedScores> seeds = {};
};

struct ModelScores {
  std::string name;                               // "teacher", "student", or a baseline's arch ("gazenet")
  std::string title;                              // "ConvNeXt V2-A (teacher)", "GazeNet"
  int64_t params = 0;                             // counted on the trained model
  int64_t tunable = 0;                            // of which trained on the gaze task
  std::map<std::string, DatasetScores> datasets;  // "openeds", "aea", "mpiigaze", "mpiifacegaze"
  std::map<std::string, std::string> not_run;     // dataset -> why this model was not run on it
  std::string note;                               // how it was run here (input, budget), for the tables
  // Ours, a student row: the row its checks compare it with ("teacher", or a variant's own
  // teacher, "teacher_grid"); empty = not checked (the paper's student is always checked).
  std::string checked_against;
};

struct PipelineResults {
  std::vector<std::string> datasets;
  ModelScores teacher, student;
  std::vector<ModelScores> our_rows;     // our rows beside the paper's: pipeline.full_finetune, pipeline.variants
  std::vector<ModelScores> baselines;    // pipeline.baselines, in their order
  std::string data_description;          // "synthetic (gaze synth)", or each dataset's source
  std::map<std::string, bool> stand_in;  // dataset -> rendered by gaze synth (not a release)
  int64_t input_h = 0, input_w = 0, k = 0;
  std::vector<int64_t> k_curve;
  std::vector<int64_t> seeds;  // the training seeds the cells average over (one: no spread shown)
  double seconds = 0;
  std::string commit;                   // the libgaze source the binary was built from
  std::string config_hash;              // CRC-32C of the resolved pipeline config
  std::vector<std::string> deviations;  // where this run departs from the paper's protocol
  std::vector<std::string> ours;        // values the paper does not state, chosen here
};

struct PipelineReport {
  std::string markdown_path, csv_path, json_path, svg_path;
  std::vector<std::string> table_paths;  // table1/table2 .md and .csv, when the run has baselines or MPII data
  std::vector<std::string> chart_paths;  // with them: error CDF (Table 1) and error vs k (Table 2) per dataset, PNG
  std::string markdown;
  double seconds = 0;
};

// "OpenEDS2020", "AEA", "MPIIGaze", "MPIIFaceGaze" for pipeline.datasets' names.
std::string dataset_title(const std::string& dataset);

// report.md's protocol lists: "Deviations from the paper:" ("- none" when there are none) and
// "Values the paper does not state (ours):", one "- " line each (PipelineResults::deviations,
// ::ours; also `gaze run --protocol`).
std::string protocol_markdown(const std::vector<std::string>& deviations, const std::vector<std::string>& ours);

// "3.6M", "281K", "950": a parameter count as the paper's tables print it.
std::string short_count(int64_t n);

// The demo's checks per dataset, by the names report.json's `checks` list gives them.
const std::vector<std::string>& pipeline_check_names();

// "**mixed**: fails on seed 1" / "... seeds 1, 2": how a check that passes on some seeds only is
// flagged, in report.md and the held-out conditions' summary.
std::string mixed_seeds_flag(const std::vector<int64_t>& failing_seeds);

// One of the demo's checks (a pipeline_check_names() entry) on one dataset: on the means over
// seeds, and on each seed (student.seeds and teacher.seeds, paired in order).
struct CheckResult {
  bool passes = false;                 // on the means over seeds
  size_t seeds = 0;                    // seeds checked one by one (0: a single-seed run)
  std::vector<int64_t> failing_seeds;  // of those, the ones it fails on
  // Passes on some seeds and fails on others: the flag the report raises.
  bool mixed() const { return !failing_seeds.empty() && failing_seeds.size() < seeds; }
};
CheckResult run_check(const std::string& check, const DatasetScores& student, const DatasetScores& teacher);

// The sample standard deviation (n - 1 in the denominator); NaN below two values.
double sample_standard_deviation(const std::vector<double>& values);

// The sample standard deviation over a cell's seeds of one of its numbers (0 below two seeds).
double seed_sd(const DatasetScores& s, double SeedScores::*field);

// The standard error of the plain mean over people: the sample standard deviation of their
// errors over the square root of how many there are; NaN below two people.
double people_standard_error(const std::map<int64_t, double>& people);

// Each person's mean over the runs (seeds, folds) that score them.
std::map<int64_t, double> mean_per_person(const std::vector<const std::map<int64_t, double>*>& runs);

// How much model / baseline would move had other people been held out: the standard error of the
// ratio of the mean over people of `s.people` to that of `s.baseline_people`, both paired person
// by person (a first-order, delta-method estimate: people whose error and baseline rise together
// move the ratio little). Where the baseline's people are not kept for every one of `s.people`
// (summaries before session 34), the baseline is taken as fixed: people_standard_error over
// s.baseline. NaN below two people.
double people_ratio_standard_error(const DatasetScores& s);
// Whether people_ratio_standard_error pairs the baseline (its people cover every one of s.people).
bool people_ratio_paired(const DatasetScores& s);

// "0.021 (60 participants)", "0.050 (8 recordings)": people_ratio_standard_error in the unit
// its people are counted in (s.protocol.unit). "–" below two people.
std::string people_error_cell(const DatasetScores& s);

// report.json's people_deg ({"12": 4.31, ...}) and back. people_at gives {} when `object` has no
// such key (older reports) and names `where` and the entry when an id is not a participant id as
// people_json writes it or its value is not a number.
Json people_json(const std::map<int64_t, double>& people);
std::map<int64_t, double> people_at(const Json& object, const std::string& key, const std::string& where);

// An error cell: the generalised (or personalised) mean, and with several seeds "± standard
// deviation" (Markdown; in CSV the mean alone, the deviation having a column of its own).
std::string error_cell(const DatasetScores& s, bool personalised, bool csv);

// Renders and writes the four files into `folder`.
PipelineReport write_pipeline_report(const PipelineResults& results, const std::string& folder);

}  // namespace gaze
