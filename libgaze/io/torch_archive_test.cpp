#include "libgaze/io/torch_archive.h"

#include <caffe2/serialize/inline_container.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"
#include "libgaze/io/official_import.h"
#include "libgaze/models/gaze_net.h"
#include "tests/pickle_fixtures.h"
#include "tests/test_util.h"

using namespace gaze;
using Catch::Contains;

namespace {
// Writes a torch.save()-layout zip: <archive>/data.pkl and <archive>/data/0.
void write_archive(const std::string& path, const std::string& pickle, const std::vector<float>& storage) {
  caffe2::serialize::PyTorchStreamWriter writer(path);
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  writer.writeRecord("data/0", storage.data(), storage.size() * sizeof(float));
  writer.writeEndOfFile();
}
}  // namespace

TEST_CASE("a torch.save archive yields its state dict", "[torch_archive]") {
  testing::TempDir dir;
  const std::string path = dir.file("tiny.pt");
  write_archive(path, testing::tiny_state_dict_pickle("stages.0.0.grn.gamma"), {1, 2, 3, 4, 5, 6});
  const TensorList tensors = read_torch_state_dict(path);
  REQUIRE(tensors.size() == 1);
  CHECK(tensors[0].first == "stages.0.0.grn.gamma");
  CHECK(at::equal(tensors[0].second, at::arange(1, 7, at::kFloat).reshape({2, 3})));
}

TEST_CASE("bad archives fail with the file name", "[torch_archive]") {
  testing::TempDir dir;
  CHECK_THROWS_WITH(read_torch_state_dict(dir.file("none.pt")), Contains("none.pt: file not found"));
  const std::string text = dir.write("text.pt", "hello");
  CHECK_THROWS_WITH(read_torch_state_dict(text), Contains("text.pt: not a readable zip archive"));
  // The storage is shorter than the tensor view needs.
  const std::string short_storage = dir.file("short.pt");
  write_archive(short_storage, testing::tiny_state_dict_pickle(), {1, 2});
  CHECK_THROWS_WITH(read_torch_state_dict(short_storage), Contains("short.pt: storage data/0 is truncated"));
  // A pickle without any tensor dict.
  const std::string no_dict = dir.file("nodict.pt");
  write_archive(no_dict, "\x80\x02K\x05.", {});
  CHECK_THROWS_WITH(read_torch_state_dict(no_dict), Contains("nodict.pt: no state dict found"));
  // One flipped bit in a weight: LibTorch's own reader (miniz with its CRC check disabled)
  // loads it; ours checks every entry's CRC-32.
  const std::string damaged = dir.file("damaged.pt");
  write_archive(damaged, testing::tiny_state_dict_pickle(), {1, 2, 3, 4, 5, 6});
  std::string bytes = testing::read_file(damaged);
  const float three = 3;
  const size_t at = bytes.find(std::string(reinterpret_cast<const char*>(&three), 4));
  REQUIRE(at != std::string::npos);
  bytes[at] = char(bytes[at] ^ 1);
  std::ofstream(damaged, std::ios::binary | std::ios::trunc) << bytes;
  CHECK_THROWS_WITH(read_torch_state_dict(damaged), Contains("damaged.pt: damaged/data/0: CRC-32 mismatch"));
}

TEST_CASE("the official remap turns Minkowski kernels, wrappers and [1,C] tensors into dense ones", "[torch_archive]") {
  // Depthwise 7x7 kernel [49, C]: Minkowski orders taps first spatial axis (H) fastest.
  at::Tensor dw = at::empty({49, 2});
  for (int64_t kh = 0; kh < 7; ++kh)
    for (int64_t kw = 0; kw < 7; ++kw)
      for (int64_t c = 0; c < 2; ++c) dw[kh + 7 * kw][c] = float(100 * c + 10 * kh + kw);
  auto [dw_name, dw_dense] = remap_official_tensor("encoder.stages.1.0.dwconv.kernel", dw);
  CHECK(dw_name == "stages.1.0.dwconv.weight");
  REQUIRE(dw_dense.sizes() == at::IntArrayRef({2, 1, 7, 7}));
  CHECK(dw_dense[1][0][3][5].item<float>() == 135.0f);
  CHECK(dw_dense[0][0][6][0].item<float>() == 60.0f);
  // Downsample 2x2 kernel [4, in, out] -> [out, in, 2, 2].
  at::Tensor ds = at::empty({4, 3, 5});
  for (int64_t kh = 0; kh < 2; ++kh)
    for (int64_t kw = 0; kw < 2; ++kw)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t o = 0; o < 5; ++o) ds[kh + 2 * kw][i][o] = float(1000 * o + 100 * i + 10 * kh + kw);
  auto [ds_name, ds_dense] = remap_official_tensor("encoder.downsample_layers.2.1.kernel", ds);
  CHECK(ds_name == "downsample_layers.2.1.weight");
  REQUIRE(ds_dense.sizes() == at::IntArrayRef({5, 3, 2, 2}));
  CHECK(ds_dense[4][2][1][0].item<float>() == 4210.0f);
  CHECK(ds_dense[0][1][0][1].item<float>() == 101.0f);
  // Wrappers, biases, GRN, decoder.
  CHECK(remap_official_tensor("encoder.stages.0.1.norm.ln.weight", at::ones({40})).first == "stages.0.1.norm.weight");
  CHECK(remap_official_tensor("encoder.downsample_layers.1.0.ln.bias", at::ones({40})).first ==
        "downsample_layers.1.0.bias");
  CHECK(remap_official_tensor("encoder.stages.3.0.pwconv2.linear.weight", at::ones({320, 1280})).first ==
        "stages.3.0.pwconv2.weight");
  CHECK(remap_official_tensor("encoder.stages.0.0.dwconv.bias", at::ones({1, 40})).second.sizes() ==
        at::IntArrayRef({40}));
  CHECK(remap_official_tensor("encoder.stages.0.0.grn.gamma", at::ones({1, 160})).first == "stages.0.0.grn.gamma");
  CHECK(remap_official_tensor("module.stages.0.0.grn.beta", at::ones({1, 1, 1, 160})).first == "stages.0.0.grn.beta");
  for (const char* decoder : {"mask_token", "proj.weight", "decoder.0.dwconv.weight", "pred.bias"}) {
    CHECK(remap_official_tensor(decoder, at::ones({1})).first.empty());
  }
}

TEST_CASE("imported official weights reproduce the official model, in every official layout",
          "[torch_archive][official]") {
  // scripts/reference/convnextv2_official.py restates the official PyTorch model and writes a
  // real torch.save() file in the layout the official code writes (the sparse FCMAE one with
  // Minkowski's parameter names and shapes), and what the dense model computes for an input.
  const std::string layout = GENERATE(as<std::string>{}, "ema", "fcmae", "fcmae-sparse");
  INFO(layout);
  testing::TempDir dir;
  const auto made =
      testing::run_command("/usr/bin/python3 " LIBGAZE_SOURCE_DIR "/scripts/reference/convnextv2_official.py " +
                           dir.path() + " --layout " + layout);
  INFO(made.output);
  REQUIRE(made.exit_code == 0);  // needs Debian's python3-torch (scripts/setup installs it)
  const TensorList official = read_torch_state_dict(dir.file("official.pt"));
  const TensorList probe = read_torch_state_dict(dir.file("probe.pt"));
  GazeNet net = make_gaze_net(default_config({"model.arch=teacher"}).model);
  const ImportReport report = import_official_weights(net, official, "official.pt");
  // Every encoder tensor (136) comes from the file; the fine-tuned file adds the final norm.
  CHECK(report.imported == (layout == "ema" ? 138 : 136));
  CHECK(report.fresh_encoder.empty());
  if (layout == "fcmae-sparse") {
    CHECK(report.skipped.size() == 15);  // mask_token, proj (2), decoder block (10), pred (2)
  }
  net->eval();
  at::NoGradGuard no_grad;
  const at::Tensor x = find_tensor(probe, "input");
  const at::Tensor pooled = net->forward_stages(x).back().mean({2, 3});
  CHECK((pooled - find_tensor(probe, "pooled")).abs().max().item<float>() < 1e-4);
  if (layout == "ema") {
    const at::Tensor features = net->norm->forward(pooled);
    CHECK(at::allclose(features, find_tensor(probe, "features"), 1e-4, 1e-4));
    const at::Tensor logits =
        at::linear(features, find_tensor(official, "head.weight"), find_tensor(official, "head.bias"));
    CHECK(at::allclose(logits, find_tensor(probe, "logits"), 1e-4, 1e-4));
  }
}

TEST_CASE("an import that leaves encoder tensors random fails unless partial imports are allowed", "[torch_archive]") {
  GazeNet net = make_gaze_net(default_config({"model.arch=teacher"}).model);
  TensorList official;
  for (const auto& [name, tensor] : module_state(*net)) {
    if (name.find(".adapter.") != std::string::npos || starts_with(name, "head.")) continue;
    if (starts_with(name, "stages.2.")) continue;  // a file without stage 3
    official.emplace_back(name, at::randn(tensor.sizes()));
  }
  const at::Tensor before = net->named_parameters()["stages.0.0.pwconv1.weight"].clone();
  CHECK_THROWS_WITH(
      import_official_weights(net, official, "partial.pt"),
      Contains("partial.pt: the import would leave") && Contains("stages.2.0") && Contains("--allow-partial"));
  const ImportReport report = import_official_weights(net, official, "partial.pt", /*allow_partial=*/true);
  CHECK(!report.fresh_encoder.empty());
  CHECK(!at::equal(before, net->named_parameters()["stages.0.0.pwconv1.weight"]));
  TensorList nothing = {{"fc.weight", at::ones({3, 3})}};
  CHECK_THROWS_WITH(import_official_weights(net, nothing, "other.pt"),
                    Contains("other.pt: no tensor fits the teacher model"));
}
