// HDF5 packs: open (attributes, label columns, split ids, CRCs) and read every image, and open
// a leave-one-person-out fold of the same file.
#include <algorithm>

#include "datasets/pack.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int quiet = gaze::fuzz::quiet_logs();
  (void)quiet;
  const gaze::fuzz::MemoryFile file(data, size);
  gaze::fuzz::expect_success_or_error([&] {
    const gaze::PackDataset pack(file.path());
    for (int64_t i = 0; i < std::min<int64_t>(pack.size(), 16); ++i) {
      gaze::fuzz::expect_success_or_error([&] { pack.get(i); });
    }
  });
  // A leave-one-person-out fold over the same file (participant 0 held out).
  gaze::fuzz::expect_success_or_error([&] {
    const gaze::PackDataset fold(file.path(), "train", 0);
    if (fold.size() > 0) fold.get(0);
  });
  return 0;
}
