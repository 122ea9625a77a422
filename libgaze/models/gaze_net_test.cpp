#include "libgaze/models/gaze_net.h"

#include <catch2/catch.hpp>

#include "libgaze/models/model_stats.h"
#include "libgaze/models/param_groups.h"

using namespace gaze;

namespace {
ModelConfig model_config(const std::string& arch) { return default_config({"model.arch=" + arch}).model; }
std::vector<std::string> param_names(const torch::nn::Module& m) {
  std::vector<std::string> names;
  for (const auto& p : m.named_parameters(true)) names.push_back(p.key());
  return names;
}
bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}
}  // namespace

TEST_CASE("parameter counts are exactly the paper's", "[gaze_net]") {
  GazeNet teacher = make_gaze_net(model_config("teacher"));
  CHECK(count_parameters(*teacher) == 3579104);
  CHECK(count_tunable_parameters(*teacher) == 191704);
  CHECK(count_parameters(*teacher, ParamGroup::kLastStageAdapters) == 103520);
  GazeNet student = make_gaze_net(model_config("student"));
  CHECK(count_parameters(*student) == 281174);
  CHECK(count_tunable_parameters(*student) == 14434);
  CHECK(count_parameters(*student, ParamGroup::kLastStageAdapters) == 6680);
  // The analytic count used by `gaze info` and the exporter agrees with the modules.
  for (const auto& arch : {"teacher", "student"}) {
    GazeNet net = make_gaze_net(model_config(arch));
    const ModelStats s = compute_model_stats(model_config(arch), 224, 224);
    CHECK(s.params == count_parameters(*net));
    CHECK(s.tunable == count_tunable_parameters(*net));
  }
}

TEST_CASE("parameter names are the official ConvNeXt V2 checkpoint keys", "[gaze_net]") {
  GazeNet net = make_gaze_net(model_config("teacher"));
  const auto names = param_names(*net);
  for (const char* key :
       {"downsample_layers.0.0.weight", "downsample_layers.0.0.bias", "downsample_layers.0.1.weight",
        "downsample_layers.1.0.weight", "downsample_layers.1.1.weight", "downsample_layers.3.1.bias",
        "stages.0.0.dwconv.weight", "stages.0.0.norm.weight", "stages.2.5.pwconv1.weight", "stages.2.5.pwconv2.bias",
        "stages.0.0.grn.gamma", "stages.3.1.grn.beta", "norm.weight", "norm.bias", "head.weight", "head.bias",
        "stages.3.1.adapter.down.weight", "stages.3.1.adapter.bn.weight", "stages.3.1.adapter.up.bias"}) {
    INFO(key);
    CHECK(has(names, key));
  }
  auto params = net->named_parameters(true);
  CHECK(params["stages.0.0.grn.gamma"].sizes() == at::IntArrayRef({1, 1, 1, 160}));
  CHECK(params["stages.2.5.pwconv1.weight"].sizes() == at::IntArrayRef({640, 160}));
  CHECK(params["downsample_layers.0.0.weight"].sizes() == at::IntArrayRef({40, 3, 4, 4}));
  CHECK(params["head.weight"].sizes() == at::IntArrayRef({4, 320}));
  CHECK(net->named_buffers(true).contains("stages.3.1.adapter.bn.running_mean"));
}

TEST_CASE("stage outputs have the pyramid shapes and the head gives 4 values", "[gaze_net]") {
  GazeNet net = make_gaze_net(model_config("student"));
  net->eval();
  const auto x = at::randn({2, 3, 96, 160});
  const auto stages = net->forward_stages(x);
  REQUIRE(stages.size() == 4);
  CHECK(stages[0].sizes() == at::IntArrayRef({2, 40, 24, 40}));
  CHECK(stages[1].sizes() == at::IntArrayRef({2, 20, 12, 20}));
  CHECK(stages[2].sizes() == at::IntArrayRef({2, 40, 6, 10}));
  CHECK(stages[3].sizes() == at::IntArrayRef({2, 80, 3, 5}));
  const auto out = net->forward(x);
  CHECK(out.sizes() == at::IntArrayRef({2, 4}));
  // Resuming from a cached stage output gives the same result as the full pass.
  const auto tail = net->forward_stages(stages[1], {}, 2, 3);
  CHECK(at::allclose(tail.back(), stages[3]));
  const auto dirs = gaze_directions(out);
  CHECK(at::allclose(dirs.norm(2, 1), at::ones({2})));
  CHECK(gaze_log_scales(out).sizes() == at::IntArrayRef({2}));
}

TEST_CASE("fresh adapters are the identity", "[gaze_net]") {
  auto with = model_config("student");
  auto without = with;
  without.adapter.enabled = false;
  GazeNet a = make_gaze_net(with, 3);
  GazeNet b = make_gaze_net(without, 3);
  // Copy the shared weights so only the adapters differ.
  auto target = b->named_parameters(true);
  at::NoGradGuard no_grad;
  for (const auto& p : a->named_parameters(true)) {
    if (auto* t = target.find(p.key())) t->copy_(p.value());
  }
  a->eval();
  b->eval();
  const auto x = at::randn({1, 3, 64, 64});
  CHECK(at::equal(a->forward(x), b->forward(x)));
  // A trained (non-zero) up-projection changes the output.
  a->named_parameters(true)["stages.3.0.adapter.up.bias"].fill_(0.5);
  CHECK_FALSE(at::allclose(a->forward(x), b->forward(x)));
}

TEST_CASE("GRN matches its formula", "[gaze_net]") {
  GRN grn(8);
  at::NoGradGuard no_grad;
  grn->gamma.uniform_();
  grn->beta.uniform_();
  const auto x = at::randn({2, 5, 4, 8});
  const auto g = x.pow(2).sum({1, 2}, true).sqrt();
  const auto n = g / (g.mean(-1, true) + 1e-6);
  CHECK(at::allclose(grn(x), grn->gamma * (x * n) + grn->beta + x, 1e-5, 1e-6));
}

TEST_CASE("masked forward: hidden patches never leak into visible outputs", "[gaze_net]") {
  GazeNet net = make_gaze_net(model_config("student"), 1);
  net->eval();
  at::NoGradGuard no_grad;
  // Make the GRNs non-trivial so their global statistics are exercised too.
  for (auto& p : net->named_parameters(true)) {
    if (p.key().find("grn") != std::string::npos) p.value().uniform_(-0.5, 0.5);
  }
  // 64x96 input, 32-px patches -> 2x3 patch grid; hide two patches.
  auto mask = at::zeros({1, 1, 2, 3});
  mask[0][0][0][1] = 1;
  mask[0][0][1][2] = 1;
  const auto x = at::randn({1, 3, 64, 96});
  auto x2 = x.clone();
  x2.slice(2, 0, 32).slice(3, 32, 64).normal_(5.0, 3.0);   // change only hidden patch (0,1)
  x2.slice(2, 32, 64).slice(3, 64, 96).normal_(5.0, 3.0);  // and hidden patch (1,2)
  const auto a = net->forward_stages(x, mask);
  const auto b = net->forward_stages(x2, mask);
  for (size_t s = 0; s < 4; ++s) {
    INFO("stage " << s);
    CHECK(at::allclose(a[s], b[s], 1e-5, 1e-5));
  }
  // Hidden positions are zero at every stage; without the mask the change is visible.
  CHECK(at::all(a[0].slice(2, 0, 8).slice(3, 8, 16) == 0).item<bool>());
  CHECK_FALSE(at::allclose(net->forward_stages(x).back(), net->forward_stages(x2).back()));
}

TEST_CASE("a masked block's visible-rows MLP equals the dense masked statement, values and gradients", "[gaze_net]") {
  at::manual_seed(11);
  AdapterConfig adapter;
  adapter.enabled = true;
  Block block(16, /*drop_path=*/0.0, 1e-6, adapter);
  block->train();  // the adapter's BatchNorm on batch statistics, over hidden rows too
  {
    at::NoGradGuard no_grad;
    for (auto& p : block->named_parameters(true)) {
      if (p.key().find("bn") == std::string::npos) p.value().uniform_(-0.5, 0.5);
    }
  }
  // Four images on a 6x8 map: a partial mask, another, all visible, all hidden.
  at::Tensor mask = (at::rand({4, 1, 3, 4}) < 0.6).to(at::kFloat);
  mask[2].zero_();
  mask[3].fill_(1);
  const at::Tensor input0 = at::randn({4, 16, 6, 8});
  const VisiblePositions visible = visible_positions(mask, input0);
  REQUIRE(visible.offsets.size() == 5);
  CHECK(visible.offsets[3] - visible.offsets[2] == 48);
  CHECK(visible.offsets[4] == visible.offsets[3]);
  CHECK(visible.rows.numel() == visible.keep.sum().item<int64_t>());

  // The dense statement: mask after the depthwise conv and before GRN, MLP on every position.
  const auto dense = [&](const at::Tensor& input) {
    const at::Tensor keep = visible.keep;
    at::Tensor x = (block->dwconv->forward(input) * keep).permute({0, 2, 3, 1});
    x = at::gelu(block->pwconv1->forward(block->norm->forward(x))) * keep.permute({0, 2, 3, 1});
    x = block->adapter->forward(block->pwconv2->forward(block->grn->forward(x)));
    return (input + x.permute({0, 3, 1, 2})) * keep;
  };
  const auto sparse = [&](const at::Tensor& input) { return block->forward(input, visible); };
  const at::Tensor weights = at::randn({4, 16, 6, 8});
  const auto run = [&](const auto& forward) {
    block->zero_grad();
    block->adapter->bn->reset_running_stats();
    at::Tensor input = input0.clone().requires_grad_(true);
    const at::Tensor y = forward(input);
    (y * weights).sum().backward();
    std::vector<std::pair<std::string, at::Tensor>> out{{"output", y.detach()}, {"input grad", input.grad()}};
    for (const auto& p : block->named_parameters(true)) {
      if (p.key() == "adapter.down.bias") continue;  // BatchNorm cancels it: no gradient by design
      out.emplace_back(p.key() + " grad", p.value().grad().clone());
    }
    out.emplace_back("bn running_var", block->adapter->bn->running_var.clone());
    return out;
  };
  const auto want = run(dense);
  const auto got = run(sparse);
  REQUIRE(want.size() == got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO(want[i].first);
    const double scale = want[i].second.abs().max().item<double>();
    CHECK(scale > 0);
    CHECK((got[i].second - want[i].second).abs().max().item<double>() <= 2e-5 * scale);
  }
}

TEST_CASE("the same seed gives the same weights, another seed different ones", "[gaze_net]") {
  const auto m = model_config("student");
  GazeNet a = make_gaze_net(m, 42), b = make_gaze_net(m, 42), c = make_gaze_net(m, 43);
  auto pb = b->named_parameters(true), pc = c->named_parameters(true);
  bool all_equal = true, any_differs = false;
  for (const auto& p : a->named_parameters(true)) {
    all_equal = all_equal && at::equal(p.value(), pb[p.key()]);
    any_differs = any_differs || !at::equal(p.value(), pc[p.key()]);
  }
  CHECK(all_equal);
  CHECK(any_differs);
  // Official init: truncated normal, std 0.02, zero biases.
  const auto w = a->named_parameters(true)["stages.2.0.pwconv1.weight"];
  CHECK(w.std().item<double>() == Approx(0.02).epsilon(0.1));
  CHECK(at::all(a->named_parameters(true)["stages.2.0.pwconv1.bias"] == 0).item<bool>());
}

TEST_CASE("a grid head pools to cells, normalises each and reads them cell-major", "[gaze_net]") {
  ModelConfig grid = model_config("student");
  grid.head.grid = {3, 4};
  GazeNet net = make_gaze_net(grid, 5);
  net->eval();
  // 80 channels x 12 cells into the Linear: 3,520 parameters more than the paper's head.
  CHECK(net->head->weight.sizes() == at::IntArrayRef({4, 960}));
  CHECK(count_parameters(*net) == 281174 + 4 * 80 * 11);
  CHECK(compute_model_stats(grid, 96, 128).params == count_parameters(*net));
  CHECK(compute_model_stats(grid, 96, 128).tunable == count_tunable_parameters(*net));
  // Against the statement, written out cell by cell on a 6x8 map (2x2 positions per cell).
  at::NoGradGuard no_grad;
  net->norm->weight.uniform_(0.5, 1.5);
  net->norm->bias.uniform_(-0.2, 0.2);
  const at::Tensor map = at::randn({2, 80, 6, 8});
  at::Tensor expected = net->head->bias.unsqueeze(0).repeat({2, 1});
  for (int64_t y = 0; y < 3; ++y) {
    for (int64_t x = 0; x < 4; ++x) {
      const at::Tensor cell = map.narrow(2, 2 * y, 2).narrow(3, 2 * x, 2).mean({2, 3});
      const at::Tensor normed = at::layer_norm(cell, {80}, net->norm->weight, net->norm->bias, 1e-6);
      expected += at::matmul(normed, net->head->weight.narrow(1, (y * 4 + x) * 80, 80).t());
    }
  }
  CHECK(at::allclose(net->forward_head(map), expected, 1e-5, 1e-5));
  // Moving a feature to another cell changes the output; the paper's global pool cannot see it.
  const at::Tensor moved = at::roll(map, {4}, {3});
  CHECK_FALSE(at::allclose(net->forward_head(moved), net->forward_head(map), 1e-4, 1e-4));
  GazeNet paper = make_gaze_net(model_config("student"), 5);
  paper->eval();
  CHECK(at::allclose(paper->forward_head(moved), paper->forward_head(map), 1e-5, 1e-5));
}

TEST_CASE("reset_head builds a fresh head for a grid, the same for the same seed", "[gaze_net]") {
  GazeNet a = make_gaze_net(model_config("student"), 1);
  GazeNet b = make_gaze_net(model_config("student"), 2);
  a->reset_head({3, 4}, 0, 7);
  b->reset_head({3, 4}, 0, 7);
  CHECK(a->config().head.grid == std::vector<int64_t>({3, 4}));
  CHECK(a->named_parameters(true)["head.weight"].sizes() == at::IntArrayRef({4, 960}));
  CHECK(at::equal(a->head->weight, b->head->weight));
  CHECK(at::equal(a->head->bias, at::zeros({4})));
  CHECK(a->head->weight.std().item<double>() == Approx(0.02).margin(0.004));
  a->eval();
  CHECK(a->forward(at::randn({1, 3, 96, 128})).sizes() == at::IntArrayRef({1, 4}));
}

TEST_CASE("keypoint_coordinates is the expected cell centre under a softmax over each map", "[gaze_net]") {
  // One sharp peak per map: its cell's centre; a flat map: the middle (0, 0).
  at::Tensor maps = at::zeros({2, 3, 4, 8});
  maps[0][0][1][6] = 60;  // row 1 of 4, column 6 of 8
  maps[0][1][3][0] = 60;
  maps[1][0].fill_(1.5);
  maps[1][1][0][0] = 1;
  const at::Tensor c = keypoint_coordinates(maps);
  REQUIRE(c.sizes() == at::IntArrayRef({2, 6}));
  CHECK(c[0][0].item<double>() == Approx((6 + 0.5) / 8 * 2 - 1).margin(1e-5));
  CHECK(c[0][1].item<double>() == Approx((1 + 0.5) / 4 * 2 - 1).margin(1e-5));
  CHECK(c[0][2].item<double>() == Approx((0 + 0.5) / 8 * 2 - 1).margin(1e-5));
  CHECK(c[0][3].item<double>() == Approx((3 + 0.5) / 4 * 2 - 1).margin(1e-5));
  CHECK(c[0][4].item<double>() == Approx(0).margin(1e-6));  // an all-zero map
  CHECK(c[1][0].item<double>() == Approx(0).margin(1e-6));
  CHECK(c[1][1].item<double>() == Approx(0).margin(1e-6));
  // A written-out softmax expectation for the map with one raised corner.
  const double e = std::exp(1.0), total = 31 + e;
  double x = 0, y = 0;
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 8; ++j) {
      const double p = (i == 0 && j == 0 ? e : 1.0) / total;
      x += p * ((j + 0.5) / 8 * 2 - 1);
      y += p * ((i + 0.5) / 4 * 2 - 1);
    }
  }
  CHECK(c[1][2].item<double>() == Approx(x).margin(1e-6));
  CHECK(c[1][3].item<double>() == Approx(y).margin(1e-6));
  // Between two equal peaks: halfway, finer than a cell.
  at::Tensor two = at::zeros({1, 1, 1, 8});
  two[0][0][0][2] = 30;
  two[0][0][0][3] = 30;
  CHECK(keypoint_coordinates(two)[0][0].item<double>() == Approx(3.0 / 8 * 2 - 1).margin(1e-5));
}

TEST_CASE("a head with key points reads the third stage's map, centred, and trains as the head", "[gaze_net]") {
  GazeNet net = make_gaze_net(model_config("student"), 3);
  net->reset_head({3, 4}, 8, 11);
  CHECK(net->config().head.keypoints == 8);
  const std::vector<std::string> names = param_names(*net);
  CHECK(has(names, "keypoints.weight"));
  CHECK(has(names, "keypoints.bias"));
  CHECK(net->keypoints->weight.sizes() == at::IntArrayRef({8, 40, 1, 1}));  // the student's third stage: 40 channels
  CHECK(net->head->weight.sizes() == at::IntArrayRef({4, 960 + 16}));
  // The key points are the head's: tunable, outside the backbone, counted by model_stats.
  CHECK(in_param_group("keypoints.weight", ParamGroup::kHead));
  CHECK_FALSE(in_param_group("keypoints.weight", ParamGroup::kBackbone));
  const ModelStats stats = compute_model_stats(net->config(), 96, 128);
  CHECK(stats.params == count_parameters(*net));
  CHECK(stats.tunable == count_tunable_parameters(*net));
  // A fresh head without key points drops them again.
  GazeNet plain = make_gaze_net(model_config("student"), 3);
  plain->reset_head({3, 4}, 8, 11);
  plain->reset_head({3, 4}, 0, 11);
  CHECK_FALSE(plain->keypoints);
  CHECK_FALSE(has(param_names(*plain), "keypoints.weight"));
  CHECK(plain->head->weight.sizes() == at::IntArrayRef({4, 960}));

  net->eval();
  const at::Tensor image = at::randn({2, 3, 96, 128});
  const std::vector<at::Tensor> stages = net->forward_stages(image);
  CHECK(at::allclose(net->forward(image), net->forward_head(stages[3], stages[2])));
  CHECK_THROWS_WITH(net->forward_head(stages[3]), Catch::Contains("model.head.keypoints=8"));
  // The Linear reads the coordinates last, after the cells: keypoint_coordinates of the maps,
  // less their centroid (x and y each).
  const at::Tensor features = net->head_features(stages[3], stages[2]);
  REQUIRE(features.sizes() == at::IntArrayRef({2, 960 + 16}));
  const at::Tensor absolute = keypoint_coordinates(net->keypoints->forward(stages[2]));
  for (int64_t axis = 0; axis < 2; ++axis) {
    const at::Tensor along = absolute.narrow(1, axis, 15).slice(1, 0, 15, 2);  // x_0, x_1, ... or y_0, ...
    const at::Tensor read = features.narrow(1, 960 + axis, 15).slice(1, 0, 15, 2);
    CHECK(at::allclose(read, along - along.mean(1, true), 1e-5, 1e-6));
    CHECK(read.sum(1).abs().max().item<double>() < 1e-5);
  }
  // Gradients reach the maps' weights through the softmax.
  net->train();
  net->forward(image).sum().backward();
  CHECK(net->keypoints->weight.grad().abs().sum().item<double>() > 0);
}
