// Writes the fuzzers' seed corpora: small, valid instances of every format, made by the same
// writers users' files come from (the synthetic renderer's OpenEDS / AEA layouts, packs,
// checkpoints, PNG / JPEG encoders), so the fuzzers start from inputs that parse completely.
//
//   fuzz_make_seeds OUT_DIR SOURCE_DIR     (scripts/fuzz --make-seeds; the result is kept in
//                                           fuzz/corpus/, regenerate when a format changes)
// torch.save() seeds come from Python (scripts/fuzz writes them with python3-torch).
#include <filesystem>
#include <fstream>
#include <iostream>

#include "datasets/codec.h"
#include "datasets/open_dataset.h"
#include "datasets/pack.h"
#include "datasets/synth/synth_writer.h"
#include "libgaze/config/config.h"
#include "libgaze/io/checkpoint_file.h"
#include "tests/pickle_fixtures.h"

namespace fs = std::filesystem;
using namespace gaze;

namespace {

fs::path g_out;

void put(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path dir = g_out / target;
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary | std::ios::trunc) << bytes;
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void copy(const std::string& target, const std::string& name, const fs::path& from) {
  put(target, name, read_all(from));
}

h5::Array f32(std::vector<int64_t> shape) {
  h5::Array a;
  a.shape = std::move(shape);
  a.bytes.assign(size_t(a.numel()) * 4, 0);
  for (size_t i = 0; i < a.bytes.size(); i += 4) a.bytes[i + 3] = uint8_t(0x3f - i % 3);
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: fuzz_make_seeds OUT_DIR SOURCE_DIR\n";
    return 2;
  }
  g_out = argv[1];
  const fs::path source = argv[2];
  const fs::path work = g_out / ".work";
  fs::remove_all(work);

  // Configs: every YAML the repository ships.
  for (const auto& entry : fs::recursive_directory_iterator(source / "configs")) {
    if (entry.path().extension() == ".yaml") {
      copy("fuzz_config", entry.path().parent_path().filename().string() + "_" + entry.path().filename().string(),
           entry.path());
    }
  }

  // A tiny synthetic world in the real layouts.
  Config config = default_config(
      {"synth.participants=3", "synth.openeds_size=[32,48]", "synth.aea_size=[32,64]", "synth.train_frames=3",
       "synth.validation_frames=2", "synth.test_frames=6", "synth.aea_frames=3", "synth.images=2",
       "synth.image_classes=1", "synth.image_size=[32,32]", "synth.mpii_images=4", "synth.mpii_evaluation=2",
       "synth.mpii_frame=[120,160]", "synth.layouts=[openeds,aea,images,mpiigaze,mpiifacegaze]"});
  config.synth.out_dir = (work / "synth").string();
  const SynthReport synth = write_synthetic_datasets(config.synth, 7, 1);

  const fs::path openeds = synth.openeds_root;
  const std::string participants = read_all(openeds / "participants.csv");
  int n = 0;
  for (const auto& entry : fs::directory_iterator(openeds / "train" / "labels")) {
    put("fuzz_openeds", "labels" + std::to_string(n++) + ".txt", read_all(entry.path()) + '\0' + participants);
    if (n == 1) put("fuzz_openeds", "labels_only.txt", read_all(entry.path()));
  }
  for (const auto& entry : fs::recursive_directory_iterator(openeds / "train" / "sequences")) {
    if (entry.path().extension() == ".png" && n++ < 6) copy("fuzz_png", entry.path().filename().string(), entry.path());
  }
  Image rgb(8, 12, 0, 3);
  for (size_t i = 0; i < rgb.pixels.size(); ++i) rgb.pixels[i] = uint8_t(i * 37);
  const std::vector<uint8_t> png = encode_png(rgb), jpeg = encode_jpeg(rgb, 80);
  put("fuzz_png", "rgb.png", std::string(png.begin(), png.end()));
  put("fuzz_jpeg", "rgb.jpg", std::string(jpeg.begin(), jpeg.end()));
  for (const auto& entry : fs::recursive_directory_iterator(synth.images_root)) {
    if (entry.path().extension() == ".jpg") copy("fuzz_jpeg", entry.path().filename().string(), entry.path());
  }
  for (const auto& entry : fs::recursive_directory_iterator(synth.aea_root)) {
    const std::string name = entry.path().parent_path().filename().string() + "_" + entry.path().filename().string();
    if (entry.path().extension() == ".vrs") copy("fuzz_vrs", name, entry.path());
    if (entry.path().extension() == ".csv") copy("fuzz_mps_csv", name, entry.path());
  }

  for (const auto& entry : fs::directory_iterator(synth.mpiigaze_root / fs::path("Data/Normalized/p00"))) {
    copy("fuzz_mpiigaze", entry.path().filename().string(), entry.path());
  }
  const fs::path face = fs::path(synth.mpiifacegaze_root) / "p00";
  put("fuzz_mpiifacegaze", "p00.txt", read_all(face / "p00.txt"));
  put("fuzz_mpiifacegaze", "p00_camera.txt",
      read_all(face / "p00.txt") + '\0' + read_all(face / "Calibration/Camera.mat"));

  // A pack of the OpenEDS train split, and a checkpoint.
  DataConfig data = config.data;
  data.source = "openeds:" + openeds.string();
  data.openeds_size = {32, 48};
  const auto dataset = open_dataset(data);
  write_pack(*dataset, (work / "pack.h5").string(), {});
  copy("fuzz_pack", "openeds_train.h5", work / "pack.h5");
  CheckpointFile checkpoint;
  checkpoint.stage = "distill";
  checkpoint.step = 3;
  checkpoint.config_yaml = dump_config(config);
  checkpoint.model = {{"stem.0.weight", f32({4, 1, 4, 4})}, {"stem.0.bias", f32({4})}};
  checkpoint.optimizer = {{"stem.0.weight:exp_avg", f32({4, 1, 4, 4})}};
  checkpoint.state = {{"rng", f32({3})}};
  write_checkpoint_file((work / "checkpoint.h5").string(), checkpoint);
  copy("fuzz_checkpoint", "checkpoint.h5", work / "checkpoint.h5");

  // Pickles in the byte form torch.save writes.
  put("fuzz_pickle", "state_dict.pkl", testing::tiny_state_dict_pickle());
  fs::remove_all(work);
  std::cout << "seeds written to " << g_out.string() << "\n";
  return 0;
}
