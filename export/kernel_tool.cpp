// dftgaze_tool: run, time and check the generated kernel (not part of the kernel itself).
//
//   dftgaze_tool predict FRAMES OUT [--user BLOB]   predictions of every frame, raw float32 x4
//   dftgaze_tool bench [FRAMES] [--frames N] [--warmup N] [--json]
//   dftgaze_tool personalize FRAMES GAZES OUT [--steps N] [--seed S] [--views N] [--lr X] [--batch-size N]
//                            [--replay-fraction X] [--train-head 0|1] [--json]   a wearer's blob from
//                            calibration frames
//   dftgaze_tool check-api [BLOB [BAD_BLOB]]         the API's error codes and set_user(NULL)
//   dftgaze_check_alloc check-alloc FRAMES [--user BLOB]   fails if any call allocates
//   (built with -DGZ_MCA_COUNT) mca-counts [predict|personalize]  passes per cycle-model region in one call
// FRAMES: "GZFR", uint32 count, height, width (little-endian, each side 1..65535), then
// count*height*width pixels. GAZES: count x 3 float32 unit gaze vectors (x, y, z), one per frame.
// Without FRAMES, bench renders deterministic test patterns at the kernel's input size.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "dftgaze.h"

#ifdef DFTGAZE_COUNT_ALLOCATIONS
// operator new below is malloc, so free is its delete; GCC cannot see that through inlining.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
static long g_allocations = 0;
extern "C" {
void* __real_malloc(size_t);
void* __real_calloc(size_t, size_t);
void* __real_realloc(void*, size_t);
void* __real_aligned_alloc(size_t, size_t);
int __real_posix_memalign(void**, size_t, size_t);
void* __wrap_malloc(size_t n) {
  ++g_allocations;
  return __real_malloc(n);
}
void* __wrap_calloc(size_t n, size_t m) {
  ++g_allocations;
  return __real_calloc(n, m);
}
void* __wrap_realloc(void* p, size_t n) {
  ++g_allocations;
  return __real_realloc(p, n);
}
void* __wrap_aligned_alloc(size_t a, size_t n) {
  ++g_allocations;
  return __real_aligned_alloc(a, n);
}
int __wrap_posix_memalign(void** p, size_t a, size_t n) {
  ++g_allocations;
  return __real_posix_memalign(p, a, n);
}
}
void* operator new(size_t n) {
  ++g_allocations;
  if (void* p = __real_malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
#endif

namespace {

struct Frames {
  uint32_t count = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;
  const uint8_t* frame(size_t i) const { return pixels.data() + i * size_t(height) * width; }
};

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "dftgaze_tool: %s\n", message.c_str());
  std::exit(1);
}

std::vector<uint8_t> read_all(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("cannot open '" + path + "'");
  std::vector<uint8_t> data;
  uint8_t buffer[65536];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;) data.insert(data.end(), buffer, buffer + n);
  std::fclose(f);
  return data;
}

// A GZFR file's bytes into frames: "" on success, else what is wrong with them.
std::string parse_frames(const std::vector<uint8_t>& data, Frames* f) {
  if (data.size() < 16 || std::memcmp(data.data(), "GZFR", 4) != 0) return "not a GZFR frames file";
  std::memcpy(&f->count, &data[4], 4);
  std::memcpy(&f->height, &data[8], 4);
  std::memcpy(&f->width, &data[12], 4);
  // frame * count cannot wrap: the check divides instead of multiplying.
  const size_t frame = size_t(f->height) * f->width, bytes = data.size() - 16;
  if (f->height == 0 || f->width == 0 || f->height > 65535 || f->width > 65535 || bytes % frame != 0 ||
      bytes / frame != f->count) {
    return "header says " + std::to_string(f->count) + " frames of " + std::to_string(f->height) + "x" +
           std::to_string(f->width) + " but the file holds " + std::to_string(bytes) + " pixel bytes";
  }
  f->pixels.assign(data.begin() + 16, data.end());
  return "";
}

Frames read_frames(const std::string& path) {
  Frames f;
  const std::string error = parse_frames(read_all(path), &f);
  if (!error.empty()) fail(path + ": " + error);
  return f;
}

// Deterministic textured frames (a bright disc on a gradient, with noise) at the input size.
Frames pattern_frames(uint32_t count) {
  Frames f{count, DFTGAZE_INPUT_H, DFTGAZE_INPUT_W, {}};
  f.pixels.resize(size_t(count) * f.height * f.width);
  uint32_t state = 12345;
  for (uint32_t i = 0; i < count; ++i) {
    const int cy = int(f.height / 2 + (i % 7) * 3), cx = int(f.width / 2 + (i % 11) * 3);
    for (uint32_t y = 0; y < f.height; ++y)
      for (uint32_t x = 0; x < f.width; ++x) {
        state = state * 1664525u + 1013904223u;
        const int d2 = (int(y) - cy) * (int(y) - cy) + (int(x) - cx) * (int(x) - cx);
        const int v = (d2 < int(f.height * f.height / 16) ? 40 : 160) + int(x * 40 / f.width) + int(state >> 28);
        f.pixels[(size_t(i) * f.height + y) * f.width + x] = uint8_t(std::min(255, v));
      }
  }
  return f;
}

void use_user(int argc, char** argv, std::vector<uint8_t>& blob) {
  for (int i = 0; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--user") == 0) {
      blob = read_all(argv[i + 1]);
      const int rc = dftgaze_set_user(blob.data(), blob.size());
      if (rc != 0) fail(std::string(argv[i + 1]) + ": dftgaze_set_user failed with " + std::to_string(rc));
    }
  }
}

int predict(int argc, char** argv) {
  if (argc < 4) fail("usage: dftgaze_tool predict FRAMES OUT [--user BLOB]");
  const Frames frames = read_frames(argv[2]);
  std::vector<uint8_t> blob;
  use_user(argc, argv, blob);
  std::vector<float> out(size_t(frames.count) * 4);
  for (uint32_t i = 0; i < frames.count; ++i) {
    const int rc = dftgaze_predict(frames.frame(i), int(frames.height), int(frames.width), &out[size_t(i) * 4]);
    if (rc != 0) fail("dftgaze_predict failed with " + std::to_string(rc) + " on frame " + std::to_string(i));
  }
  FILE* f = std::fopen(argv[3], "wb");
  if (!f || std::fwrite(out.data(), sizeof(float), out.size(), f) != out.size() || std::fclose(f) != 0) {
    fail(std::string("cannot write '") + argv[3] + "'");
  }
  return 0;
}

int bench(int argc, char** argv) {
  uint32_t count = 1000, warmup = 50;
  bool json = false;
  std::string frames_path;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--frames" && i + 1 < argc)
      count = uint32_t(std::atoi(argv[++i]));
    else if (a == "--warmup" && i + 1 < argc)
      warmup = uint32_t(std::atoi(argv[++i]));
    else if (a == "--json")
      json = true;
    else if (a[0] != '-')
      frames_path = a;
    else
      fail("unknown bench option '" + a + "'");
  }
  const Frames frames = frames_path.empty() ? pattern_frames(std::max<uint32_t>(1, std::min<uint32_t>(count, 64)))
                                            : read_frames(frames_path);
  if (count < 1 || frames.count < 1) fail("bench needs at least one frame");
  float out[4];
  for (uint32_t i = 0; i < warmup; ++i)
    dftgaze_predict(frames.frame(i % frames.count), int(frames.height), int(frames.width), out);
  std::vector<double> ms(count);
  float checksum = 0;
  for (uint32_t i = 0; i < count; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const int rc = dftgaze_predict(frames.frame(i % frames.count), int(frames.height), int(frames.width), out);
    ms[i] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (rc != 0) fail("dftgaze_predict failed with " + std::to_string(rc));
    checksum += out[0];
  }
  double total = 0;
  for (double v : ms) total += v;
  std::sort(ms.begin(), ms.end());
  const double p50 = ms[ms.size() / 2], p99 = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  const double mean = total / double(count), gmacs = double(DFTGAZE_MACS) / (p50 * 1e6);
  if (json) {
    std::printf(
        "{\"kernel_p50_ms\": %.6f, \"kernel_p99_ms\": %.6f, \"kernel_mean_ms\": %.6f, \"fps\": %.2f, "
        "\"macs\": %llu, \"int8_macs\": %llu, \"gmacs_per_s\": %.3f, \"weights_bytes\": %d, \"constant_bytes\": %d, "
        "\"arena_bytes\": %d, "
        "\"input\": [%d, %d], \"frames\": %u, \"simd\": \"%s\", \"checksum\": %.6f}\n",
        p50, p99, mean, 1000.0 / mean, (unsigned long long)DFTGAZE_MACS, (unsigned long long)DFTGAZE_INT8_MACS, gmacs,
        DFTGAZE_WEIGHT_BYTES, DFTGAZE_CONSTANT_BYTES, DFTGAZE_ARENA_BYTES, DFTGAZE_INPUT_H, DFTGAZE_INPUT_W, count,
        dftgaze_simd(), double(checksum));
  } else {
    std::printf("dftgaze (%s), input %dx%d, %u frames of %ux%u after %u warm-up calls\n", dftgaze_simd(),
                DFTGAZE_INPUT_H, DFTGAZE_INPUT_W, count, frames.height, frames.width, warmup);
    std::printf("  latency p50 %.3f ms  p99 %.3f ms  mean %.3f ms  (%.1f frames/s)\n", p50, p99, mean, 1000.0 / mean);
    std::printf("  %.1f MMAC per frame (%.1f int8 x int8), %.2f GMAC/s at p50\n", double(DFTGAZE_MACS) / 1e6,
                double(DFTGAZE_INT8_MACS) / 1e6, gmacs);
    std::printf("  weights %d bytes (all constant data %d), arena %d bytes\n", DFTGAZE_WEIGHT_BYTES,
                DFTGAZE_CONSTANT_BYTES, DFTGAZE_ARENA_BYTES);
  }
  return 0;
}

// A work buffer for dftgaze_personalize: `bytes` bytes, 16-byte aligned as it requires.
struct AlignedWork {
  std::vector<uint8_t> storage;
  void* data;
  explicit AlignedWork(size_t bytes) : storage(bytes + 16) {
    data = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(storage.data()) + 15) & ~uintptr_t(15));
  }
};

// Writes `bytes` to `path` through a temporary file and a rename, so a failure leaves no half file.
void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0 ||
      std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail("cannot write '" + path + "'");
  }
}

// dftgaze_personalize on every frame of FRAMES with its gaze in GAZES; the blob goes to OUT.
int personalize(int argc, char** argv) {
  if (argc < 5)
    fail(
        "usage: dftgaze_tool personalize FRAMES GAZES OUT [--steps N] [--seed S] [--views N] [--lr X] "
        "[--batch-size N] [--replay-fraction X] [--train-head 0|1] [--json]");
  const Frames frames = read_frames(argv[2]);
  const std::vector<uint8_t> gaze_bytes = read_all(argv[3]);
  if (gaze_bytes.size() != size_t(frames.count) * 12) {
    fail(std::string(argv[3]) + ": " + std::to_string(gaze_bytes.size()) + " bytes, expected " +
         std::to_string(frames.count) + " gaze vectors of 3 float32");
  }
  std::vector<float> gazes(size_t(frames.count) * 3);
  std::memcpy(gazes.data(), gaze_bytes.data(), gaze_bytes.size());
  dftgaze_personalize_options options;
  dftgaze_personalize_defaults(&options);
  bool json = false;
  for (int i = 5; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc)
      options.steps = std::atoi(argv[++i]);
    else if (a == "--seed" && i + 1 < argc)
      options.seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--views" && i + 1 < argc)
      options.views = std::atoi(argv[++i]);
    else if (a == "--replay-fraction" && i + 1 < argc)
      options.replay_fraction = float(std::atof(argv[++i]));
    else if (a == "--lr" && i + 1 < argc)
      options.lr = float(std::atof(argv[++i]));
    else if (a == "--batch-size" && i + 1 < argc)
      options.batch_size = std::atoi(argv[++i]);
    else if (a == "--train-head" && i + 1 < argc)
      options.train_head = std::atoi(argv[++i]);
    else if (a == "--json")
      json = true;
    else
      fail("unknown personalize option '" + a + "'");
  }
  const int k = int(frames.count);
  std::vector<const uint8_t*> eyes(frames.count);
  for (uint32_t i = 0; i < frames.count; ++i) eyes[i] = frames.frame(i);
  const size_t work_bytes = dftgaze_personalize_work_bytes(k, &options);
  const AlignedWork work(work_bytes);
  void* aligned = work.data;
  std::vector<uint8_t> blob(DFTGAZE_USER_BLOB_BYTES);
#ifdef DFTGAZE_COUNT_ALLOCATIONS
  const long before = g_allocations;
#endif
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = dftgaze_personalize(eyes.data(), int(frames.height), int(frames.width), gazes.data(), k, &options,
                                     aligned, work_bytes, blob.data(), blob.size());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
#ifdef DFTGAZE_COUNT_ALLOCATIONS
  std::printf("%ld allocations in one personalize call\n", g_allocations - before);
  if (g_allocations != before) return 1;
#endif
  if (rc != 0) fail("dftgaze_personalize failed with " + std::to_string(rc));
  write_file_atomically(argv[4], blob);
  if (json) {
    std::printf(
        "{\"personalize_ms\": %.3f, \"k\": %d, \"views\": %d, \"steps\": %d, \"batch_size\": %d, "
        "\"train_head\": %d, \"replay_frames\": %u, \"work_bytes\": %zu, \"blob_bytes\": %zu, \"simd\": \"%s\"}\n",
        ms, k, options.views, options.steps, options.batch_size, options.train_head, unsigned(DFTGAZE_REPLAY_FRAMES),
        work_bytes, blob.size(), dftgaze_simd());
  } else {
    std::printf("dftgaze_personalize (%s): %d frames x %d views, %d steps of %d%s, replay pack %u frames: %.1f ms\n",
                dftgaze_simd(), k, options.views, options.steps, options.batch_size,
                options.train_head ? " (adapters and head)" : "", unsigned(DFTGAZE_REPLAY_FRAMES), ms);
    std::printf("  work buffer %zu bytes, blob %zu bytes -> %s\n", work_bytes, blob.size(), argv[4]);
  }
  return 0;
}

// Bad arguments get their error codes, and set_user(NULL) brings back the base's exact outputs.
int check_api(int argc, char** argv) {
  const Frames frames = pattern_frames(1);
  const uint8_t* eye = frames.frame(0);
  const int h = int(frames.height), w = int(frames.width);
  float base[4], again[4], out[4];
  int failures = 0;
  const auto expect = [&](const char* what, int got, int want) {
    if (got != want) {
      std::fprintf(stderr, "check-api: %s returned %d, expected %d\n", what, got, want);
      ++failures;
    }
  };
  expect("predict(valid)", dftgaze_predict(eye, h, w, base), 0);
  expect("predict(null eye)", dftgaze_predict(nullptr, h, w, out), DFTGAZE_ERROR_NULL);
  expect("predict(null out)", dftgaze_predict(eye, h, w, nullptr), DFTGAZE_ERROR_NULL);
  expect("predict(h = 0)", dftgaze_predict(eye, 0, w, out), DFTGAZE_ERROR_SIZE);
  expect("predict(w = -3)", dftgaze_predict(eye, h, -3, out), DFTGAZE_ERROR_SIZE);
  const uint8_t junk[32] = {'G', 'Z', 'U', 'A'};
  expect("set_user(junk)", dftgaze_set_user(junk, sizeof junk),
         DFTGAZE_USER_PAYLOAD_BYTES ? DFTGAZE_ERROR_BAD_BLOB : DFTGAZE_ERROR_NO_ADAPTERS);
  if (argc > 2) {
    const std::vector<uint8_t> blob = read_all(argv[2]);
    expect("set_user(blob)", dftgaze_set_user(blob.data(), blob.size()), 0);
    expect("predict(user)", dftgaze_predict(eye, h, w, out), 0);
    if (argc > 3) {  // a refused blob leaves the user's adapters exactly as they were
      const std::vector<uint8_t> bad = read_all(argv[3]);
      float kept[4];
      expect("set_user(bad blob)", dftgaze_set_user(bad.data(), bad.size()), DFTGAZE_ERROR_BAD_BLOB);
      expect("predict(user kept)", dftgaze_predict(eye, h, w, kept), 0);
      if (std::memcmp(out, kept, sizeof out) != 0) {
        std::fprintf(stderr, "check-api: a refused blob changed the user's outputs\n");
        ++failures;
      }
    }
  }
  // Personalisation's argument checks (the success path: `dftgaze_tool personalize`).
  dftgaze_personalize_options o;
  dftgaze_personalize_defaults(&o);
  o.views = 1;
  o.steps = 1;
  if (DFTGAZE_USER_PAYLOAD_BYTES && dftgaze_personalize_work_bytes(1, &o) > 0) {
    const size_t bytes = dftgaze_personalize_work_bytes(1, &o);
    const AlignedWork work(bytes);
    void* aligned = work.data;
    std::vector<uint8_t> blob(DFTGAZE_USER_BLOB_BYTES);
    const float gaze[3] = {0, 0, 1};
    const uint8_t* eyes[1] = {eye};
    expect("personalize(k = 0)", dftgaze_personalize(eyes, h, w, gaze, 0, &o, aligned, bytes, blob.data(), blob.size()),
           DFTGAZE_ERROR_ARGUMENT);
    expect("personalize(null gazes)",
           dftgaze_personalize(eyes, h, w, nullptr, 1, &o, aligned, bytes, blob.data(), blob.size()),
           DFTGAZE_ERROR_ARGUMENT);
    expect("personalize(small work)",
           dftgaze_personalize(eyes, h, w, gaze, 1, &o, aligned, bytes - 1, blob.data(), blob.size()),
           DFTGAZE_ERROR_WORK);
    expect("personalize(small blob)",
           dftgaze_personalize(eyes, h, w, gaze, 1, &o, aligned, bytes, blob.data(), blob.size() - 1),
           DFTGAZE_ERROR_BLOB_SIZE);
    o.train_head = 2;
    expect("personalize(train_head = 2)",
           dftgaze_personalize(eyes, h, w, gaze, 1, &o, aligned, bytes, blob.data(), blob.size()),
           DFTGAZE_ERROR_ARGUMENT);
    o.train_head = 0;
    o.lr = -1;
    expect("personalize(lr < 0)",
           dftgaze_personalize(eyes, h, w, gaze, 1, &o, aligned, bytes, blob.data(), blob.size()),
           DFTGAZE_ERROR_ARGUMENT);
  }
  expect("set_user(NULL)", dftgaze_set_user(nullptr, 0), 0);
  expect("predict(base again)", dftgaze_predict(eye, h, w, again), 0);
  if (std::memcmp(base, again, sizeof base) != 0) {
    std::fprintf(stderr, "check-api: outputs after set_user(NULL) differ from the base's\n");
    ++failures;
  }
  std::printf("check-api: %s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}

#ifdef DFTGAZE_COUNT_ALLOCATIONS
int check_alloc(int argc, char** argv) {
  if (argc < 3) fail("usage: dftgaze_check_alloc check-alloc FRAMES [--user BLOB]");
  const Frames frames = read_frames(argv[2]);
  std::vector<uint8_t> blob;
  use_user(argc, argv, blob);
  float out[4];
  const long before = g_allocations;
  for (uint32_t i = 0; i < frames.count; ++i)
    dftgaze_predict(frames.frame(i), int(frames.height), int(frames.width), out);
  const long during = g_allocations - before;
  std::printf("%ld allocations in %u predict calls\n", during, frames.count);
  // The counter itself must work: one deliberate allocation has to register (the volatile
  // store keeps the compiler from eliding the malloc/free pair).
  static void* volatile probe;
  probe = std::malloc(16);
  const bool counted = g_allocations == before + during + 1;
  std::free(probe);
  if (!counted) fail("the allocation counter does not see malloc");
  return during == 0 ? 0 : 1;
}
#endif

#ifdef GZ_MCA_COUNT
extern "C" int dftgaze_mca_region(int i, const char** name, unsigned long long* passes);
extern "C" void dftgaze_mca_reset(void);

// Passes through each cycle-model region in one call (`gaze bench --model pi4`,
// export/cycle_model.h): `predict`, one frame (its shape alone decides them, so a mid-grey frame
// serves), or `personalize`, one calibration of k = 5 test-pattern frames at the export's
// defaults (shapes, steps, batch size and views decide them, not pixels or gazes). A kernel
// without on-device personalisation prints "personalize: none" and no regions.
int mca_counts(int argc, char** argv) {
  const std::string what = argc > 2 ? argv[2] : "predict";
  dftgaze_mca_reset();
  if (what == "predict") {
    std::vector<uint8_t> frame(size_t(DFTGAZE_INPUT_H) * DFTGAZE_INPUT_W, 128);
    float out[4];
    const int rc = dftgaze_predict(frame.data(), DFTGAZE_INPUT_H, DFTGAZE_INPUT_W, out);
    if (rc != 0) fail("mca-counts: dftgaze_predict returned " + std::to_string(rc));
  } else if (what == "personalize") {
    const int k = 5;
    const Frames frames = pattern_frames(k);
    std::vector<const uint8_t*> eyes;
    std::vector<float> gazes;
    for (int i = 0; i < k; ++i) {
      eyes.push_back(frames.frame(uint32_t(i)));
      const float x = 0.1f * float(i - 2), y = 0.05f * float(i - 2);
      gazes.insert(gazes.end(), {x, y, -std::sqrt(1 - x * x - y * y)});
    }
    dftgaze_personalize_options options;
    dftgaze_personalize_defaults(&options);
    const size_t work_bytes = dftgaze_personalize_work_bytes(k, &options);
    const AlignedWork work(work_bytes);
    std::vector<uint8_t> blob(DFTGAZE_USER_BLOB_BYTES);
    const int rc = dftgaze_personalize(eyes.data(), int(frames.height), int(frames.width), gazes.data(), k, &options,
                                       work.data, work_bytes, blob.data(), blob.size());
    if (rc == DFTGAZE_ERROR_NO_ADAPTERS) {
      std::printf("personalize: none\n");
      return 0;
    }
    if (rc != 0) fail("mca-counts: dftgaze_personalize returned " + std::to_string(rc));
  } else {
    fail("mca-counts: unknown call '" + what + "' (predict or personalize)");
  }
  const char* name = nullptr;
  unsigned long long passes = 0;
  for (int i = 0; dftgaze_mca_region(i, &name, &passes) == 0; ++i) std::printf("region %s %llu\n", name, passes);
  return 0;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "predict") return predict(argc, argv);
  if (command == "bench") return bench(argc, argv);
  if (command == "check-api") return check_api(argc, argv);
  if (command == "personalize") return personalize(argc, argv);
#ifdef DFTGAZE_COUNT_ALLOCATIONS
  if (command == "check-alloc") return check_alloc(argc, argv);
#endif
#ifdef GZ_MCA_COUNT
  if (command == "mca-counts") return mca_counts(argc, argv);
#endif
  std::fprintf(stderr,
               "usage: dftgaze_tool predict FRAMES OUT [--user BLOB] | bench [FRAMES] [--frames N] [--json] |\n"
               "       personalize FRAMES GAZES OUT [--steps N] [--seed S] [--views N] [--lr X] [--replay-fraction X] "
               "[--train-head 0|1] [--json] | check-api\n");
  return 2;
}
