// MPIIGaze: one normalised day file (MATLAB level 5 or v7.3, read through matio) as the real
// loader reaches it, Data/Normalized/p00/day01.mat, with every sample decoded, as single eyes
// and as eye pairs.
#include <cstdio>
#include <filesystem>

#include "datasets/mpiigaze.h"
#include "fuzz/fuzz_util.h"

namespace {

std::string make_tree() {
  const std::string root = gaze::fuzz::make_temp_folder("fuzz-mpiigaze");
  std::filesystem::create_directories(root + "/Data/Normalized/p00");
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int quiet = gaze::fuzz::quiet_logs();
  static const std::string root = make_tree();
  (void)quiet;
  gaze::fuzz::write_file(root + "/Data/Normalized/p00/day01.mat", data, size);
  gaze::MpiiGazeOptions options;
  options.subset = "all";
  for (const char* eye : {"both", "pair"}) {  // single patches, then both eyes side by side
    options.eye = eye;
    for (bool skip_bad : {false, true}) {
      options.skip_bad = skip_bad;
      gaze::fuzz::expect_success_or_error([&] {
        const gaze::MpiiGazeDataset dataset(root, options);
        for (int64_t i = 0; i < dataset.size(); ++i) dataset.get(i);
      });
    }
  }
  return 0;
}
