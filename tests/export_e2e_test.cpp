// `gaze export` end to end on a briefly trained student: float vs fixed point on rendered
// validation frames, user blobs swapped into one kernel, and the blob's safety checks.
#include "export/export_job.h"
#include "export/kernel.h"  // gz_crc32, gz_head_payload_bytes

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "datasets/open_dataset.h"
#include "datasets/pack.h"
#include "datasets/splits.h"
#include "datasets/synth/synth_writer.h"
#include "export/test_models.h"
#include "libgaze/core/random.h"
#include "libgaze/io/model_io.h"
#include "libgaze/metrics/angular_error.h"
#include "tests/test_util.h"
#include "trainers/personalize.h"
#include "trainers/trainer.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;
using Catch::Contains;
using testing::read_file;
using testing::TempDir;

// Rendered OpenEDS-layout data, a student whose adapters trained on it, and one user's file
// (last-stage adapters and the head's Linear personalised: personalize.train_head).
struct Trained {
  TempDir dir{"libgaze-export"};
  Config config;
  std::string model, user;
  UserResult user_result;  // `gaze personalize`'s result for `user` (test split)
};

const Trained& trained() {
  static Trained t;
  static bool ready = [] {
    Config c = default_config({"synth.out_dir=" + t.dir.path(), "synth.layouts=[openeds]", "synth.participants=5",
                               "synth.train_frames=40", "synth.validation_frames=24", "synth.test_frames=12",
                               "synth.openeds_size=[96,128]"});
    write_synthetic_datasets(c.synth, 5, 2);
    t.config = default_config(
        {"data.source=" + t.dir.path() + "/openeds", "data.openeds_size=[96,128]", "data.input_size=[64,96]",
         "model.arch=student", "train.batch_size=16", "train.steps=60", "train.warmup_steps=5", "train.lr=3e-3",
         "run.out_dir=" + t.dir.path(), "run.name=student", "run.threads=2", "personalize.steps=10", "personalize.k=5",
         "personalize.k_curve=[5]", "personalize.replay=16", "export.calibration_frames=64", "export.eval_frames=48"});
    // A random student backbone (frozen by the adapters stage), its adapters and head trained.
    GazeNet init = make_gaze_net(t.config.model, 1);
    save_model(t.dir.path() + "/init.h5", init, t.config, "init", 0);
    t.config.train.init = t.dir.path() + "/init.h5";
    auto stage = make_stage("adapters", t.config);
    t.model = run_training(t.config, *stage, false).model_path;
    GazeNet base = load_model(t.model);
    DataConfig test = t.config.data;
    test.split = "test";
    const auto users = open_dataset(test);
    const auto replay = open_replay_dataset(t.config);
    Config with_head = t.config;
    with_head.personalize.train_head = true;
    t.user_result = personalize(base, *users, replay.get(), with_head, t.dir.path() + "/users").users.at(0);
    t.user = t.user_result.adapter_file;
    return true;
  }();
  (void)ready;
  return t;
}

std::vector<float> read_floats(const std::string& path) {
  const std::string bytes = read_file(path);
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

}  // namespace

// The model here is a worst case for quantisation: a random frozen backbone whose adapters
// learn large corrections. Its float-vs-fixed error moves with training and data (0.096 deg with
// the Laplace NLL, 0.109 with L1 at 60 steps, 0.18 at 120; 0.117, and 0.170 with a user merged,
// after the renderer's limbus fix); the demo's trained students measure 0.06. A broken quantiser
// costs degrees, so 0.2 still catches one.
TEST_CASE("float vs fixed point stays within 0.2 degree on rendered validation frames", "[export]") {
  const Trained& t = trained();
  Config c = t.config;
  c.data.split = "validation";
  TempDir out;
  const ExportReport r = export_kernel(c, {t.model, out.path() + "/kernel", "", {}});
  WARN("float vs fixed point on " << r.error.frames << " held-out rendered frames: mean " << r.error.mean_deg
                                  << " deg, max " << r.error.max_deg << " deg");
  CHECK(r.error.frames == 24);  // every other of the 48 validation frames is held out
  CHECK(r.error.mean_deg <= 0.2);
  CHECK(r.kernel.macs > 0);
  CHECK(fs::exists(out.path() + "/kernel/dftgaze.cpp"));
  CHECK(r.json().at("float_vs_fixed_mean_deg").get<double>() == r.error.mean_deg);
  // export.int8=auto (the default): the sensitivity pass ranked every candidate layer and kept
  // the chosen ones within its budget on its own frames.
  const Json report = r.json();
  const Json& int8 = report.at("int8");
  WARN("int8 pass: " << r.int8.layers.size() << " of " << r.int8.ranking.size() << " layers, " << r.int8.base_deg
                     << " -> " << r.int8.chosen_deg << " deg on " << r.int8.frames << " frames");
  CHECK(int8.at("mode") == "auto");
  CHECK(r.int8.ranking.size() == 1 + 3 + 2 * 12);  // stem, 3 downsamples, pw1 + pw2 of 12 blocks
  CHECK(r.int8.chosen_deg <= r.int8.base_deg + c.export_.int8_budget_deg);
  CHECK(r.int8.chosen_deg <= std::max(r.int8.base_deg, c.export_.int8_max_deg));
  CHECK(int8.at("max_deg").get<double>() == c.export_.int8_max_deg);
  CHECK(int8.at("macs").get<size_t>() == r.int8_macs);
  CHECK(r.int8_macs <= r.kernel.macs);

  // export.int8_hidden=auto under a budget that stage 1's int16 GELU outputs exceed and int8
  // ones meet: stage 1 keeps every row as int8 (every pw2 takes int8 with export.int8=all) and
  // stays accurate; with int8_hidden=none the same budget recomputes most of stage 1's rows.
  {
    const int32_t dims[4] = {40, 20, 40, 80}, all_rows[4] = {16, 8, 4, 2}, stage1_int8[4] = {1, 0, 0, 0};
    Config tight = c;
    tight.export_.int8 = "all";
    tight.export_.arena_budget_kb =
        int64_t(gz_arena_plan_compute(64, 96, dims, all_rows, stage1_int8).total + 1023) / 1024;
    const ExportReport int8 = export_kernel(tight, {t.model, out.path() + "/int8_hidden", "", {}});
    CHECK(int8.kernel.int8_hidden == std::array<int32_t, 4>{1, 0, 0, 0});
    CHECK(int8.kernel.keep_rows == int8.kernel.hidden_rows);
    CHECK(int8.json().at("hidden_rows_int8") == Json::array({1, 0, 0, 0}));
    CHECK_THAT(int8.markdown(), Contains("kept (int8), kept, kept, kept"));
    WARN("stage 1 kept as int8: mean " << int8.error.mean_deg << " deg");
    CHECK(int8.error.mean_deg <= 0.2);
    tight.export_.int8_hidden = "none";
    const ExportReport int16 = export_kernel(tight, {t.model, out.path() + "/int16_hidden", "", {}});
    CHECK(int16.kernel.int8_hidden == std::array<int32_t, 4>{0, 0, 0, 0});
    CHECK(int16.kernel.keep_rows[0] < int16.kernel.hidden_rows[0] / 2);
  }

  // A user's adapters merged before export: calibrated and compared with that user's model.
  const ExportReport merged = export_kernel(c, {t.model, out.path() + "/merged", t.user, {}});
  WARN("with a user merged: mean " << merged.error.mean_deg << " deg");
  CHECK(merged.error.mean_deg <= 0.2);
  CHECK_THAT(read_file(out.path() + "/merged/dftgaze.cpp"), Contains("+ user " + t.user));
  CHECK(read_file(out.path() + "/merged/dftgaze.cpp") != read_file(out.path() + "/kernel/dftgaze.cpp"));
}

TEST_CASE("one kernel serves many users: set_user blobs equal the integer reference bit for bit", "[export]") {
  const Trained& t = trained();
  TempDir out;
  const std::string dir = out.path() + "/kernel";
  const ExportReport r = export_kernel(t.config, {t.model, dir, "", {t.user}});
  REQUIRE(r.blobs.size() == 1);
  const std::string blob = read_file(r.blobs[0]);
  CHECK(blob.size() == r.kernel.user_blob_bytes);

  // The reference for the user: the same quantisation export_kernel ran (its int8 layers too).
  QuantizeOptions options;
  kernel_input_size(t.config, &options.input_h, &options.input_w);
  options.int8_layers = std::set<std::string>(r.int8.layers.begin(), r.int8.layers.end());
  const auto calibration =
      load_frames(t.config, t.config.export_.calibration_frames, 0.0, options.input_h, options.input_w);
  GazeNet base = load_model(t.model);
  const ActivationRanges ranges = calibrate(base, calibration, options);
  GazeNet user = load_model(t.model);
  apply_user_adapter(user, t.user);
  const QuantizedNet user_net = quantize_model(user, user_adapter_ranges(user, calibration, ranges, options), options);
  const QuantizedNet base_net = quantize_model(base, ranges, options);

  const auto frames = load_frames(t.config, 40, 0.25, 80, 100);
  write_frames_file(out.path() + "/frames.gzfr", frames, 80, 100);
  const auto build = testing::run_command("cmake -S '" + dir + "' -B '" + dir +
                                          "/build' -DDFTGAZE_WERROR=ON && cmake --build '" + dir + "/build' -j 2");
  INFO(build.output);
  REQUIRE(build.exit_code == 0);
  const std::string tool = dir + "/build/dftgaze_tool predict '" + out.path() + "/frames.gzfr' ";
  REQUIRE(testing::run_command(tool + "'" + out.path() + "/base.bin'").exit_code == 0);
  REQUIRE(testing::run_command(tool + "'" + out.path() + "/user.bin' --user '" + r.blobs[0] + "'").exit_code == 0);
  const std::vector<float> got_base = read_floats(out.path() + "/base.bin"),
                           got_user = read_floats(out.path() + "/user.bin");
  std::vector<float> want_base, want_user;
  for (const Frame& f : frames) {
    const auto b = qnet_predict(base_net, f.data(), 80, 100), u = qnet_predict(user_net, f.data(), 80, 100);
    want_base.insert(want_base.end(), b.begin(), b.end());
    want_user.insert(want_user.end(), u.begin(), u.end());
  }
  CHECK(std::memcmp(got_base.data(), want_base.data(), want_base.size() * 4) == 0);
  CHECK(got_user.size() == want_user.size());
  CHECK(std::memcmp(got_user.data(), want_user.data(), want_user.size() * 4) == 0);
  CHECK(std::memcmp(got_user.data(), got_base.data(), got_base.size() * 4) != 0);  // the user's adapters matter
  // The blob carries the user's own head (trained with personalize.train_head), not the base's.
  const std::vector<uint8_t> base_blob = user_blob(base_net, base_net);
  const size_t head_bytes = gz_head_payload_bytes(base_net.head.in);
  REQUIRE(base_blob.size() == blob.size());
  CHECK(blob.substr(blob.size() - head_bytes) !=
        std::string(base_blob.end() - std::ptrdiff_t(head_bytes), base_blob.end()));

  // The C API's error codes, and set_user(NULL) restoring the base exactly.
  const auto api = testing::run_command(dir + "/build/dftgaze_tool check-api '" + r.blobs[0] + "'");
  INFO(api.output);
  CHECK(api.exit_code == 0);
  CHECK_THAT(api.output, Contains("check-api: ok"));

  // A flipped payload byte, a truncated blob and a blob for another base are refused.
  std::string bad = blob;
  bad[bad.size() / 2] = char(bad[bad.size() / 2] ^ 1);
  const std::string bad_path = out.path() + "/bad.gzu";
  std::ofstream(bad_path, std::ios::binary) << bad;
  auto rc = testing::run_command(tool + "'" + out.path() + "/x.bin' --user '" + bad_path + "'");
  CHECK(rc.exit_code != 0);
  CHECK_THAT(rc.output, Contains("-10"));
  std::ofstream(bad_path, std::ios::binary | std::ios::trunc) << blob.substr(0, blob.size() - 7);
  CHECK(testing::run_command(tool + "'" + out.path() + "/x.bin' --user '" + bad_path + "'").exit_code != 0);
  std::string other = blob;
  other[8] = char(other[8] ^ 0x55);  // the base fingerprint
  std::ofstream(bad_path, std::ios::binary | std::ios::trunc) << other;
  rc = testing::run_command(tool + "'" + out.path() + "/x.bin' --user '" + bad_path + "'");
  CHECK_THAT(rc.output, Contains("-11"));
  // A blob whose CRC is valid but whose LeakyReLU shift is 256 (undefined behaviour in every
  // requantisation before the kernel checked ranges) is refused, and leaves the user's adapters.
  std::string shifted = blob;
  const int32_t wild_shift = 256;
  std::memcpy(&shifted[24], &wild_shift, 4);  // header 20 bytes, then the first slope {multiplier, shift}
  const uint32_t crc = gz_crc32(reinterpret_cast<const uint8_t*>(shifted.data()) + 20, shifted.size() - 20);
  std::memcpy(&shifted[16], &crc, 4);
  std::ofstream(bad_path, std::ios::binary | std::ios::trunc) << shifted;
  rc = testing::run_command(tool + "'" + out.path() + "/x.bin' --user '" + bad_path + "'");
  CHECK_THAT(rc.output, Contains("-10"));
  rc = testing::run_command(dir + "/build/dftgaze_tool check-api '" + r.blobs[0] + "' '" + bad_path + "'");
  INFO(rc.output);
  CHECK_THAT(rc.output, Contains("check-api: ok"));
  // So is one whose head bias would let an accumulator overflow, and one of version 1 (adapters only).
  std::string head_bias = blob;
  const int32_t huge_bias = 2000000000;
  std::memcpy(&head_bias[blob.size() - head_bytes], &huge_bias, 4);  // the head's first bias
  const uint32_t head_crc = gz_crc32(reinterpret_cast<const uint8_t*>(head_bias.data()) + 20, head_bias.size() - 20);
  std::memcpy(&head_bias[16], &head_crc, 4);
  std::ofstream(bad_path, std::ios::binary | std::ios::trunc) << head_bias;
  rc = testing::run_command(tool + "'" + out.path() + "/x.bin' --user '" + bad_path + "'");
  CHECK_THAT(rc.output, Contains("-10"));
  std::string version_1 = blob;
  version_1[4] = 1;
  std::ofstream(bad_path, std::ios::binary | std::ios::trunc) << version_1;
  rc = testing::run_command(tool + "'" + out.path() + "/x.bin' --user '" + bad_path + "'");
  CHECK_THAT(rc.output, Contains("-10"));
  // And the library refuses to make a blob from a model that is not this base + adapters.
  GazeNet stranger = make_gaze_net(t.config.model, 99);
  const QuantizedNet stranger_net = quantize_model(stranger, calibrate(stranger, calibration, options), options);
  CHECK_THROWS_WITH(user_blob(base_net, stranger_net), Contains("differs from the base"));
}

TEST_CASE("export errors name the problem and leave an existing kernel untouched", "[export]") {
  const Trained& t = trained();
  TempDir out;
  const std::string dir = out.path() + "/kernel";
  export_kernel(t.config, {t.model, dir, "", {}});
  const std::string before = read_file(dir + "/dftgaze.cpp");
  CHECK_THROWS_WITH(export_kernel(t.config, {out.path() + "/missing.h5", dir, "", {}}), Contains("missing.h5"));
  Config bad = t.config;
  bad.data.source = out.path() + "/nowhere";
  CHECK_THROWS_WITH(export_kernel(bad, {t.model, dir, "", {}}), Contains("nowhere"));
  CHECK(read_file(dir + "/dftgaze.cpp") == before);
  // A successful re-export swaps the whole folder at once; what the user put there stays, old
  // user blobs do not, and nothing is left beside it.
  out.write("kernel/notes.txt", "mine");
  fs::create_directories(dir + "/users");
  out.write("kernel/users/old.gzu", "a blob for an older base");
  export_kernel(t.config, {t.model, dir, "", {}});
  CHECK(read_file(dir + "/notes.txt") == "mine");
  CHECK_FALSE(fs::exists(dir + "/users/old.gzu"));
  CHECK(fs::exists(dir + "/dftgaze.cpp"));
  for (const auto& entry : fs::directory_iterator(out.path())) {
    INFO(entry.path());
    CHECK(entry.path().filename() == "kernel");
  }
}

}  // namespace gaze

namespace gaze {
// `gaze export --format onnx` with a user merged in, run by ONNX Runtime (scripts/ort/ort_run.js)
// against LibTorch on the same model: the file a user takes to another runtime computes the same.
TEST_CASE("gaze export --format onnx: the personalised student in ONNX Runtime equals LibTorch", "[export][onnx]") {
  const Trained& t = trained();
  TempDir out;
  const auto exported = testing::run_gaze("export --format onnx --checkpoint " + t.model + " --merge-user " + t.user +
                                          " -o " + out.file("user.onnx"));
  INFO(exported.output);
  REQUIRE(exported.exit_code == 0);
  GazeNet model = load_model(t.model);
  apply_user_adapter(model, t.user);
  model->eval();
  at::manual_seed(2);
  const at::Tensor x = at::randn({4, 3, 64, 96});
  at::Tensor want;
  {
    at::NoGradGuard no_grad;
    want = model->forward(x);
  }
  const at::Tensor diff = testing::run_in_onnxruntime(out.file("user.onnx"), x, out) - want;
  CHECK(diff.abs().max().item<double>() <= 1e-4 * std::max(1.0, want.abs().max().item<double>()));
  // Without the user the output differs: the merge reached the file.
  GazeNet base = load_model(t.model);
  base->eval();
  at::NoGradGuard no_grad;
  CHECK((base->forward(x) - want).abs().max().item<double>() > 1e-3);
}

TEST_CASE("bench times the kernel and LibTorch fp32 on the same frames and prints one JSON object", "[export]") {
  const Trained& t = trained();
  const BenchReport r = bench_kernel(t.config, t.model, "", 50, 1, "pi4", 1);
  for (const char* key : {"kernel_p50_ms", "kernel_p99_ms", "torch_fp32_p50_ms", "speedup", "macs", "weights_bytes",
                          "arena_bytes", "input", "threads", "simd", "pi4_peak_bound_ms"}) {
    CHECK(r.json.contains(key));
  }
  CHECK(r.json.at("kernel_p50_ms").get<double>() > 0);
  CHECK(r.json.at("threads").get<int64_t>() == 1);
  CHECK_THAT(r.markdown, Contains("LibTorch fp32"));
  // ONNX Runtime (installed by scripts/setup) on the same model and frames, checked against LibTorch.
  INFO(r.markdown);
  REQUIRE(r.json.contains("onnxruntime_fp32_p50_ms"));
  CHECK(r.json.at("onnxruntime_fp32_p50_ms").get<double>() > 0);
  CHECK(r.json.at("onnxruntime_max_abs_error").get<double>() < 1e-4);
  CHECK(r.json.at("speedup_vs_onnxruntime").get<double>() > 0);
  CHECK_THAT(r.markdown, Contains("| ONNX Runtime 1.30.0 fp32"));
  // --model pi4: the Cortex-A72 cycle model of the same kernel, beside its MAC bounds.
  const Json& pi4 = r.json.at("pi4_model");
  CHECK(pi4.at("ms_per_frame").get<double>() > 0);
  CHECK(pi4.at("smlal16_bound_ms").get<double>() == Approx(2 * pi4.at("int8_bound_ms").get<double>()));
  CHECK(pi4.at("kernel_mix_bound_ms").get<double>() >= pi4.at("int8_bound_ms").get<double>());
  CHECK(pi4.at("kernel_mix_bound_ms").get<double>() <= pi4.at("smlal16_bound_ms").get<double>());
  CHECK(pi4.at("regions").size() > 10);
  CHECK_THAT(r.markdown, Contains("### Raspberry Pi 4 cycle model") && Contains("| pw_store4 |") &&
                             Contains("ms per frame on a Pi 4"));
  // --personalize: one calibration per test person both ways, LibTorch and the kernel.
  const Json& cal = r.json.at("personalize");
  CHECK(cal.at("people").get<int64_t>() >= 1);
  CHECK(cal.at("torch_fp32_p50_ms").get<double>() > 0);
  CHECK(cal.at("kernel_p50_ms").get<double>() > 0);
  CHECK(cal.at("kernel_after_deg").get<double>() < cal.at("kernel_before_deg").get<double>());
  CHECK(cal.at("torch_after_deg").get<double>() < cal.at("torch_before_deg").get<double>());
  CHECK_THAT(r.markdown, Contains("| dftgaze_personalize in the kernel ("));
  CHECK_THROWS_WITH(bench_kernel(t.config, t.model, "", 5, 1, "", -1), Contains("--personalize"));
  // The wearer's calibration on the same model: its integer views and float training loops.
  CHECK(pi4.at("personalize").at("ms").get<double>() > 10 * pi4.at("ms_per_frame").get<double>());
  CHECK_THAT(r.markdown, Contains("| tune_nn16 |") && Contains("ms per calibration on a Pi 4"));
  CHECK_THROWS_WITH(bench_kernel(t.config, t.model, "", 5, 1, "pi5"), Contains("the one cycle model is pi4"));

  // --kernel exported at another size than the config's: every side runs at the kernel's.
  TempDir out;
  Config c = t.config;
  c.export_.eval_frames = 0;
  c.export_.input_size = {32, 64};
  export_kernel(c, {t.model, out.path() + "/kernel", "", {}});
  const BenchReport other = bench_kernel(t.config, t.model, out.path() + "/kernel", 5, 1, "");
  CHECK(other.json.at("input") == Json::array({32, 64}));
  CHECK_THAT(other.markdown, Contains("| 32x64, batch 1"));
  CHECK_THROWS_WITH(bench_kernel(t.config, t.model, out.path(), 5, 1, ""), Contains("is not a kernel folder"));
}

// On-device personalisation against `gaze personalize` on the same person and the same shots:
// the workstation's user file exported as a blob, and the blob dftgaze_personalize makes in the
// kernel from the same k calibration images, both evaluated by the kernel on that person's
// other images.
TEST_CASE("dftgaze_personalize in the kernel against gaze personalize on the same shots", "[export][personalize]") {
  const Trained& t = trained();
  TempDir out;
  const std::string dir = out.path() + "/kernel";
  const ExportReport r = export_kernel(t.config, {t.model, dir, "", {t.user}});
  REQUIRE(r.blobs.size() == 1);
  CHECK(r.kernel.replay_frames == size_t(t.config.personalize.replay));  // 16 < export.replay_frames
  CHECK(r.json().at("personalize").at("replay_frames").get<size_t>() == r.kernel.replay_frames);

  // The person's split, drawn as personalize() drew it.
  DataConfig test = t.config.data;
  test.split = "test";
  const auto users = open_dataset(test);
  const int64_t k = t.config.personalize.k;
  const auto splits = personalisation_users(*users, t.config.personalize, uint64_t(t.config.run.seed));
  const CalibrationSplit& split = splits.at(t.user_result.participant);
  const std::vector<int64_t>& shots = t.user_result.calibration;  // what personalize() tuned on
  CHECK(shots == calibration_shots(split, k));
  const auto write = [&](const std::vector<int64_t>& items, const std::string& name, bool gazes) {
    std::vector<Frame> frames;
    std::string bytes;
    int32_t h = 0, w = 0;
    for (int64_t i : items) {
      const Sample s = users->get(i);
      h = s.image.height, w = s.image.width;
      frames.push_back(s.image.pixels);
      for (float g : s.label.gaze) bytes.append(reinterpret_cast<const char*>(&g), 4);
    }
    write_frames_file(out.file(name + ".gzfr"), frames, h, w);
    if (gazes) std::ofstream(out.file(name + ".gaze"), std::ios::binary) << bytes;
  };
  write(shots, "calibration", true);
  write(split.evaluation, "evaluation", true);

  const auto build = testing::run_command("cmake -S '" + dir + "' -B '" + dir +
                                          "/build' -DDFTGAZE_WERROR=ON && cmake --build '" + dir + "/build' -j 2");
  INFO(build.output);
  REQUIRE(build.exit_code == 0);
  const std::string tool = dir + "/build/dftgaze_tool";
  const auto device =
      testing::run_command(tool + " personalize '" + out.file("calibration.gzfr") + "' '" +
                           out.file("calibration.gaze") + "' '" + out.file("device.gzu") + "' --json --seed " +
                           std::to_string(seed_mix(uint64_t(t.config.run.seed), stream::kPersonalize,
                                                   uint64_t(t.user_result.participant), uint64_t(k))));
  INFO(device.output);
  REQUIRE(device.exit_code == 0);
  const auto error_with = [&](const std::string& blob) {
    const std::string args = blob.empty() ? "" : " --user '" + blob + "'";
    REQUIRE(
        testing::run_command(tool + " predict '" + out.file("evaluation.gzfr") + "' '" + out.file("p.bin") + "'" + args)
            .exit_code == 0);
    const std::vector<float> p = read_floats(out.file("p.bin"));
    REQUIRE(p.size() == 4 * split.evaluation.size());
    double sum = 0;
    for (size_t i = 0; i < split.evaluation.size(); ++i) {
      const auto& g = users->label(split.evaluation[i]).gaze;
      sum += angular_error_deg({p[4 * i], p[4 * i + 1], p[4 * i + 2]}, {g[0], g[1], g[2]});
    }
    return sum / double(split.evaluation.size());
  };
  const double base = error_with(""), workstation = error_with(r.blobs[0]),
               on_device = error_with(out.file("device.gzu"));
  WARN("participant " << t.user_result.participant << ", k = " << k << ", " << split.evaluation.size()
                      << " evaluation images in the kernel: base " << base << " deg, gaze personalize " << workstation
                      << " deg, dftgaze_personalize " << on_device << " deg (float: " << t.user_result.before_deg
                      << " -> " << t.user_result.after_deg << ")");
  CHECK(on_device < base);

  // `gaze personalize --kernel`: every test participant the same way, this one with the same result.
  Config c = t.config;
  c.data.split = "test";
  const KernelUsersReport all = personalize_users_in_kernel(c, dir, out.file("kernel_users"));
  INFO(all.markdown());
  bool found = false;
  for (const KernelUser& u : all.users) {
    if (u.participant != t.user_result.participant) continue;
    found = true;
    CHECK(u.before_deg == Approx(base).epsilon(1e-9));
    CHECK(u.after_deg == Approx(on_device).epsilon(1e-9));
    CHECK(read_file(u.blob) == read_file(out.file("device.gzu")));
  }
  CHECK(found);
  CHECK(all.after_deg < all.before_deg);
  CHECK_THAT(all.markdown(), Contains("dftgaze_personalize (ms)"));

  // The two against each other, over seeds (each draws its own shots and batches, the same ones on
  // both sides) at personalize's default 60 steps: one calibration alone is chaotic here (a random
  // backbone whose adapters make large corrections; 5 shots, Adam at lr 3e-3; per seed the two
  // differ by up to 2 deg), so the "within 0.2 deg of gaze personalize on the same shots"
  // is held on the mean over 16 seeds (8 had too little power: with the kernel's weights rounded
  // by GPTQ instead of to nearest the device's 8-seed mean moved from 2.79 to 3.01 deg against
  // the workstation's 2.71). Measured over 16: workstation 3.14, device 2.67 deg, from ~26 deg.
  // Before the device's augmented views shifted the source window as the loaders do (they shifted
  // the resampled image by whole pixels with clamped borders) the device's mean over the first 4
  // seeds was 3.88 against 2.59. With the head's Linear trained too (personalize.train_head) on
  // both sides, over 8 seeds: workstation 4.44 (one seed at 10.1), device 2.72 deg; once the shots
  // were kept in the order drawn (session 34: the same shots, other batch draws) 8 seeds gave
  // 3.98 against 4.94, so 16 here too: workstation 5.10 (two seeds above 12), device 4.71 deg.
  for (const bool train_head : {false, true}) {
    double workstation_mean = 0, device_mean = 0;
    const int seeds = 16;
    std::ostringstream per_seed;
    for (int seed = 0; seed < seeds; ++seed) {
      Config s = c;
      s.run.seed = seed;
      s.personalize.steps = 60;
      s.personalize.k_curve = {k};
      s.personalize.train_head = train_head;
      GazeNet model = load_model(t.model);
      const auto replay = open_replay_dataset(s);
      const std::string tag = std::to_string(seed) + (train_head ? "h" : "");
      const PersonalizeResult ws = personalize(model, *users, replay.get(), s, out.file("ws" + tag));
      const KernelUsersReport dev = personalize_users_in_kernel(s, dir, out.file("dev" + tag));
      INFO("seed " << seed << ", train_head " << train_head << ": gaze personalize " << ws.before_deg << " -> "
                   << ws.after_deg << " deg (float), dftgaze_personalize " << dev.before_deg << " -> " << dev.after_deg
                   << " deg (kernel)");
      CHECK(dev.after_deg < 0.35 * dev.before_deg);
      CHECK(dev.tool.at("train_head").get<int>() == int(train_head));
      per_seed << " " << ws.after_deg << "/" << dev.after_deg;
      workstation_mean += ws.after_deg / seeds;
      device_mean += dev.after_deg / seeds;
    }
    WARN("train_head " << train_head << ", mean over " << seeds << " seeds: gaze personalize " << workstation_mean
                       << " deg, dftgaze_personalize " << device_mean << " deg (per seed ws/device:" << per_seed.str()
                       << ")");
    CHECK(device_mean <= workstation_mean + 0.2);
  }
}

}  // namespace gaze
