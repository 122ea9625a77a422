// Project Aria MPS eye-gaze CSV files (general / personalized layouts).
#include "datasets/mps_gaze_csv.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int quiet = gaze::fuzz::quiet_logs();
  (void)quiet;
  const gaze::fuzz::MemoryFile file(data, size);
  gaze::fuzz::expect_success_or_error([&] {
    gaze::SkipLog skipped;
    gaze::read_mps_gaze_csv(file.path(), &skipped);
  });
  return 0;
}
