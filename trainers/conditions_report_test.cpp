#include "trainers/conditions_report.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "libgaze/core/error.h"
#include "libgaze/core/json.h"
#include "tests/test_util.h"
#include "trainers/report.h"

using namespace gaze;
using Catch::Contains;

namespace {
// A run's report.json as the pipeline writes it: one dataset, the student's and teacher's
// generalised error per seed (personalised 3, before 4, baseline 10 on every seed), and on every
// seed the held-out people's errors `people` (none when empty), and the baseline's on them.
std::string write_run(const std::string& folder, const std::vector<double>& student, const std::vector<double>& teacher,
                      const std::map<int64_t, double>& people = {},
                      const std::map<int64_t, double>& baseline_people = {}) {
  std::filesystem::create_directories(folder);
  PipelineResults r;
  r.datasets = {"openeds"};
  r.teacher.name = "teacher";
  r.student.name = "student";
  r.k = 5;
  r.k_curve = {0, 5};
  const auto scores = [&](const std::vector<double>& errors) {
    DatasetScores s = {0, 3.0, 4.0, 10.0, -1, {{0, 4.0}, {5, 3.0}}, 0.2};
    s.people = people;
    s.baseline_people = baseline_people;
    for (size_t i = 0; i < errors.size(); ++i) {
      s.generalised += errors[i] / double(errors.size());
      if (errors.size() > 1) s.seeds.push_back({int64_t(i), errors[i], 3.0, 4.0, 10.0, people});
    }
    return s;
  };
  for (size_t i = 0; i < student.size(); ++i) r.seeds.push_back(int64_t(i));
  r.student.datasets["openeds"] = scores(student);
  r.teacher.datasets["openeds"] = scores(teacher);
  return write_pipeline_report(r, folder).json_path;
}
// A summary over seeds 0 and 1 cut to seed 1.
std::vector<ConditionResults> seed_1_only(std::vector<ConditionResults> summary) {
  for (auto& c : summary) {
    c.seeds = {1};
    for (auto& cell : c.datasets) {
      cell.student.erase(cell.student.begin());
      cell.teacher.erase(cell.teacher.begin());
    }
  }
  return summary;
}
}  // namespace

TEST_CASE("held-out conditions: one row per condition and dataset from the runs' own reports", "[report][conditions]") {
  testing::TempDir dir;
  // demo passes everywhere, on two held-out people (3 and 5 degrees: a standard error of 1 degree);
  // camera's student passes "<= 0.5x baseline" on seed 0 only (4 vs 6); people (one seed) fails
  // student vs teacher (4.5 > 1.25 x 3). Camera and people did not keep their people.
  std::vector<ConditionRun> runs = {
      {"demo",
       "The demo's own data.",
       "experiments/conditions/demo.yaml",
       write_run(dir.file("demo"), {4.0, 4.2, 3.8}, {3.9, 4.0, 4.1}, {{12, 3.0}, {13, 5.0}}),
       {}},
      {"camera", "Camera pose.", "camera.yaml", write_run(dir.file("camera"), {4.0, 6.0}, {4.0, 5.0}), {}},
      {"people", "", "people.yaml", write_run(dir.file("people"), {4.5}, {3.0}), {}},
  };
  std::vector<ConditionResults> results;
  for (const ConditionRun& run : runs) results.push_back(read_condition_run(run));
  const ConditionsReport r = write_conditions_report(results, dir.file("out"));
  INFO(r.markdown);
  CHECK_THAT(r.markdown, Contains("| condition | dataset | seeds | mean-gaze baseline | teacher | student |"));
  // Means ± sample standard deviations over seeds, the ratios of the means, each check's word.
  CHECK_THAT(r.markdown,
             Contains("| demo | openeds | 3 | 10.00 | 4.00 ± 0.10 | 4.00 ± 0.20 | 0.400 (ok) | 0.100 (2 participants) |"
                      " 1.000 (ok) |"
                      " 4.00 -> 3.00 (ok) |"));
  CHECK_THAT(r.markdown, Contains("| camera | openeds | 2 | 10.00 | 4.50 ± 0.71 | 5.00 ± 1.41 |"
                                  " 0.500 (ok, **mixed**: fails on seed 1) | – | 1.111 (ok) |"));
  CHECK_THAT(r.markdown, Contains("| people | openeds | 1 | 10.00 | 3.00 | 4.50 | 0.450 (ok) | – | 1.500 (FAIL) |"));
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
  const Json& demo = j.at("conditions")[0].at("datasets").at("openeds");
  CHECK(demo.at("held_out_people") == 2);
  CHECK(demo.at("student_vs_baseline_people_se").get<double>() == Approx(0.1));
  CHECK(demo.at("per_seed")[2].at("student_people_deg") == Json({{"12", 3.0}, {"13", 5.0}}));
  CHECK(camera.at("held_out_people") == 0);
  CHECK(camera.at("student_vs_baseline_people_se").is_null());

  // The summary reads back as the numbers it was made of: rewritten, it is the same file.
  const std::string before = testing::read_file(r.markdown_path);
  const ConditionsReport again = write_conditions_report(read_conditions_summary(r.json_path), dir.file("again"));
  CHECK(again.markdown == r.markdown);

  // A condition whose run never finished is named; so is a report that lacks a number.
  CHECK_THROWS_WITH(read_condition_run({"anatomy", "", "anatomy.yaml", dir.file("anatomy/report.json"), {}}),
                    Contains(dir.file("anatomy/report.json")) && Contains("did its pipeline finish"));
  const std::string bad =
      dir.write("bad.json", R"({"datasets": {"aea": {"student": {}, "teacher": {}}}, "seeds": [0], "checks": []})");
  CHECK_THROWS_WITH(read_condition_run({"anatomy", "", "anatomy.yaml", bad, {}}),
                    Contains("bad.json: datasets.aea.student") && Contains("generalised_deg"));
  std::string people = testing::read_file(dir.file("demo/report.json"));
  const std::string person = "\"12\": 3.0";
  REQUIRE(people.find(person) != std::string::npos);
  for (size_t at = people.find(person); at != std::string::npos; at = people.find(person)) {
    people.replace(at, person.size(), "\"12x\": 3.0");
  }
  CHECK_THROWS_WITH(read_condition_run({"demo", "", "demo.yaml", dir.write("people.json", people), {}}),
                    Contains("people.json: datasets.openeds.student") && Contains("people_deg.12x") &&
                        Contains("expected a participant id"));
  // "012" is not an id people_json writes (it would collide with 12); a list is not an id map.
  for (const auto& [bad_people, says] : std::vector<std::pair<std::string, std::string>>{
           {R"({"012": 3.0})", "people_deg.012: expected a participant id"},
           {R"({"12": "3"})", "people_deg.12: expected a participant id and a number"},
           {"[3.0]", "'people_deg' is not an object"}}) {
    const std::string report =
        dir.write("p.json", R"({"datasets": {"openeds": {"student": {"generalised_deg": 1, "personalised_deg": 1,)"
                            R"( "before_personalisation_deg": 1, "mean_gaze_baseline_deg": 2, "people_deg": )" +
                                bad_people + R"(}, "teacher": {}}}, "seeds": [0], "checks": []})");
    CHECK_THROWS_WITH(read_condition_run({"demo", "", "demo.yaml", report, {}}), Contains(says));
  }
  CHECK(testing::read_file(r.markdown_path) == before);
}

TEST_CASE("held-out conditions: summaries over other seeds merge into one over all of them", "[report][conditions]") {
  testing::TempDir dir;
  // Seeds 0-1 of camera on one machine, seed 2 on another (its own run.seed: a one-seed run).
  std::vector<ConditionResults> first = {
      read_condition_run({"camera",
                          "Camera pose.",
                          "camera.yaml",
                          write_run(dir.file("a/camera"), {4.0, 6.0}, {4.0, 5.0}, {{1, 4.0}, {2, 6.0}}),
                          {}})};
  ConditionResults second = read_condition_run(
      {"camera", "", "camera.yaml", write_run(dir.file("b"), {5.0}, {4.5}, {{1, 7.0}, {2, 5.0}}), {}});
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
  // Each person's mean over the three seeds (5 and 5.67) gives the people's standard error 1/3.
  CHECK_THAT(r.markdown, Contains("| camera | openeds | 3 | 10.00 | 4.50 ± 0.50 | 5.00 ± 1.00 |"
                                  " 0.500 (ok, **mixed**: fails on seed 1) | 0.033 (2 participants) | 1.111 (ok) |"));
  // A seed whose run did not keep its people (made before they were kept) leaves the cell without
  // a standard error rather than one over some seeds only.
  ConditionResults third =
      read_condition_run({"camera", "", "camera.yaml", write_run(dir.file("c"), {5.0}, {4.5}), {}});
  third.seeds = {3};
  for (auto& cell : third.datasets) cell.student[0].seed = cell.teacher[0].seed = 3;
  const std::string without = write_conditions_report({third}, dir.file("c")).json_path;
  const ConditionsReport partly = write_conditions_report(
      merge_condition_results({read_conditions_summary(a), read_conditions_summary(without)}), dir.file("partly"));
  CHECK_THAT(partly.markdown, Contains("fails on seed 1) | – | 1.111 (ok) |"));

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

TEST_CASE("held-out conditions: a summary names its recipe, and recipes do not mix", "[report][conditions]") {
  testing::TempDir dir;
  CHECK(recipe_overrides({"pipeline.seeds=[1]", "run.threads=2", " train.augmentation.shift=0.12",
                          "pipeline.stages.student_adapters.set=[train.steps=300]"}) ==
        std::vector<std::string>{"train.augmentation.shift=0.12",
                                 "pipeline.stages.student_adapters.set=[train.steps=300]"});
  ConditionRun run{"camera",
                   "Camera pose.",
                   "camera.yaml",
                   write_run(dir.file("a"), {4.0}, {4.0}),
                   {"train.augmentation.shift=0.12"}};
  const std::string shifted = write_conditions_report({read_condition_run(run)}, dir.file("a")).json_path;
  const auto back = read_conditions_summary(shifted);
  CHECK(back.at(0).recipe == run.recipe);
  CHECK_THAT(write_conditions_report(back, dir.file("a2")).markdown,
             Contains("The demo's recipe (configs/pipeline/demo.yaml), with `train.augmentation.shift=0.12`, on data"));
  // Seed 1 of the recipe as it is does not join seed 0 of the shifted one.
  run.recipe.clear();
  run.report_json = write_run(dir.file("b"), {5.0}, {4.0});
  ConditionResults plain = read_condition_run(run);
  plain.seeds = {1};
  for (auto& cell : plain.datasets) cell.student[0].seed = cell.teacher[0].seed = 1;
  const std::string as_is = write_conditions_report({plain}, dir.file("b")).json_path;
  CHECK_THROWS_WITH(merge_condition_results({read_conditions_summary(shifted), read_conditions_summary(as_is)}),
                    Contains("made with the recipe as it is") && Contains("with `train.augmentation.shift=0.12`") &&
                        Contains("summaries of different recipes do not merge"));

  // A finished run is checked against the config it is said to be made with, key by key.
  const Config made = default_config({"run.out_dir=" + dir.path(), "run.name=r", "train.steps=300"});
  std::filesystem::create_directories(dir.file("r"));
  dir.write("r/pipeline.yaml", dump_config(made));
  CHECK_NOTHROW(require_run_made_with(made, "c.yaml"));
  const Config told = default_config({"run.out_dir=" + dir.path(), "run.name=r", "train.steps=250"});
  CHECK_THROWS_WITH(require_run_made_with(told, "c.yaml"),
                    Contains(dir.file("r/pipeline.yaml") + ":") && Contains("made with 'train.steps: 300'") &&
                        Contains("c.yaml with the overrides given makes 'train.steps: 250'"));
  const Config elsewhere = default_config({"run.out_dir=" + dir.path(), "run.name=s"});
  CHECK_THROWS_WITH(require_run_made_with(elsewhere, "c.yaml"),
                    Contains(dir.file("s/pipeline.yaml")) && Contains("did its pipeline run?"));
}

TEST_CASE("held-out conditions: two recipes compared by their paired differences over held-out cells",
          "[report][conditions]") {
  testing::TempDir dir;
  const auto summary = [&](const std::string& name, const std::vector<double>& demo,
                           const std::vector<double>& camera_student, const std::vector<double>& camera_teacher,
                           const std::vector<double>& people_student) {
    return std::vector<ConditionResults>{
        read_condition_run({"demo", "", "demo.yaml", write_run(dir.file(name + "/demo"), demo, {4.0, 4.0}), {}}),
        read_condition_run(
            {"camera", "", "camera.yaml", write_run(dir.file(name + "/camera"), camera_student, camera_teacher), {}}),
        read_condition_run(
            {"people", "", "people.yaml", write_run(dir.file(name + "/people"), people_student, {4.0, 4.0}), {}})};
  };
  const auto base = summary("base", {4.0, 4.0}, {6.0, 7.0}, {5.0, 5.0}, {5.0, 6.0});
  auto candidate = summary("candidate", {2.0, 2.0}, {5.0, 5.0}, {5.0, 6.0}, {4.0, 5.4});
  for (auto& c : candidate) c.recipe = {"train.augmentation.shift=0.12"};
  const RecipeComparison r = write_recipe_comparison(base, candidate, "demo", dir.file("out"));
  INFO(r.markdown);
  // Held out: camera and people (demo is the reference). Student differences -1, -2, -1, -0.6.
  CHECK(r.held_out.student.pairs == 4);
  CHECK(r.held_out.student.lower == 4);
  CHECK(r.held_out.student.mean == Approx(-1.15));
  CHECK(r.held_out.student.standard_error == Approx(std::sqrt(1.07 / 3 / 4)));
  CHECK(r.held_out.student.seen());
  CHECK(r.held_out.teacher.mean == Approx(0.25));  // 0, +1, 0, 0: within twice its standard error (0.25)
  CHECK(r.held_out.teacher.standard_error == Approx(0.25));
  CHECK_FALSE(r.held_out.teacher.seen());
  CHECK(r.held_out.personalised.mean == Approx(0.0));
  REQUIRE(r.by_dataset.size() == 1);  // one dataset: the same changes
  CHECK(r.by_dataset.at("openeds").student.mean == Approx(-1.15));
  CHECK_THAT(r.markdown, Contains("Base: the recipe as it is. Candidate: `train.augmentation.shift=0.12`."));
  CHECK_THAT(r.markdown,
             Contains("| demo (reference) | openeds | 0, 1 | 4.00 -> 4.00 (+0.00) | 4.00 -> 2.00 (-2.00) |"));
  CHECK_THAT(r.markdown, Contains("| camera | openeds | 0, 1 | 5.00 -> 5.50 (+0.50) | 6.50 -> 5.00 (-1.50) |"
                                  " 3.00 -> 3.00 (+0.00) | 2 -> 2 of 2 |"));
  CHECK_THAT(r.markdown,
             Contains("Over the 4 held-out seed-cells of the same data (every condition but demo)") &&
                 Contains("| student | -1.15 ± 0.30 | 4 of 4 | seen: more than twice its standard error |") &&
                 Contains("| teacher | +0.25 ± 0.25 | 0 of 4 | not seen: within twice its standard error |") &&
                 Contains("| student, openeds | -1.15 ± 0.30 | 4 of 4 |"));
  const Json j = Json::parse(testing::read_file(r.json_path));
  CHECK(j.at("held_out").at("student").at("seen") == true);
  CHECK(j.at("held_out").at("by_dataset").at("openeds").at("student_personalised").at("seed_cells") == 4);
  CHECK(j.at("cells").size() == 3);

  // Pairs are by seed: a candidate over seed 1 alone is compared with the base's seed 1.
  const auto seed1 = seed_1_only(candidate);
  CHECK(write_recipe_comparison(base, seed1, "demo", dir.file("one")).held_out.student.mean ==
        Approx((-2.0 - 0.6) / 2));
  // Other data, other conditions, or no seed in common are refused.
  auto seed5 = seed1;
  for (auto& c : seed5)
    for (auto& cell : c.datasets) cell.student[0].seed = cell.teacher[0].seed = 5;
  CHECK_THROWS_WITH(write_recipe_comparison(base, seed5, "demo", dir.file("x")),
                    Contains("condition demo") && Contains("openeds has no seed in common with"));
  auto extra = candidate;
  extra[1].name = "lighting";
  CHECK_THROWS_WITH(write_recipe_comparison(base, extra, "demo", dir.file("x")),
                    Contains("condition lighting") && Contains("not in the base summary"));
  auto other_data = candidate;
  other_data[2].datasets[0].baseline = 12.0;
  CHECK_THROWS_WITH(write_recipe_comparison(base, other_data, "demo", dir.file("x")),
                    Contains("condition people") && Contains("not the same data") &&
                        Contains("no held-out person in common to pair"));
  CHECK_FALSE(std::filesystem::exists(dir.file("x/comparison.md")));
}

TEST_CASE("held-out conditions: the ratio's standard error pairs the baseline's people, kept through merges",
          "[report][conditions]") {
  testing::TempDir dir;
  const std::map<int64_t, double> people = {{1, 2.0}, {2, 4.0}, {3, 5.0}}, baseline = {{1, 4.0}, {2, 8.0}, {3, 12.0}};
  const auto run = [&](const std::string& name, const std::map<int64_t, double>& baseline_people) {
    return read_condition_run(
        {"demo", "", "demo.yaml", write_run(dir.file(name), {4.0}, {4.0}, people, baseline_people), {}});
  };
  const ConditionsReport r = write_conditions_report({run("new", baseline)}, dir.file("new_out"));
  const Json cell = Json::parse(testing::read_file(r.json_path)).at("conditions")[0].at("datasets").at("openeds");
  CHECK(cell.at("baseline_people_deg") == Json({{"1", 4.0}, {"2", 8.0}, {"3", 12.0}}));
  // report_test's numbers: the paired error is over the baseline's mean on these people (8), not
  // the cell's frame mean (10).
  CHECK(cell.at("student_vs_baseline_people_se").get<double>() == Approx(std::sqrt(14.0 / 36 / 6) / 8.0));
  CHECK(cell.at("student_vs_baseline_people_se_paired").get<bool>());
  // A summary reads back with them; one from before session 34 lacks them (the baseline held
  // fixed) until merged with one of the same data that has them.
  const auto summary = read_conditions_summary(r.json_path);
  CHECK(summary[0].datasets[0].baseline_people == baseline);
  auto old = std::vector<ConditionResults>{run("old", {})};
  old[0].seeds = {1};
  for (auto& s : old[0].datasets[0].student) s.seed = 1;
  for (auto& s : old[0].datasets[0].teacher) s.seed = 1;
  const ConditionsReport lacking = write_conditions_report(old, dir.file("old_out"));
  const Json old_cell =
      Json::parse(testing::read_file(lacking.json_path)).at("conditions")[0].at("datasets").at("openeds");
  CHECK_FALSE(old_cell.contains("baseline_people_deg"));
  CHECK_FALSE(old_cell.at("student_vs_baseline_people_se_paired").get<bool>());
  CHECK(old_cell.at("student_vs_baseline_people_se").get<double>() ==
        Approx(std::sqrt(7.0 / 3) / std::sqrt(3.0) / 10.0));
  const auto merged = merge_condition_results({old, summary});
  CHECK(merged[0].datasets[0].baseline_people == baseline);
  // Two that both have them must agree, person by person.
  auto other = summary;
  for (auto& s : other[0].datasets[0].student) s.seed = 2;
  for (auto& s : other[0].datasets[0].teacher) s.seed = 2;
  other[0].seeds = {2};
  other[0].datasets[0].baseline_people[3] = 12.5;
  CHECK_THROWS_WITH(merge_condition_results({summary, other}),
                    Contains("baseline on the held-out people differs") && Contains("not the same data"));
}

TEST_CASE("held-out conditions: two recipes compared person by person on the people both hold out",
          "[report][conditions]") {
  testing::TempDir dir;
  const auto summary = [&](const std::string& name, const std::vector<double>& camera,
                           const std::map<int64_t, double>& people) {
    return std::vector<ConditionResults>{
        read_condition_run(
            {"demo", "", "demo.yaml", write_run(dir.file(name + "/demo"), {4.0, 4.0}, {4.0, 4.0}, people), {}}),
        read_condition_run(
            {"camera", "", "camera.yaml", write_run(dir.file(name + "/camera"), camera, {5.0, 5.0}, people), {}})};
  };
  auto base = summary("base", {6.0, 7.0}, {{1, 5.0}, {2, 7.0}, {3, 6.0}});
  // The student: -1.0, -0.5, -0.9 per person on both seeds; person 4 is held out by the candidate
  // only, so not paired.
  auto candidate = summary("candidate", {5.0, 6.0}, {{1, 4.0}, {2, 6.5}, {3, 5.1}, {4, 9.0}});
  // The teacher, each seed its own: 0, 0, 0 on seed 0 and +1.0, +0.5, +1.2 on seed 1, so per
  // person +0.5, +0.25, +0.6 over the seeds.
  std::vector<SeedScores>& base_teacher = base[1].datasets[0].teacher;
  std::vector<SeedScores>& teacher = candidate[1].datasets[0].teacher;
  base_teacher[0].people = teacher[0].people = {{1, 5.0}, {2, 7.0}, {3, 6.0}};
  base_teacher[1].people = {{1, 6.0}, {2, 7.0}, {3, 6.0}};
  teacher[1].people = {{1, 7.0}, {2, 7.5}, {3, 7.2}};
  RecipeComparison r = write_recipe_comparison(base, candidate, "demo", dir.file("out"));
  INFO(r.markdown);
  REQUIRE(r.people_by_cell.count("camera/openeds") == 1);
  const RecipeComparison::Change& camera = r.people_by_cell.at("camera/openeds").student;
  CHECK(camera.pairs == 3);
  CHECK(camera.lower == 3);
  CHECK(camera.mean == Approx(-0.8));
  CHECK(camera.standard_error == Approx(std::sqrt(0.07 / 3)));
  CHECK(camera.seen());
  const RecipeComparison::Change& camera_teacher = r.people_by_cell.at("camera/openeds").teacher;
  CHECK(camera_teacher.mean == Approx(0.45));
  CHECK(camera_teacher.standard_error == Approx(std::sqrt(0.0325 / 3)));
  CHECK(camera_teacher.lower == 0);
  CHECK(r.student_people.cells == 1);  // the reference cell is not counted
  CHECK(r.student_people.seen_lower == 1);
  CHECK(r.student_people.seen_higher == 0);
  CHECK(r.teacher_people.seen_higher == 1);
  CHECK_THAT(r.markdown, Contains("| camera | openeds | 3 participants | +0.45 ± 0.10, lower for 0 of 3 (seen higher) "
                                  "| -0.80 ± 0.15, lower for 3 of 3 (seen lower) |"));
  CHECK_THAT(r.markdown, Contains("| demo (reference) | openeds | 3 participants |"));
  CHECK_THAT(r.markdown, Contains("Over the 1 held-out cells compared per person: student seen lower in 1, seen "
                                  "higher in 0; teacher seen lower in 0, seen higher in 1."));
  const Json j = Json::parse(testing::read_file(r.json_path));
  CHECK(j.at("cells").at(1).at("per_person").at("student").at("people") == 3);
  CHECK(j.at("cells").at(1).at("same_data") == true);
  CHECK(j.at("held_out").at("per_person").at("student").at("seen_lower") == 1);

  // People are paired by seed: a candidate over seed 1 alone meets the base's seed 1 (+1.0, +0.5,
  // +1.2 for the teacher; against seed 0 it would be +2.0, +0.5, +1.2).
  const auto seed1 = seed_1_only(candidate);
  CHECK(
      write_recipe_comparison(base, seed1, "demo", dir.file("one")).people_by_cell.at("camera/openeds").teacher.mean ==
      Approx(0.9));

  // Other training data (another baseline: more training people, say): paired on the people both
  // hold out, its cell means left out of the held-out seed-cells, which here leaves none.
  for (auto& c : candidate) c.recipe = {"synth.train_participants=0.3", "data.train_people=24"};
  for (auto& cell : candidate[1].datasets) {
    cell.baseline = 12.0;
    for (auto& s : cell.student) s.baseline = 12.0;
  }
  r = write_recipe_comparison(base, candidate, "demo", dir.file("other"));
  CHECK(r.held_out.student.pairs == 0);
  CHECK(std::isnan(r.held_out.student.mean));
  CHECK(r.people_by_cell.at("camera/openeds").student.mean == Approx(-0.8));
  CHECK_THAT(r.markdown,
             Contains("| camera | openeds | 0, 1 | 5.00 -> 5.00 (other data) | 6.50 -> 5.50 (other data) |") &&
                 Contains("The training data differ (another mean-gaze baseline) in camera/openeds") &&
                 Contains("No held-out seed-cell of the same data to pair."));
  const Json other = Json::parse(testing::read_file(r.json_path));
  CHECK(other.at("cells").at(1).at("same_data") == false);
  CHECK(other.at("held_out").at("student").at("mean_deg").is_null());

  // Other data is refused when no held-out person is in both, or when the recipes differ in a
  // synth key that may draw other people under the same ids.
  auto strangers = candidate;
  for (auto* seeds : {&strangers[1].datasets[0].student, &strangers[1].datasets[0].teacher})
    for (auto& s : *seeds) s.people = {{7, 4.0}, {8, 5.0}};
  CHECK_THROWS_WITH(write_recipe_comparison(base, strangers, "demo", dir.file("x")),
                    Contains("condition camera") && Contains("no held-out person in common to pair"));
  auto redrawn = candidate;
  for (auto& c : redrawn) c.recipe = {"synth.anatomy_spread=1.8"};
  CHECK_THROWS_WITH(write_recipe_comparison(base, redrawn, "demo", dir.file("x")),
                    Contains("not the same data") && Contains("the recipes differ in synth.anatomy_spread"));
  CHECK_FALSE(std::filesystem::exists(dir.file("x/comparison.md")));
  // The same data (the same labels, so the same baseline) under a key that redraws how people
  // look: compared by the cell means, not per person.
  auto restyled = base;
  for (auto& c : restyled) c.recipe = {"synth.anatomy_spread=1.8"};
  const RecipeComparison apart = write_recipe_comparison(base, restyled, "demo", dir.file("apart"));
  CHECK(apart.people_by_cell.empty());
  CHECK(apart.held_out.student.pairs > 0);
  CHECK_THAT(apart.markdown, Contains("Not compared per person: the recipes differ in synth.anatomy_spread") &&
                                 !Contains("Per held-out person"));
  CHECK(Json::parse(testing::read_file(apart.json_path)).at("not_paired_per_person_for") ==
        Json({"synth.anatomy_spread"}));

  // Summaries that kept no people have no per-person section.
  const auto no_people = summary("none", {6.0, 7.0}, {});
  const RecipeComparison none = write_recipe_comparison(no_people, no_people, "demo", dir.file("none_out"));
  CHECK(none.people_by_cell.empty());
  CHECK_THAT(none.markdown, !Contains("Per held-out person"));
}

TEST_CASE("held-out conditions: the one-seed summaries in docs/results merge by recipe", "[report][conditions]") {
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

  // The crop-shift runs name their recipe: they join each other, not the recipe as it is.
  const auto shifted = merge_condition_results({read_conditions_summary(docs + "conditions_shift12_seed0.json"),
                                                read_conditions_summary(docs + "conditions_shift12_seed1.json"),
                                                read_conditions_summary(docs + "conditions_shift12_seed2.json")});
  CHECK(shifted.at(0).seeds == std::vector<int64_t>{0, 1, 2});
  CHECK_THAT(shifted.at(0).recipe.at(0), Contains("train.augmentation.shift=0.12"));
  CHECK_THROWS_WITH(merge_condition_results({read_conditions_summary(docs + "conditions_shift04_seed0.json"),
                                             read_conditions_summary(docs + "conditions_shift12_seed1.json")}),
                    Contains("summaries of different recipes do not merge"));
}

TEST_CASE("a condition's description is its file's first comment line", "[report][conditions]") {
  testing::TempDir dir;
  CHECK(experiment_description(dir.write("c.yaml", "#\n# Camera pose: tilted.\n# more\nextends: x.yaml\n")) ==
        "Camera pose: tilted.");
  CHECK(experiment_description(dir.write("d.yaml", "extends: x.yaml\n# not a heading\n")).empty());
}

TEST_CASE("held-out conditions: a pipeline variant's rows summarised instead of the paper's pair",
          "[report][conditions]") {
  testing::TempDir dir;
  // One run holding the paper's pair and the variant "grid" (its own teacher and student).
  PipelineResults r;
  r.datasets = {"openeds"};
  r.seeds = {0};
  r.k = 5;
  const auto model = [](const std::string& name, double generalised) {
    ModelScores m;
    m.name = name;
    m.datasets["openeds"] = {generalised, 3.0, 4.0, 10.0, -1, {}, 0.2};
    return m;
  };
  r.teacher = model("teacher", 6.0);
  r.student = model("student", 7.0);
  r.our_rows = {model("teacher_grid", 4.0), model("student_grid", 4.5)};
  r.our_rows[1].checked_against = "teacher_grid";
  std::filesystem::create_directories(dir.file("run"));
  const std::string report = write_pipeline_report(r, dir.file("run")).json_path;

  const ConditionResults grid = read_condition_run({"camera", "", "camera.yaml", report, {}, "grid"});
  REQUIRE(grid.datasets.size() == 1);
  CHECK(grid.datasets[0].student[0].generalised == 4.5);
  CHECK(grid.datasets[0].teacher[0].generalised == 4.0);  // the variant's own teacher
  const ConditionsReport summary = write_conditions_report({grid}, dir.file("grid"));
  CHECK_THAT(summary.markdown,
             Contains("the rows of its variant `grid`") &&
                 Contains("| camera | openeds | 1 | 10.00 | 4.00 | 4.50 | 0.450 (ok) | – | 1.125 (ok) |"));
  CHECK(read_conditions_summary(summary.json_path).at(0).variant == "grid");
  // The paper's pair of the same run does not merge with it, nor share a summary.
  ConditionResults paper = read_condition_run({"camera", "", "camera.yaml", report, {}});
  CHECK(paper.datasets[0].student[0].generalised == 7.0);
  paper.seeds = {1};
  for (auto& cell : paper.datasets) cell.student[0].seed = cell.teacher[0].seed = 1;
  CHECK_THROWS_WITH(merge_condition_results({{grid}, {paper}}),
                    Contains("the rows of the paper's student and teacher") && Contains("variant grid") &&
                        Contains("summaries of different rows do not merge"));
  CHECK_THROWS_WITH(write_conditions_report({grid, paper}, dir.file("mixed")), Contains("one summary holds one pair"));
  // A variant the run does not have is named.
  CHECK_THROWS_WITH(read_condition_run({"camera", "", "camera.yaml", report, {}, "wide"}),
                    Contains(report) && Contains("no row student_wide"));
  // Compared, each side says whose rows it holds.
  const RecipeComparison c = write_recipe_comparison({read_condition_run({"camera", "", "camera.yaml", report, {}})},
                                                     {grid}, "demo", dir.file("cmp"));
  CHECK_THAT(c.markdown, Contains("Candidate: the recipe as it is, the rows of variant grid."));
}
