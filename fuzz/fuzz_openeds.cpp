// OpenEDS2020: a sequence's label file and the participants file, read by the real loader on
// a small tree (three 8x8 frames). The input is the label file, up to the first NUL byte, then
// the participants file.
#include <filesystem>

#include "datasets/codec.h"
#include "datasets/openeds.h"
#include "fuzz/fuzz_util.h"

namespace {

std::string make_tree() {
  const std::string root = gaze::fuzz::make_temp_folder("fuzz-openeds");
  std::filesystem::create_directories(root + "/train/sequences/0");
  std::filesystem::create_directories(root + "/train/labels");
  const gaze::Image image(8, 8, 100);
  for (const char* frame : {"000", "001", "002"}) gaze::write_png(root + "/train/sequences/0/" + frame + ".png", image);
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int quiet = gaze::fuzz::quiet_logs();
  static const std::string root = make_tree();
  (void)quiet;
  const gaze::fuzz::TwoParts input = gaze::fuzz::split_at_nul(data, size);
  gaze::fuzz::write_file(root + "/train/labels/0.txt", input.first, input.first_size);
  gaze::OpenEdsOptions options;
  options.expected_height = options.expected_width = 0;
  if (input.second) {
    options.participants_file = root + "/participants.txt";
    gaze::fuzz::write_file(options.participants_file, input.second, input.second_size);
  }
  for (bool skip_bad : {false, true}) {
    options.skip_bad = skip_bad;
    gaze::fuzz::expect_success_or_error([&] {
      const gaze::OpenEdsDataset dataset(root, options);
      for (int64_t i = 0; i < dataset.size(); ++i) dataset.get(i);
    });
  }
  return 0;
}
