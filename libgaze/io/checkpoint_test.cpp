#include "libgaze/io/checkpoint.h"

#include <catch2/catch.hpp>

#include "libgaze/core/error.h"
#include "libgaze/io/checkpoint_file.h"
#include "libgaze/io/model_io.h"
#include "libgaze/io/optimizer_state.h"
#include "libgaze/models/gaze_net.h"
#include "libgaze/models/param_groups.h"
#include "tests/test_util.h"

using namespace gaze;
using Catch::Contains;

namespace {
Checkpoint checkpoint_of(GazeNet& net, const Config& config) {
  Checkpoint c;
  c.stage = "adapters";
  c.step = 123;
  c.config_yaml = dump_config(config);
  c.model = module_state(*net);
  c.state = {{"rng.cpu", cpu_rng_state()}, {"data.position", at::full({}, 77, at::kLong)}};
  return c;
}
}  // namespace

TEST_CASE("a checkpoint round-trips bit for bit", "[checkpoint]") {
  testing::TempDir dir;
  const Config config = default_config();
  GazeNet net = make_gaze_net(config.model, 5);
  const std::string path = dir.file("c.h5");
  save_checkpoint(path, checkpoint_of(net, config));

  const Checkpoint loaded = load_checkpoint(path);
  CHECK(loaded.stage == "adapters");
  CHECK(loaded.step == 123);
  CHECK(loaded.config_yaml == dump_config(config));
  CHECK(find_tensor(loaded.state, "data.position").item<int64_t>() == 77);
  GazeNet other = make_gaze_net(config.model, 6);
  const LoadReport report = load_module_state(*other, loaded.model, true, path);
  CHECK(report.complete());
  auto theirs = other->named_parameters(true);
  for (const auto& p : net->named_parameters(true)) CHECK(at::equal(p.value(), theirs[p.key()]));
  // Buffers (BatchNorm statistics, int64 counters) come back too, with their dtype.
  const auto counter = find_tensor(loaded.model, "stages.3.1.adapter.bn.num_batches_tracked");
  CHECK(counter.scalar_type() == at::kLong);
  // The resolved config inside reads back as a config.
  CHECK(parse_config(loaded.config_yaml, path).model.dims == config.model.dims);
  // The weights' fingerprint is one number whether taken from the tensors or the file's arrays.
  const uint32_t crc = tensors_crc32c(module_state(*net));
  CHECK(tensors_crc32c(loaded.model) == crc);
  CHECK(arrays_crc32c(read_checkpoint_file(path).model) == crc);
}

TEST_CASE("loading reports missing, unexpected and wrongly shaped tensors", "[checkpoint]") {
  GazeNet student = make_gaze_net(default_config().model);
  TensorList tensors = module_state(*student);
  tensors.erase(tensors.begin());                               // missing: the stem conv weight
  tensors.emplace_back("decoder.pred.weight", at::zeros({3}));  // unexpected
  for (auto& [name, t] : tensors) {
    if (name == "head.weight") t = at::zeros({1000, 80});  // wrong shape
  }
  const auto before = student->named_parameters(true)["head.bias"].clone();
  CHECK_THROWS_WITH(
      load_module_state(*student, tensors, true, "x.h5"),
      Contains("x.h5: checkpoint does not match the model") && Contains("1 missing: downsample_layers.0.0.weight") &&
          Contains("1 unexpected: decoder.pred.weight") && Contains("head.weight (file [1000, 80] vs model [4, 80])"));
  // Strict failure copies nothing; non-strict copies what fits and reports the rest.
  CHECK(at::equal(student->named_parameters(true)["head.bias"], before));
  const LoadReport r = load_module_state(*student, tensors, false, "x.h5");
  CHECK(r.missing.size() == 1);
  CHECK(r.unexpected.size() == 1);
  CHECK(r.mismatched.size() == 1);
  CHECK(r.loaded == static_cast<int64_t>(module_state(*student).size()) - 2);
}

TEST_CASE("a failed save leaves the previous checkpoint intact", "[checkpoint]") {
  testing::TempDir dir;
  const Config config = default_config();
  GazeNet net = make_gaze_net(config.model);
  const std::string path = dir.file("c.h5");
  save_checkpoint(path, checkpoint_of(net, config));
  const std::string before = testing::read_file(path);
  Checkpoint bad = checkpoint_of(net, config);
  bad.step = 999;
  bad.model.emplace_back("complex", at::zeros({2}, at::kComplexFloat));  // unsupported dtype
  CHECK_THROWS_WITH(save_checkpoint(path, bad), Contains("'complex' has unsupported dtype"));
  CHECK(testing::read_file(path) == before);
  CHECK(load_checkpoint(path).step == 123);
}

TEST_CASE("corrupt and foreign files fail with their name", "[checkpoint]") {
  testing::TempDir dir;
  const Config config = default_config();
  GazeNet net = make_gaze_net(config.model);
  const std::string path = dir.file("c.h5");
  save_checkpoint(path, checkpoint_of(net, config));
  const std::string bytes = testing::read_file(path);
  const std::string cut = dir.write("cut.h5", bytes.substr(0, bytes.size() / 3));
  CHECK_THROWS_WITH(load_checkpoint(cut), Contains("cut.h5"));
  const std::string text = dir.write("text.h5", "not a checkpoint");
  CHECK_THROWS_WITH(load_checkpoint(text), Contains("text.h5: not a readable HDF5 file"));
  CHECK_THROWS_WITH(load_checkpoint(dir.file("none.h5")), Contains("none.h5"));
}

TEST_CASE("AdamW state and the RNG restore exactly: resumed steps are bit-identical", "[checkpoint]") {
  const Config config = default_config();
  const auto x = at::randn({4, 3, 64, 64});
  const auto target = at::randn({4, 4});
  const auto make = [&](GazeNet& net) {
    train_only(*net, {ParamGroup::kAdapters, ParamGroup::kHead});
    TensorList params;
    for (auto& [name, p] : named_parameters_in(*net, ParamGroup::kAll)) {
      if (p.requires_grad()) params.emplace_back(name, p);
    }
    return params;
  };
  const auto step = [&](GazeNet& net, torch::optim::AdamW& opt) {
    opt.zero_grad();
    const auto noise = at::randn({4, 4});  // consumes the RNG, like augmentation would
    (net->forward(x) - target - 0.01 * noise).abs().mean().backward();
    opt.step();
  };
  GazeNet a = make_gaze_net(config.model, 1);
  const TensorList pa = make(a);
  std::vector<at::Tensor> raw_a;
  for (auto& [n, p] : pa) raw_a.push_back(p);
  torch::optim::AdamW opt_a(raw_a, torch::optim::AdamWOptions(1e-2));
  a->train();
  for (int i = 0; i < 3; ++i) step(a, opt_a);
  // Snapshot (as a checkpoint would), then continue the original run.
  const TensorList model = module_state(*a);
  TensorList saved_model;
  for (auto& [n, t] : model) saved_model.emplace_back(n, t.clone());
  const TensorList saved_opt = adamw_state_to_tensors(opt_a, pa);
  const at::Tensor saved_rng = cpu_rng_state().clone();
  for (int i = 0; i < 2; ++i) step(a, opt_a);

  GazeNet b = make_gaze_net(config.model, 9);
  const TensorList pb = make(b);
  load_module_state(*b, saved_model, true, "snapshot");
  std::vector<at::Tensor> raw_b;
  for (auto& [n, p] : pb) raw_b.push_back(p);
  torch::optim::AdamW opt_b(raw_b, torch::optim::AdamWOptions(1e-2));
  adamw_state_from_tensors(opt_b, pb, saved_opt, "snapshot");
  set_cpu_rng_state(saved_rng);
  b->train();
  for (int i = 0; i < 2; ++i) step(b, opt_b);

  auto pb_map = b->named_parameters(true);
  for (const auto& p : a->named_parameters(true)) {
    INFO(p.key());
    CHECK(at::equal(p.value(), pb_map[p.key()]));
  }
  TensorList broken = saved_opt;
  broken.erase(broken.begin() + 1);  // drop the first exp_avg
  torch::optim::AdamW opt_c(raw_b, torch::optim::AdamWOptions(1e-2));
  CHECK_THROWS_WITH(adamw_state_from_tensors(opt_c, pb, broken, "ck.h5"),
                    Contains("ck.h5: optimizer state") && Contains(":exp_avg' is missing"));
}

TEST_CASE("a baseline round-trips through a checkpoint, and each loader refuses the other's files",
          "[checkpoint][baselines]") {
  testing::TempDir dir;
  Config config = default_config({"model.arch=gazetr_hybrid", "data.input_size=[224,224]"});
  Baseline net("gazetr_hybrid");
  net->set_facing_camera(false);
  save_module(dir.file("b.h5"), *net, config, "baseline", 3);
  Baseline loaded = load_baseline(dir.file("b.h5"));
  CHECK(loaded->arch == "gazetr_hybrid");
  CHECK_FALSE(loaded->facing_camera());  // the frame travels with the weights
  const auto a = module_state(*net), b = module_state(*loaded);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(at::equal(a[i].second, b[i].second));
  CHECK_THROWS_WITH(load_model(dir.file("b.h5")),
                    Catch::Contains("b.h5") && Catch::Contains("holds the gazetr_hybrid baseline"));
  GazeNet student = make_gaze_net(default_config().model, 0);
  save_model(dir.file("s.h5"), student, default_config(), "distill", 1);
  CHECK_THROWS_WITH(load_baseline(dir.file("s.h5")),
                    Catch::Contains("s.h5") && Catch::Contains("model.arch student, not a baseline"));
}
