#include "export/fig8.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "export/export_job.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/io/model_io.h"
#include "libgaze/models/param_groups.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;

// SPEC §4: the paper's Raspberry Pi 4 latencies.
constexpr double kPaperTeacherMs = 928.84, kPaperStudentMs = 426.66;

// A checkpoint to time: the given one, or a fresh model written into `dir`.
std::string model_file(const std::string& given, const std::string& arch, const fs::path& dir) {
  if (!given.empty()) return given;
  const Config c = default_config({"model.arch=" + arch});
  GazeNet net = make_gaze_net(c.model, 0);
  const std::string path = (dir / (arch + ".h5")).string();
  save_model(path, net, c, "fresh", 0);
  return path;
}

}  // namespace

Fig8Report reproduce_fig8(const Config& config, const std::string& student, const std::string& teacher,
                          int64_t frames) {
  Fig8Report r;
  kernel_input_size(config, &r.input_h, &r.input_w);
  r.frames = frames;
  double mhz = 0;
  r.machine = describe_machine(&mhz);
  const TemporaryFolder dir("gaze_fig8");
  for (const auto& [arch, given, paper] : {std::tuple{std::string("teacher"), teacher, kPaperTeacherMs},
                                           std::tuple{std::string("student"), student, kPaperStudentMs}}) {
    Fig8Row row;
    row.model = arch;
    row.paper_pi4_ms = paper;
    const std::string checkpoint = model_file(given, arch, dir.path());
    GazeNet net = load_model(checkpoint);
    row.params = count_parameters(*net);
    try {
      const BenchReport b = bench_kernel(config, checkpoint, "", frames, 1);
      row.kernel_p50_ms = b.json.at("kernel_p50_ms").get<double>();
      row.torch_p50_ms = b.json.at("torch_fp32_p50_ms").get<double>();
      row.pi4_bound_ms = b.json.at("pi4_peak_bound_ms").get<double>();
    } catch (const Error& e) {
      const std::string what = e.what();
      row.kernel_note = what.find("overflow int32") != std::string::npos
                            ? "our kernel cannot lower the " + arch + " yet: " + what +
                                  " (the int16 x int8 scheme keeps int32 accumulators, which bounds a layer's inputs)"
                            : "the kernel bench failed for the " + arch + ": " + what;
      spdlog::info("fig8: no kernel for the {}: {}", arch, row.kernel_note);
      // LibTorch alone, on the frames bench_kernel would have used.
      const std::vector<Frame> timing_frames =
          load_frames(config, std::min<int64_t>(frames, 256), 0.0, r.input_h, r.input_w);
      row.torch_p50_ms =
          percentile_ms(time_torch_fp32_ms(checkpoint, timing_frames, r.input_h, r.input_w, frames, 1), 0.5);
    }
    r.rows.push_back(row);
  }
  return r;
}

Json Fig8Report::json() const {
  Json rows_json = Json::array();
  for (const auto& row : rows) {
    rows_json.push_back({{"model", row.model},
                         {"params", row.params},
                         {"paper_pi4_ms", row.paper_pi4_ms},
                         {"torch_fp32_p50_ms_here", row.torch_p50_ms},
                         {"kernel_p50_ms_here", row.kernel_p50_ms < 0 ? Json(nullptr) : Json(row.kernel_p50_ms)},
                         {"kernel_pi4_peak_bound_ms", row.pi4_bound_ms < 0 ? Json(nullptr) : Json(row.pi4_bound_ms)},
                         {"kernel_note", row.kernel_note}});
  }
  return {{"machine", machine}, {"input", {input_h, input_w}}, {"frames", frames}, {"rows", rows_json}};
}

std::string Fig8Report::markdown() const {
  std::ostringstream s;
  char line[512];
  std::snprintf(line, sizeof line,
                "# Fig. 8: latency per frame (ms), %dx%d, batch 1, one thread, %lld frames, p50\n\n"
                "| model | params | paper: Raspberry Pi 4 (8 GB) | LibTorch fp32, here | our kernel, here | "
                "our kernel on a Pi 4: A72 int8-peak bound |\n|---|---|---|---|---|---|\n",
                input_h, input_w, (long long)frames);
  s << line;
  std::vector<std::string> notes;
  for (const auto& row : rows) {
    const std::string kernel = row.kernel_p50_ms < 0 ? "n/a (" + std::to_string(notes.size() + 1) + ")"
                                                     : std::to_string(row.kernel_p50_ms).substr(0, 6);
    const std::string bound = row.pi4_bound_ms < 0 ? "n/a" : std::to_string(row.pi4_bound_ms).substr(0, 6);
    if (row.kernel_p50_ms < 0) notes.push_back(row.kernel_note);
    std::snprintf(line, sizeof line, "| %s | %s | %.2f | %.2f | %s | %s |\n",
                  row.model == "teacher" ? "ConvNeXt V2-Atto (teacher)" : "DFT Gaze (student)",
                  std::to_string(row.params).c_str(), row.paper_pi4_ms, row.torch_p50_ms, kernel.c_str(),
                  bound.c_str());
    s << line;
  }
  s << "\nHere = " << machine
    << ". The paper's column is its Raspberry Pi 4 measurement (mean over 1,000 AEA eye images), not run here; the "
       "last column is a lower bound from MACs at 1.5 GHz x 8 int8 MACs/cycle, not a measurement.\n";
  for (size_t i = 0; i < notes.size(); ++i) s << "\n(" << i + 1 << ") " << notes[i] << "\n";
  return s.str();
}

}  // namespace gaze
