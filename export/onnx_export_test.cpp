// The ONNX export: ONNX's checker and shape inference accept it, its graph has the model's
// layers, and ONNX Runtime (npm onnxruntime-node, installed by scripts/setup) computes what
// LibTorch computes, to 1e-4, for the student (perturbed so GRN, LayerNorm, adapters and
// BatchNorm all matter) and the teacher.
#include "export/onnx_export.h"

#include <onnx/onnx_pb.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>

#include "export/export_job.h"
#include "export/onnx_graph.h"
#include "export/onnx_quantize.h"
#include "export/onnxruntime_peer.h"
#include "export/test_models.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/models/param_groups.h"
#include "tests/test_util.h"

namespace gaze {
namespace {

std::map<std::string, int> op_counts(const onnx::ModelProto& model) {
  std::map<std::string, int> counts;
  for (const auto& node : model.graph().node()) ++counts[node.op_type()];
  return counts;
}

}  // namespace

TEST_CASE("ONNX export: checked by ONNX, one node per layer, symbolic batch and size", "[onnx]") {
  GazeNet student = testing::perturbed_student(5);
  onnx::ModelProto model;
  REQUIRE(model.ParseFromString(onnx_model_bytes(student, "student.h5")));
  CHECK(model.opset_import(0).version() == 17);
  CHECK(model.metadata_props(0).value() == "student.h5");
  const auto& input = model.graph().input(0);
  CHECK(input.name() == "image");
  CHECK(input.type().tensor_type().shape().dim(0).dim_param() == "batch");
  CHECK(input.type().tensor_type().shape().dim(1).dim_value() == 3);
  CHECK(input.type().tensor_type().shape().dim(2).dim_param() == "height");
  CHECK(model.graph().output(0).name() == "output");
  const auto ops = op_counts(model);
  // 4 downsamples + 12 depthwise convs; LayerNorm after the stem, before 3 downsamples, in 12
  // blocks and in the head; one exact GELU (Erf) and one GRN (ReduceL2) per block.
  CHECK(ops.at("Conv") == 16);
  CHECK(ops.at("LayerNormalization") == 17);
  CHECK(ops.at("Erf") == 12);
  CHECK(ops.at("ReduceL2") == 12);
  CHECK(ops.at("LeakyRelu") == 12);
  CHECK(ops.at("Gemm") == 1);
  // Every parameter is in the file except the BatchNorm affine terms and the adapters' down
  // bias, which are folded into the down projection (same shapes as before folding).
  int64_t stored = 0;
  for (const auto& t : model.graph().initializer()) {
    int64_t n = 1;
    for (const int64_t d : t.dims()) n *= d;
    stored += n;
  }
  int64_t folded = 0;
  for (const auto& p : student->named_parameters()) {
    if (p.key().find("adapter.bn.") != std::string::npos) folded += p.value().numel();
  }
  const int64_t scalars = 4 * 12;  // per block: GELU's sqrt(2), 0.5 and 1, GRN's epsilon
  CHECK(stored - scalars == count_parameters(*student) - folded);
}

TEST_CASE("ONNX export refuses a head with key points, by name", "[onnx]") {
  GazeNet keyed = make_gaze_net(default_config({"model.head.keypoints=4"}).model, 1);
  CHECK_THROWS_WITH(onnx_model_bytes(keyed, "keyed.h5"), Catch::Contains("export: model.head.keypoints=4"));
}

TEST_CASE("ONNX Runtime runs the exported student and teacher as LibTorch does (1e-4)", "[onnx]") {
  testing::TempDir dir("onnx");
  // student_grid: model.head.grid [3, 4], its cells computed from the map's size at run time
  // (at 224x224 the 7x7 map's cells share rows and columns).
  for (const std::string arch : {"student", "teacher", "student_grid"}) {
    INFO(arch);
    GazeNet model = arch == "student"        ? testing::perturbed_student(9)
                    : arch == "student_grid" ? testing::perturbed_student(9, {3, 4})
                                             : make_gaze_net(default_config({"model.arch=teacher"}).model, 9);
    model->eval();
    export_onnx(model, dir.file(arch + ".onnx"));
    for (const auto& size : std::vector<std::pair<int64_t, int64_t>>{{96, 128}, {224, 224}}) {
      at::manual_seed(1);
      const at::Tensor x = at::randn({3, 3, size.first, size.second});
      at::Tensor want;
      {
        at::NoGradGuard no_grad;
        want = model->forward(x);
      }
      const at::Tensor got = testing::run_in_onnxruntime(dir.file(arch + ".onnx"), x, dir);
      const double error = (got - want).abs().max().item<double>();
      INFO(size.first << "x" << size.second << ": max |ORT - LibTorch| " << error);
      CHECK(error <= 1e-4 * std::max(1.0, want.abs().max().item<double>()));
    }
  }
}

TEST_CASE("the bench's ONNX Runtime peer: timed and checked against LibTorch, or says why not", "[onnx]") {
  testing::TempDir dir("onnx");
  GazeNet student = testing::perturbed_student(3);
  const std::vector<Frame> frames = testing::eye_frames(4, 64, 96, 1);
  const PeerTiming t = time_onnxruntime(student, frames, 64, 96, 10, 1, dir.path());
  REQUIRE(t.ran);
  CHECK(t.version == "1.30.0");
  CHECK(t.p50_ms > 0);
  CHECK(t.p99_ms >= t.p50_ms);
  CHECK(t.max_abs_error < 1e-4);
  CHECK(t.int8_p50_ms > 0);
  CHECK(t.int8_p99_ms >= t.int8_p50_ms);
  CHECK(t.int8_mean_deg < 2.0);
  CHECK(t.best_p50_ms() == std::min(t.p50_ms, t.int8_p50_ms));
  // Without the package: not run, and the reason names where it looked.
  const std::string saved = std::getenv("LIBGAZE_ORT_DIR") ? std::getenv("LIBGAZE_ORT_DIR") : "";
  ::setenv("LIBGAZE_ORT_DIR", dir.file("empty").c_str(), 1);
  const PeerTiming missing = time_onnxruntime(student, frames, 64, 96, 10, 1, dir.path());
  saved.empty() ? ::unsetenv("LIBGAZE_ORT_DIR") : ::setenv("LIBGAZE_ORT_DIR", saved.c_str(), 1);
  CHECK_FALSE(missing.ran);
  CHECK_THAT(missing.reason, Catch::Contains(dir.file("empty")) && Catch::Contains("scripts/setup"));
}

namespace {

// The int8 initialiser `name` and its per-slice scales, dequantised.
std::vector<float> dequantized_initializer(const onnx::GraphProto& graph, const std::string& name) {
  const onnx::TensorProto *q = nullptr, *scale = nullptr;
  for (const auto& t : graph.initializer()) {
    if (t.name() == name + "_quantized") q = &t;
    if (t.name() == name + "_scale") scale = &t;
  }
  REQUIRE(q);
  REQUIRE(scale);
  REQUIRE(q->data_type() == onnx::TensorProto::INT8);
  const std::vector<float> scales = onnx_float_values(*scale);
  const size_t per = q->raw_data().size() / scales.size();
  std::vector<float> values;
  for (size_t i = 0; i < q->raw_data().size(); ++i) values.push_back(float(int8_t(q->raw_data()[i])) * scales[i / per]);
  return values;
}

}  // namespace

TEST_CASE("int8 QDQ: every Conv and MatMul quantised as ONNX Runtime's quantize_static writes it", "[onnx]") {
  GazeNet student = testing::perturbed_student(5);
  const std::string bytes = onnx_model_bytes(student);
  const std::vector<std::string> activations = onnx_quantized_activations(bytes);
  CHECK(activations.front() == "image");  // the stem's input
  TensorRanges ranges;
  for (const auto& name : activations) ranges[name] = {-1.5f, 3.0f};
  onnx::ModelProto q;
  REQUIRE(q.ParseFromString(onnx_quantize_qdq(bytes, ranges)));
  const auto ops = op_counts(q);
  // 16 Conv + 48 MatMul (pwconv1, pwconv2, adapter down and up in 12 blocks); the head's Gemm stays float.
  CHECK(ops.at("Conv") == 16);
  CHECK(ops.at("MatMul") == 48);
  CHECK(ops.at("QuantizeLinear") == int(activations.size()));
  CHECK(ops.at("DequantizeLinear") == int(activations.size()) + 64 + 16);  // + weights + Conv biases
  // No float weight is left for a product; the stem's weights are int8 per output channel,
  // within half a step of the float ones; the biases are int32.
  int int8_weights = 0, int32_biases = 0;
  for (const auto& t : q.graph().initializer()) {
    const std::string& n = t.name();
    const bool weights =
        n.size() > 8 && (n.compare(n.size() - 7, 7, ".weight") == 0 || n.compare(n.size() - 9, 9, ".weight_t") == 0);
    if (t.data_type() == onnx::TensorProto::FLOAT && weights && n != "head.weight") {
      INFO(n);
      CHECK(t.dims_size() < 2);  // a float matrix or kernel left would be an unquantised product
    }
    int8_weights += t.data_type() == onnx::TensorProto::INT8 && t.dims_size() >= 2;
    int32_biases += t.data_type() == onnx::TensorProto::INT32;
  }
  CHECK(int8_weights == 64);
  CHECK(int32_biases == 2 * 16);  // values and zero points
  const at::Tensor stem =
      student->downsample_layers[0]->as<torch::nn::Sequential>()->ptr(0)->as<torch::nn::Conv2d>()->weight;
  const std::vector<float> got = dequantized_initializer(q.graph(), "downsample_layers.0.0.weight");
  REQUIRE(int64_t(got.size()) == stem.numel());
  const at::Tensor w = stem.detach().contiguous().view({stem.size(0), -1});
  for (int64_t c = 0; c < w.size(0); ++c) {
    const double step = w[c].abs().max().item<double>() / 127;
    for (int64_t i = 0; i < w.size(1); ++i)
      REQUIRE(std::abs(got[size_t(c * w.size(1) + i)] - w[c][i].item<double>()) <= step / 2 + 1e-7);
  }
}

TEST_CASE("int8 QDQ: ONNX Runtime fuses it into QLinearConv / QLinearMatMul and stays near LibTorch", "[onnx]") {
  testing::TempDir dir("onnx");
  GazeNet student = testing::perturbed_student(7);
  student->eval();
  const std::string bytes = onnx_model_bytes(student);
  at::manual_seed(2);
  const at::Tensor x = at::randn({8, 3, 64, 96}) * 0.5;
  testing::write_floats(dir.file("x.f32"), x);
  write_text_atomically(dir.file("calibration.onnx"), onnx_calibration_model(bytes));
  const std::string node = "node " LIBGAZE_SOURCE_DIR "/scripts/ort/ort_run.js ";
  run_command(node + dir.file("calibration.onnx") + " " + dir.file("x.f32") + " 8,3,64,96 " + dir.file("c.f32") +
              " --ranges " + dir.file("ranges.json"));
  const TensorRanges ranges = parse_tensor_ranges(read_text_file(dir.file("ranges.json")), "ranges.json");
  for (const auto& name : onnx_quantized_activations(bytes)) {
    INFO(name);
    REQUIRE(ranges.count(name));
    CHECK(ranges.at(name).min < ranges.at(name).max);
  }
  write_text_atomically(dir.file("int8.onnx"), onnx_quantize_qdq(bytes, ranges));
  run_command(node + dir.file("int8.onnx") + " " + dir.file("x.f32") + " 8,3,64,96 " + dir.file("y.f32") +
              " --optimized " + dir.file("optimized.onnx"));
  onnx::ModelProto optimized;
  REQUIRE(optimized.ParseFromString(read_text_file(dir.file("optimized.onnx"))));
  auto ops = op_counts(optimized);
  CHECK(ops["QLinearConv"] == 16);
  CHECK(ops["QLinearMatMul"] + ops["MatMulIntegerToFloat"] == 48);
  CHECK(ops["Conv"] == 0);
  CHECK(ops["MatMul"] == 0);
  // Close to the float model: every gaze within a few degrees.
  at::Tensor want;
  {
    at::NoGradGuard no_grad;
    want = student->forward(x);
  }
  const std::string y = read_text_file(dir.file("y.f32"));
  REQUIRE(y.size() == size_t(want.numel()) * 4);
  const at::Tensor got = at::from_blob(const_cast<char*>(y.data()), want.sizes(), at::kFloat);
  const at::Tensor cosine = at::cosine_similarity(got.slice(1, 0, 3), want.slice(1, 0, 3), 1);
  const double worst_deg = at::acos(cosine.clamp(-1, 1)).max().item<double>() * 180 / M_PI;
  INFO("worst int8 vs LibTorch: " << worst_deg << " deg");
  CHECK(worst_deg < 3.0);
}

TEST_CASE("int8 QDQ refuses missing or broken calibration ranges, naming the tensor or file", "[onnx]") {
  GazeNet student = testing::perturbed_student(5);
  const std::string bytes = onnx_model_bytes(student);
  TensorRanges ranges;
  for (const auto& name : onnx_quantized_activations(bytes)) ranges[name] = {-1, 1};
  TensorRanges missing = ranges;
  missing.erase("image");
  CHECK_THROWS_WITH(onnx_quantize_qdq(bytes, missing), Catch::Contains("no calibration range for tensor 'image'"));
  TensorRanges infinite = ranges;
  infinite["image"].max = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(onnx_quantize_qdq(bytes, infinite), Catch::Contains("'image' has a non-finite"));
  CHECK_THROWS_WITH(onnx_quantize_qdq("not a model", ranges), Catch::Contains("not a serialised ONNX model"));
  CHECK_THROWS_WITH(parse_tensor_ranges("{\"a\": [0, 1], \"b\": [null, 2]}", "r.json"),
                    Catch::Contains("r.json") && Catch::Contains("'b'"));
  CHECK_THROWS_WITH(parse_tensor_ranges("[1, 2", "r.json"), Catch::Contains("r.json: invalid JSON"));
  const TensorRanges parsed = parse_tensor_ranges("{\"a\": [-0.5, 2]}", "r.json");
  CHECK(parsed.at("a").min == -0.5f);
  CHECK(parsed.at("a").max == 2.0f);
}

TEST_CASE("ONNX export of a missing checkpoint names it and writes nothing", "[onnx]") {
  testing::TempDir dir("onnx");
  CHECK_THROWS_WITH(export_onnx_model({dir.file("absent.h5"), dir.file("m.onnx"), "", {}}),
                    Catch::Contains("absent.h5"));
  CHECK_FALSE(std::ifstream(dir.file("m.onnx")).good());
}

}  // namespace gaze
