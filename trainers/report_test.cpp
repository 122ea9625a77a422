#include "trainers/report.h"

#include <catch2/catch.hpp>
#include <cmath>

#include "libgaze/core/json.h"
#include "libgaze/core/strings.h"
#include "tests/test_util.h"

using namespace gaze;
using Catch::Contains;

TEST_CASE("parameter counts print the way the paper's tables do", "[report]") {
  CHECK(short_count(3579104) == "3.6M");
  CHECK(short_count(281174) == "281K");
  CHECK(short_count(14434) == "14K");
  CHECK(short_count(999) == "999");
}

TEST_CASE("the pipeline report renders the run's numbers, counts included", "[report]") {
  PipelineResults r;
  r.datasets = {"openeds", "aea"};
  r.teacher.name = "teacher";
  r.teacher.params = 3579104;
  r.student.name = "student";
  r.student.params = 123456;  // not the paper's count: the report must show this one
  for (const std::string d : {"openeds", "aea"}) {
    r.teacher.datasets[d] = {4.0, 3.0, 3.5, 10.0, -1, {{0, 3.5}, {5, 3.0}}, 0.2};
    r.student.datasets[d] = {4.5, 3.2, 3.9, 10.0, 0.9, {{0, 3.9}, {5, 3.2}}, 0.1};
  }
  r.student.datasets["openeds"].people = {{12, 4.0}, {13, 5.0}};  // two held-out people: standard error 0.5
  for (DatasetScores* aea : {&r.teacher.datasets["aea"], &r.student.datasets["aea"]}) {
    aea->protocol = {"recording", 100, 3000};  // personalised per recording, calibrated across a window
  }
  r.data_description = "test \"data\"";
  r.input_h = 96;
  r.input_w = 128;
  r.k = 5;
  r.k_curve = {0, 5};
  r.seconds = 12;
  testing::TempDir dir;
  const PipelineReport report = write_pipeline_report(r, dir.path());
  CHECK_THAT(report.markdown,
             Contains("| setting | model | params | OpenEDS2020 (ours) | paper | AEA (ours) | paper |\n"
                      "|---|---|---|---|---|---|---|\n"));
  CHECK_THAT(report.markdown, Contains("| generalised | DFT Gaze (student) | 123K | 4.50 | 7.82 | 4.50 | 2.14 |"));
  CHECK_THAT(report.markdown,
             Contains("| personalised | ConvNeXt V2-A (teacher) | 3.6M | 3.00 | 5.36 | 3.00 | 2.32 |"));
  CHECK_THAT(report.markdown,
             Contains("| openeds | 10.00 | 0.450 (<= 0.5 ok) | 0.050 (2 participants) | 1.125 (<= 1.25 ok) |"
                      " 3.90 -> 3.20 (lower ok)") &&
                 Contains("| aea | 10.00 | 0.450 (<= 0.5 ok) | – | 1.125 (<= 1.25 ok) |"));
  CHECK_THAT(report.markdown, Contains("| student openeds | 3.90 | 3.20 |"));
  CHECK(testing::read_file(report.csv_path)
            .rfind("setting,model,params,openeds_ours,openeds_paper,aea_ours,aea_paper\n"
                   "generalised,teacher,3.6M,4.0000,6.90,4.0000,1.94\n",
                   0) == 0);
  const Json j = Json::parse(testing::read_file(report.json_path));
  CHECK(j.at("params").at("student").get<int64_t>() == 123456);
  CHECK(j.at("datasets").at("aea").at("teacher").at("blink_auc").is_null());
  CHECK(j.at("datasets").at("aea").at("student").at("k_curve").at("5").get<double>() == 3.2);
  CHECK(j.at("datasets").at("openeds").at("student").at("people_deg") == Json({{"12", 4.0}, {"13", 5.0}}));
  CHECK_FALSE(j.at("datasets").at("aea").at("student").contains("people_deg"));
  CHECK_FALSE(j.at("datasets").at("aea").at("student").contains("baseline_people_deg"));
  CHECK_THAT(report.markdown, Contains("per recording (no person ids): calibrated on the 5 frames of its first 3000 ms "
                                       "whose gaze lies farthest apart, evaluated on its frames 100 ms and more after "
                                       "that window"));
  CHECK(j.at("datasets").at("aea").at("student").at("calibration_window_ms").get<double>() == 3000);
  CHECK(j.at("datasets").at("openeds").at("student").at("calibration_window_ms").get<double>() == 0);
  CHECK_THAT(testing::read_file(report.svg_path), Contains("<svg") && Contains("student aea"));
  CHECK(report.table_paths.empty());  // no baselines, no MPII data: Table 3 only
}

TEST_CASE("student / baseline's standard error pairs the baseline's error person by person", "[report]") {
  DatasetScores s;
  s.baseline = 8.0;
  s.people = {{1, 2.0}, {2, 4.0}, {3, 5.0}};
  // Without the baseline's people: the baseline held fixed, sd(2, 4, 5) / sqrt(3) / 8.
  const double fixed = std::sqrt(7.0 / 3) / std::sqrt(3.0) / 8.0;
  CHECK(people_ratio_standard_error(s) == Approx(fixed));
  // Paired: ratio 11/24 of the means; residuals 1/6, 1/3, -1/2; sqrt(14/36 / (3 * 2)) / 8.
  s.baseline_people = {{1, 4.0}, {2, 8.0}, {3, 12.0}};
  CHECK(people_ratio_standard_error(s) == Approx(std::sqrt(14.0 / 36 / 6) / 8.0));
  // People whose error is a fixed fraction of the baseline's leave no doubt about the ratio.
  s.people = {{1, 2.0}, {2, 4.0}, {3, 6.0}};
  CHECK(people_ratio_standard_error(s) == Approx(0.0).margin(1e-12));
  // A held-out person without the baseline's error: held fixed again.
  s.people[4] = 3.0;
  CHECK(people_ratio_standard_error(s) == Approx(people_standard_error(s.people) / 8.0));
}

TEST_CASE("Tables 1 and 2: the paper's rows and columns, counts to four digits, reasons for empty cells", "[report]") {
  PipelineResults r;
  r.datasets = {"openeds"};
  for (ModelScores* m : {&r.teacher, &r.student}) {
    m->name = m == &r.teacher ? "teacher" : "student";
    m->params = m == &r.teacher ? 3579104 : 281174;
    m->tunable = m == &r.teacher ? 191700 : 14434;
    m->datasets["openeds"] = {6.5, 5.5, 6.0, 12.0, -1, {{0, 6.0}, {5, 5.5}}, 0.2};
  }
  ModelScores rtgene;
  rtgene.name = "rtgene";
  rtgene.params = rtgene.tunable = 31667074;
  rtgene.datasets["openeds"] = {8.25, 7.125, 8.0, 12.0, -1, {{0, 8.0}, {5, 7.125}}, 1.0};
  rtgene.note = "two eyes, here: 30 steps";  // a comma: quoted in the CSV
  r.baselines = {rtgene};
  r.k = 5;
  r.commit = "abc123";
  r.config_hash = "0badf00d";
  testing::TempDir dir;
  const PipelineReport report = write_pipeline_report(r, dir.path());
  REQUIRE(report.table_paths.size() == 4);
  const std::string t1 = testing::read_file(dir.file("table1.csv"));
  CHECK(starts_with(t1, "model,params,paper params,tunable,paper tunable,mpiigaze_ours,mpiigaze_paper,"));
  CHECK_THAT(t1, Contains("RT-Gene (Fischer et al. 2018),31.67M,31.67M,31.67M,31.67M,not run: MPIIGaze is not in "
                          "pipeline.datasets (gaze reproduce --mpiigaze PATH adds it),4.61,") &&
                     Contains(",8.2500,6.02,\"two eyes, here: 30 steps\"\n"));
  CHECK_THAT(t1, Contains("GazeNet (Zhang et al. 2019),,90.24M,,90.24M,not run: not in pipeline.baselines,5.70,"));
  CHECK_THAT(t1, Contains("ConvNeXt V2-A (teacher),3.579M,3.6M,191.7K,191.7K,"));
  CHECK_THAT(t1, Contains("DFT Gaze,281.2K,281K,14.43K,14.43K,"));
  const std::string t2 = testing::read_file(dir.file("table2.md"));
  CHECK_THAT(t2, Contains("# Table 2 — personalised (k = 5)") && Contains("libgaze abc123, config 0badf00d") &&
                     Contains("| RT-Gene | 31.67M | 31.67M | 31.67M | 31.67M | not run [2] | – |") &&
                     Contains("| 7.12 | 4.80 |") && Contains("[2] MPIIGaze is not in pipeline.datasets"));
  // report.md carries both tables as sections.
  CHECK_THAT(report.markdown, Contains("## Table 1 — generalised") && Contains("## Table 2 — personalised"));
}

TEST_CASE("several seeds: cells read mean ± spread, a check that passes on some seeds only is flagged", "[report]") {
  PipelineResults r;
  r.datasets = {"openeds"};
  r.seeds = {0, 1};
  r.teacher.name = "teacher";
  r.student.name = "student";
  // Per seed (generalised, personalised, before, baseline): the student passes "<= 0.5x the
  // baseline" on seed 0 (4 <= 5) and fails it on seed 1 (6 > 5); the means pass (5 <= 5).
  DatasetScores teacher = {4.0, 3.0, 3.5, 10.0, -1, {{0, 3.5}, {5, 3.0}}, 0.2};
  teacher.seeds = {{0, 4.0, 3.0, 3.5, 10.0}, {1, 4.0, 3.0, 3.5, 10.0}};
  DatasetScores student = {5.0, 3.5, 4.5, 10.0, -1, {{0, 4.5}, {5, 3.5}}, 0.2};
  student.seeds = {{0, 4.0, 3.0, 4.0, 10.0}, {1, 6.0, 4.0, 5.0, 10.0}};
  r.teacher.datasets["openeds"] = teacher;
  r.student.datasets["openeds"] = student;
  r.k = 5;
  r.k_curve = {0, 5};
  testing::TempDir dir;
  const PipelineReport report = write_pipeline_report(r, dir.path());
  // Sample standard deviation over the two seeds: |6 - 4| / sqrt(2) = 1.41.
  CHECK_THAT(report.markdown, Contains("| generalised | DFT Gaze (student) | 0 | 5.00 ± 1.41 | 7.82 |"));
  CHECK_THAT(report.markdown, Contains("| generalised | ConvNeXt V2-A (teacher) | 0 | 4.00 ± 0.00 | 6.90 |"));
  CHECK_THAT(report.markdown, Contains("mean over training seeds 0, 1 ± the standard deviation"));
  CHECK_THAT(report.markdown, Contains("0.500 (<= 0.5 ok; **mixed**: fails on seed 1)"));
  // student / teacher: 1.0 and 1.5 per seed: also mixed; personalisation lowers on both.
  CHECK_THAT(report.markdown, Contains("1.250 (<= 1.25 ok; **mixed**: fails on seed 1)"));
  CHECK_THAT(report.markdown, Contains("4.50 -> 3.50 (lower ok)"));
  CHECK(testing::read_file(report.csv_path)
            .rfind("setting,model,params,openeds_ours,openeds_ours_sd,openeds_paper\n"
                   "generalised,teacher,0,4.0000,0.0000,6.90\n"
                   "generalised,student,0,5.0000,1.4142,7.82\n",
                   0) == 0);
  const Json j = Json::parse(testing::read_file(report.json_path));
  CHECK(j.at("seeds") == Json({0, 1}));
  const Json& cell = j.at("datasets").at("openeds").at("student");
  CHECK(cell.at("generalised_sd_deg").get<double>() == Approx(std::sqrt(2.0)));
  REQUIRE(cell.at("seeds").size() == 2);
  CHECK(cell.at("seeds")[1].at("seed").get<int64_t>() == 1);
  CHECK(cell.at("seeds")[1].at("generalised_deg").get<double>() == 6.0);
  const Json& checks = j.at("checks");
  REQUIRE(checks.size() == 3);
  CHECK(checks[0].at("check") == "student_vs_baseline");
  CHECK(checks[0].at("passes").get<bool>());
  CHECK(checks[0].at("mixed").get<bool>());
  CHECK(checks[0].at("failing_seeds") == Json({1}));
  CHECK(checks[2].at("check") == "personalisation_lowers");
  CHECK_FALSE(checks[2].at("mixed").get<bool>());
  CHECK(checks[2].at("failing_seeds").empty());
  // One seed: no spread, no flag.
  r.seeds = {0};
  r.teacher.datasets["openeds"].seeds.clear();
  r.student.datasets["openeds"].seeds.clear();
  const PipelineReport single = write_pipeline_report(r, dir.path());
  CHECK_THAT(single.markdown, !Contains("±") && !Contains("mixed") && Contains("0.500 (<= 0.5 ok)"));
  CHECK(starts_with(testing::read_file(single.csv_path), "setting,model,params,openeds_ours,openeds_paper\n"));
}

TEST_CASE("our rows (full fine-tuning, a variant) sit beside the paper's in every table, each student checked",
          "[report]") {
  PipelineResults r;
  r.datasets = {"openeds"};
  const auto model = [](const std::string& name, const std::string& title, int64_t params, double generalised) {
    ModelScores m;
    m.name = name;
    m.title = title;
    m.params = m.tunable = params;
    m.datasets["openeds"] = {generalised, 5.5, 6.0, 12.0, -1, {{0, 6.0}, {5, 5.5}}, 0.2};
    return m;
  };
  r.teacher = model("teacher", "ConvNeXt V2-A (teacher)", 3579104, 6.5);
  r.student = model("student", "DFT Gaze (student)", 281174, 6.5);
  r.student.tunable = 14434;
  r.our_rows = {model("student_full", "DFT Gaze, every weight fine-tuned (ours)", 281174, 4.25),
                model("teacher_grid", "ConvNeXt V2-A (teacher), a grid head", 3593184, 4.0),
                model("student_grid", "DFT Gaze (student), a grid head", 284694, 5.5)};
  r.our_rows[0].note = "every weight";
  r.our_rows[0].checked_against = "teacher";
  r.our_rows[2].checked_against =
      "teacher_grid";   // 5.5 / 4.0 = 1.375: fails where the paper's teacher (6.5) would pass
  ModelScores gazenet;  // a baseline: what makes the run write Tables 1 and 2
  gazenet.name = "gazenet";
  gazenet.params = gazenet.tunable = 90000000;
  gazenet.datasets["openeds"] = {9.0, 8.0, 9.0, 12.0, -1, {{0, 9.0}, {5, 8.0}}, 1.0};
  r.baselines = {gazenet};
  r.k = 5;
  testing::TempDir dir;
  const PipelineReport report = write_pipeline_report(r, dir.path());
  CHECK_THAT(report.markdown,
             Contains("| generalised | DFT Gaze, every weight fine-tuned (ours) | 281K | 4.25 | – |") &&
                 Contains("| personalised | DFT Gaze, every weight fine-tuned (ours) | 281K | 5.50 | – |") &&
                 Contains("| generalised | ConvNeXt V2-A (teacher), a grid head | 3.6M | 4.00 | – |") &&
                 Contains("| generalised | DFT Gaze (student), a grid head | 285K | 5.50 | – |"));
  CHECK_THAT(testing::read_file(report.csv_path), Contains("generalised,student_full,281K,4.2500,–\n") &&
                                                      Contains("generalised,student_grid,285K,5.5000,–\n"));
  // Checks: the paper's pair, then each of ours that names its teacher, against that teacher.
  CHECK_THAT(report.markdown,
             Contains("| dataset | pair | mean-gaze baseline | student / baseline |") &&
                 Contains("| openeds | student vs teacher | 12.00 | 0.542 (> 0.5) | – | 1.000 (<= 1.25 ok) |") &&
                 Contains("| openeds | student_full vs teacher | 12.00 | 0.354 (<= 0.5 ok) | – | 0.654") &&
                 Contains("| openeds | student_grid vs teacher_grid | 12.00 | 0.458 (<= 0.5 ok) | – | "
                          "1.375 (> 1.25) |"));
  // Tables 1 and 2: our rows after the paper's, no paper values.
  REQUIRE(report.table_paths.size() == 4);
  const std::string t1 = testing::read_file(dir.file("table1.csv"));
  CHECK_THAT(t1, Contains("\n\"DFT Gaze, every weight fine-tuned (ours)\",281.2K,,281.2K,,"));  // a comma: quoted
  CHECK_THAT(t1, Contains(",4.2500,,every weight\n") && Contains("\n\"DFT Gaze (student), a grid head\",284.7K,"));
  const Json j = Json::parse(testing::read_file(report.json_path));
  CHECK(j.at("datasets").at("openeds").at("student_full").at("generalised_deg").get<double>() == 4.25);
  CHECK(j.at("datasets").at("openeds").at("teacher_grid").at("generalised_deg").get<double>() == 4.0);
  const Json& checks = j.at("checks");
  REQUIRE(checks.size() == 9);
  CHECK(checks[0].at("model") == "student");
  CHECK(checks[0].at("against") == "teacher");
  CHECK(checks[7].at("model") == "student_grid");
  CHECK(checks[7].at("against") == "teacher_grid");
  CHECK(checks[7].at("check") == "student_vs_teacher");
  CHECK_FALSE(checks[7].at("passes").get<bool>());
}
