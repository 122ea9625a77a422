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
  const std::vector<ConditionRun> runs = {
      {"demo", "The demo's own data.", "experiments/conditions/demo.yaml",
       write_run(dir.file("demo"), {4.0, 4.2, 3.8}, {3.9, 4.0, 4.1})},
      {"camera", "Camera pose.", "camera.yaml", write_run(dir.file("camera"), {4.0, 6.0}, {4.0, 5.0})},
      {"people", "", "people.yaml", write_run(dir.file("people"), {4.5}, {3.0})},
  };
  const ConditionsReport r = write_conditions_report(runs, dir.file("out"));
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
  CHECK(camera.at("student_per_seed_deg") == Json({4.0, 6.0}));
  CHECK(camera.at("student_vs_baseline").get<double>() == Approx(0.5));
  CHECK(camera.at("checks").at("student_vs_baseline").at("failing_seeds") == Json({1}));
  CHECK_FALSE(camera.at("passes").get<bool>());
  CHECK(j.at("conditions")[0].at("seeds") == Json({0, 1, 2}));

  // A condition whose run never finished is named, and nothing is written over the summary.
  const std::string before = testing::read_file(r.markdown_path);
  std::vector<ConditionRun> broken = runs;
  broken.push_back({"anatomy", "", "anatomy.yaml", dir.file("anatomy/report.json")});
  CHECK_THROWS_WITH(write_conditions_report(broken, dir.file("out")),
                    Contains(dir.file("anatomy/report.json")) && Contains("did its pipeline finish"));
  // So is a report that lacks a number.
  broken.back().report_json =
      dir.write("bad.json", R"({"datasets": {"aea": {"student": {}, "teacher": {}}}, "seeds": [0], "checks": []})");
  CHECK_THROWS_WITH(write_conditions_report(broken, dir.file("out")),
                    Contains("bad.json: datasets.aea.student") && Contains("generalised_deg"));
  CHECK(testing::read_file(r.markdown_path) == before);
}

TEST_CASE("a condition's description is its file's first comment line", "[report][conditions]") {
  testing::TempDir dir;
  CHECK(experiment_description(dir.write("c.yaml", "#\n# Camera pose: tilted.\n# more\nextends: x.yaml\n")) ==
        "Camera pose: tilted.");
  CHECK(experiment_description(dir.write("d.yaml", "extends: x.yaml\n# not a heading\n")).empty());
}
