// The generated kernel, built with its own CMakeLists.txt as a user would, against the integer
// reference: bit for bit on 1000 frames (AVX2 and scalar here, NEON under qemu-aarch64), with
// user blobs, -Wall -Wextra -Werror, under ASan + UBSan, and without heap allocations.
#include <ATen/ATen.h>
#include <torch/utils.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include "export/codegen.h"
#include "export/export_job.h"
#include "export/quantizer.h"
#include "tests/test_util.h"

namespace gaze {
namespace {

using testing::read_file;
using testing::TempDir;

constexpr int32_t kInputH = 64, kInputW = 96;  // stage-1 map 16x24: both GRN paths run
constexpr int32_t kFrameH = 75, kFrameW = 101; // odd eye size: the resampler is exercised

GazeNet test_student(uint64_t seed) {
  GazeNet model = make_gaze_net(default_config({}).model, seed);
  torch::NoGradGuard no_grad;
  at::manual_seed(int64_t(seed) + 7);
  for (auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    if (name.find("grn.") != std::string::npos || name.find("adapter.up") != std::string::npos ||
        name.find("adapter.bn") != std::string::npos || name.find("norm") != std::string::npos) {
      p.value().add_(at::randn_like(p.value()) * 0.2);
    }
  }
  for (auto& b : model->named_buffers()) {
    if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
    if (b.key().find("running_mean") != std::string::npos) b.value().normal_(0, 0.1);
  }
  model->eval();
  return model;
}

// Eye-like frames: dark pupil, mid iris, bright skin, noise; positions vary per frame.
std::vector<Frame> eye_frames(int count, int32_t h, int32_t w, uint32_t seed) {
  std::mt19937 rng{seed};
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Frame> frames;
  for (int i = 0; i < count; ++i) {
    const double cx = w * (0.3 + 0.4 * u(rng)), cy = h * (0.3 + 0.4 * u(rng)), r = h * (0.1 + 0.1 * u(rng));
    Frame f(size_t(h) * w);
    for (int32_t y = 0; y < h; ++y)
      for (int32_t x = 0; x < w; ++x) {
        const double d = std::hypot(x - cx, y - cy);
        const double v = d < r ? 25 : d < 2.2 * r ? 100 + 20 * std::sin(x * 0.7) : 185;
        f[size_t(y) * w + x] = uint8_t(std::clamp(v + 12 * (u(rng) - 0.5), 0.0, 255.0));
      }
    frames.push_back(std::move(f));
  }
  return frames;
}

struct Exported {
  QuantizedNet net;
  std::string dir;
};

Exported export_test_kernel(const std::string& dir, uint64_t seed, size_t arena_budget = size_t(1) << 20) {
  GazeNet model = test_student(seed);
  QuantizeOptions options;
  options.input_h = kInputH;
  options.input_w = kInputW;
  const auto calibration = eye_frames(32, kInputH, kInputW, 11);
  QuantizedNet net = quantize_model(model, calibrate(model, calibration, options), options);
  const KernelSummary summary = write_kernel(net, dir, {"kernel_test", arena_budget});
  CHECK(summary.store_hidden == (arena_budget >= summary.arena_bytes));
  return {std::move(net), dir};
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

}  // namespace

TEST_CASE("generated kernel equals the integer reference bit for bit (avx2 and scalar, 1000 frames)", "[kernel]") {
  TempDir tmp;
  const Exported k = export_test_kernel(tmp.path() + "/kernel", 5);
  const auto frames = eye_frames(1000, kFrameH, kFrameW, 3);
  write_frames_file(tmp.path() + "/frames.gzfr", frames, kFrameH, kFrameW);
  const std::vector<float> expected = reference_predictions(k.net, frames);
  for (const char* simd : {"auto", "scalar"}) {
    const std::string build = build_kernel(k.dir, std::string("build-") + simd,
                                           std::string("-DDFTGAZE_WERROR=ON -DDFTGAZE_SIMD=") + simd);
    const std::vector<float> got = run_predict(build + "/dftgaze_tool", tmp.path() + "/frames.gzfr", tmp.path() + "/out.bin");
    INFO("path " << simd << ": first differing value " << first_difference(got, expected) << " of " << expected.size());
    CHECK(first_difference(got, expected) == expected.size());
  }
  // A tight arena budget: the blocks recompute pw1 + GELU instead of keeping them; same bits.
  const Exported small = export_test_kernel(tmp.path() + "/kernel_small", 5, 1);
  const std::string build = build_kernel(small.dir, "build", "-DDFTGAZE_WERROR=ON");
  const std::vector<float> got = run_predict(build + "/dftgaze_tool", tmp.path() + "/frames.gzfr", tmp.path() + "/small.bin");
  CHECK(first_difference(got, expected) == expected.size());
}

TEST_CASE("generated kernel under qemu-aarch64 (NEON) equals the x86 kernel bit for bit", "[kernel]") {
  TempDir tmp;
  const Exported k = export_test_kernel(tmp.path() + "/kernel", 6);
  const auto frames = eye_frames(1000, kFrameH, kFrameW, 4);
  write_frames_file(tmp.path() + "/frames.gzfr", frames, kFrameH, kFrameW);
  REQUIRE(shell("command -v aarch64-linux-gnu-g++") == 0);  // scripts/setup installs it
  REQUIRE(shell("command -v qemu-aarch64") == 0);
  const std::string arm = build_kernel(k.dir, "build-aarch64",
                                       "-DCMAKE_TOOLCHAIN_FILE=" + k.dir + "/toolchain-aarch64.cmake -DDFTGAZE_STATIC=ON "
                                       "-DDFTGAZE_WERROR=ON");
  REQUIRE(read_file(arm + "/dftgaze_tool").substr(1, 3) == "ELF");
  const std::vector<float> neon = run_predict("qemu-aarch64 '" + arm + "/dftgaze_tool'", tmp.path() + "/frames.gzfr",
                                              tmp.path() + "/neon.bin");
  const std::string x86 = build_kernel(k.dir, "build-x86", "");
  const std::vector<float> native = run_predict(x86 + "/dftgaze_tool", tmp.path() + "/frames.gzfr", tmp.path() + "/x86.bin");
  const std::vector<float> expected = reference_predictions(k.net, frames);
  CHECK(first_difference(neon, native) == native.size());
  CHECK(first_difference(native, expected) == expected.size());
}

TEST_CASE("generated kernel is clean under ASan and UBSan and makes no heap allocation per call", "[kernel]") {
  TempDir tmp;
  const Exported k = export_test_kernel(tmp.path() + "/kernel", 7);
  const auto frames = eye_frames(40, kFrameH, kFrameW, 5);
  write_frames_file(tmp.path() + "/frames.gzfr", frames, kFrameH, kFrameW);
  const std::string san = build_kernel(k.dir, "build-san", "-DDFTGAZE_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo");
  const std::vector<float> got = run_predict(san + "/dftgaze_tool", tmp.path() + "/frames.gzfr", tmp.path() + "/san.bin");
  CHECK(first_difference(got, reference_predictions(k.net, frames)) == got.size());

  const std::string plain = build_kernel(k.dir, "build-alloc", "");
  const auto alloc = testing::run_command(plain + "/dftgaze_check_alloc check-alloc '" + tmp.path() + "/frames.gzfr'");
  INFO(alloc.output);
  CHECK(alloc.exit_code == 0);
  CHECK(alloc.output.find("0 allocations in 40 predict calls") != std::string::npos);
  // And statically: the kernel object references no allocator and no exception machinery.
  const auto nm = testing::run_command("nm -u '" + plain + "/libdftgaze.a'");
  REQUIRE(nm.exit_code == 0);
  const std::string undefined = nm.output;
  INFO(undefined);
  for (const char* forbidden : {"malloc", "calloc", "realloc", "_Znwm", "_Znam", "__cxa_throw", "__cxa_allocate"}) {
    CHECK(undefined.find(forbidden) == std::string::npos);
  }
}

}  // namespace gaze
