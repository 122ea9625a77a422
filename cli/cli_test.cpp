// End-to-end tests of the `gaze` binary: output, exit codes and one-line errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "datasets/synth/renderer_version.h"
#include "libgaze/config/config.h"
#include "libgaze/core/json.h"
#include "libgaze/core/strings.h"
#include "libgaze/core/version.h"
#include "libgaze/io/checkpoint_file.h"
#include "tests/test_util.h"

using namespace gaze::testing;
using Catch::Contains;

namespace {
int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }
}  // namespace

TEST_CASE("gaze info prints the exact parameter counts", "[cli]") {
  const auto student = run_gaze("info");
  CHECK(student.exit_code == 0);
  CHECK_THAT(student.output, Contains("281,174") && Contains("14,434") && Contains("6,680"));
  const auto teacher = run_gaze("info model.arch=teacher --input 96x160");
  CHECK(teacher.exit_code == 0);
  CHECK_THAT(teacher.output, Contains("3,579,104") && Contains("191,704") && Contains("103,520") &&
                                 Contains("input 1x3x96x160") && Contains("320x3x5"));
  const auto json = run_gaze("--log-level off info --json -c " LIBGAZE_SOURCE_DIR "/configs/model/student.yaml");
  CHECK(json.exit_code == 0);
  CHECK_THAT(json.output, Contains("\"params\": 281174") && Contains("\"tunable\": 14434"));
}

TEST_CASE("gaze info --checkpoint describes the model a checkpoint holds, with its weights' CRC-32C", "[cli]") {
  TempDir dir;
  // A student whose config is the checkpoint's own: its weights as the arrays of a checkpoint file.
  const gaze::Config config = gaze::default_config({"model.dims=[16,32,64,128]", "data.input_size=[96,128]"});
  gaze::h5::Array weight;
  weight.shape = {2};
  weight.bytes = {1, 2, 3, 4, 5, 6, 7, 8};
  const gaze::ArrayList weights = {{"head.weight", weight}};
  const std::string path = dir.file("model.h5");
  gaze::write_checkpoint_file(path, {"adapters", 300, gaze::dump_config(config), weights, {}, {}});
  char crc[16];
  std::snprintf(crc, sizeof crc, "%08x", gaze::arrays_crc32c(weights));
  const auto text = run_gaze("info --checkpoint " + path);
  INFO(text.output);
  CHECK(text.exit_code == 0);
  CHECK_THAT(text.output, Contains("checkpoint " + path + "  stage adapters  step 300  1 weights  crc32c " + crc) &&
                              Contains("dims [16,32,64,128]  input 1x3x96x128"));
  const auto json = run_gaze("--log-level off info --json --checkpoint " + path);
  CHECK(json.exit_code == 0);
  const gaze::Json info = gaze::parse_json(json.output, "gaze info --json");
  CHECK(info["checkpoint"]["weights_crc32c"].get<uint32_t>() == gaze::arrays_crc32c(weights));
  CHECK(info["checkpoint"]["step"].get<int64_t>() == 300);
  // The model is the checkpoint's: a config beside it is a usage error, a damaged file names itself.
  CHECK(run_gaze("info --checkpoint " + path + " model.arch=teacher").exit_code == 2);
  const auto missing = run_gaze("info --checkpoint " + dir.file("gone.h5"));
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.output, Contains(dir.file("gone.h5")));
}

TEST_CASE("config errors are one clear line and exit 1", "[cli]") {
  TempDir dir;
  const std::string bad = dir.write("bad.yaml", "model:\n  arch: student\n  dimz: [1,2,3,4]\n");
  const auto r = run_gaze("info -c " + bad);
  CHECK(r.exit_code == 1);
  CHECK(r.output == "gaze: error: " + bad + ":3:3: unknown key 'model.dimz'; did you mean 'model.dims'?\n");
  const auto typed = run_gaze("info run.seed=abc");
  CHECK(typed.exit_code == 1);
  CHECK(count_lines(typed.output) == 1);
  CHECK_THAT(typed.output, Contains("run.seed: expected an integer, got 'abc'"));
  const auto size = run_gaze("info --input 10x");
  CHECK(size.exit_code == 1);
  CHECK_THAT(size.output, Contains("--input: expected HxW"));
}

TEST_CASE("usage errors exit 2 and --help works everywhere", "[cli]") {
  CHECK(run_gaze("").exit_code != 0);
  CHECK(run_gaze("frobnicate").exit_code == 2);
  CHECK(run_gaze("--log-level loud info").exit_code == 1);
  for (const char* cmd : {"--help", "info --help", "config --help", "import-checkpoint --help"}) {
    INFO(cmd);
    const auto r = run_gaze(cmd);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, Contains("Usage"));
  }
}

TEST_CASE("gaze config prints the resolved config, which reads back", "[cli]") {
  TempDir dir;
  const auto r = run_gaze("config model.arch=teacher run.seed=9");
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Contains("dims: [40, 80, 160, 320]") && Contains("seed: 9"));
  const std::string path = dir.write("resolved.yaml", r.output);
  const auto again = run_gaze("config -c " + path);
  CHECK(again.exit_code == 0);
  CHECK(again.output == r.output);
  const auto keys = run_gaze("config --keys run.seed=3");
  CHECK_THAT(keys.output, Contains("run.seed") && Contains("command line 'run.seed=3'"));
}

TEST_CASE("import-checkpoint rejects bad input without writing", "[cli]") {
  TempDir dir;
  const std::string junk = dir.write("junk.pt", "not a zip");
  const auto r = run_gaze("import-checkpoint " + junk + " -o " + dir.file("out.h5"));
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Contains("junk.pt: not a readable zip archive"));
  CHECK_FALSE(std::filesystem::exists(dir.file("out.h5")));
}

TEST_CASE("synth, pack, data info and dump run end to end", "[cli][data]") {
  TempDir dir;
  const std::string synth = "synth synth.out_dir=" + dir.path() +
                            " synth.participants=4 synth.train_frames=4 synth.validation_frames=3 synth.test_frames=6"
                            " synth.aea_frames=3 synth.openeds_size=[80,128] synth.aea_size=[48,128]";
  const auto made = run_gaze(synth);
  REQUIRE(made.exit_code == 0);
  CHECK_THAT(made.output, Contains("openeds") && Contains("frames/s"));
  const auto info = run_gaze("data info " + dir.path() + "/openeds data.openeds_size=[80,128]");
  CHECK(info.exit_code == 0);
  CHECK_THAT(info.output, Contains("items         8") && Contains("image size    80x128"));
  const auto dump = run_gaze("--log-level off data dump aea:" + dir.path() + "/aea --limit 2 data.eye=pair");
  CHECK(dump.exit_code == 0);
  CHECK_THAT(dump.output, Contains("key,participant,timestamp_us,gx,gy,gz\nsynth_p00_rec1/10000306,0,10000306,"));
  const auto pack = run_gaze("pack " + dir.path() + "/openeds -o " + dir.file("o.h5") + " data.openeds_size=[80,128]");
  CHECK(pack.exit_code == 0);
  CHECK_THAT(pack.output, Contains("packed 17 items"));  // all splits: 2 people x 4 train + 3 validation + 6 test
  const auto test_split = run_gaze("data info " + dir.file("o.h5") + " data.split=test");
  CHECK_THAT(test_split.output, Contains("items         6"));
  // With the source in a config file, a first key=value is an override, not a dataset path.
  std::ofstream(dir.file("o.yaml")) << "data: {source: " << dir.file("o.h5") << "}\n";
  const auto from_file = run_gaze("data info -c " + dir.file("o.yaml") + " data.split=test");
  CHECK(from_file.exit_code == 0);
  CHECK_THAT(from_file.output, Contains("items         6"));
  // The wrong expected size is a one-line error naming the file.
  const auto wrong = run_gaze("data info " + dir.path() + "/openeds");
  CHECK(wrong.exit_code == 1);
  CHECK_THAT(wrong.output, Contains("000.png: image is 128x80, expected 640x400"));
}

TEST_CASE("the skip-bad flag turns a bad label row into a counted skip", "[cli][data]") {
  TempDir dir;
  REQUIRE(run_gaze("synth synth.out_dir=" + dir.path() +
                   " synth.layouts=[openeds] synth.participants=3"
                   " synth.train_frames=3 synth.validation_frames=2 synth.test_frames=6 synth.openeds_size=[64,96]")
              .exit_code == 0);
  const std::string labels = dir.path() + "/openeds/train/labels/1000.txt";
  std::string text = read_file(labels);
  text.replace(text.find("001,"), 4, "001,nan,");
  std::ofstream(labels) << text;
  const auto strict = run_gaze("data info " + dir.path() + "/openeds data.openeds_size=[64,96]");
  CHECK(strict.exit_code == 1);
  CHECK_THAT(strict.output, Contains("1000.txt:2: x is not a finite number: 'nan'"));
  const auto skip = run_gaze("data info " + dir.path() + "/openeds data.openeds_size=[64,96] --skip-bad");
  CHECK(skip.exit_code == 0);
  CHECK_THAT(skip.output, Contains("items         2") && Contains("skipped 2 bad items"));
}

TEST_CASE("every shipped config resolves", "[cli][configs]") {
  int checked = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(LIBGAZE_SOURCE_DIR "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    INFO(entry.path().string());
    const auto r = run_gaze("config -c " + entry.path().string());
    CHECK(r.exit_code == 0);
    ++checked;
  }
  CHECK(checked >= 9);
}

TEST_CASE("train and run report bad input in one line", "[cli][train]") {
  TempDir dir;
  const auto no_data =
      run_gaze("train adapters train.init=" + dir.file("none.h5") + " data.source=" + dir.file("nope"));
  CHECK(no_data.exit_code == 1);
  CHECK(count_lines(no_data.output) == 1);
  CHECK_THAT(no_data.output, Contains("nope: dataset not found"));
  CHECK(run_gaze("train finetune").exit_code == 2);
  const auto bad = run_gaze("run " + dir.write("p.yaml", "pipeline: {datasets: [mpigaze]}\n"));
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.output,
             Contains("p.yaml:1:22: pipeline.datasets: unknown dataset 'mpigaze'; did you mean 'mpiigaze'?"));
}

TEST_CASE("export and bench report bad input in one line", "[cli][export]") {
  TempDir dir;
  const auto missing = run_gaze("export --checkpoint " + dir.file("none.h5") + " -o " + dir.file("k") +
                                " --users u.h5 " + dir.file("nope"));
  CHECK(missing.exit_code == 1);
  CHECK(count_lines(missing.output) == 1);
  CHECK_THAT(missing.output, Contains("none.h5"));
  CHECK(run_gaze("export --checkpoint x.h5").exit_code == 2);  // no -o
  const auto observer = run_gaze("export --checkpoint x.h5 -o " + dir.file("k") + " data.h5 export.observer=kl");
  CHECK(observer.exit_code == 1);
  CHECK_THAT(observer.output, Contains("export.observer"));
  const auto rounding =
      run_gaze("export --checkpoint x.h5 -o " + dir.file("k") + " data.h5 export.weight_rounding=gtpq");
  CHECK(rounding.exit_code == 1);
  CHECK_THAT(rounding.output, Contains("export.weight_rounding") && Contains("gptq"));
  const auto hidden = run_gaze("export --checkpoint x.h5 -o " + dir.file("k") + " data.h5 export.int8_hidden=al");
  CHECK(hidden.exit_code == 1);
  CHECK_THAT(hidden.output, Contains("export.int8_hidden") && Contains("all"));
  const auto size = run_gaze("bench --checkpoint x.h5 data.h5 'export.input_size=[100,100]'");
  CHECK(size.exit_code == 1);
  CHECK_THAT(size.output, Contains("multiples of 32"));
  CHECK_FALSE(std::filesystem::exists(dir.file("k")));
  // ONNX: the missing checkpoint named, an unknown format refused by the parser, --users refused.
  const auto onnx = run_gaze("export --format onnx --checkpoint " + dir.file("none.h5") + " -o " + dir.file("m.onnx"));
  CHECK(onnx.exit_code == 1);
  CHECK(count_lines(onnx.output) == 1);
  CHECK_THAT(onnx.output, Contains("none.h5"));
  CHECK(run_gaze("export --format tflite --checkpoint x.h5 -o " + dir.file("m")).exit_code == 2);
  const auto users = run_gaze("export --format onnx --checkpoint x.h5 -o " + dir.file("m.onnx") + " --users u.h5");
  CHECK(users.exit_code == 1);
  CHECK_THAT(users.output, Contains("--merge-user"));
  CHECK_FALSE(std::filesystem::exists(dir.file("m.onnx")));
  // personalize: a base model or a kernel folder (--kernel); a folder that is not a kernel is named.
  const auto neither = run_gaze("personalize -o " + dir.file("u") + " data.h5");
  CHECK(neither.exit_code == 1);
  CHECK_THAT(neither.output, Contains("--checkpoint is required (or --kernel)"));
  const auto not_kernel = run_gaze("personalize --kernel " + dir.path() + " -o " + dir.file("u") + " data.h5");
  CHECK(not_kernel.exit_code == 1);
  CHECK(count_lines(not_kernel.output) == 1);
  CHECK_THAT(not_kernel.output, Contains("is not a kernel folder"));
  CHECK_FALSE(std::filesystem::exists(dir.file("u")));
}

// `gaze run` on one tiny rendered dataset with a few steps per stage (about 4 s).
const std::string kTinyRun =
    " run.name=p run.threads=1 'pipeline.datasets=[openeds]'"
    " synth.participants=5 synth.train_frames=8 synth.validation_frames=6 synth.test_frames=12"
    " 'synth.openeds_size=[64,96]' 'data.openeds_size=[64,96]' 'data.input_size=[32,64]' train.batch_size=4"
    " mae.decoder_dim=16 'personalize.k_curve=[0,5]' personalize.replay=8"
    " 'pipeline.stages.teacher_mae.set=[train.steps=2]' 'pipeline.stages.distill.set=[train.steps=2]'"
    " 'pipeline.stages.teacher_adapters.set=[train.steps=2]' 'pipeline.stages.student_adapters.set=[train.steps=2]'"
    " 'pipeline.stages.personalize.set=[personalize.steps=2]'";

// `gaze run configs/pipeline/<file>` at the tiny size into `dir` (run name p), plus `extra`.
auto run_tiny_pipeline(const TempDir& dir, const std::string& file, const std::string& extra = "") {
  const std::string pipeline = std::string(LIBGAZE_SOURCE_DIR) + "/configs/pipeline/" + file;
  return run_gaze("run " + pipeline + " run.out_dir=" + dir.path() + kTinyRun + " " + extra);
}

TEST_CASE("gaze run on the paper's protocol: RGB pretraining and distillation, a report from the run",
          "[cli][run][paper]") {
  TempDir dir;
  const auto r = run_tiny_pipeline(dir, "paper.yaml", "synth.images=12 'synth.image_size=[48,64]'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // Teacher pretraining and distillation read the natural-image folder in colour.
  for (const char* stage : {"p/teacher_mae/config.yaml", "p/distill/config.yaml"}) {
    CHECK_THAT(read_file(dir.file(stage)),
               Contains("source: folder:" + dir.file("p/data/images")) && Contains("colour: true"));
  }
  CHECK_THAT(read_file(dir.file("p/student_adapters_openeds/config.yaml")),
             Contains("gaze_loss: l1") && Contains("clusters: 15") && Contains("colour: false"));
  CHECK(std::filesystem::exists(dir.file("p/data/images/class_00")));
  // The report: Table 3 cells are the run's own evaluation, and every deviation is stated.
  const gaze::Json report = gaze::parse_json(read_file(dir.file("p/report.json")), "report.json");
  const gaze::Json eval =
      gaze::parse_json(read_file(dir.file("p/student_adapters_openeds/eval_validation.json")), "eval");
  const double generalised = report["datasets"]["openeds"]["student"]["generalised_deg"].get<double>();
  CHECK(generalised == eval["mean_deg"].get<double>());
  CHECK(report["datasets"]["openeds"]["student"]["personalised_per"] == "participant");
  char cell[32];
  std::snprintf(cell, sizeof cell, "%.4f", generalised);
  CHECK_THAT(read_file(dir.file("p/table3.csv")), Contains(std::string("generalised,student,281K,") + cell + ",7.82"));
  const std::string md = read_file(dir.file("p/report.md"));
  CHECK_THAT(md, Contains("Deviations from the paper") && Contains("not ImageNet-1K") &&
                     Contains("set pipeline.import_teacher") && Contains("(people unseen in training)") &&
                     Contains("never re-weights the L1 gaze loss"));
  CHECK(report["deviations"].size() == 3);  // teacher, distillation data, rendered datasets
}

TEST_CASE("gaze reproduce table1/table2: every paper row, ours beside it or why not, from the run's own files",
          "[cli][reproduce][baselines]") {
  TempDir dir;
  // The MPII stand-ins and two baselines (GazeTR-Hybrid: faces only, so not on MPIIGaze; RT-Gene
  // on eye pairs).
  const std::string args = " -o " + dir.path() + kTinyRun +
                           " 'pipeline.datasets=[mpiigaze,mpiifacegaze]' 'pipeline.baselines=[gazetr_hybrid,rtgene]'"
                           " synth.mpii_images=16 synth.mpii_evaluation=12 'synth.mpii_frame=[120,200]'"
                           " 'pipeline.stages.baseline.set=[train.steps=2,train.batch_size=4,personalize.steps=1]'";
  const auto r = run_gaze("reproduce table1" + args);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Contains("# Table 1") && Contains("table2.csv"));
  const auto csv = [&](const char* name) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& line : gaze::split(read_file(dir.file(std::string("p/") + name)), '\n')) {
      if (line.empty()) continue;
      std::vector<std::string> cells;  // no quoted commas in the cells checked below
      for (const auto& cell : gaze::split(line, ',')) cells.push_back(cell);
      rows.push_back(cells);
    }
    return rows;
  };
  const auto t1 = csv("table1.csv"), t2 = csv("table2.csv");
  REQUIRE(t1.size() == 1 + 5 + 1);  // header + the paper's five rows + ours (full fine-tuning)
  REQUIRE(t2.size() == 1 + 8 + 1);  // + the three quoted source-free rows
  CHECK(t1[6][0] == "\"DFT Gaze");  // "DFT Gaze, every weight fine-tuned (ours)", split at its comma
  CHECK(t1[6].back() == "every weight fine-tuned from the distilled student (train.tune=all)");
  CHECK(t1[0][0] == "model");
  CHECK(t1[0][5] == "mpiigaze_ours");
  CHECK(t1[0][12] == "openeds_paper");
  // GazeTR-Hybrid: MPIIFaceGaze from the run's own evaluation; MPIIGaze not run, as in the paper.
  const gaze::Json eval =
      gaze::parse_json(read_file(dir.file("p/baseline_gazetr_hybrid_mpiifacegaze/eval_validation.json")), "eval");
  char cell[32];
  std::snprintf(cell, sizeof cell, "%.4f", eval["mean_deg"].get<double>());
  CHECK(t1[3][0] == "GazeTR-Hybrid (Cheng & Lu 2022)");
  CHECK(t1[3][1] == "11.42M");
  CHECK_THAT(t1[3][5], Contains("not run: GazeTR-Hybrid takes a face"));
  CHECK(t1[3][7] == cell);
  CHECK(t1[3][8] == "4.00");
  CHECK_THAT(t1[1][5], Contains("not run: not in pipeline.baselines"));  // GazeNet
  // RT-Gene sees a frame's two eyes side by side (36x120) from packs of eye pairs, on both datasets.
  for (const char* d : {"mpiigaze", "mpiifacegaze"}) {
    INFO(d);
    const std::string run = std::string("p/baseline_rtgene_") + d;
    CHECK_THAT(read_file(dir.file(run + "/config.yaml")), Contains("input_size: [36, 120]") && Contains("_pairs.h5"));
    std::snprintf(
        cell, sizeof cell, "%.4f",
        gaze::parse_json(read_file(dir.file(run + "/eval_validation.json")), "eval")["mean_deg"].get<double>());
    CHECK(t1[2][d == std::string("mpiigaze") ? 5 : 7] == cell);
  }
  CHECK(t1[2][0] == "RT-Gene (Fischer et al. 2018)");
  CHECK(std::filesystem::exists(dir.file("p/packs/mpiigaze_pairs.h5")));
  CHECK_THAT(t1[5][9], Contains("not run: AEA is not in pipeline.datasets"));
  CHECK(t1[5][3] == "14.43K");  // DFT Gaze's tunable adapters + head, counted
  CHECK(t1[5][6] == "6.13");
  CHECK_THAT(t2[4][7], Contains("not run: source-free"));  // PNP-GA, quoted by the paper
  CHECK(t2[4][8] == "6.91");
  for (const char* chart : {"p/table1_cdf_mpiigaze.png", "p/table1_cdf_mpiifacegaze.png", "p/table2_k_mpiigaze.png",
                            "p/table2_k_mpiifacegaze.png"}) {
    INFO(chart);
    CHECK(std::filesystem::file_size(dir.file(chart)) > 2000);
  }
  const std::string md = read_file(dir.file("p/table2.md"));
  CHECK_THAT(md, Contains("# Table 2") && Contains("[1] ") && Contains("config ") && Contains("libgaze ") &&
                     Contains("(table2_k_mpiifacegaze.png)") && Contains("MPIIGaze (ours, stand-in)"));
  CHECK_THAT(read_file(dir.file("p/report.md")), Contains("RT-Gene on MPIIGaze: one sample per listed frame"));
  const gaze::Json report = gaze::parse_json(read_file(dir.file("p/report.json")), "report.json");
  CHECK(report["not_run"]["gazetr_hybrid"]["mpiigaze"].is_string());
  CHECK(report["datasets"]["mpiifacegaze"]["gazetr_hybrid"]["personalised_deg"].is_number());
  // table2 re-reports the same run without training anything again.
  const auto again = run_gaze("reproduce table2" + args);
  REQUIRE(again.exit_code == 0);
  CHECK_THAT(again.output, Contains("# Table 2") && !Contains("starting baseline from step 0"));
}

TEST_CASE("mpii_protocol=leave_one_out holds every person out once and averages their scores",
          "[cli][reproduce][lopo]") {
  TempDir dir;
  const auto r = run_gaze("reproduce table1 -o " + dir.path() + kTinyRun +
                          " 'pipeline.datasets=[mpiifacegaze]' 'pipeline.baselines=[gazetr_hybrid]'"
                          " pipeline.mpii_protocol=leave_one_out synth.participants=3 synth.mpii_images=12"
                          " synth.mpii_evaluation=12 'synth.mpii_frame=[120,200]'"
                          " 'pipeline.stages.baseline.set=[train.steps=2,train.batch_size=4,personalize.steps=1]'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const gaze::Json report = gaze::parse_json(read_file(dir.file("p/report.json")), "report.json");
  for (const std::string run : {"student_adapters", "teacher_adapters", "baseline_gazetr_hybrid"}) {
    INFO(run);
    double sum = 0;
    for (int person = 0; person < 3; ++person) {
      const std::string folder = "p/" + run + "_mpiifacegaze_p0" + std::to_string(person);
      CHECK_THAT(read_file(dir.file(folder + "/config.yaml")), Contains("hold_out: " + std::to_string(person)));
      sum += gaze::parse_json(read_file(dir.file(folder + "/eval_validation.json")), "eval")["mean_deg"].get<double>();
    }
    const std::string model = run == "student_adapters"   ? "student"
                              : run == "teacher_adapters" ? "teacher"
                                                          : "gazetr_hybrid";
    CHECK(report["datasets"]["mpiifacegaze"][model]["generalised_deg"].get<double>() == Approx(sum / 3).epsilon(1e-9));
    // Each fold scores its one held-out person: the people are the folds' people, their mean the
    // paper's mean over people.
    const gaze::Json& people = report["datasets"]["mpiifacegaze"][model]["people_deg"];
    REQUIRE(people.size() == 3);
    double people_sum = 0;
    for (int person = 0; person < 3; ++person) {
      const std::string eval = "p/" + run + "_mpiifacegaze_p0" + std::to_string(person) + "/eval_validation.json";
      const double scored = gaze::parse_json(read_file(dir.file(eval)), "eval")["mean_deg"].get<double>();
      CHECK(people[std::to_string(person)].get<double>() == Approx(scored).epsilon(1e-12));
      people_sum += people[std::to_string(person)].get<double>();
    }
    CHECK(people_sum / 3 == Approx(sum / 3).epsilon(1e-12));
  }
  const std::string md = read_file(dir.file("p/report.md"));
  CHECK_THAT(md, Contains("leave-one-person-out as the paper") && !Contains("one leave-people-out fold"));
}

TEST_CASE("gaze reproduce fig8 times both models here beside the paper's Pi 4 numbers", "[cli][fig8]") {
  TempDir dir;
  const auto r = run_gaze("reproduce fig8 --frames 5 -o " + dir.path() + " 'export.input_size=[32,64]' run.threads=1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const std::string md = read_file(dir.file("fig8.md"));
  CHECK_THAT(md, Contains("| ConvNeXt V2-Atto (teacher) | 3579104 | 928.84 |") &&
                     Contains("| DFT Gaze (student) | 281174 | 426.66 |") && Contains("32x64") &&
                     Contains("our kernel cannot lower the teacher yet"));
  const gaze::Json j = gaze::parse_json(read_file(dir.file("fig8.json")), "fig8.json");
  REQUIRE(j["rows"].size() == 2);
  CHECK(std::filesystem::file_size(dir.file("fig8.png")) > 2000);  // the latency bars, by device
  CHECK(j["rows"][0]["kernel_p50_ms_here"].is_null());
  CHECK(j["rows"][0]["torch_fp32_p50_ms_here"].get<double>() > 0);
  CHECK(j["rows"][1]["kernel_p50_ms_here"].get<double>() > 0);
  CHECK(j["rows"][1]["torch_fp32_p50_ms_here"].get<double>() > 0);
}

TEST_CASE("gaze run --protocol states the run's deviations and choices without running it", "[cli][run]") {
  TempDir dir;
  const std::string demo = std::string(LIBGAZE_SOURCE_DIR) + "/configs/pipeline/demo.yaml";
  const std::string out = "run.out_dir=" + dir.path();
  const std::string shared = "see a few of one dataset's held-out people in the other's images";
  // The demo renders OpenEDS and AEA from one population and pretrains on eye images: stated.
  const auto r = run_gaze("run " + demo + " --protocol " + out);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Contains("Deviations from the paper:") && Contains("- datasets: rendered stand-ins") &&
                           Contains(shared) && Contains("Values the paper does not state (ours):") &&
                           Contains("FCMAE: mask ratio"));
  CHECK(std::filesystem::is_empty(dir.path()));  // nothing rendered, packed or trained
  // One layout rendered, or both label-free stages on natural images: no shared people to state.
  CHECK_THAT(run_gaze("run " + demo + " --protocol " + out + " 'pipeline.datasets=[openeds]'").output,
             !Contains(shared));
  const auto images =
      run_gaze("run " + demo + " --protocol " + out + " pipeline.teacher_source=images pipeline.distill_source=images");
  CHECK_THAT(images.output, Contains("distillation data: rendered natural-image stand-ins") && !Contains(shared));
  // Either on eyes brings it back.
  CHECK_THAT(run_gaze("run " + demo + " --protocol " + out + " pipeline.teacher_source=images").output,
             Contains(shared));
}

TEST_CASE("gaze run composes each stage from its file, the shared settings and its overrides", "[cli][run]") {
  TempDir dir;
  const std::string demo = std::string(LIBGAZE_SOURCE_DIR) + "/configs/pipeline/demo.yaml";
  const std::string stages =
      "'pipeline.stages.distill.set=[train.steps=3]'"
      " 'pipeline.stages.student_adapters.set=[train.steps=2,train.augmentation.focal=-1,train.augmentation.warp=true,"
      "openeds:train.lr=0.002,"
      "aea:train.lr=0.5]'";
  const auto r = run_tiny_pipeline(dir, "demo.yaml", stages);
  REQUIRE(r.exit_code == 0);
  // A dataset's own entry reaches that dataset's run of the stage only (the run covers no AEA).
  CHECK_THAT(read_file(dir.file("p/student_adapters_openeds/config.yaml")), Contains("lr: 0.002"));
  CHECK_THAT(read_file(dir.file("p/teacher_adapters_openeds/config.yaml")), !Contains("lr: 0.002"));
  // focal=-1 (auto) becomes the renderer's focal length on the data the pipeline rendered.
  CHECK_THAT(read_file(dir.file("p/student_adapters_openeds/config.yaml")),
             Contains("focal: 0.7333") && Contains("warp: true") && Contains("tilt: [0, 0]"));
  // So does the camera's tilt, which the label turns in.
  const auto tilted = run_tiny_pipeline(dir, "demo.yaml", stages + " run.name=t 'synth.camera_tilt_deg=[5,10]'");
  INFO(tilted.output);
  REQUIRE(tilted.exit_code == 0);
  CHECK_THAT(read_file(dir.file("t/student_adapters_openeds/config.yaml")), Contains("tilt: [5, 10]"));
  CHECK_THAT(read_file(dir.file("t/teacher_adapters_openeds/config.yaml")), Contains("tilt: [0, 0]"));
  CHECK_THAT(read_file(dir.file("p/teacher_adapters_openeds/config.yaml")), Contains("focal: 0  #"));
  // Another recipe on the same data retrains, but neither renders nor packs the data again.
  CHECK_THAT(r.output, Contains("pipeline: rendering synthetic") && Contains("packed"));
  const auto other =
      run_tiny_pipeline(dir, "demo.yaml", stages + " 'pipeline.stages.personalize.set=[personalize.steps=3]'");
  INFO(other.output);
  REQUIRE(other.exit_code == 0);
  CHECK_THAT(other.output, !Contains("rendering synthetic") && !Contains("packed") && !Contains("scores from"));
  const gaze::Json other_report = gaze::parse_json(read_file(dir.file("p/report.json")), "report.json");
  // Stamps and run configs written by a libgaze without some key (here train.ema) are still
  // the same data and the same runs: an upgrade neither re-renders nor refuses the run folders.
  for (const char* file : {"p/data/synth.done", "p/packs/openeds.done", "p/distill/config.yaml"}) {
    std::string text = read_file(dir.file(file));
    const size_t ema = text.find("  ema: 0");
    REQUIRE(ema != std::string::npos);
    text.erase(ema, text.find('\n', ema) + 1 - ema);
    std::ofstream(dir.file(file), std::ios::trunc) << text;
  }
  const auto upgraded =
      run_tiny_pipeline(dir, "demo.yaml", stages + " 'pipeline.stages.personalize.set=[personalize.steps=3]'");
  INFO(upgraded.output);
  REQUIRE(upgraded.exit_code == 0);
  CHECK_THAT(upgraded.output, !Contains("rendering synthetic") && !Contains("packed") &&
                                  Contains("distill: resuming distill at step 3"));
  // Nothing retrained, so every model's scores are its run's scores.json, to the last digit (the
  // time per user included), when the binary names the code it was built from; one built from
  // uncommitted code changes ("+changes") scores afresh. (This test and the gaze binary are built
  // from the same tree, so they agree on it.)
  const std::string code = gaze::libgaze_code_commit();
  const bool keyed = code != "unknown" && code.find('+') == std::string::npos;
  const gaze::Json upgraded_report = gaze::parse_json(read_file(dir.file("p/report.json")), "report.json");
  INFO("libgaze code " << code);
  CHECK(std::filesystem::exists(dir.file("p/student_adapters_openeds/scores.json")) == keyed);
  if (keyed) {
    CHECK_THAT(upgraded.output,
               Contains("student_adapters_openeds: scores from " + dir.file("p/student_adapters_openeds/scores.json")));
    CHECK(upgraded_report["datasets"] == other_report["datasets"]);
    // A damaged cache is a warning, not a failed run: that model is scored again, its file
    // written anew.
    std::ofstream(dir.file("p/student_adapters_openeds/scores.json"), std::ios::trunc) << "{\"key\": ";
    const auto damaged =
        run_tiny_pipeline(dir, "demo.yaml", stages + " 'pipeline.stages.personalize.set=[personalize.steps=3]'");
    INFO(damaged.output);
    CHECK(damaged.exit_code == 0);
    CHECK_THAT(damaged.output, Contains("student_adapters_openeds/scores.json: invalid JSON") &&
                                   Contains("scoring again") && Contains("teacher_adapters_openeds: scores from"));
    CHECK(gaze::parse_json(read_file(dir.file("p/student_adapters_openeds/scores.json")), "scores").contains("key"));
  } else {
    CHECK_THAT(upgraded.output, !Contains("scores from"));
  }
  // Another renderer drew other eyes from the same settings: a folder rendered by it (or by a
  // libgaze before the stamp named the renderer) is refused, naming the folder to delete, and
  // nothing in it changes (its stages were trained on those eyes).
  {
    const std::string stamped = read_file(dir.file("p/data/synth.done"));
    REQUIRE(gaze::starts_with(stamped, "# renderer: " + std::to_string(gaze::kSynthRendererVersion) + "\n"));
    for (const std::string& first : {std::string("# renderer: 0\n"), std::string()}) {
      const std::string old = first + stamped.substr(stamped.find('\n') + 1);
      std::ofstream(dir.file("p/data/synth.done"), std::ios::trunc) << old;
      const auto refused =
          run_tiny_pipeline(dir, "demo.yaml", stages + " 'pipeline.stages.personalize.set=[personalize.steps=3]'");
      CHECK(refused.exit_code == 1);
      CHECK_THAT(refused.output, Contains("p/data/synth.done: this run folder's data was rendered by " +
                                          std::string(first.empty() ? "a libgaze whose stamp named no renderer"
                                                                    : "renderer version 0")) &&
                                     Contains("delete " + dir.file("p")) && !Contains("rendering synthetic"));
      CHECK(read_file(dir.file("p/data/synth.done")) == old);
    }
    std::ofstream(dir.file("p/data/synth.done"), std::ios::trunc) << stamped;
  }
  // The version is a comment: the stamp still loads as a config, as `gaze synth -c` loads it.
  CHECK(run_gaze("info -c " + dir.file("p/data/synth.done")).exit_code == 0);
  // The distillation stage: its file (mask ratio, kd weight), the demo's shared keys (warm-up
  // 20 instead of the file's 100), the command line's shared keys (batch 4), its own `set`.
  const std::string distill = read_file(dir.file("p/distill/config.yaml"));
  CHECK_THAT(distill, Contains("steps: 3") && Contains("warmup_steps: 20") && Contains("batch_size: 4") &&
                          Contains("kd_weight: 0.5") && Contains("name: distill"));
  CHECK_THAT(read_file(dir.file("p/teacher_mae/config.yaml")), Contains("steps: 2") && Contains("norm_pix_loss: true"));
  // The report's counts come from the trained models.
  const std::string report = read_file(dir.file("p/report.md"));
  CHECK_THAT(report, Contains("| generalised | ConvNeXt V2-A (teacher) | 3.6M |") &&
                         Contains("| generalised | DFT Gaze (student) | 281K |") && Contains("input 32x64"));
  CHECK_THAT(read_file(dir.file("p/report.json")), Contains("\"student\": 281174"));
  // On data it is given, focal=-1 leaves the labels: that camera's focal length is not known.
  const auto given = run_tiny_pipeline(
      dir, "demo.yaml",
      stages + " run.name=g 'synth.camera_tilt_deg=[5,10]' pipeline.openeds=" + dir.file("p/data/openeds"));
  INFO(given.output);
  REQUIRE(given.exit_code == 0);
  CHECK_THAT(given.output, !Contains("rendering synthetic"));
  // The camera turn (warp) goes with it: a run on given data is not refused for it.
  CHECK_THAT(read_file(dir.file("g/student_adapters_openeds/config.yaml")),
             Contains("focal: 0  #") && Contains("warp: false") && Contains("tilt: [0, 0]"));
  // A learning curve over people: every stage keeps the first N train people of packs that
  // hold everyone (the pack's stamp records -1: runs with another N reuse the pack).
  const auto fewer = run_tiny_pipeline(dir, "demo.yaml", stages + " run.name=n data.train_people=1");
  INFO(fewer.output);
  REQUIRE(fewer.exit_code == 0);
  CHECK_THAT(fewer.output, Contains("training on pack " + dir.file("n/packs/openeds.h5") +
                                    " (train, the train split's first 1 participant ids): "));
  CHECK_THAT(read_file(dir.file("n/distill/config.yaml")), Contains("train_people: 1"));
  CHECK_THAT(read_file(dir.file("n/packs/openeds.done")), Contains("train_people: -1"));
  // A run refused while its stages are composed: exit 1, every message said, nothing written.
  const auto check_refused = [&](const std::string& name, const std::string& args,
                                 const std::vector<std::string>& messages) {
    const auto r = run_gaze("run " + demo + " run.out_dir=" + dir.path() + " run.name=" + name + " " + args);
    INFO(r.output);
    CHECK(r.exit_code == 1);
    for (const std::string& message : messages) CHECK_THAT(r.output, Contains(message));
    CHECK(!std::filesystem::exists(dir.file(name)));
  };
  // A broken stage override is reported before anything runs, naming the stage key.
  check_refused("q", "'pipeline.stages.distill.set=[train.stepz=3]'",
                {"pipeline.stages.distill.set", "did you mean 'train.steps'?"});
  // So is a focal length on a stage that reads eye pairs (RT-Gene's): two cameras, not one.
  check_refused("s", "pipeline.baselines=[rtgene] 'pipeline.stages.baseline.set=[train.augmentation.focal=0.7]'",
                {"pipeline.stages.baseline: train.augmentation.focal: turns labels in one eye camera's frame: not on "
                 "eye pairs"});
  // And the renderer's yawed tilt on AEA's right eyes left unmirrored: they see the yaw reversed.
  check_refused("u",
                "'synth.camera_tilt_deg=[5,10]' data.mirror_right=false "
                "'pipeline.stages.student_adapters.set=[train.augmentation.focal=-1]'",
                {"pipeline.stages.student_adapters: train.augmentation.tilt: the renderer's camera is yawed, and "
                 "data.mirror_right=false"});
  // So is a missing stage file, even for the last stage: nothing is rendered or trained first.
  check_refused("r", "pipeline.stages.personalize.config=" + dir.file("nope.yaml"),
                {"pipeline.stages.personalize: " + dir.file("nope.yaml") + ": config file not found"});
  // Last, as it redraws the folder's data: other renderer settings in the same folder are rendered
  // and packed anew (the pack's own stamp, its data settings, is unchanged), then the stages
  // trained on the old data refuse to mix.
  const auto redrawn = run_tiny_pipeline(dir, "demo.yaml", stages + " synth.participants=13");
  CHECK(redrawn.exit_code == 1);
  CHECK_THAT(redrawn.output, Contains("rendering synthetic") && Contains("synth.participants"));
  const auto packed_items = [](const std::string& output) {
    const size_t at = output.find("packed ");
    return at == std::string::npos ? -1L : std::stol(output.substr(at + 7));
  };
  CHECK(packed_items(redrawn.output) > packed_items(r.output));  // 13 people's frames, not 5's
}

TEST_CASE("pipeline.seeds trains every stage per seed and reports the mean and spread over seeds",
          "[cli][run][seeds]") {
  TempDir dir;
  // Two validation people (2 train, 1 test): a standard error over the held-out people.
  const auto r = run_tiny_pipeline(
      dir, "demo.yaml", "'pipeline.seeds=[0,3]' synth.train_participants=0.4 synth.validation_participants=0.4");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // run.seed (0) keeps the plain names; seed 3 trains its own of every stage, seeded 3.
  for (const std::string run : {"teacher_mae", "distill", "teacher_adapters_openeds", "student_adapters_openeds"}) {
    INFO(run);
    CHECK_THAT(read_file(dir.file("p/" + run + "/config.yaml")), Contains("seed: 0"));
    CHECK_THAT(read_file(dir.file("p/" + run + "_s3/config.yaml")), Contains("seed: 3"));
  }
  CHECK(std::filesystem::exists(dir.file("p/users/student_openeds_s3")));
  CHECK_THAT(read_file(dir.file("p/distill_s3/config.yaml")), Contains("teacher_mae_s3/model.h5"));
  // Each cell is the mean of the seeds' own evaluations, with their sample standard deviation.
  const gaze::Json report = gaze::parse_json(read_file(dir.file("p/report.json")), "report.json");
  CHECK(report["seeds"] == gaze::Json({0, 3}));
  for (const std::string model : {"teacher", "student"}) {
    INFO(model);
    std::vector<double> e;
    std::vector<gaze::Json> people;
    for (const std::string suffix : {"", "_s3"}) {
      const std::string eval = "p/" + model + "_adapters_openeds" + suffix + "/eval_validation.json";
      const gaze::Json j = gaze::parse_json(read_file(dir.file(eval)), "eval");
      e.push_back(j["mean_deg"].get<double>());
      people.push_back(j["participants"]);
    }
    const gaze::Json& cell = report["datasets"]["openeds"][model];
    CHECK(cell["generalised_deg"].get<double>() == Approx((e[0] + e[1]) / 2).epsilon(1e-9));
    CHECK(cell["generalised_sd_deg"].get<double>() == Approx(std::fabs(e[0] - e[1]) / std::sqrt(2.0)).epsilon(1e-9));
    REQUIRE(cell["seeds"].size() == 2);
    CHECK(cell["seeds"][1]["seed"].get<int64_t>() == 3);
    CHECK(cell["seeds"][1]["generalised_deg"].get<double>() == Approx(e[1]).epsilon(1e-9));
    // Each held-out person's error as each seed's evaluation scored them; the cell's, their mean.
    REQUIRE(people[0].size() == 2);
    REQUIRE(cell["people_deg"].size() == people[0].size());
    for (const auto& [id, scored] : people[0].items()) {
      INFO("person " << id);
      const double s0 = scored["mean_deg"].get<double>(), s3 = people[1].at(id)["mean_deg"].get<double>();
      CHECK(cell["seeds"][0]["people_deg"][id].get<double>() == Approx(s0).epsilon(1e-12));
      CHECK(cell["seeds"][1]["people_deg"][id].get<double>() == Approx(s3).epsilon(1e-12));
      CHECK(cell["people_deg"][id].get<double>() == Approx((s0 + s3) / 2).epsilon(1e-12));
    }
    // The baseline's error on the same people (the same data on every seed): weighted by their
    // open-eye frames, their mean is the cell's baseline.
    REQUIRE(cell["baseline_people_deg"].size() == people[0].size());
    double frames = 0, sum = 0;
    for (const auto& [id, scored] : people[0].items()) {
      frames += scored["frames"].get<double>();
      sum += scored["frames"].get<double>() * cell["baseline_people_deg"][id].get<double>();
    }
    CHECK(sum / frames == Approx(cell["mean_gaze_baseline_deg"].get<double>()).epsilon(1e-9));
  }
  CHECK(report["checks"].size() == 3);
  CHECK_THAT(read_file(dir.file("p/report.md")), Contains("mean over training seeds 0, 3") && Contains(" ± ") &&
                                                     Contains("| its standard error over the held-out people |") &&
                                                     Contains(" participants) |"));
  // A seed listed twice is refused before anything runs.
  const auto twice =
      run_gaze("run " + std::string(LIBGAZE_SOURCE_DIR) + "/configs/pipeline/demo.yaml run.out_dir=" + dir.path() +
               " run.name=q 'pipeline.seeds=[1,1]'");
  CHECK(twice.exit_code == 1);
  CHECK_THAT(twice.output, Contains("pipeline.seeds") && Contains("seed 1 is listed twice"));
  CHECK(!std::filesystem::exists(dir.file("q")));
}

TEST_CASE("pipeline.full_finetune and pipeline.variants add our own rows beside the paper's", "[cli][run]") {
  TempDir dir;
  const auto r = run_tiny_pipeline(
      dir, "demo.yaml",
      "pipeline.full_finetune=true 'pipeline.stages.student_full.set=[train.lr=0.0009765625]' "
      "'pipeline.variants=[{name: grid, title: a 2x2 grid head, set: [\"model.head.grid=[2,2]\"], "
      "student_set: [train.augmentation.shift=0.0625]}, {name: grid_b, set: [\"model.head.grid=[2,2]\"], "
      "student_set: [train.augmentation.shift=0.125]}, {name: grid_c, models: [teacher], set: "
      "[\"model.head.grid=[2,2]\"], teacher_set: [train.lr=0.0009765625]}]'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // student_adapters' file and set (steps 2), then tune=all, then student_full's own set.
  const std::string config = read_file(dir.file("p/student_full_openeds/config.yaml"));
  CHECK_THAT(config, Contains("tune: all") && Contains("lr: 0.0009765625") && Contains("steps: 2") &&
                         Contains("distill/model.h5"));
  CHECK(std::filesystem::exists(dir.file("p/users/student_full_openeds")));
  const gaze::Json report = gaze::parse_json(read_file(dir.file("p/report.json")), "report.json");
  const double eval =
      gaze::parse_json(read_file(dir.file("p/student_full_openeds/eval_validation.json")), "eval")["mean_deg"]
          .get<double>();
  CHECK(report["datasets"]["openeds"]["student_full"]["generalised_deg"].get<double>() == eval);
  CHECK_THAT(read_file(dir.file("p/report.md")),
             Contains("| generalised | DFT Gaze, every weight fine-tuned (ours) |") &&
                 Contains("our row \"DFT Gaze, every weight fine-tuned\""));
  // The variant: both models' adapters again, each from its own pretrained network, with the
  // stage's own set (steps 2) and then the variant's.
  const std::string teacher_grid = read_file(dir.file("p/teacher_grid_openeds/config.yaml"));
  const std::string student_grid = read_file(dir.file("p/student_grid_openeds/config.yaml"));
  CHECK_THAT(teacher_grid, Contains("grid: [2, 2]") && Contains("teacher_mae/model.h5") && Contains("arch: teacher") &&
                               Contains("steps: 2"));
  CHECK_THAT(student_grid, Contains("grid: [2, 2]") && Contains("distill/model.h5") && Contains("steps: 2") &&
                               Contains("shift: 0.0625"));
  CHECK_THAT(teacher_grid, !Contains("shift: 0.0625"));  // student_set is the student's alone
  CHECK_THAT(read_file(dir.file("p/student_adapters_openeds/config.yaml")), Contains("grid: [1, 1]"));
  CHECK(std::filesystem::exists(dir.file("p/users/teacher_grid_openeds")));
  const double grid_eval =
      gaze::parse_json(read_file(dir.file("p/student_grid_openeds/eval_validation.json")), "eval")["mean_deg"]
          .get<double>();
  CHECK(report["datasets"]["openeds"]["student_grid"]["generalised_deg"].get<double>() == grid_eval);
  // Checks: the paper's student, the full row against the paper's teacher, the variant's
  // student against the variant's teacher.
  REQUIRE(report["checks"].size() == 12);
  CHECK(report["checks"][3]["model"] == "student_full");
  CHECK(report["checks"][3]["against"] == "teacher");
  CHECK(report["checks"][6]["model"] == "student_grid");
  CHECK(report["checks"][6]["against"] == "teacher_grid");
  // A second variant whose teacher stage is the first's unchanged: trained once, its scores
  // shared; its student, changed, trains and is checked against that teacher.
  CHECK(!std::filesystem::exists(dir.file("p/teacher_grid_b_openeds")));
  CHECK(!std::filesystem::exists(dir.file("p/users/teacher_grid_b_openeds")));
  CHECK(std::filesystem::exists(dir.file("p/teacher_grid_c_openeds/model.h5")));  // its teacher_set changes it
  CHECK_THAT(read_file(dir.file("p/student_grid_b_openeds/config.yaml")), Contains("shift: 0.125"));
  const auto& openeds = report["datasets"]["openeds"];
  CHECK(openeds["teacher_grid_b"]["generalised_deg"].get<double>() ==
        openeds["teacher_grid"]["generalised_deg"].get<double>());
  CHECK(openeds["teacher_grid_b"]["personalised_deg"].get<double>() ==
        openeds["teacher_grid"]["personalised_deg"].get<double>());
  CHECK(report["checks"][9]["model"] == "student_grid_b");
  CHECK(report["checks"][9]["against"] == "teacher_grid_b");
  CHECK_THAT(read_file(dir.file("p/report.md")),
             Contains("row teacher_grid_b: teacher_grid's stage unchanged, so trained once"));
  CHECK_THAT(read_file(dir.file("p/report.md")),
             Contains("| generalised | DFT Gaze (student), a 2x2 grid head |") &&
                 Contains("| openeds | student_grid vs teacher_grid |") && Contains("our variant \"grid\"") &&
                 Contains("again with [model.head.grid=[2,2]], the student's with [train.augmentation.shift=0.0625]"));
}

namespace {

// The largest relative difference, |u - v| / max(1, |u|), between two checkpoints' /model
// arrays (float32), and where; both must hold the same names and shapes.
std::pair<double, std::string> max_weight_difference(const std::string& a, const std::string& b) {
  const gaze::CheckpointFile x = gaze::read_checkpoint_file(a), y = gaze::read_checkpoint_file(b);
  REQUIRE(x.model.size() == y.model.size());
  double worst = 0;
  std::string where;
  for (size_t i = 0; i < x.model.size(); ++i) {
    const auto& [name, u] = x.model[i];
    const auto& v = y.model[i].second;
    INFO(name);
    REQUIRE(y.model[i].first == name);
    REQUIRE(u.shape == v.shape);
    if (u.dtype != gaze::h5::DType::kF32) continue;  // BatchNorm's step counter
    const float* p = reinterpret_cast<const float*>(u.bytes.data());
    const float* q = reinterpret_cast<const float*>(v.bytes.data());
    for (int64_t k = 0; k < u.numel(); ++k) {
      const double d = std::fabs(double(p[k]) - q[k]) / std::max(1.0, std::fabs(double(p[k])));
      if (d > worst) worst = d, where = name + "[" + std::to_string(k) + "]";
    }
  }
  return {worst, where};
}

// Three rendered people in the OpenEDS layout at 64x96, for the data-parallel runs; returns the root.
std::string small_openeds(const TempDir& dir) {
  REQUIRE(run_gaze("synth synth.out_dir=" + dir.file("data") +
                   " synth.layouts=[openeds] synth.participants=3 synth.train_frames=8 synth.validation_frames=2 "
                   "synth.test_frames=6 synth.openeds_size=[64,96]")
              .exit_code == 0);
  return dir.file("data/openeds");
}

}  // namespace

// A baseline trained alone takes its publication's learning rate where the config sets none, as
// gaze run's baseline stage does, and keeps the one it is given.
TEST_CASE("gaze train baseline trains at the published learning rate unless one is set", "[cli][baselines]") {
  TempDir dir;
  const std::string common = " -c " LIBGAZE_SOURCE_DIR
                             "/configs/stages/baseline.yaml model.arch=rtgene "
                             "data.input_size=[36,60] data.source=openeds:" +
                             small_openeds(dir) +
                             " data.openeds_size=[64,96] train.batch_size=4 train.steps=1 run.threads=1 "
                             "data.workers=1 run.out_dir=" +
                             dir.path();
  const auto published = run_gaze("train baseline" + common + " run.name=published");
  INFO(published.output);
  REQUIRE(published.exit_code == 0);
  const std::string config = read_file(dir.file("published/config.yaml"));
  CHECK_THAT(config, Contains("  lr: 0.0001  #") && Contains("  lr: 1.0000000000000001e-05  #"));
  const auto given = run_gaze("train baseline" + common + " run.name=given train.lr=0.002");
  INFO(given.output);
  REQUIRE(given.exit_code == 0);
  CHECK_THAT(read_file(dir.file("given/config.yaml")),
             Contains("  lr: 0.002  #") && Contains("  lr: 0.00020000000000000001  #"));
}

// Two workers on loopback, each on half of every global batch, end with the weights one process
// reaches on the whole batch: MAE pretraining, MAE + KD distillation, and the adapters (whose
// BatchNorm is synchronised across the workers); also when a 1-process run is resumed by two.
TEST_CASE("data-parallel: 2 workers equal 1 process with the same global batch", "[cli][distributed]") {
  TempDir dir;
  const std::string openeds = small_openeds(dir);
  const std::string common = " data.source=openeds:" + openeds +
                             " data.openeds_size=[64,96] data.input_size=[64,96] train.batch_size=8 train.steps=3"
                             " train.warmup_steps=0 train.log_every=1 run.threads=1 data.workers=1 run.out_dir=" +
                             dir.path();
  for (const char* stage : {"teacher-mae", "distill", "adapters"}) {
    INFO(stage);
    std::string args = std::string("train ") + stage + common;
    if (std::string(stage) == "distill") args += " train.teacher=" + dir.file("teacher-1/model.h5");
    if (std::string(stage) == "adapters") args += " train.init=" + dir.file("distill-1/model.h5");
    const auto one = run_gaze(args + " run.name=" + stage + "-1");
    INFO(one.output);
    REQUIRE(one.exit_code == 0);
    const auto two = run_gaze(args + " run.name=" + stage + "-2 --nproc 2");
    INFO(two.output);
    REQUIRE(two.exit_code == 0);
    const auto [difference, where] = max_weight_difference(dir.file(std::string(stage) + "-1/model.h5"),
                                                           dir.file(std::string(stage) + "-2/model.h5"));
    INFO("largest difference at " << where);
    // Adam moves a weight by about lr per step whatever its gradient's size, so where a gradient
    // is at rounding level (the two runs sum it in different orders) the weights may part by a
    // small fraction of lr (1e-3 here: 2e-5 is 2 %); a wrong reduction parts them by ~lr.
    CHECK(difference <= 2e-5);
    // Rank 0 alone wrote the run directory: one metrics line per step, the global loss. Loss
    // and gradient norm equal one process's step by step: the gradients were averaged over
    // both halves of the global batch.
    const std::string metrics = read_file(dir.file(std::string(stage) + "-2/metrics.jsonl"));
    CHECK(count_lines(metrics) == 3);
    const std::vector<std::string> lines_one =
        gaze::split(read_file(dir.file(std::string(stage) + "-1/metrics.jsonl")), '\n');
    const std::vector<std::string> lines_two = gaze::split(metrics, '\n');
    for (size_t i = 0; i < 3; ++i) {
      const gaze::Json a = gaze::parse_json(lines_one.at(i), "metrics"),
                       b = gaze::parse_json(lines_two.at(i), "metrics");
      for (const char* key : {"loss", "grad_norm"}) {
        INFO("step " << i << " " << key);
        if (!a.contains(key) && std::string(key) == "grad_norm") continue;  // logged when clipping
        CHECK(b.at(key).get<double>() == Approx(a.at(key).get<double>()).epsilon(1e-5));
      }
    }
    if (std::string(stage) == "teacher-mae") std::filesystem::rename(dir.file("teacher-mae-1"), dir.file("teacher-1"));
  }
  // --resume with another world size: one process to step 2, two workers from there.
  const std::string args =
      "train adapters" + common + " train.init=" + dir.file("distill-1/model.h5") + " run.name=adapters-resumed";
  REQUIRE(run_gaze(args + " --stop-at 2").exit_code == 0);
  const auto resumed = run_gaze(args + " --resume --nproc 2");
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK(max_weight_difference(dir.file("adapters-1/model.h5"), dir.file("adapters-resumed/model.h5")).first <= 1e-5);
}

// A worker that dies mid-run ends the others within seconds with one line naming the failure
// and the checkpoint to resume from, and that checkpoint loads.
TEST_CASE("data-parallel: a killed worker stops the others, and the last checkpoint loads", "[cli][distributed]") {
  TempDir dir;
  const std::string openeds = small_openeds(dir);
  const std::string args = "train teacher-mae data.source=openeds:" + openeds +
                           " data.openeds_size=[64,96] data.input_size=[64,96] train.batch_size=8 train.steps=100000"
                           " train.checkpoint_every=2 run.threads=1 data.workers=1 run.dist_timeout_s=60 run.out_dir=" +
                           dir.path() + " run.name=killed";
  // Rank 1 is SIGKILLed after 15 s (well after the first checkpoint); rank 0 must notice.
  const std::string env = "WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(29500 + getpid() % 500);
  const auto r = run_command("(RANK=1 " + env + " timeout -s KILL 15 " LIBGAZE_GAZE_EXE " " + args +
                             " > /dev/null 2>&1 &); RANK=0 " + env + " " LIBGAZE_GAZE_EXE " " + args);
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Contains("gaze: error: teacher-mae: step ") &&
                           Contains("distributed: rank 0 of 2: all-reduce failed (another worker died") &&
                           Contains("the last checkpoint is " + dir.file("killed/checkpoints/last.h5")));
  const gaze::CheckpointFile last = gaze::read_checkpoint_file(dir.file("killed/checkpoints/last.h5"));
  CHECK(last.step >= 2);
  CHECK(last.step % 2 == 0);
}

TEST_CASE("gaze reproduce conditions runs the demo's recipe per held-out condition and summarises them",
          "[cli][reproduce][conditions]") {
  TempDir dir;
  const std::string demo = std::string(LIBGAZE_SOURCE_DIR) + "/configs/pipeline/demo.yaml";
  std::filesystem::create_directories(dir.file("conds"));
  dir.write("conds/demo.yaml", "# The demo's data.\nextends: " + demo + "\n");
  dir.write("conds/tilt.yaml",
            "# Tilted camera, uneven light.\nextends: demo.yaml\n"
            "synth: {camera_tilt_deg: [10, 20], light_gradient: 0.4}\n");
  const std::string args = "reproduce conditions --conditions " + dir.file("conds") + " -o " + dir.path() + kTinyRun;
  const auto r = run_gaze(args);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // Each condition is its own run; the condition renders the same gaze, seen differently.
  for (const std::string name : {"demo", "tilt"}) {
    CHECK(std::filesystem::exists(dir.file("conditions_" + name + "/report.json")));
  }
  CHECK_THAT(read_file(dir.file("conditions_tilt/data/synth.done")), Contains("light_gradient: 0.4"));
  const std::string labels = "/data/openeds/train/labels/1000.txt",
                    image = "/data/openeds/train/sequences/1000/000.png";
  CHECK(read_file(dir.file("conditions_demo" + labels)) == read_file(dir.file("conditions_tilt" + labels)));
  CHECK(read_file(dir.file("conditions_demo" + image)) != read_file(dir.file("conditions_tilt" + image)));
  // The summary: a row per condition, each cell from that run's own report.
  const std::string md = read_file(dir.file("conditions.md"));
  CHECK_THAT(md, Contains("- **tilt** (`" + dir.file("conds/tilt.yaml") + "`): Tilted camera, uneven light."));
  const gaze::Json tilt_report = gaze::parse_json(read_file(dir.file("conditions_tilt/report.json")), "report");
  char cell[64];
  std::snprintf(cell, sizeof cell, "| tilt | openeds | 1 | %.2f |",
                tilt_report["datasets"]["openeds"]["student"]["mean_gaze_baseline_deg"].get<double>());
  CHECK_THAT(md, Contains(cell));
  CHECK(md.find("| demo | openeds |") < md.find("| tilt | openeds |"));
  // --report-only rebuilds the same summary from the finished runs; --only picks conditions.
  // (--only takes one value, so overrides may follow it.)
  const auto again = run_gaze("reproduce conditions --only tilt --report-only --conditions " + dir.file("conds") +
                              " -o " + dir.path() + kTinyRun);
  CHECK(again.exit_code == 0);
  CHECK_THAT(read_file(dir.file("conditions.md")), Contains("| tilt | openeds |") && !Contains("| demo | openeds |"));
  // The summary names the recipe it was made with (the overrides but seeds and run.*), and
  // --report-only refuses runs made with another recipe than the one it is told.
  const gaze::Json summary_json = gaze::parse_json(read_file(dir.file("conditions.json")), "summary");
  CHECK(summary_json["conditions"][0]["recipe"][0] == "pipeline.datasets=[openeds]");
  CHECK_THAT(summary_json.dump(), !Contains("run.threads"));
  const auto other = run_gaze(args + " train.augmentation.shift=0.12 --report-only --only tilt");
  CHECK(other.exit_code == 1);
  CHECK_THAT(other.output, Contains("conditions_tilt/pipeline.yaml:") && Contains("train.augmentation.shift: 0.") &&
                               Contains("give the overrides the run was made with"));
  const auto unknown = run_gaze(args + " --only tilted");
  CHECK(unknown.exit_code == 1);
  CHECK_THAT(unknown.output, Contains("no condition 'tilted'"));
  // --variant names a pipeline.variants entry; one the overrides do not give is refused before
  // anything trains.
  const auto no_variant = run_gaze(args + " --variant grid");
  CHECK(no_variant.exit_code == 1);
  CHECK_THAT(no_variant.output, Contains("--variant grid:") && Contains("no pipeline.variants entry of that name"));
  // --merge joins summaries over other seeds; the same seed twice is refused, naming the file.
  const std::string summary = dir.file("conditions.json");
  const auto merged = run_gaze("reproduce conditions --merge " + summary + " -o " + dir.file("merged"));
  CHECK(merged.exit_code == 0);
  CHECK_THAT(read_file(dir.file("merged/conditions.md")), Contains("| tilt | openeds | 1 |"));
  const auto twice = run_gaze("reproduce conditions --merge " + summary + "," + summary + " -o " + dir.file("merged"));
  CHECK(twice.exit_code == 1);
  CHECK_THAT(twice.output, Contains("seed 0 is already in"));
  CHECK(run_gaze("reproduce conditions --merge " + summary + " --only tilt").exit_code != 0);
  // --compare sets two summaries side by side: a recipe against itself changes nothing.
  const auto compared =
      run_gaze("reproduce conditions --compare " + summary + "," + summary + " -o " + dir.file("compared"));
  CHECK(compared.exit_code == 0);
  CHECK_THAT(read_file(dir.file("compared/comparison.md")),
             Contains("| tilt | openeds | 0 |") && Contains("(+0.00)") && Contains("held-out seed-cells"));
  CHECK(run_gaze("reproduce conditions --compare " + summary).exit_code != 0);
  CHECK(run_gaze("reproduce conditions --reference tilt -o " + dir.path()).exit_code != 0);
}
