#include "export/onnxruntime_peer.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "export/export_job.h"  // run_command, json_printed_by
#include "export/onnx_export.h"
#include "export/runtime_sources.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/json.h"

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

  const std::string onnx_path = work_dir + "/model.onnx", script = work_dir + "/ort_run.js";
  const std::string input_path = work_dir + "/frames.f32", output_path = work_dir + "/ort_output.f32";
  export_onnx(model, onnx_path);
  write_text_atomically(script, runtime_source("ort_run.js"));
  const at::Tensor batch = frames_to_batch(frames, 0, frames.size(), h, w).contiguous();
  write_text_atomically(input_path, std::string(static_cast<const char*>(batch.data_ptr()), batch.nbytes()));

  const std::string shape = std::to_string(batch.size(0)) + "," + std::to_string(batch.size(1)) + "," +
                            std::to_string(h) + "," + std::to_string(w);
  const std::string output =
      run_command("LIBGAZE_ORT_DIR=" + quoted(onnxruntime_dir()) + " node " + quoted(script) + " " + quoted(onnx_path) +
                  " " + quoted(input_path) + " " + shape + " " + quoted(output_path) + " --threads " +
                  std::to_string(std::max<int64_t>(1, threads)) + " --time " + std::to_string(count));

  // The same numbers as LibTorch on the whole batch, or the timing means nothing.
  at::Tensor want;
  {
    torch::NoGradGuard no_grad;
    want = model->forward(batch);
  }
  const std::string bytes = read_text_file(output_path);
  if (int64_t(bytes.size()) != want.numel() * int64_t(sizeof(float))) {
    throw Error(output_path + ": " + std::to_string(bytes.size()) + " bytes from ONNX Runtime, expected " +
                std::to_string(want.numel() * 4));
  }
  const at::Tensor got = at::from_blob(const_cast<char*>(bytes.data()), want.sizes(), at::kFloat);
  t.max_abs_error = (got - want).abs().max().item<double>();
  if (t.max_abs_error > 1e-4 * std::max(1.0, want.abs().max().item<double>())) {
    throw Error("ONNX Runtime's output differs from LibTorch's by " + std::to_string(t.max_abs_error) + " on " +
                onnx_path);
  }

  const Json timing = json_printed_by(output, "ort_run.js");
  t.ran = true;
  t.version = json_at(timing, "version", "ort_run.js output").get<std::string>();
  t.p50_ms = json_at(timing, "median_ms", "ort_run.js output").get<double>();
  t.p99_ms = json_at(timing, "p99_ms", "ort_run.js output").get<double>();
  return t;
}

}  // namespace gaze
