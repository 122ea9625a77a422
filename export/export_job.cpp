#include "export/export_job.h"

#include "export/cycle_model.h"
#include "export/onnx_export.h"
#include "export/onnxruntime_peer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "datasets/open_dataset.h"
#include "datasets/preprocess.h"
#include "datasets/splits.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/random.h"
#include "libgaze/core/strings.h"
#include "libgaze/io/model_io.h"
#include "libgaze/metrics/angular_error.h"
#include "trainers/personalize.h"

namespace gaze {
namespace fs = std::filesystem;
namespace {

// Sets LibTorch's thread count for a scope.
struct TorchThreads {
  int previous = at::get_num_threads();
  explicit TorchThreads(int64_t threads) { at::set_num_threads(int(std::max<int64_t>(1, threads))); }
  ~TorchThreads() { at::set_num_threads(previous); }
};

QuantizeOptions quantize_options(const Config& config) {
  QuantizeOptions o;
  kernel_input_size(config, &o.input_h, &o.input_w);
  o.observer = config.export_.observer;
  o.percentile = config.export_.percentile;
  o.weight_rounding = config.export_.weight_rounding;
  return o;
}

}  // namespace

GazeNet load_student(const std::string& checkpoint, const std::string& user) {
  GazeNet model = load_model(checkpoint);
  require_exportable_head(model->config());
  if (!user.empty()) apply_user_adapter(model, user);
  model->eval();
  return model;
}

std::string run_command(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) throw Error("cannot run: " + command);
  std::string out;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
  const int status = pclose(pipe);
  if (status != 0) throw Error("command failed (" + std::to_string(status) + "): " + command + "\n" + out);
  return out;
}

Json json_printed_by(const std::string& output, const std::string& program) {
  const size_t open = output.find('{'), close = output.rfind('}');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    throw Error(program + " printed no JSON object: " + output);
  }
  return parse_json(output.substr(open, close - open + 1), program + " output");
}

void export_onnx_model(const ExportRequest& request) {
  GazeNet model = load_student(request.checkpoint, request.merge_user);
  export_onnx(model, request.out_dir,
              request.checkpoint + (request.merge_user.empty() ? "" : " + " + request.merge_user));
}

std::string describe_machine(double* mhz) {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  int cores = 0;
  *mhz = 0;
  while (std::getline(in, line)) {
    const auto value = [&] { return line.substr(line.find(':') + 2); };
    if (starts_with(line, "model name")) model = value(), ++cores;
    if (starts_with(line, "cpu MHz") && *mhz == 0) *mhz = std::atof(value().c_str());
  }
  char text[256];
  std::snprintf(text, sizeof text, "%s, %d cores, %.0f MHz", model.c_str(), cores, *mhz);
  return text;
}

double percentile_ms(std::vector<double> v, double p) {
  if (v.empty()) throw Error("percentile of no timings");
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(double(v.size()) * p))];
}

std::vector<double> time_torch_fp32_ms(const std::string& checkpoint, const std::vector<Frame>& frames, int32_t h,
                                       int32_t w, int64_t count, int64_t threads) {
  const TorchThreads torch_threads(threads);
  GazeNet model = load_student(checkpoint, "");
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> inputs;
  for (size_t i = 0; i < frames.size(); ++i) inputs.push_back(frames_to_batch(frames, i, i + 1, h, w));
  for (int i = 0; i < 20; ++i) model->forward(inputs[size_t(i) % inputs.size()]);
  std::vector<double> ms;
  for (int64_t i = 0; i < count; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    model->forward(inputs[size_t(i) % inputs.size()]);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return ms;
}

void kernel_input_size(const Config& config, int32_t* h, int32_t* w) {
  const auto& size = config.export_.input_size.empty() ? config.data.input_size : config.export_.input_size;
  *h = int32_t(size[0]);
  *w = int32_t(size[1]);
}

std::vector<Frame> load_frames(const Config& config, int64_t count, double offset, int32_t h, int32_t w) {
  return load_frames(*open_dataset(config.data), count, offset, h, w);
}

std::vector<Frame> load_frames(const Dataset& data, int64_t count, double offset, int32_t h, int32_t w) {
  if (data.size() < 1) throw Error(data.describe() + ": no frames to calibrate on");
  const int64_t n = std::min(count, data.size());
  const double step = double(data.size()) / double(n);
  std::vector<Frame> frames;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t index = std::min(data.size() - 1, int64_t((double(i) + offset) * step));
    const Sample s = data.get(index);
    Frame f(size_t(h) * w);
    gz_resample_u8(s.image.pixels.data(), s.image.height, s.image.width, f.data(), h, w);
    frames.push_back(std::move(f));
  }
  return frames;
}

void write_frames_file(const std::string& path, const std::vector<Frame>& frames, int32_t h, int32_t w) {
  std::string bytes = "GZFR";
  for (uint32_t v : {uint32_t(frames.size()), uint32_t(h), uint32_t(w)})
    bytes.append(reinterpret_cast<const char*>(&v), 4);
  for (const Frame& f : frames) bytes.append(reinterpret_cast<const char*>(f.data()), f.size());
  write_text_atomically(path, bytes);
}

namespace {

// On-device personalisation's replay pack and defaults (export/tune_run.h): export.replay_frames
// K-means-balanced frames of the training split (the items `gaze personalize` replays) through
// the integer reference, captured where the device's training starts. Without a training split
// the kernel personalises on the wearer's frames alone (logged).
void add_tune_pack(QuantizedNet& net, const Config& config) {
  TuneData& t = net.tune;
  if (t.empty()) return;
  if (config.export_.replay_frames <= 0) {
    t = {};
    return;
  }
  const PersonalizeConfig& pc = config.personalize;
  const AugmentConfig& a = config.train.augmentation;
  t.defaults = {int32_t(pc.steps),
                int32_t(pc.batch_size),
                4,
                float(pc.lr),
                float(pc.replay_fraction),
                float(a.shift),
                float(a.brightness),
                float(a.contrast),
                float(a.gamma),
                float(a.noise),
                config.train.gaze_loss == "laplace_nll",
                pc.train_head};
  std::unique_ptr<Dataset> replay;
  try {
    replay = open_replay_dataset(config);
  } catch (const Error& e) {
    spdlog::warn("export: no replay pack for on-device personalisation ({})", e.what());
  }
  if (!replay || replay->size() == 0) return;
  const std::vector<int64_t> items =
      replay_items(*replay, config, std::min(config.export_.replay_frames, std::max<int64_t>(pc.replay, 1)));
  std::vector<Sample> samples;
  for (int64_t i : items) samples.push_back(replay->get(i));
  set_replay_pack(net, samples);
}

}  // namespace

void set_replay_pack(QuantizedNet& net, const std::vector<Sample>& samples) {
  TuneData& t = net.tune;
  if (t.empty()) return;
  const size_t n = size_t(t.height) * t.width * t.channels;
  t.replay_c.assign(samples.size() * n, 0);
  t.replay_f.assign(samples.size() * n, 0);
  t.replay_gaze.assign(samples.size() * 3, 0.0f);
  at::parallel_for(0, int64_t(samples.size()), 1, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) {
      const Sample& s = samples[size_t(i)];
      QTrace trace;
      qnet_predict(net, s.image.pixels.data(), s.image.height, s.image.width, &trace);
      std::copy(trace.tune_c.begin(), trace.tune_c.end(), t.replay_c.begin() + i * int64_t(n));
      std::copy(trace.tune_f.begin(), trace.tune_f.end(), t.replay_f.begin() + i * int64_t(n));
      for (size_t k = 0; k < 3; ++k) t.replay_gaze[size_t(i) * 3 + k] = s.label.gaze[k];
    }
  });
}

namespace {

// Stages whose blocks keep their GELU outputs as int8 (export.int8_hidden): "all" every stage
// whose pw2 layers all take int8 inputs, "auto" those of them that cannot keep every row's
// outputs at int16 within the arena budget (each row not kept recomputes pw1 + GELU), "none".
std::set<int32_t> choose_int8_hidden(const std::string& mode, const QuantizedNet& net, size_t arena_budget) {
  std::set<int32_t> stages;
  if (mode == "none") return stages;
  const std::array<int32_t, 4> kept16 = plan_kept_rows(net.input_h, net.input_w, net.dims, {}, arena_budget);
  std::array<int32_t, 4> int8{};
  for (int32_t s = 0; s < int32_t(net.stages.size()) && s < 4; ++s) {
    bool int8_pw2 = true;
    for (const QBlock& q : net.stages[size_t(s)]) int8_pw2 = int8_pw2 && q.pw2.int8_input();
    int8[size_t(s)] = int8_pw2 && (mode == "all" || kept16[size_t(s)] < (net.input_h / 4) >> s);
  }
  // auto: a stage that keeps no row even as int8 (an earlier stage behind one that does not fit
  // whole) would pay the extra rounding for nothing
  const std::array<int32_t, 4> kept8 = plan_kept_rows(net.input_h, net.input_w, net.dims, int8, arena_budget);
  for (int32_t s = 0; s < 4; ++s)
    if (int8[size_t(s)] && (mode == "all" || kept8[size_t(s)] > 0)) stages.insert(s);
  return stages;
}

}  // namespace

ExportReport export_kernel(const Config& config, const ExportRequest& request) {
  QuantizeOptions options = quantize_options(config);
  GazeNet model = load_student(request.checkpoint, request.merge_user);
  ExportReport report;
  report.input_h = options.input_h;
  report.input_w = options.input_w;
  const auto data = open_dataset(config.data);
  const std::vector<Frame> calibration =
      load_frames(*data, config.export_.calibration_frames, 0.0, options.input_h, options.input_w);
  report.calibration_frames = int64_t(calibration.size());
  const ActivationRanges ranges = calibrate(model, calibration, options);
  report.int8_mode = config.export_.int8;
  if (config.export_.int8 == "auto") {
    const std::vector<Frame> probe =
        load_frames(*data, config.export_.int8_frames, 0.25, options.input_h, options.input_w);
    report.int8 =
        choose_int8_layers(model, ranges, options, probe, config.export_.int8_budget_deg, config.export_.int8_max_deg);
  } else if (config.export_.int8 == "all") {
    report.int8.layers = quantize_model(model, ranges, options).int8_candidates();
  }
  options.int8_layers = std::set<std::string>(report.int8.layers.begin(), report.int8.layers.end());
  QuantizedNet net = quantize_model(model, ranges, options);
  options.int8_hidden_stages =
      choose_int8_hidden(config.export_.int8_hidden, net, size_t(config.export_.arena_budget_kb) * 1024);
  if (!options.int8_hidden_stages.empty()) net = quantize_model(model, ranges, options);
  add_tune_pack(net, config);
  report.int8_macs = net.int8_macs();
  if (config.export_.eval_frames > 0) {
    const std::vector<Frame> held_out =
        load_frames(*data, config.export_.eval_frames, 0.5, options.input_h, options.input_w);
    report.error = compare_float_fixed(model, net, held_out);
  }
  std::string provenance = "checkpoint " + request.checkpoint;
  if (!request.merge_user.empty()) provenance += " + user " + request.merge_user;
  provenance += "; calibrated on " + std::to_string(calibration.size()) + " frames of " + config.data.source;
  // The whole folder (kernel + user blobs) is built beside the old one and swapped in at the
  // end: a failure (a full disk, a bad user file) leaves the previous export as it was.
  StagedFolder staged(request.out_dir);
  fs::create_directories(fs::path(staged.path()) / "users");  // replaces, never merges, old blobs
  report.kernel = write_kernel(net, staged.path(), {provenance, size_t(config.export_.arena_budget_kb) * 1024});
  for (const std::string& user : request.users) {
    GazeNet user_model = load_student(request.checkpoint, user);
    const QuantizedNet user_net =
        quantize_model(user_model, user_adapter_ranges(user_model, calibration, ranges, options), options);
    const std::vector<uint8_t> blob = user_blob(net, user_net);
    const fs::path name = fs::path("users") / (fs::path(user).stem().string() + ".gzu");
    write_text_atomically((fs::path(staged.path()) / name).string(), std::string(blob.begin(), blob.end()));
    report.blobs.push_back((fs::path(request.out_dir) / name).string());
  }
  staged.commit(/*keep_others=*/true);
  return report;
}

Json ExportReport::json() const {
  return {{"input", {input_h, input_w}},
          {"macs", kernel.macs},
          {"weights_bytes", kernel.weight_bytes},
          {"constant_bytes", kernel.constant_bytes},
          {"arena_bytes", kernel.arena_bytes},
          {"user_blob_bytes", kernel.user_blob_bytes},
          {"hidden_rows_kept", kernel.keep_rows},
          {"hidden_rows", kernel.hidden_rows},
          {"hidden_rows_int8", kernel.int8_hidden},
          {"calibration_frames", calibration_frames},
          {"eval_frames", error.frames},
          {"float_vs_fixed_mean_deg", json_number(error.mean_deg)},
          {"float_vs_fixed_max_deg", json_number(error.max_deg)},
          {"float_vs_fixed_log_scale", json_number(error.mean_log_scale)},
          {"int8", int8_json()},
          {"personalize",
           {{"replay_frames", kernel.replay_frames},
            {"constant_bytes", kernel.personalize_bytes},
            {"work_bytes_k5", kernel.personalize_work_bytes}}},
          {"blobs", blobs}};
}

Json ExportReport::int8_json() const {
  Json ranking = Json::array();
  for (const auto& [name, cost] : int8.ranking) ranking.push_back({{"layer", name}, {"cost_deg", json_number(cost)}});
  Json j = {{"mode", int8_mode}, {"layers", int8.layers}, {"macs", int8_macs}};
  if (int8_mode == "auto") {
    j["pass_frames"] = int8.frames;
    j["pass_int16_deg"] = json_number(int8.base_deg);
    j["pass_chosen_deg"] = json_number(int8.chosen_deg);
    j["budget_deg"] = int8.budget_deg;
    j["max_deg"] = int8.max_deg;
    j["bound_deg"] = json_number(int8.bound_deg);
    j["ranking"] = ranking;
  }
  return j;
}

std::string ExportReport::markdown() const {
  std::ostringstream s;
  char line[256];
  s << "| kernel | |\n|---|---|\n";
  std::snprintf(line, sizeof line, "| input | %d x %d |\n| MACs per frame | %.1f M |\n", input_h, input_w,
                double(kernel.macs) / 1e6);
  s << line;
  std::snprintf(line, sizeof line,
                "| weights (int8 planes + int32 biases) | %.1f KB |\n| all constant data | %.1f KB |\n"
                "| arena | %.1f KB |\n| user blob | %zu bytes |\n",
                double(kernel.weight_bytes) / 1024, double(kernel.constant_bytes) / 1024,
                double(kernel.arena_bytes) / 1024, kernel.user_blob_bytes);
  s << line;
  if (kernel.personalize_bytes) {
    std::snprintf(line, sizeof line,
                  "| on-device personalisation | replay pack %zu frames, %.1f KB of constants, %.1f KB work buffer "
                  "for k = 5 |\n",
                  kernel.replay_frames, double(kernel.personalize_bytes) / 1024,
                  double(kernel.personalize_work_bytes) / 1024);
    s << line;
  }
  std::string kept;
  for (int s = 0; s < 4; ++s) {
    const int32_t k = kernel.keep_rows[s], h = kernel.hidden_rows[s];
    kept += k == h ? "kept" : k == 0 ? "recomputed" : std::to_string(k) + " of " + std::to_string(h) + " rows kept";
    if (kernel.int8_hidden[s] && k > 0) kept += " (int8)";
    kept += s < 3 ? ", " : " ";
  }
  std::snprintf(line, sizeof line, "| block hidden tensors, stages 1-4 | %s|\n| calibration frames | %lld |\n",
                kept.c_str(), (long long)calibration_frames);
  s << line;
  if (error.frames) {
    std::snprintf(line, sizeof line,
                  "| float vs fixed point, %zu held-out frames | mean %.4f deg, max %.4f deg, log-scale %.4f |\n",
                  error.frames, error.mean_deg, error.max_deg, error.mean_log_scale);
    s << line;
  }
  std::snprintf(line, sizeof line,
                "| int8 x int8 products (export.int8=%s) | %zu of %zu layers, %.0f%% of the MACs |\n",
                int8_mode.c_str(), int8.layers.size(), int8.ranking.empty() ? int8.layers.size() : int8.ranking.size(),
                kernel.macs ? 100.0 * double(int8_macs) / double(kernel.macs) : 0.0);
  s << line;
  if (int8_mode == "auto") {
    std::snprintf(
        line, sizeof line,
        "| sensitivity pass, %zu frames | all 16-bit %.4f deg, chosen %.4f deg (bound %.4f: +%.3f, at most %.3f) |\n",
        int8.frames, int8.base_deg, int8.chosen_deg, int8.bound_deg, int8.budget_deg, int8.max_deg);
    s << line;
  }
  for (const auto& b : blobs) s << "| user blob | " << b << " |\n";
  return s.str();
}

namespace {

// A Raspberry Pi 4 (Cortex-A72 at 1.5 GHz) doing `macs` multiply-adds at `per_cycle` a cycle, ms.
// The A72 multiplies integers on one NEON pipe: SMLAL on 4 int16 lanes is 4 MACs per cycle (the
// kernel's 16x8 scheme); int8 x int8 products with pairwise widening reach 8.
double pi4_bound_ms(double macs, double per_cycle) { return macs / (1.5e9 * per_cycle) * 1e3; }

// One call's regions as Markdown rows (passes, instructions and cycles per pass, share) and JSON.
std::string describe_cycle_regions(const CycleCount& call, Json& regions) {
  regions = Json::array();
  std::string rows;
  for (const CycleRegion& r : call.regions) {
    regions.push_back({{"region", r.name},
                       {"passes", r.passes},
                       {"cycles_per_pass", r.cycles_per_pass},
                       {"instructions_per_pass", r.instructions_per_pass},
                       {"copies_in_assembly", r.copies},
                       {"untimed", r.untimed}});
    if (r.passes == 0) continue;
    char line[192];
    if (r.untimed) {
      std::snprintf(line, sizeof line, "| %s | %llu | untimed (laid out around its loop's back edge) | | | |\n",
                    r.name.c_str(), (unsigned long long)r.passes);
    } else {
      std::snprintf(line, sizeof line, "| %s | %llu | %.2f | %.2f | %.3f | %.1f%% |\n", r.name.c_str(),
                    (unsigned long long)r.passes, r.instructions_per_pass, r.cycles_per_pass, r.cycles() / 1e6,
                    100 * r.cycles() / call.cycles);
    }
    rows += line;
  }
  return "| region | passes | instructions / pass | cycles / pass | Mcycles | share |\n|---|---|---|---|---|---|\n" +
         rows;
}

// `gaze bench --model pi4`: the cycle model's tables (Markdown) and its numbers into `json`.
std::string describe_pi4_model(const std::string& kernel_dir, double macs, double int8_macs, Json& json) {
  const TemporaryFolder work("gaze_pi4_model");
  const CycleModel m = model_pi4_cycles(kernel_dir, work.path());
  const double smlal16_ms = pi4_bound_ms(macs, 4), int8_ms = pi4_bound_ms(macs, 8);
  const double mix_ms = pi4_bound_ms(macs - int8_macs, 4) + pi4_bound_ms(int8_macs, 8);
  Json regions, tune_regions;
  const std::string rows = describe_cycle_regions(m.predict, regions);
  json["pi4_model"] = {{"ms_per_frame", m.ms_per_frame()}, {"cycles_per_frame", m.predict.cycles},
                       {"clock_ghz", m.clock_ghz},         {"smlal16_bound_ms", smlal16_ms},
                       {"int8_bound_ms", int8_ms},         {"kernel_mix_bound_ms", mix_ms},
                       {"int8_macs", int8_macs},           {"compiler", m.compiler},
                       {"llvm_mca", m.llvm_mca},           {"regions", regions}};
  char summary[512];
  std::snprintf(summary, sizeof summary,
                "\nmodelled: %.2f Mcycles = **%.2f ms per frame on a Pi 4** (1.5 GHz); multiply bounds at this MAC "
                "count: %.2f ms with every product int16 x int8 (SMLAL, 4 MACs/cycle, one integer NEON pipe), "
                "%.2f ms with every product int8 x int8 (8 MACs/cycle), %.2f ms for this kernel's mix (%.0f%% of "
                "the MACs int8 x int8)\n",
                m.predict.cycles / 1e6, m.ms_per_frame(), smlal16_ms, int8_ms, mix_ms,
                macs > 0 ? 100 * int8_macs / macs : 0.0);
  std::string text = "\n### Raspberry Pi 4 cycle model (`llvm-mca -mcpu=cortex-a72`, " + m.llvm_mca + "; " +
                     m.compiler +
                     ")\n\nEach hot NEON loop body of the kernel timed by llvm-mca, times its passes in one frame "
                     "(counted under qemu-aarch64). Not modelled: code outside those bodies (memcpy row copies and "
                     "gathers, per-position LayerNorm reciprocals, GRN factors, resampling, the head), cache misses, "
                     "branch mispredictions: a lower bound.\n\n" +
                     rows + summary;
  if (m.personalize.regions.empty()) return text + "\nNo on-device personalisation in this kernel: not modelled.\n";
  const std::string tune_rows = describe_cycle_regions(m.personalize, tune_regions);
  json["pi4_model"]["personalize"] = {
      {"ms", m.ms(m.personalize)}, {"cycles", m.personalize.cycles}, {"k", 5}, {"regions", tune_regions}};
  std::snprintf(summary, sizeof summary,
                "\nmodelled: %.1f Mcycles = **%.0f ms per calibration on a Pi 4** (1.5 GHz, one core)\n",
                m.personalize.cycles / 1e6, m.ms(m.personalize));
  return text +
         "\n#### dftgaze_personalize, one wearer (5 calibration frames, the export's personalize.* defaults)\n\n"
         "The integer network's regions (every view of every calibration frame) and the float training loops' "
         "NEON loops (`tune_*`: the pointwise layers' products and input gradients, the adapters' products and "
         "weight gradients, depthwise taps, GELU, LayerNorm, GRN, residual adds, AdamW). Not modelled besides the "
         "above: the adapters' BatchNorm and LeakyReLU, pooling, the head and the loss, the batch draw, "
         "augmentation, each frame's int16 features to float.\n\n" +
         tune_rows + summary;
}

}  // namespace

namespace {

void require_kernel_folder(const std::string& kernel_dir) {
  if (!fs::exists(fs::path(kernel_dir) / "dftgaze.cpp"))
    throw Error("'" + kernel_dir + "' is not a kernel folder (no dftgaze.cpp; gaze export writes one)");
}

// The input size a kernel folder was generated for (DFTGAZE_INPUT_H / _W in its dftgaze.h).
void kernel_folder_input_size(const std::string& kernel_dir, int32_t* h, int32_t* w) {
  const std::string path = (fs::path(kernel_dir) / "dftgaze.h").string();
  const std::string header = read_text_file(path);
  const auto define = [&](const std::string& name) {
    const std::string key = "#define " + name + " ";
    const size_t at = header.find(key);
    const int value = at == std::string::npos ? 0 : std::atoi(header.c_str() + at + key.size());
    if (value < 1) throw Error(path + ": no positive " + name + " (not a header gaze export wrote)");
    return int32_t(value);
  };
  *h = define("DFTGAZE_INPUT_H");
  *w = define("DFTGAZE_INPUT_W");
}

}  // namespace

std::string build_kernel_tool(const std::string& kernel_dir) {
  require_kernel_folder(kernel_dir);
  const std::string build = (fs::path(kernel_dir) / "build").string();
  spdlog::info("building the kernel in {}", build);
  run_command("cmake -S '" + kernel_dir + "' -B '" + build + "' -DCMAKE_BUILD_TYPE=Release");
  run_command("cmake --build '" + build + "' -j 2");
  return build;
}

namespace {

// personalize_in_kernel() with the kernel's tool already built in `build`.
Json run_tool_personalize(const std::string& build, const std::vector<Frame>& eyes, int32_t h, int32_t w,
                          const std::vector<std::array<float, 3>>& gazes, const std::string& blob_path,
                          const KernelTuneOptions& options) {
  if (eyes.empty() || eyes.size() != gazes.size())
    throw Error("personalize in the kernel: " + std::to_string(eyes.size()) + " eye images but " +
                std::to_string(gazes.size()) + " gaze vectors (need the same number, at least one)");
  for (const Frame& e : eyes)
    if (e.size() != size_t(h) * size_t(w)) throw Error("personalize in the kernel: eye images must all be h x w");
  for (const auto& g : gazes) {
    const double n = std::sqrt(double(g[0]) * g[0] + double(g[1]) * g[1] + double(g[2]) * g[2]);
    if (!(std::fabs(n - 1.0) < 1e-3)) throw Error("personalize in the kernel: gaze vectors must be unit length");
  }
  TemporaryFolder tmp("gaze_personalize");
  const std::string frames_path = tmp.path() + "/eyes.gzfr", gazes_path = tmp.path() + "/eyes.gaze";
  write_frames_file(frames_path, eyes, h, w);
  std::string bytes;
  for (const auto& g : gazes) bytes.append(reinterpret_cast<const char*>(g.data()), 12);
  write_text_atomically(gazes_path, bytes);
  std::string command =
      "'" + build + "/dftgaze_tool' personalize '" + frames_path + "' '" + gazes_path + "' '" + blob_path + "' --json";
  if (options.steps) command += " --steps " + std::to_string(*options.steps);
  if (options.batch_size) command += " --batch-size " + std::to_string(*options.batch_size);
  char number[32];
  if (options.lr) std::snprintf(number, sizeof number, "%.9g", *options.lr), command += std::string(" --lr ") + number;
  if (options.replay_fraction) {
    std::snprintf(number, sizeof number, "%.9g", *options.replay_fraction);
    command += std::string(" --replay-fraction ") + number;
  }
  if (options.seed) command += " --seed " + std::to_string(*options.seed);
  if (options.train_head) command += std::string(" --train-head ") + (*options.train_head ? "1" : "0");
  return json_printed_by(run_command(command), "dftgaze_tool personalize");
}

}  // namespace

Json personalize_in_kernel(const std::string& kernel_dir, const std::vector<Frame>& eyes, int32_t h, int32_t w,
                           const std::vector<std::array<float, 3>>& gazes, const std::string& blob_path,
                           const KernelTuneOptions& options) {
  return run_tool_personalize(build_kernel_tool(kernel_dir), eyes, h, w, gazes, blob_path, options);
}

namespace {

// An image's pixels at its own size, and whether a list of items shares one size.
std::vector<Frame> item_images(const Dataset& data, const std::vector<int64_t>& items, int32_t* h, int32_t* w) {
  std::vector<Frame> frames;
  for (int64_t i : items) {
    const Sample s = data.get(i);
    if (!frames.empty() && (s.image.height != *h || s.image.width != *w))
      throw Error(data.describe() + ": item " + std::to_string(i) + " is " + std::to_string(s.image.height) + "x" +
                  std::to_string(s.image.width) + ", the participant's others " + std::to_string(*h) + "x" +
                  std::to_string(*w) + " (the kernel tool takes one size per call)");
    *h = s.image.height, *w = s.image.width;
    frames.push_back(s.image.pixels);
  }
  return frames;
}

// The kernel tool's mean angle on frames against their labels, with a user blob or the base.
double kernel_error_deg(const std::string& build, const std::string& frames_path, const std::string& blob,
                        const Dataset& data, const std::vector<int64_t>& items, const std::string& out_path) {
  run_command("'" + build + "/dftgaze_tool' predict '" + frames_path + "' '" + out_path + "'" +
              (blob.empty() ? "" : " --user '" + blob + "'"));
  std::ifstream in(out_path, std::ios::binary);
  std::vector<float> p(items.size() * 4);
  in.read(reinterpret_cast<char*>(p.data()), std::streamsize(p.size() * 4));
  if (!in) throw Error("dftgaze_tool predict: short output '" + out_path + "'");
  double sum = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& g = data.label(items[i]).gaze;
    sum += angular_error_deg({p[4 * i], p[4 * i + 1], p[4 * i + 2]}, {g[0], g[1], g[2]});
  }
  return items.empty() ? 0.0 : sum / double(items.size());
}

}  // namespace

KernelUsersReport personalize_users_in_kernel(const Config& config, const std::string& kernel_dir,
                                              const std::string& out_dir) {
  require_kernel_folder(kernel_dir);
  const PersonalizeConfig& pc = config.personalize;
  const auto users = open_dataset(config.data);
  // The pool personalize() draws (k_curve included), so the k shots are the same ones.
  const auto splits = personalisation_users(*users, pc, uint64_t(config.run.seed));
  const std::string build = build_kernel_tool(kernel_dir);
  fs::create_directories(out_dir);
  TemporaryFolder tmp("gaze_kernel_users");
  KernelUsersReport report;
  for (const auto& [participant, split] : splits) {
    KernelUser u;
    u.participant = participant;
    const std::vector<int64_t> shots = calibration_shots(split, pc.k);
    int32_t h = 0, w = 0;
    const std::vector<Frame> eyes = item_images(*users, shots, &h, &w);
    std::vector<std::array<float, 3>> gazes;
    for (int64_t i : shots) gazes.push_back(users->label(i).gaze);
    u.blob = (fs::path(out_dir) / ("user_" + std::to_string(participant) + ".gzu")).string();
    // The batch draws of personalize() for this person and k: the same stream, drawn the same way.
    const uint64_t seed =
        seed_mix(uint64_t(config.run.seed), stream::kPersonalize, uint64_t(participant), uint64_t(pc.k));
    report.tool = run_tool_personalize(
        build, eyes, h, w, gazes, u.blob,
        {pc.steps, pc.batch_size, pc.lr, pc.replay > 0 ? pc.replay_fraction : 0.0, seed, pc.train_head});
    u.personalize_ms = report.tool.at("personalize_ms").get<double>();
    int32_t eh = 0, ew = 0;
    const std::string frames_path = tmp.path() + "/evaluation.gzfr";
    const std::vector<Frame> evaluation = item_images(*users, split.evaluation, &eh, &ew);
    write_frames_file(frames_path, evaluation, eh, ew);
    u.eval_frames = int64_t(split.evaluation.size());
    const std::string out = tmp.path() + "/predictions.bin";
    u.before_deg = kernel_error_deg(build, frames_path, "", *users, split.evaluation, out);
    u.after_deg = kernel_error_deg(build, frames_path, u.blob, *users, split.evaluation, out);
    report.users.push_back(u);
  }
  for (const KernelUser& u : report.users) {
    const double n = double(report.users.size());
    report.before_deg += u.before_deg / n;
    report.after_deg += u.after_deg / n;
    report.personalize_ms += u.personalize_ms / n;
  }
  return report;
}

Json KernelUsersReport::json() const {
  Json list = Json::array();
  for (const KernelUser& u : users)
    list.push_back({{"participant", u.participant},
                    {"eval_frames", u.eval_frames},
                    {"before_deg", json_number(u.before_deg)},
                    {"after_deg", json_number(u.after_deg)},
                    {"personalize_ms", u.personalize_ms},
                    {"blob", u.blob}});
  return {{"users", list},
          {"before_deg", json_number(before_deg)},
          {"after_deg", json_number(after_deg)},
          {"personalize_ms", personalize_ms},
          {"tool", tool}};
}

std::string KernelUsersReport::markdown() const {
  std::ostringstream s;
  char line[512];
  s << "| participant | eval frames | kernel before (deg) | kernel after (deg) | dftgaze_personalize (ms) | blob |\n"
       "|---|---|---|---|---|---|\n";
  for (const KernelUser& u : users) {
    std::snprintf(line, sizeof line, "| %lld | %lld | %.3f | %.3f | %.1f | %s |\n", (long long)u.participant,
                  (long long)u.eval_frames, u.before_deg, u.after_deg, u.personalize_ms, u.blob.c_str());
    s << line;
  }
  std::snprintf(line, sizeof line, "| **mean** | | %.3f | %.3f | %.1f | |\n", before_deg, after_deg, personalize_ms);
  s << line;
  if (!tool.is_null()) {
    std::snprintf(line, sizeof line,
                  "\nOn the device's code path (%s here, one thread): k = %d frames x %d views, %d AdamW steps of "
                  "%d, replay pack %d frames, work buffer %.1f KB, blob %d bytes.\n",
                  tool.at("simd").get<std::string>().c_str(), tool.at("k").get<int>(), tool.at("views").get<int>(),
                  tool.at("steps").get<int>(), tool.at("batch_size").get<int>(), tool.at("replay_frames").get<int>(),
                  tool.at("work_bytes").get<double>() / 1024, tool.at("blob_bytes").get<int>());
    s << line;
  }
  return s.str();
}

namespace {

// `gaze bench --personalize N`: one wearer's calibration both ways, on the same people (the data's
// test split) and the same shots and batches: gaze personalize in LibTorch (`threads` threads;
// per person its calibrate time: the k images' stage-3 features in every view, then the AdamW
// steps) and dftgaze_personalize in the kernel (one thread; the tool's timer around the call),
// N rounds alternated A B A B. Medians over every person and round.
std::string bench_personalize(const Config& config, const std::string& checkpoint, const std::string& kernel_dir,
                              int64_t threads, int64_t rounds, Json& json) {
  Config c = config;
  c.data.split = "test";
  c.personalize.k_curve = {c.personalize.k};  // one calibration per person: the timed one
  const TorchThreads torch_threads(threads);
  GazeNet model = load_model(checkpoint);
  const auto users = open_dataset(c.data);
  const auto replay = open_replay_dataset(c);
  const TemporaryFolder work("gaze_bench_personalize");
  std::vector<double> torch_ms, kernel_ms;
  PersonalizeResult ws;
  KernelUsersReport device;
  for (int64_t r = 0; r < rounds; ++r) {
    ws = personalize(model, *users, replay.get(), c, work.path() + "/torch_" + std::to_string(r));
    for (const UserResult& u : ws.users) torch_ms.push_back(1e3 * u.calibrate_seconds);
    device = personalize_users_in_kernel(c, kernel_dir, work.path() + "/kernel_" + std::to_string(r));
    for (const KernelUser& u : device.users) kernel_ms.push_back(u.personalize_ms);
  }
  const double torch_p50 = percentile_ms(torch_ms, 0.5), kernel_p50 = percentile_ms(kernel_ms, 0.5);
  const std::string simd = device.tool.at("simd").get<std::string>();
  json["personalize"] = {{"people", ws.users.size()},
                         {"rounds", rounds},
                         {"k", c.personalize.k},
                         {"steps", c.personalize.steps},
                         {"batch_size", c.personalize.batch_size},
                         {"torch_fp32_p50_ms", torch_p50},
                         {"kernel_p50_ms", kernel_p50},
                         {"speedup", kernel_p50 > 0 ? torch_p50 / kernel_p50 : 0.0},
                         {"torch_before_deg", ws.before_deg},
                         {"torch_after_deg", ws.after_deg},
                         {"kernel_before_deg", device.before_deg},
                         {"kernel_after_deg", device.after_deg},
                         {"simd", simd}};
  char text[1536];
  std::snprintf(text, sizeof text,
                "\n### One wearer's calibration (`--personalize`)\n\n"
                "k = %lld, %lld AdamW steps of %lld; %zu test people x %lld rounds, LibTorch and the kernel "
                "alternated; the same shots and batches on both sides\n\n"
                "| | p50 ms per person | error before -> after (deg) |\n|---|---|---|\n"
                "| gaze personalize, LibTorch fp32 (%lld thread(s); float model) | %.1f | %.2f -> %.2f |\n"
                "| dftgaze_personalize in the kernel (%s, one thread; kernel's predictions) | %.1f | %.2f -> %.2f |\n"
                "\ncalibration %.2fx faster in the kernel than in LibTorch\n",
                (long long)c.personalize.k, (long long)c.personalize.steps, (long long)c.personalize.batch_size,
                ws.users.size(), (long long)rounds, (long long)std::max<int64_t>(1, threads), torch_p50, ws.before_deg,
                ws.after_deg, simd.c_str(), kernel_p50, device.before_deg, device.after_deg,
                kernel_p50 > 0 ? torch_p50 / kernel_p50 : 0.0);
  return text;
}

}  // namespace

BenchReport bench_kernel(const Config& config, const std::string& checkpoint, const std::string& kernel_dir_in,
                         int64_t frame_count, int64_t threads, const std::string& cycle_model,
                         int64_t personalize_rounds) {
  if (frame_count < 1) throw Error("bench: --frames must be >= 1");
  if (personalize_rounds < 0) throw Error("bench: --personalize must be >= 1 round");
  if (!cycle_model.empty() && cycle_model != "pi4")
    throw Error("bench: --model '" + cycle_model + "': the one cycle model is pi4");
  int32_t h = 0, w = 0;
  kernel_input_size(config, &h, &w);
  std::string kernel_dir = kernel_dir_in;
  if (!kernel_dir.empty()) {  // every side runs at the size the kernel was exported for
    require_kernel_folder(kernel_dir);
    int32_t kh = 0, kw = 0;
    kernel_folder_input_size(kernel_dir, &kh, &kw);
    if (kh != h || kw != w) {
      spdlog::info("bench: {} takes {}x{} input (the config says {}x{}): LibTorch and ONNX Runtime run at {}x{} too",
                   kernel_dir, kh, kw, h, w, kh, kw);
      h = kh, w = kw;
    }
  }
  // Without --kernel: export to a temporary folder, removed when the bench ends (or fails).
  std::optional<TemporaryFolder> temporary;
  if (kernel_dir.empty()) {
    kernel_dir = temporary.emplace("gaze_bench").path() + "/kernel";
    Config quick = config;
    quick.export_.eval_frames = 0;
    export_kernel(quick, {checkpoint, kernel_dir, "", {}});
  }
  // The frames both sides see: distinct dataset frames, cycled up to frame_count.
  const std::vector<Frame> frames = load_frames(config, std::min<int64_t>(frame_count, 256), 0.0, h, w);
  const std::string frames_path = (fs::path(kernel_dir) / "bench_frames.gzfr").string();
  write_frames_file(frames_path, frames, h, w);
  const std::string build = build_kernel_tool(kernel_dir);
  const std::string tool_json = run_command("'" + build + "/dftgaze_tool' bench '" + frames_path + "' --frames " +
                                            std::to_string(frame_count) + " --json");
  Json out = json_printed_by(tool_json, "dftgaze_tool bench");
  const auto tool_number = [&](const char* key) {
    return json_at(out, key, "dftgaze_tool bench output").get<double>();
  };
  const std::string simd = json_at(out, "simd", "dftgaze_tool bench output").get<std::string>();

  // LibTorch fp32: the same model, the same frames, batch 1, `threads` threads.
  const std::vector<double> torch_ms = time_torch_fp32_ms(checkpoint, frames, h, w, frame_count, threads);
  const double torch_p50 = percentile_ms(torch_ms, 0.5), torch_p99 = percentile_ms(torch_ms, 0.99);
  const double kernel_p50 = tool_number("kernel_p50_ms"), kernel_p99 = tool_number("kernel_p99_ms");
  const double macs = tool_number("macs");
  // ONNX Runtime fp32 and int8 on the same model and frames, when this machine has it.
  const TemporaryFolder ort_work("gaze_bench_ort");
  GazeNet model = load_student(checkpoint, "");
  const PeerTiming ort = time_onnxruntime(model, frames, h, w, frame_count, threads, ort_work.path());
  // The core's int8 peak as the kernel uses it: AVX2 VPMADDWD, 16 MACs each, two per cycle.
  double mhz = 0;
  const std::string machine = describe_machine(&mhz);
  const bool avx2 = simd == "avx2";
  const double peak_gmacs = avx2 && mhz > 0 ? mhz * 1e-3 * 32 : 0;
  const double kernel_gmacs = macs / (kernel_p50 * 1e6);
  // Raspberry Pi 4: the int8 x int8 bound, 8 MACs per cycle (pi4_bound_ms).
  const double pi4_floor_ms = pi4_bound_ms(macs, 8);

  BenchReport r;
  out["torch_fp32_p50_ms"] = torch_p50;
  out["torch_fp32_p99_ms"] = torch_p99;
  out["speedup"] = torch_p50 / kernel_p50;
  out["threads"] = std::max<int64_t>(1, threads);
  out["pi4_peak_bound_ms"] = pi4_floor_ms;
  out["core_peak_gmacs"] = peak_gmacs;
  out["percent_of_peak"] = peak_gmacs > 0 ? 100 * kernel_gmacs / peak_gmacs : 0.0;
  out["machine"] = machine;
  if (ort.ran) {
    out["onnxruntime_version"] = ort.version;
    out["onnxruntime_fp32_p50_ms"] = ort.p50_ms;
    out["onnxruntime_fp32_p99_ms"] = ort.p99_ms;
    out["onnxruntime_max_abs_error"] = ort.max_abs_error;
    out["onnxruntime_int8_p50_ms"] = ort.int8_p50_ms;
    out["onnxruntime_int8_p99_ms"] = ort.int8_p99_ms;
    out["onnxruntime_int8_mean_deg"] = ort.int8_mean_deg;
    out["onnxruntime_int8_max_deg"] = ort.int8_max_deg;
    out["speedup_vs_onnxruntime"] = ort.best_p50_ms() / kernel_p50;  // its faster configuration
    out["speedup_vs_onnxruntime_fp32"] = ort.p50_ms / kernel_p50;
    out["speedup_vs_onnxruntime_int8"] = ort.int8_p50_ms / kernel_p50;
  } else {
    out["onnxruntime"] = "not run: " + ort.reason;
  }
  // One table: a row per runtime on the same frames, then the kernel's summary.
  const auto row = [&](const std::string& name, double p50, double p99) {
    char line[256];
    std::snprintf(line, sizeof line, "| %s | %.3f | %.3f | %.1f | %.2f |\n", name.c_str(), p50, p99, 1000.0 / p50,
                  macs / (p50 * 1e6));
    return std::string(line);
  };
  char head[256], tail[1024], versus[64] = "";
  if (ort.ran) std::snprintf(versus, sizeof versus, ", %.2fx vs ONNX Runtime's faster", ort.best_p50_ms() / kernel_p50);
  std::snprintf(head, sizeof head,
                "| %dx%d, batch 1, %lld thread(s), %lld frames | p50 ms | p99 ms | frames/s | GMAC/s |\n"
                "|---|---|---|---|---|\n",
                h, w, (long long)std::max<int64_t>(1, threads), (long long)frame_count);
  std::snprintf(tail, sizeof tail,
                "\nspeedup %.1fx vs LibTorch fp32%s; %.1f MMAC per frame; weights %.0f bytes; arena %.0f bytes\n"
                "Pi 4 bound at 12 GMAC/s peak (1.5 GHz x 8 int8 MACs/cycle): %.2f ms per frame\n"
                "kernel at %.1f%% of this core's %.0f GMAC/s AVX2 peak (2 x 16 MACs per cycle)\n",
                torch_p50 / kernel_p50, versus, macs / 1e6, tool_number("weights_bytes"), tool_number("arena_bytes"),
                pi4_floor_ms, peak_gmacs > 0 ? 100 * kernel_gmacs / peak_gmacs : 0.0, peak_gmacs);
  std::string pi4_model, calibration;
  if (cycle_model == "pi4") pi4_model = describe_pi4_model(kernel_dir, macs, tool_number("int8_macs"), out);
  if (personalize_rounds > 0)
    calibration = bench_personalize(config, checkpoint, kernel_dir, threads, personalize_rounds, out);
  r.markdown =
      machine + "\n\n" + head + row("fixed-point kernel (" + simd + ")", kernel_p50, kernel_p99) +
      row("LibTorch fp32", torch_p50, torch_p99) +
      (ort.ran ? row("ONNX Runtime " + ort.version + " fp32 (npm onnxruntime-node, CPU)", ort.p50_ms, ort.p99_ms) +
                     row("ONNX Runtime " + ort.version + " int8 QDQ, calibrated on these frames", ort.int8_p50_ms,
                         ort.int8_p99_ms)
               : "| ONNX Runtime | not run: " + ort.reason + " | | | |\n") +
      tail + pi4_model + calibration;
  r.json = out;
  return r;
}

}  // namespace gaze
