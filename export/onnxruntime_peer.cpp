#include "export/onnxruntime_peer.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "export/export_job.h"  // run_command, json_printed_by
#include "export/onnx_export.h"
#include "export/onnx_quantize.h"
#include "export/runtime_sources.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/json.h"
#include "libgaze/metrics/angular_error.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;

std::string onnxruntime_dir() {
  if (const char* dir = std::getenv("LIBGAZE_ORT_DIR"); dir && *dir) return dir;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/libgaze/onnxruntime-node";
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

}  // namespace

PeerTiming time_onnxruntime(GazeNet& model, const std::vector<Frame>& frames, int32_t h, int32_t w, int64_t count,
                            int64_t threads, const std::string& work_dir) {
  PeerTiming t;
  if (std::system("node --version >/dev/null 2>&1") != 0) {
    t.reason = "node is not installed";
    return t;
  }
  const std::string package = onnxruntime_dir() + "/node_modules/onnxruntime-node";
  if (!fs::exists(package + "/package.json")) {
    t.reason = "onnxruntime-node is not in " + onnxruntime_dir() + " (scripts/setup installs it)";
    return t;
  }

  const auto file = [&](const std::string& name) { return work_dir + "/" + name; };
  const std::string script = file("ort_run.js"), input_path = file("frames.f32");
  write_text_atomically(script, runtime_source("ort_run.js"));
  const at::Tensor batch = frames_to_batch(frames, 0, frames.size(), h, w).contiguous();
  write_text_atomically(input_path, std::string(static_cast<const char*>(batch.data_ptr()), batch.nbytes()));
  const std::string run = "LIBGAZE_ORT_DIR=" + quoted(onnxruntime_dir()) + " node " + quoted(script) + " ";
  const std::string inputs = quoted(input_path) + " " + std::to_string(batch.size(0)) + "," +
                             std::to_string(batch.size(1)) + "," + std::to_string(h) + "," + std::to_string(w) + " ";

  // fp32, then the calibration run on the same frames, then the int8 QDQ model.
  const std::string fp32_bytes = onnx_model_bytes(model);
  write_text_atomically(file("model.onnx"), fp32_bytes);
  write_text_atomically(file("calibration.onnx"), onnx_calibration_model(fp32_bytes));
  run_command(run + quoted(file("calibration.onnx")) + " " + inputs + quoted(file("calibration_output.f32")) +
              " --ranges " + quoted(file("ranges.json")));
  const TensorRanges ranges = parse_tensor_ranges(read_text_file(file("ranges.json")), file("ranges.json"));
  write_text_atomically(file("model_int8.onnx"), onnx_quantize_qdq(fp32_bytes, ranges));
  const std::string output =
      run_command(run + quoted(file("model.onnx")) + " " + inputs + quoted(file("fp32_output.f32")) + " --also " +
                  quoted(file("model_int8.onnx")) + " " + quoted(file("int8_output.f32")) + " --threads " +
                  std::to_string(std::max<int64_t>(1, threads)) + " --time " + std::to_string(count));

  at::Tensor want;
  {
    torch::NoGradGuard no_grad;
    want = model->forward(batch);
  }
  const auto read_output = [&](const std::string& path) {
    const std::string bytes = read_text_file(path);
    if (int64_t(bytes.size()) != want.numel() * int64_t(sizeof(float))) {
      throw Error(path + ": " + std::to_string(bytes.size()) + " bytes from ONNX Runtime, expected " +
                  std::to_string(want.numel() * 4));
    }
    return at::from_blob(const_cast<char*>(bytes.data()), want.sizes(), at::kFloat).clone();
  };
  // The same numbers as LibTorch on the whole batch, or the timing means nothing.
  t.max_abs_error = (read_output(file("fp32_output.f32")) - want).abs().max().item<double>();
  if (t.max_abs_error > 1e-4 * std::max(1.0, want.abs().max().item<double>())) {
    throw Error("ONNX Runtime's output differs from LibTorch's by " + std::to_string(t.max_abs_error) + " on " +
                file("model.onnx"));
  }
  const at::Tensor int8 = read_output(file("int8_output.f32"));
  std::vector<double> degrees;
  const auto a = want.accessor<float, 2>(), b = int8.accessor<float, 2>();
  for (int64_t i = 0; i < want.size(0); ++i)
    degrees.push_back(angular_error_deg({a[i][0], a[i][1], a[i][2]}, {b[i][0], b[i][1], b[i][2]}));
  const ErrorStats int8_error = summarize_errors(degrees);
  t.int8_mean_deg = int8_error.mean;
  t.int8_max_deg = int8_error.max;  // reported, not bounded: quantisation error is the runtime's to own

  const Json timing = json_printed_by(output, "ort_run.js");
  const Json& models = json_at(timing, "models", "ort_run.js output");
  if (!models.is_array() || models.size() != 2) throw Error("ort_run.js output: expected two timed models");
  t.ran = true;
  t.version = json_at(timing, "version", "ort_run.js output").get<std::string>();
  t.p50_ms = json_at(models[0], "median_ms", "ort_run.js output").get<double>();
  t.p99_ms = json_at(models[0], "p99_ms", "ort_run.js output").get<double>();
  t.int8_p50_ms = json_at(models[1], "median_ms", "ort_run.js output").get<double>();
  t.int8_p99_ms = json_at(models[1], "p99_ms", "ort_run.js output").get<double>();
  return t;
}

}  // namespace gaze
