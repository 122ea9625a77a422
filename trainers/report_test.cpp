#include "trainers/report.h"

#include <catch2/catch.hpp>

#include "libgaze/core/json.h"
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
  r.teacher = {"teacher", 3579104, {}};
  r.student = {"student", 123456, {}};  // not the paper's count: the report must show this one
  for (const std::string d : {"openeds", "aea"}) {
    r.teacher.datasets[d] = {4.0, 3.0, 3.5, 10.0, -1, {{0, 3.5}, {5, 3.0}}, 0.2};
    r.student.datasets[d] = {4.5, 3.2, 3.9, 10.0, 0.9, {{0, 3.9}, {5, 3.2}}, 0.1};
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
             Contains("| openeds | 10.00 | 0.450 (<= 0.5 ok) | 1.125 (<= 1.25 ok) | 3.90 -> 3.20 (lower ok)"));
  CHECK_THAT(report.markdown, Contains("| student openeds | 3.90 | 3.20 |"));
  CHECK(testing::read_file(report.csv_path)
            .rfind("setting,model,params,openeds_ours,openeds_paper,aea_ours,aea_paper\n"
                   "generalised,teacher,3.6M,4.0000,6.90,4.0000,1.94\n",
                   0) == 0);
  const Json j = Json::parse(testing::read_file(report.json_path));
  CHECK(j.at("params").at("student").get<int64_t>() == 123456);
  CHECK(j.at("datasets").at("aea").at("teacher").at("blink_auc").is_null());
  CHECK(j.at("datasets").at("aea").at("student").at("k_curve").at("5").get<double>() == 3.2);
  CHECK_THAT(testing::read_file(report.svg_path), Contains("<svg") && Contains("student aea"));
}
