// MPIIFaceGaze: a person's annotation file p00/p00.txt (the input up to the first NUL byte) and
// its Calibration/Camera.mat (the rest, when there is a NUL; a valid one otherwise), read by the
// real loader; the first samples are normalised from the small frames day01/0001.jpg .. 0003.jpg.
#include <algorithm>
#include <filesystem>

#include "datasets/codec.h"
#include "datasets/matfile.h"
#include "datasets/mpiifacegaze.h"
#include "fuzz/fuzz_util.h"

namespace {

std::string make_tree() {
  const std::string root = gaze::fuzz::make_temp_folder("fuzz-mpiifacegaze");
  std::filesystem::create_directories(root + "/p00/day01");
  std::filesystem::create_directories(root + "/p00/Calibration");
  gaze::Image frame(120, 160, 90);
  for (size_t i = 0; i < frame.pixels.size(); ++i) frame.pixels[i] = uint8_t(i * 7);
  const std::vector<uint8_t> jpeg = gaze::encode_jpeg(frame, 80);
  for (const char* name : {"0001.jpg", "0002.jpg", "0003.jpg"}) {
    gaze::fuzz::write_file(root + "/p00/day01/" + name, jpeg.data(), jpeg.size());
  }
  using gaze::MatValue;
  gaze::write_mat_file(root + "/camera.mat",
                       {{"cameraMatrix", MatValue::matrix({3, 3}, {500, 0, 0, 0, 500, 0, 50, 30, 1})},
                        {"distCoeffs", MatValue::matrix({1, 5}, {0, 0, 0, 0, 0})}});
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int quiet = gaze::fuzz::quiet_logs();
  static const std::string root = make_tree();
  (void)quiet;
  const gaze::fuzz::TwoParts input = gaze::fuzz::split_at_nul(data, size);
  gaze::fuzz::write_file(root + "/p00/p00.txt", input.first, input.first_size);
  const std::string camera = root + "/p00/Calibration/Camera.mat";
  if (input.second) {
    gaze::fuzz::write_file(camera, input.second, input.second_size);
  } else {
    std::filesystem::copy_file(root + "/camera.mat", camera, std::filesystem::copy_options::overwrite_existing);
  }
  gaze::MpiiFaceGazeOptions options;
  options.normalization.height = options.normalization.width = 32;  // the warp's cost grows with it, not the path
  for (bool eye_pair : {false, true}) {                             // the face, then the two eyes cropped from it
    options.eye_pair = eye_pair;
    for (bool skip_bad : {false, true}) {
      options.skip_bad = skip_bad;
      gaze::fuzz::expect_success_or_error([&] {
        const gaze::MpiiFaceGazeDataset dataset(root, options);
        for (int64_t i = 0; i < std::min<int64_t>(dataset.size(), 3); ++i) dataset.get(i);
      });
    }
  }
  return 0;
}
