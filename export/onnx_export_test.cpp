// The ONNX export: ONNX's checker and shape inference accept it, its graph has the model's
// layers, and ONNX Runtime (npm onnxruntime-node, installed by scripts/setup) computes what
// LibTorch computes, to 1e-4, for the student (perturbed so GRN, LayerNorm, adapters and
// BatchNorm all matter) and the teacher.
#include "export/onnx_export.h"

#include <onnx/onnx_pb.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>

#include "export/export_job.h"
#include "export/onnxruntime_peer.h"
#include "export/test_models.h"
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

TEST_CASE("ONNX Runtime runs the exported student and teacher as LibTorch does (1e-4)", "[onnx]") {
  testing::TempDir dir("onnx");
  for (const std::string arch : {"student", "teacher"}) {
    INFO(arch);
    GazeNet model = arch == "student" ? testing::perturbed_student(9)
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
  // Without the package: not run, and the reason names where it looked.
  const std::string saved = std::getenv("LIBGAZE_ORT_DIR") ? std::getenv("LIBGAZE_ORT_DIR") : "";
  ::setenv("LIBGAZE_ORT_DIR", dir.file("empty").c_str(), 1);
  const PeerTiming missing = time_onnxruntime(student, frames, 64, 96, 10, 1, dir.path());
  saved.empty() ? ::unsetenv("LIBGAZE_ORT_DIR") : ::setenv("LIBGAZE_ORT_DIR", saved.c_str(), 1);
  CHECK_FALSE(missing.ran);
  CHECK_THAT(missing.reason, Catch::Contains(dir.file("empty")) && Catch::Contains("scripts/setup"));
}

TEST_CASE("ONNX export of a missing checkpoint names it and writes nothing", "[onnx]") {
  testing::TempDir dir("onnx");
  CHECK_THROWS_WITH(export_onnx_model({dir.file("absent.h5"), dir.file("m.onnx"), "", {}}),
                    Catch::Contains("absent.h5"));
  CHECK_FALSE(std::ifstream(dir.file("m.onnx")).good());
}

}  // namespace gaze
