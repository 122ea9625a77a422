#include "trainers/conditions_report.h"

#include <catch2/catch.hpp>
#include <filesystem>

#include "libgaze/core/error.h"
#include "libgaze/core/json.h"
#include "tests/test_util.h"
#include "trainers/report.h"

using namespace gaze;
using Catch::Contains;

namespace {
// A run's report.json as the pipeline writes it: one dataset, the student's and teacher's
// generalised error per seed (personalised 3, before 4, baseline 10 on every seed).
std::string write_run(const std::string& folder, const std::vector<double>& student,
                      const std::vector<double>& teacher) {
  std::filesystem::create_directories(folder);
  PipelineResults r;
  r.datasets = {"openeds"};
  r.teacher.name = "teacher";
  r.student.name = "student";
  r.k = 5;
  r.k_curve = {0, 5};
  const auto scores = [&](const std::vector<double>& errors) {
    DatasetScores s = {0, 3.0, 4.0, 10.0, -1, {{0, 4.0}, {5, 3.0}}, 0.2};
    for (size_t i = 0; i < errors.size(); ++i) {
      s.generalised += errors[i] / double(errors.size());
      if (errors.size() > 1) s.seeds.push_back({int64_t(i), errors[i], 3.0, 4.0, 10.0});
    }
    return s;
  };
  for (size_t i = 0; i < student.size(); ++i) r.seeds.push_back(int64_t(i));
  r.student.datasets["openeds"] = scores(student);
  r.teacher.datasets["openeds"] = scores(teacher);
  return write_pipeline_report(r, folder).json_path;
}
}  // namespace

TEST_CASE("held-out conditions: one row per condition and dataset from the runs' own reports", "[report][conditions]") {
  testing::TempDir dir;
  // demo passes everywhere; camera's student passes "<= 0.5x baseline" on seed 0 only (4 vs 6);
  // people (one seed) fails student vs teacher (4.5 > 1.25 x 3).
  std::vector<ConditionRun> runs = {
      {"demo", "The demo's own data.", "experiments/conditions/demo.yaml",
       write_run(dir.file("demo"), {4.0, 4.2, 3.8}, {3.9, 4.0, 4.1})},
      {"camera", "Camera pose.", "camera.yaml", write_run(dir.file("camera"), {4.0, 6.0}, {4.0, 5.0})},
      {"people", "", "people.yaml", write_run(dir.file("people"), {4.5}, {3.0})},
  };
  std::vector<ConditionResults> results;
  for (const ConditionRun& run : runs) results.push_back(read_condition_run(run));
  const ConditionsReport r = write_conditions_report(results, dir.file("out"));
  INFO(r.markdown);
  CHECK_THAT(r.markdown, Contains("| condition | dataset | seeds | mean-gaze baseline | teacher | student |"));
  // Means ± sample standard deviations over seeds, the ratios of the means, each check's word.
  CHECK_THAT(r.markdown, Contains("| demo | openeds | 3 | 10.00 | 4.00 ± 0.10 | 4.00 ± 0.20 | 0.400 (ok) | 1.000 (ok) |"
                                  " 4.00 -> 3.00 (ok) |"));
  CHECK_THAT(r.markdown, Contains("| camera | openeds | 2 | 10.00 | 4.50 ± 0.71 | 5.00 ± 1.41 |"
                                  " 0.500 (ok, **mixed**: fails on seed 1) | 1.111 (ok) |"));
  CHECK_THAT(r.markdown, Contains("| people | openeds | 1 | 10.00 | 3.00 | 4.50 | 0.450 (ok) | 1.500 (FAIL) |"));
  CHECK_THAT(r.markdown, Contains("- **camera** (`camera.yaml`): Camera pose.") &&
                             Contains("- **people** (`people.yaml`): no description"));
  CHECK(r.cells == 3);
  CHECK(r.cells_passing == 1);  // mixed counts as not passing
  CHECK_THAT(r.markdown, Contains("1 of 3 condition x dataset cells pass every check on every seed."));
  const Json j = Json::parse(testing::read_file(r.json_path));
  REQUIRE(j.at("conditions").size() == 3);
  const Json& camera = j.at("conditions")[1].at("datasets").at("openeds");
  REQUIRE(camera.at("per_seed").size() == 2);
  CHECK(camera.at("per_seed")[1].at("seed") == 1);
  CHECK(camera.at("per_seed")[1].at("student_deg").get<double>() == 6.0);
  CHECK(camera.at("per_seed")[1].at("teacher_deg").get<double>() == 5.0);
  CHECK(camera.at("student_vs_baseline").get<double>() == Approx(0.5));
  CHECK(camera.at("checks").at("student_vs_baseline").at("failing_seeds") == Json({1}));
  CHECK_FALSE(camera.at("passes").get<bool>());
  CHECK(j.at("conditions")[0].at("seeds") == Json({0, 1, 2}));

  // The summary reads back as the numbers it was made of: rewritten, it is the same file.
  const std::string before = testing::read_file(r.markdown_path);
  const ConditionsReport again = write_conditions_report(read_conditions_summary(r.json_path), dir.file("again"));
  CHECK(again.markdown == r.markdown);

  // A condition whose run never finished is named; so is a report that lacks a number.
  CHECK_THROWS_WITH(read_condition_run({"anatomy", "", "anatomy.yaml", dir.file("anatomy/report.json")}),
                    Contains(dir.file("anatomy/report.json")) && Contains("did its pipeline finish"));
  const std::string bad =
      dir.write("bad.json", R"({"datasets": {"aea": {"student": {}, "teacher": {}}}, "seeds": [0], "checks": []})");
  CHECK_THROWS_WITH(read_condition_run({"anatomy", "", "anatomy.yaml", bad}),
                    Contains("bad.json: datasets.aea.student") && Contains("generalised_deg"));
  CHECK(testing::read_file(r.markdown_path) == before);
}

TEST_CASE("held-out conditions: summaries over other seeds merge into one over all of them", "[report][conditions]") {
  testing::TempDir dir;
  // Seeds 0-1 of camera on one machine, seed 2 on another (its own run.seed: a one-seed run).
  std::vector<ConditionResults> first = {read_condition_run(
      {"camera", "Camera pose.", "camera.yaml", write_run(dir.file("a/camera"), {4.0, 6.0}, {4.0, 5.0})})};
  ConditionResults second = read_condition_run({"camera", "", "camera.yaml", write_run(dir.file("b"), {5.0}, {4.5})});
  REQUIRE(second.seeds == std::vector<int64_t>{0});
  second.seeds = {2};
  for (auto& cell : second.datasets) cell.student[0].seed = cell.teacher[0].seed = 2;
  const std::string a = write_conditions_report(first, dir.file("a")).json_path;
  const std::string b = write_conditions_report({second}, dir.file("b")).json_path;

  const auto merged = merge_condition_results({read_conditions_summary(a), read_conditions_summary(b)});
  REQUIRE(merged.size() == 1);
  CHECK(merged[0].seeds == std::vector<int64_t>{0, 1, 2});
  CHECK(merged[0].description == "Camera pose.");
  const ConditionsReport r = write_conditions_report(merged, dir.file("all"));
  INFO(r.markdown);
  // Means over the three seeds (5 ± 1, teacher 4.5 ± 0.5); seed 1 still fails <= 0.5x baseline.
  CHECK_THAT(r.markdown, Contains("| camera | openeds | 3 | 10.00 | 4.50 ± 0.50 | 5.00 ± 1.00 |"
                                  " 0.500 (ok, **mixed**: fails on seed 1) | 1.111 (ok) |"));

  // A seed in two summaries is refused, naming both; so are summaries of different data.
  CHECK_THROWS_WITH(merge_condition_results({read_conditions_summary(a), read_conditions_summary(a)}),
                    Contains("seed 0 is already in") && Contains(dir.file("a/camera/report.json")));
  const std::string baseline = "\"mean_gaze_baseline_deg\": 10.0";
  std::string other = testing::read_file(b);
  REQUIRE(other.find(baseline) != std::string::npos);
  other.replace(other.find(baseline), baseline.size(), "\"mean_gaze_baseline_deg\": 12.0");
  const std::string c = dir.write("c.json", other);
  CHECK_THROWS_WITH(merge_condition_results({read_conditions_summary(a), read_conditions_summary(c)}),
                    Contains("openeds's mean-gaze baseline 12.0000 differs") && Contains("not the same data"));
}

TEST_CASE("held-out conditions: the two one-seed summaries in docs/results merge", "[report][conditions]") {
  // Written by `gaze reproduce conditions` before summaries held per_seed: one seed each, whose
  // means are that seed's numbers.
  const std::string docs = std::string(LIBGAZE_SOURCE_DIR) + "/docs/results/conditions/";
  const auto merged = merge_condition_results({read_conditions_summary(docs + "conditions_shift04_seed0.json"),
                                               read_conditions_summary(docs + "conditions_shift04_seed1.json")});
  REQUIRE(merged.size() == 6);
  CHECK(merged[0].name == "demo");
  CHECK(merged[0].seeds == std::vector<int64_t>{0, 1});
  REQUIRE(merged[0].datasets.size() == 2);
  const auto& openeds = merged[0].datasets[0];  // in the run's order
  CHECK(openeds.dataset == "openeds");
  REQUIRE(openeds.student.size() == 2);
  CHECK(openeds.student[0].generalised == Approx(7.0379).epsilon(1e-4));  // the seed-0 table: 7.04
  CHECK(openeds.student[1].generalised == Approx(7.68).margin(0.005));    // seed 1: 7.68
  CHECK(openeds.student[1].seed == 1);
}

TEST_CASE("a condition's description is its file's first comment line", "[report][conditions]") {
  testing::TempDir dir;
  CHECK(experiment_description(dir.write("c.yaml", "#\n# Camera pose: tilted.\n# more\nextends: x.yaml\n")) ==
        "Camera pose: tilted.");
  CHECK(experiment_description(dir.write("d.yaml", "extends: x.yaml\n# not a heading\n")).empty());
}
