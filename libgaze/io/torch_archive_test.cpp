#include "libgaze/io/torch_archive.h"

#include <caffe2/serialize/inline_container.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "libgaze/core/error.h"
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
  CHECK_THROWS_WITH(read_torch_state_dict(text), Contains("text.pt: not a torch.save() zip"));
  // The storage is shorter than the tensor view needs.
  const std::string short_storage = dir.file("short.pt");
  write_archive(short_storage, testing::tiny_state_dict_pickle(), {1, 2});
  CHECK_THROWS_WITH(read_torch_state_dict(short_storage), Contains("short.pt: storage data/0 is truncated"));
  // A pickle without any tensor dict.
  const std::string no_dict = dir.file("nodict.pt");
  write_archive(no_dict, "\x80\x02K\x05.", {});
  CHECK_THROWS_WITH(read_torch_state_dict(no_dict), Contains("nodict.pt: no state dict found"));
}

TEST_CASE("official weights import by name and what does not fit is reported", "[torch_archive]") {
  GazeNet net = make_gaze_net(default_config({"model.arch=teacher"}).model);
  TensorList official;
  for (const auto& p : net->named_parameters(true)) {
    if (p.key().find(".adapter.") != std::string::npos || p.key().rfind("head.", 0) == 0) continue;
    at::Tensor t = at::randn(p.value().sizes());
    if (p.key().find(".grn.") != std::string::npos) t = t.reshape({1, -1});  // FCMAE [1,4d]
    official.emplace_back("encoder." + p.key(), t);
  }
  official.emplace_back("head.weight", at::zeros({1000, 320}));
  official.emplace_back("head.bias", at::zeros({1000}));
  official.emplace_back("decoder.0.weight", at::zeros({1}));
  const ImportReport report = import_official_weights(net, official);
  CHECK(report.imported == static_cast<int64_t>(official.size()) - 3);
  REQUIRE(report.skipped.size() == 3);
  CHECK_THAT(report.skipped[0], Contains("head.weight") && Contains("[1000, 320]"));
  CHECK_THAT(report.skipped[2], Contains("decoder"));
  const auto params = net->named_parameters(true);
  CHECK(at::equal(params["stages.2.5.pwconv1.weight"], find_tensor(official, "encoder.stages.2.5.pwconv1.weight")));
  CHECK(at::equal(params["stages.0.0.grn.gamma"].flatten(),
                  find_tensor(official, "encoder.stages.0.0.grn.gamma").flatten()));
  // Adapters and the 4-output head keep their fresh initialisation.
  CHECK(std::find(report.fresh.begin(), report.fresh.end(), "head.weight") != report.fresh.end());
  CHECK(std::find(report.fresh.begin(), report.fresh.end(), "stages.3.1.adapter.up.weight") != report.fresh.end());
}

TEST_CASE("imported official weights reproduce the official model's outputs", "[torch_archive][official]") {
  // tests/python/convnextv2_official.py restates the official PyTorch model; it writes a real
  // torch.save() checkpoint and the outputs that model computes for a random input.
  testing::TempDir dir;
  const auto made = testing::run_command(
      "/usr/bin/python3 " LIBGAZE_SOURCE_DIR "/scripts/reference/convnextv2_official.py " + dir.path());
  INFO(made.output);
  REQUIRE(made.exit_code == 0);  // needs Debian's python3-torch (scripts/setup installs it)
  const TensorList official = read_torch_state_dict(dir.file("official.pt"));
  const TensorList probe = read_torch_state_dict(dir.file("probe.pt"));
  GazeNet net = make_gaze_net(default_config({"model.arch=teacher"}).model);
  const ImportReport report = import_official_weights(net, official);
  CHECK(report.imported == static_cast<int64_t>(official.size()) - 2);  // all but the 1000-way head
  net->eval();
  at::NoGradGuard no_grad;
  const at::Tensor x = find_tensor(probe, "input");
  const at::Tensor features = net->norm->forward(net->forward_stages(x).back().mean({2, 3}));
  CHECK(at::allclose(features, find_tensor(probe, "features"), 1e-4, 1e-4));
  const at::Tensor logits =
      at::linear(features, find_tensor(official, "head.weight"), find_tensor(official, "head.bias"));
  CHECK(at::allclose(logits, find_tensor(probe, "logits"), 1e-4, 1e-4));
  CHECK((features - find_tensor(probe, "features")).abs().max().item<float>() < 1e-4);
}
