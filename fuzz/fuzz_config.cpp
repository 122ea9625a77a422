// The YAML config loader: parse, validate, resolve, print (gaze config / every run's config.yaml).
#include "fuzz/fuzz_util.h"
#include "libgaze/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int quiet = gaze::fuzz::quiet_logs();
  (void)quiet;
  const std::string text(reinterpret_cast<const char*>(data), size);
  gaze::fuzz::expect_success_or_error([&] {
    const gaze::Config config = gaze::parse_config(text, "fuzz.yaml");
    // What gaze saves beside every run must parse back.
    gaze::parse_config(gaze::dump_config(config), "fuzz.yaml (dumped)");
  });
  return 0;
}
