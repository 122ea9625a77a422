// The generated kernel, built with its own CMakeLists.txt as a user would, against the integer
// reference: bit for bit on 1000 frames (AVX2 and scalar here, NEON under qemu-aarch64), with
// user blobs, -Wall -Wextra -Werror, under ASan + UBSan, and without heap allocations.
#include <ATen/ATen.h>
#include <torch/utils.h>

#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>

#include "export/codegen.h"
#include "export/cycle_model.h"
#include "export/export_job.h"
#include "export/quantizer.h"
#include "export/test_models.h"
#include "export/tune_run.h"
#include "libgaze/metrics/angular_error.h"
#include "tests/test_util.h"

namespace gaze {
namespace {

using testing::eye_frames;
using testing::read_file;
using testing::TempDir;

constexpr int32_t kInputH = 64, kInputW = 96;   // stage-1 map 16x24: both GRN paths run
constexpr int32_t kFrameH = 75, kFrameW = 101;  // odd eye size: the resampler is exercised

struct Exported {
  QuantizedNet net;
  std::string dir;
  KernelSummary summary;
};

// Every other pointwise layer takes int8 inputs, so both product paths (int16 x int8 and
// int8 x int8) run in one kernel; those include stage 1's pw2 layers, and stage 1's blocks keep
// their GELU outputs as int8 (`int8_hidden`), the later stages' as int16.
Exported export_test_kernel(const std::string& dir, uint64_t seed, size_t arena_budget = size_t(1) << 20,
                            const std::set<int32_t>& int8_hidden = {0},
                            const std::vector<int64_t>& head_grid = {1, 1}) {
  GazeNet model = testing::perturbed_student(seed, head_grid);
  QuantizeOptions options;
  options.input_h = kInputH;
  options.input_w = kInputW;
  const auto calibration = eye_frames(32, kInputH, kInputW, 11);
  const ActivationRanges ranges = calibrate(model, calibration, options);
  const std::vector<std::string> candidates = quantize_model(model, ranges, options).int8_candidates();
  for (size_t i = 0; i < candidates.size(); i += 2) options.int8_layers.insert(candidates[i]);
  options.int8_hidden_stages = int8_hidden;
  QuantizedNet net = quantize_model(model, ranges, options);
  REQUIRE(net.int8_macs() > 0);
  REQUIRE(net.int8_macs() < net.macs());
  for (size_t s = 0; s < 4; ++s) REQUIRE(net.stages[s][0].int8_hidden() == bool(int8_hidden.count(int32_t(s))));
  // A replay pack for dftgaze_personalize: eye frames labelled with the float model's own gaze.
  std::vector<Sample> replay;
  for (const Frame& f : eye_frames(16, kFrameH, kFrameW, uint32_t(seed) + 100)) {
    Sample sample;
    sample.image.height = kFrameH, sample.image.width = kFrameW, sample.image.pixels = f;
    Frame input(size_t(kInputH) * kInputW);
    gz_resample_u8(f.data(), kFrameH, kFrameW, input.data(), kInputH, kInputW);
    const std::array<float, 4> out = float_predict(model, input, kInputH, kInputW);
    const float n = std::sqrt(out[0] * out[0] + out[1] * out[1] + out[2] * out[2]);
    for (size_t k = 0; k < 3; ++k) sample.label.gaze[k] = out[k] / n;
    replay.push_back(std::move(sample));
  }
  set_replay_pack(net, replay);
  REQUIRE(net.tune.replay_gaze.size() == 16 * 3);
  const KernelSummary summary = write_kernel(net, dir, {"kernel_test", arena_budget});
  for (int32_t stage = 0; stage < 4; ++stage) {
    CHECK(summary.hidden_rows[stage] == (kInputH / 4) >> stage);
    if (arena_budget >= (size_t(1) << 20)) CHECK(summary.keep_rows[stage] == summary.hidden_rows[stage]);
  }
  return {std::move(net), dir, summary};
}

int shell(const std::string& command) { return testing::run_command(command).exit_code; }

// Configures and builds the kernel folder; returns the build directory.
std::string build_kernel(const std::string& dir, const std::string& name, const std::string& options) {
  const std::string build = dir + "/" + name;
  const std::string log = build + ".log";
  const int rc = std::system(("cmake -S '" + dir + "' -B '" + build + "' -DCMAKE_BUILD_TYPE=Release " + options +
                              " > '" + log + "' 2>&1 && cmake --build '" + build + "' -j 2 >> '" + log + "' 2>&1")
                                 .c_str());
  INFO("build log " << log << ":\n" << read_file(log));
  REQUIRE(rc == 0);
  return build;
}

std::vector<float> run_predict(const std::string& runner, const std::string& frames, const std::string& out,
                               const std::string& extra = "") {
  const auto r = testing::run_command(runner + " predict '" + frames + "' '" + out + "' " + extra);
  INFO(runner << ": " << r.output);
  REQUIRE(r.exit_code == 0);
  const std::string bytes = read_file(out);
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

std::vector<float> reference_predictions(const QuantizedNet& net, const std::vector<Frame>& frames) {
  std::vector<float> v;
  for (const Frame& f : frames) {
    const auto out = qnet_predict(net, f.data(), kFrameH, kFrameW);
    v.insert(v.end(), out.begin(), out.end());
  }
  return v;
}

size_t first_difference(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], 4) != 0) return i;
  }
  return a.size();
}

// A kernel folder exported from a perturbed student, and `count` frames written for its tool.
struct KernelCase {
  TempDir tmp;
  Exported k;
  std::vector<Frame> frames;
  std::string frames_path;
  KernelCase(uint64_t seed, int count, const std::vector<int64_t>& head_grid = {1, 1})
      : k(export_test_kernel(tmp.path() + "/kernel", seed, size_t(1) << 20, {0}, head_grid)),
        frames(eye_frames(count, kFrameH, kFrameW, uint32_t(seed))),
        frames_path(tmp.path() + "/frames.gzfr") {
    write_frames_file(frames_path, frames, kFrameH, kFrameW);
  }
};

// Unit gaze directions of head outputs [N][4] (in frame order).
std::vector<std::array<double, 3>> directions(const std::vector<float>& out) {
  std::vector<std::array<double, 3>> d;
  for (size_t i = 0; i + 3 < out.size(); i += 4) {
    const double n =
        std::sqrt(double(out[i]) * out[i] + double(out[i + 1]) * out[i + 1] + double(out[i + 2]) * out[i + 2]);
    d.push_back({out[i] / n, out[i + 1] / n, out[i + 2] / n});
  }
  return d;
}

double mean_angle_deg(const std::vector<std::array<double, 3>>& a, const std::vector<std::array<double, 3>>& b,
                      size_t first) {
  double sum = 0;
  for (size_t i = first; i < a.size(); ++i)
    sum += angular_error_deg({a[i][0], a[i][1], a[i][2]}, {b[i][0], b[i][1], b[i][2]});
  return sum / double(a.size() - first);
}

// A wearer whose gaze is the base model's turned by 6 degrees about the vertical axis (a personal
// offset, as the eye's visual axis differs from its optical axis): the first kCalibration frames
// calibrate, the rest evaluate. `base`: the integer reference's predictions of the frames (the
// wearer has as many). Writes the calibration frames and their gazes for the kernel tool.
constexpr size_t kCalibration = 5;

struct Wearer {
  std::vector<std::array<double, 3>> gaze;  // every frame's
  std::string frames_path, gazes_path;
};

Wearer make_wearer(const KernelCase& c, const std::vector<float>& base) {
  Wearer w;
  const double a = 6.0 * M_PI / 180.0;
  for (const auto& d : directions(base)) {
    w.gaze.push_back({d[0] * std::cos(a) + d[2] * std::sin(a), d[1], -d[0] * std::sin(a) + d[2] * std::cos(a)});
  }
  w.frames_path = c.tmp.path() + "/calibration.gzfr";
  w.gazes_path = c.tmp.path() + "/calibration.gaze";
  write_frames_file(w.frames_path, std::vector<Frame>(c.frames.begin(), c.frames.begin() + kCalibration), kFrameH,
                    kFrameW);
  std::string bytes;
  for (size_t i = 0; i < kCalibration; ++i)
    for (double v : w.gaze[i]) {
      const float f = float(v);
      bytes.append(reinterpret_cast<const char*>(&f), 4);
    }
  std::ofstream(w.gazes_path, std::ios::binary) << bytes;
  return w;
}

// `runner personalize` on the wearer's calibration frames; returns the blob's bytes. The replay
// pack's labels are the base model's own (no offset), so replay pulls against the wearer's
// offset; at lr 1e-3 the held-out error halves (at the default 3e-3 this random student's
// adapters overshoot in 60 steps).
std::string personalize_blob(const std::string& runner, const Wearer& w, const std::string& out,
                             const std::string& options = "") {
  const auto r = testing::run_command(runner + " personalize '" + w.frames_path + "' '" + w.gazes_path + "' '" + out +
                                      "' --json --lr 0.001 " + options);
  INFO(runner << ": " << r.output);
  REQUIRE(r.exit_code == 0);
  return read_file(out);
}

}  // namespace

TEST_CASE("generated kernel equals the integer reference bit for bit (avx2 and scalar, 1000 frames)", "[kernel]") {
  KernelCase c(5, 1000);
  const std::vector<float> expected = reference_predictions(c.k.net, c.frames);
  for (const char* simd : {"auto", "scalar"}) {
    const std::string build =
        build_kernel(c.k.dir, std::string("build-") + simd, std::string("-DDFTGAZE_WERROR=ON -DDFTGAZE_SIMD=") + simd);
    const std::vector<float> got = run_predict(build + "/dftgaze_tool", c.frames_path, c.tmp.path() + "/out.bin");
    INFO("path " << simd << ": first differing value " << first_difference(got, expected) << " of " << expected.size());
    CHECK(first_difference(got, expected) == expected.size());
  }
  // Tight arena budgets: stages 2-4 keep their pw1/GELU outputs, stage 1 only its first half's
  // rows and recomputes pw1 + GELU for the others after GRN's statistics, its outputs int16 or
  // int8 (each the reference of its own quantisation); same bits.
  const int32_t h0 = kInputH / 4, dims[4] = {40, 20, 40, 80}, half_kept[4] = {h0 / 2, h0 / 2, h0 / 4, h0 / 8};
  for (const int32_t stage1_int8 : {0, 1}) {
    const int32_t int8_hidden[4] = {stage1_int8, 0, 0, 0};
    const size_t budget = gz_arena_plan_compute(kInputH, kInputW, dims, half_kept, int8_hidden).total;
    const std::string name = stage1_int8 ? "small8" : "small16";
    const Exported small = export_test_kernel(c.tmp.path() + "/" + name, 5, budget,
                                              stage1_int8 ? std::set<int32_t>{0} : std::set<int32_t>{});
    INFO(name);
    CHECK(small.summary.keep_rows == std::array<int32_t, 4>{h0 / 2, h0 / 2, h0 / 4, h0 / 8});
    CHECK(small.summary.int8_hidden == std::array<int32_t, 4>{stage1_int8, 0, 0, 0});
    CHECK(small.summary.arena_bytes == budget);
    const std::string build = build_kernel(small.dir, "build", "-DDFTGAZE_WERROR=ON");
    const std::vector<float> got = run_predict(build + "/dftgaze_tool", c.frames_path, c.tmp.file(name + ".bin"));
    CHECK(first_difference(got, reference_predictions(small.net, c.frames)) == expected.size());
  }
}

// model.head.grid: the 2 x 3 last map pooled to 2 x 2 cells (the middle column in both), each
// LayerNorm'd, one Linear over all four; in the kernel, in its personalisation and its blob.
TEST_CASE("a grid head: the kernel equals the integer reference and personalises a wearer", "[kernel]") {
  KernelCase c(6, 40, {2, 2});
  REQUIRE(c.k.net.head.in == 4 * 80);
  REQUIRE(c.k.net.head_grid == std::array<int32_t, 2>{2, 2});
  const std::vector<float> expected = reference_predictions(c.k.net, c.frames);
  const std::string tool = build_kernel(c.k.dir, "build", "-DDFTGAZE_WERROR=ON") + "/dftgaze_tool";
  const std::vector<float> got = run_predict(tool, c.frames_path, c.tmp.path() + "/out.bin");
  CHECK(first_difference(got, expected) == expected.size());
  const Wearer w = make_wearer(c, expected);
  const std::string blob = personalize_blob(tool, w, c.tmp.file("user.gzu"));
  CHECK(blob.size() ==
        20 + c.k.net.tune.blocks.size() * gz_tune_adapter_payload_bytes(80, 20) + gz_head_payload_bytes(4 * 80));
  const auto user =
      directions(run_predict(tool, c.frames_path, c.tmp.file("user.bin"), "--user " + c.tmp.file("user.gzu")));
  const double before = mean_angle_deg(directions(expected), w.gaze, kCalibration);
  const double after = mean_angle_deg(user, w.gaze, kCalibration);
  INFO("held-out frames: " << before << " deg before, " << after << " deg after");
  CHECK(after < 0.7 * before);
}

// On-device personalisation (export/tune_run.h) through the kernel's own tool, as a device would
// run it: deterministic, a blob dftgaze_set_user takes, the wearer's offset learned on frames it
// never saw, and the same result from the scalar path.
TEST_CASE("dftgaze_personalize calibrates a wearer inside the kernel", "[kernel][personalize]") {
  KernelCase c(8, 40);
  const Wearer w = make_wearer(c, reference_predictions(c.k.net, c.frames));
  const std::string build = build_kernel(c.k.dir, "build", "-DDFTGAZE_WERROR=ON");
  const std::string tool = build + "/dftgaze_tool";
  const std::string blob = personalize_blob(tool, w, c.tmp.file("user.gzu"));
  const size_t head_bytes = gz_head_payload_bytes(80);
  CHECK(blob.size() == 20 + c.k.net.tune.blocks.size() * gz_tune_adapter_payload_bytes(80, 20) + head_bytes);
  CHECK(personalize_blob(tool, w, c.tmp.file("again.gzu")) == blob);  // bit for bit, run to run

  const auto base = directions(run_predict(tool, c.frames_path, c.tmp.file("base.bin")));
  const auto user =
      directions(run_predict(tool, c.frames_path, c.tmp.file("user.bin"), "--user " + c.tmp.file("user.gzu")));
  const double before = mean_angle_deg(base, w.gaze, kCalibration), after = mean_angle_deg(user, w.gaze, kCalibration);
  INFO("held-out frames: " << before << " deg before, " << after << " deg after");
  CHECK(before > 3.0);  // 6 degrees about the vertical axis, less for gazes off the horizontal plane
  CHECK(after < 0.7 * before);

  // With the head's Linear trained too: the same adapters' start, a head of the user's own in the
  // blob (its last bytes), deterministic, and the offset learned (less well on this random
  // student at this lr: 3.54 deg against 2.57 with the adapters alone; the comparison with the
  // workstation's head training is tests/export_e2e_test.cpp's).
  const std::string with_head = personalize_blob(tool, w, c.tmp.file("head.gzu"), "--train-head 1");
  CHECK(with_head.size() == blob.size());
  CHECK(with_head.substr(blob.size() - head_bytes) != blob.substr(blob.size() - head_bytes));
  CHECK(personalize_blob(tool, w, c.tmp.file("head_again.gzu"), "--train-head 1") == with_head);
  const auto user_head =
      directions(run_predict(tool, c.frames_path, c.tmp.file("head.bin"), "--user " + c.tmp.file("head.gzu")));
  const double after_head = mean_angle_deg(user_head, w.gaze, kCalibration);
  INFO("with the head trained: " << after_head << " deg");
  CHECK(after_head < 0.85 * before);
  CHECK(mean_angle_deg(user_head, user, 0) > 0.01);  // the head's training changed the predictions

  // The scalar path: the same integer features, the same float code without SIMD.
  const std::string scalar = build_kernel(c.k.dir, "build-scalar", "-DDFTGAZE_SIMD=scalar");
  personalize_blob(scalar + "/dftgaze_tool", w, c.tmp.file("scalar.gzu"));
  const auto user_scalar =
      directions(run_predict(tool, c.frames_path, c.tmp.file("user_scalar.bin"), "--user " + c.tmp.file("scalar.gzu")));
  CHECK(mean_angle_deg(user_scalar, user, 0) < 0.05);
}

TEST_CASE("generated kernel under qemu-aarch64 (NEON) equals the x86 kernel bit for bit", "[kernel]") {
  KernelCase c(6, 1000);
  REQUIRE(shell("command -v aarch64-linux-gnu-g++") == 0);  // scripts/setup installs it
  REQUIRE(shell("command -v qemu-aarch64") == 0);
  const std::string arm = build_kernel(c.k.dir, "build-aarch64",
                                       "-DCMAKE_TOOLCHAIN_FILE=" + c.k.dir +
                                           "/toolchain-aarch64.cmake -DDFTGAZE_STATIC=ON "
                                           "-DDFTGAZE_WERROR=ON");
  REQUIRE(read_file(arm + "/dftgaze_tool").substr(1, 3) == "ELF");
  const std::vector<float> neon =
      run_predict("qemu-aarch64 '" + arm + "/dftgaze_tool'", c.frames_path, c.tmp.path() + "/neon.bin");
  const std::string x86 = build_kernel(c.k.dir, "build-x86", "");
  const std::vector<float> native = run_predict(x86 + "/dftgaze_tool", c.frames_path, c.tmp.path() + "/x86.bin");
  const std::vector<float> expected = reference_predictions(c.k.net, c.frames);
  CHECK(first_difference(neon, native) == native.size());
  CHECK(first_difference(native, expected) == expected.size());
  // On-device personalisation on NEON: the same integer features, float code compiled for the
  // A72 (which fuses multiply-adds, with other vector widths), so not the x86 blob bit for bit.
  // And on this random student the training is chaotic: nudging the learning rate by 1e-7
  // (relative) moves the x86 blob's predictions by ~0.5 deg, as far as another seed does. So the
  // NEON blob is held to the x86 trainings' own spread: its wearer error lies within the range
  // of x86's over four seeds (seed 0 the NEON run's), widened by 0.25 deg.
  const Wearer w = make_wearer(c, expected);
  const auto wearer_error = [&](const std::string& runner, const std::string& options) {
    personalize_blob(runner, w, c.tmp.file("user.gzu"), options);
    const auto user = directions(
        run_predict(x86 + "/dftgaze_tool", c.frames_path, c.tmp.file("user.bin"), "--user " + c.tmp.file("user.gzu")));
    CHECK(mean_angle_deg(user, directions(native), 0) > 0.1);  // the blob changed the predictions
    return mean_angle_deg(user, w.gaze, kCalibration);
  };
  const double neon_deg = wearer_error("qemu-aarch64 '" + arm + "/dftgaze_tool'", "--seed 0");
  double low = 1e9, high = 0;
  for (int seed = 0; seed < 4; ++seed) {
    const double deg = wearer_error(x86 + "/dftgaze_tool", "--seed " + std::to_string(seed));
    low = std::min(low, deg), high = std::max(high, deg);
  }
  const double base_deg = mean_angle_deg(directions(native), w.gaze, kCalibration);
  INFO("wearer error: base " << base_deg << " deg, NEON " << neon_deg << ", x86 over 4 seeds " << low << " - " << high);
  CHECK(neon_deg >= low - 0.25);
  CHECK(neon_deg <= high + 0.25);
  CHECK(high < base_deg);  // every x86 training lowered the wearer's error
}

// The per-op tests (export/kernel_ops_test.cpp: every routine's SIMD variant against its scalar
// twin, edge values and odd shapes) compiled for AArch64 and run under qemu, so the NEON variants
// are checked op by op as the AVX2 ones are natively. Catch2 is header-only: its headers serve
// both architectures.
TEST_CASE("kernel ops: the NEON variants equal the scalar ones under qemu-aarch64", "[kernel]") {
  REQUIRE(shell("command -v aarch64-linux-gnu-g++") == 0);
  REQUIRE(shell("command -v qemu-aarch64") == 0);
  TempDir tmp;
  const std::string source = LIBGAZE_SOURCE_DIR;
  REQUIRE(shell("mkdir -p '" + tmp.file("include") + "' && ln -s /usr/include/catch2 '" + tmp.file("include/catch2") +
                "'") == 0);
  const auto build =
      testing::run_command("aarch64-linux-gnu-g++ -std=c++17 -O2 -mcpu=cortex-a72 -static -I'" + source + "' -I'" +
                           tmp.file("include") + "' '" + source + "/export/kernel_ops_test.cpp' '" + source +
                           "/tests/catch_main.cpp' -o '" + tmp.file("ops_neon") + "'");
  INFO(build.output);
  REQUIRE(build.exit_code == 0);
  const auto run = testing::run_command("qemu-aarch64 '" + tmp.file("ops_neon") + "'");
  INFO(run.output);
  CHECK(run.exit_code == 0);
  // Every case passed but the one outside the input contract ([!mayfail], as natively).
  CHECK_THAT(run.output, Catch::Contains(" passed | 1 failed as expected"));
}

TEST_CASE("generated kernel is clean under ASan and UBSan and makes no heap allocation per call", "[kernel]") {
  KernelCase c(7, 40);
  const std::string san = build_kernel(c.k.dir, "build-san", "-DDFTGAZE_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo");
  const std::vector<float> got = run_predict(san + "/dftgaze_tool", c.frames_path, c.tmp.path() + "/san.bin");
  const std::vector<float> expected = reference_predictions(c.k.net, c.frames);
  CHECK(first_difference(got, expected) == got.size());

  const Wearer w = make_wearer(c, expected);
  personalize_blob(san + "/dftgaze_tool", w, c.tmp.file("san.gzu"));  // any report fails the run
  personalize_blob(san + "/dftgaze_tool", w, c.tmp.file("san_head.gzu"), "--train-head 1");
  const auto api = testing::run_command(san + "/dftgaze_tool check-api '" + c.tmp.file("san.gzu") + "'");
  INFO(api.output);
  CHECK(api.exit_code == 0);
  CHECK(api.output.find("check-api: ok") != std::string::npos);

  const std::string plain = build_kernel(c.k.dir, "build-alloc", "");
  const auto alloc = testing::run_command(plain + "/dftgaze_check_alloc check-alloc '" + c.frames_path + "'");
  INFO(alloc.output);
  CHECK(alloc.exit_code == 0);
  CHECK(alloc.output.find("0 allocations in 40 predict calls") != std::string::npos);
  const auto tune = testing::run_command(plain + "/dftgaze_check_alloc personalize '" + w.frames_path + "' '" +
                                         w.gazes_path + "' '" + c.tmp.file("alloc.gzu") + "'");
  INFO(tune.output);
  CHECK(tune.exit_code == 0);
  CHECK(tune.output.find("0 allocations in one personalize call") != std::string::npos);
  // And statically: the kernel object references no allocator and no exception machinery.
  const auto nm = testing::run_command("nm -u '" + plain + "/libdftgaze.a'");
  REQUIRE(nm.exit_code == 0);
  const std::string undefined = nm.output;
  INFO(undefined);
  for (const char* forbidden : {"malloc", "calloc", "realloc", "_Znwm", "_Znam", "__cxa_throw", "__cxa_allocate"}) {
    CHECK(undefined.find(forbidden) == std::string::npos);
  }
}

// llvm-mca's report as llvm-mca itself writes it, from a two-region file: "a" one independent
// add per pass, "b" a chain of dependent multiplies (the A72's MUL latency per pass).
TEST_CASE("the cycle model reads llvm-mca's per-region report", "[kernel][pi4]") {
  REQUIRE(shell("command -v llvm-mca") == 0);  // scripts/setup installs llvm
  TempDir tmp;
  std::ofstream(tmp.file("two.s")) << "\t# LLVM-MCA-BEGIN a\n\tadd x0, x0, x1\n\t# LLVM-MCA-END\n"
                                      "\t# LLVM-MCA-BEGIN b\n\tmul x2, x2, x3\n\t# LLVM-MCA-END\n";
  const auto r = testing::run_command("llvm-mca -mtriple=aarch64-linux-gnu -mcpu=cortex-a72 -iterations=100 '" +
                                      tmp.file("two.s") + "'");
  REQUIRE(r.exit_code == 0);
  const std::vector<McaRegion> regions = parse_mca_report(r.output);
  REQUIRE(regions.size() == 2);
  CHECK(regions[0].name == "a");
  CHECK(regions[1].name == "b");
  CHECK(regions[0].iterations == 100);
  CHECK(regions[0].instructions == 100);
  CHECK(double(regions[0].cycles) / 100 < 1.5);                   // independent adds: about one per cycle
  CHECK(double(regions[1].cycles) / 100 == Approx(5).margin(1));  // each waits for the last multiply
  CHECK_THROWS_WITH(parse_mca_report("Iterations: 100\nTotal Cycles: 10\n"), Catch::Contains("no code regions"));
  CHECK_THROWS_WITH(parse_mca_report("[0] Code Region - x\nIterations: lots\n"),
                    Catch::Contains("'Iterations: lots' is not 'Iterations: <number>'"));
}

// The whole model on a generated kernel: llvm-mca's cycles for the NEON bodies, passes counted
// under qemu. The passes must be the network's own loop counts: GELU runs over every element of
// every block's 4C-wide hidden tensor (8 per NEON pass, the rest one by one), GRN's sums of
// squares once per element.
TEST_CASE("the Pi 4 cycle model times the NEON loop bodies and counts their passes per frame", "[kernel][pi4]") {
  TempDir tmp;
  const Exported k = export_test_kernel(tmp.path() + "/kernel", 8);
  const CycleModel m = model_pi4_cycles(k.dir, tmp.path() + "/mca");
  std::map<std::string, CycleRegion> by_name;
  for (const CycleRegion& r : m.predict.regions) by_name[r.name] = r;
  uint64_t hidden = 0, hidden16 = 0;  // GELU outputs per frame; of them in int16 stages (all but stage 1)
  for (size_t s = 0; s < 4; ++s) {
    const uint64_t positions = uint64_t(kInputH / (4 << s)) * uint64_t(kInputW / (4 << s));
    hidden += uint64_t(k.net.depths[s]) * positions * 4 * uint64_t(k.net.dims[s]);
    if (s > 0) hidden16 += uint64_t(k.net.depths[s]) * positions * 4 * uint64_t(k.net.dims[s]);
  }
  CHECK(8 * by_name.at("gelu8").passes + by_name.at("gelu").passes == hidden);  // 8 values per NEON pass
  // GRN's sums (8 channels a pass) and application: 4 int16 or 8 int8 channels a pass
  CHECK(8 * by_name.at("grn_sum_sq8").passes + by_name.at("grn_sum_sq").passes == hidden16);
  CHECK(8 * by_name.at("grn8_sum_sq").passes == hidden - hidden16);
  CHECK(4 * by_name.at("grn_apply").passes == hidden16);
  CHECK(8 * by_name.at("grn8_apply").passes == hidden - hidden16);
  for (const char* region :
       {"pw_step4", "pw_step3", "pw_half4", "pw8_dot4", "pw8_dot3", "pw8_dot_store4", "cvt_s8", "pw_store4", "dw_mac",
        "dw_pair_row", "dw_store", "ln_out", "add", "gelu8", "grn8_apply", "grn8_sum_sq", "leaky_relu8"}) {
    INFO(region);
    CHECK(by_name.at(region).passes > 0);
    CHECK(by_name.at(region).cycles_per_pass > 0);
    CHECK_FALSE(by_name.at(region).untimed);
  }
  // A pass of pw_step4 is 32 SMLAL (128 MACs): at least 32 cycles, the A72 multiplying integers
  // on one NEON pipe; and not far above (the accumulators stay in registers).
  CHECK(by_name.at("pw_step4").cycles_per_pass >= 32);
  CHECK(by_name.at("pw_step4").cycles_per_pass < 40);
  // A pass of pw8_dot4 is 16 SMULL + 16 SMLAL2 on 8-bit lanes (256 MACs, twice as many per
  // multiply) and nothing else on the multiply pipe: at least 32 cycles, and near that (the
  // pairs layout it replaced, with every input broadcast, took 41).
  CHECK(by_name.at("pw8_dot4").cycles_per_pass >= 32);
  CHECK(by_name.at("pw8_dot4").cycles_per_pass < 36);
  // A depthwise pass over one kernel row for two columns is 28 SMLAL: at least 28 cycles.
  CHECK(by_name.at("dw_pair_row").cycles_per_pass >= 28);
  CHECK(by_name.at("dw_pair_row").cycles_per_pass < 40);
  // GRN's 22 instructions per 4 values store through a post-incremented pointer, which llvm-mca
  // alone would serialise on the store data (39 cycles per pass); split, they overlap.
  CHECK(by_name.at("grn_apply").cycles_per_pass < 20);
  CHECK(m.predict.cycles > 0);
  CHECK(m.ms_per_frame() == Approx(m.predict.cycles / 1.5e6));

  // One calibration (5 frames, the export's defaults): the float training loops' NEON tiles ran
  // and were timed. The weight-gradient tile (4 gradient rows x 16 columns) passes once per
  // position for every such tile of both adapter matrices, in every frame of every step.
  std::map<std::string, CycleRegion> tune;
  for (const CycleRegion& r : m.personalize.regions) tune[r.name] = r;
  REQUIRE(tune.count("tune_tn16"));
  for (const char* region : {"tune_nn16", "tune_nn4", "tune_nt", "tune_nt_sum", "tune_tn16", "tune_tn4", "tune_mac4",
                             "tune_ln_out", "tune_lndx_out", "tune_grn_dx", "tune_scale4", "tune_update4",
                             "tune_adamw4", "tune_gelu4", "pw_step4", "gelu8"}) {
    INFO(region);
    CHECK(tune.at(region).passes > 0);
    CHECK(tune.at(region).cycles_per_pass > 0);
    CHECK_FALSE(tune.at(region).untimed);
  }
  const TuneData& t = k.net.tune;
  const uint64_t positions = uint64_t(t.height) * uint64_t(t.width), c = uint64_t(t.channels), h = uint64_t(t.hidden),
                 frames = uint64_t(t.defaults.steps) * uint64_t(t.defaults.batch_size);
  const uint64_t per_adapter = (c / 4) * (h / 16) + (h / 4) * (c / 16);  // tiles of d up.weight, d down.weight
  CHECK(tune.at("tune_tn16").passes == frames * uint64_t(t.blocks.size()) * per_adapter * positions);
  // A pass of tune_nn16 is 64 FMLA on 4 float lanes: the A72 issues one a cycle (both FP pipes).
  CHECK(tune.at("tune_nn16").cycles_per_pass >= 64);
  CHECK(tune.at("tune_nn16").cycles_per_pass < 80);
  CHECK(m.personalize.cycles > 10 * m.predict.cycles);  // 20 views through the network, then 1920 frames of training
  CHECK_THAT(m.llvm_mca, Catch::Contains("LLVM version"));
  CHECK_THROWS_WITH(model_pi4_cycles(tmp.path(), tmp.path() + "/x"), Catch::Contains("not a kernel folder"));
}

}  // namespace gaze
