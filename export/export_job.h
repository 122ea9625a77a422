// `gaze export` and `gaze bench` as library calls (the CLI and the Python bindings share them).
//
// export_kernel(): load a trained student (optionally with one user's adapters merged), take
// calibration frames from config.data (evenly spaced, resampled with the kernel's own integer
// resampler), choose the int8-input layers (export.int8; auto: the sensitivity pass on frames a
// quarter of the spacing past the calibration ones), quantise, measure float vs fixed point on
// held-out frames of the same data (the midpoints between calibration frames), write the kernel
// folder, and one set_user blob per file in `users` (users/<name>.gzu) quantised against the base.
//
// bench_kernel(): build a kernel folder with CMake (Release, this machine's best path), time
// it with its own tool over `frames` frames, and time LibTorch fp32 on the same frames, batch 1,
// the same thread count, in the same run.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "export/codegen.h"
#include "export/quantizer.h"
#include "libgaze/config/config.h"
#include "libgaze/core/json.h"

namespace gaze {

struct ExportRequest {
  std::string checkpoint;
  std::string out_dir;
  std::string merge_user;          // a user adapter file merged into the exported weights
  std::vector<std::string> users;  // user adapter files exported as blobs
};

struct ExportReport {
  KernelSummary kernel;
  QuantizationError error;  // float vs fixed point on held-out frames
  std::string int8_mode;    // export.int8
  Int8Choice int8;          // the layers fed int8 (auto: with the sensitivity pass's numbers)
  size_t int8_macs = 0;
  int64_t calibration_frames = 0;
  int32_t input_h = 0, input_w = 0;
  std::vector<std::string> blobs;
  Json json() const;
  Json int8_json() const;
  std::string markdown() const;
};

ExportReport export_kernel(const Config& config, const ExportRequest& request);

// On-device personalisation's replay pack (export/tune_run.h): every sample's eye image through
// the integer reference, captured where the device's training starts (QTrace::tune_c/f), with
// its gaze label; replaces net.tune's pack (nothing when the net has no tune data). The export
// fills it with export.replay_frames K-means-balanced samples of the training split.
void set_replay_pack(QuantizedNet& net, const std::vector<Sample>& samples);

// `gaze export --format onnx`: the float model of request.checkpoint, with request.merge_user's
// adapters merged in if set, as the ONNX file request.out_dir (export/onnx_export.h).
void export_onnx_model(const ExportRequest& request);

// Builds a kernel folder's library and tool with its own CMakeLists.txt (Release, this machine's
// best path) into <kernel_dir>/build; returns that directory.
std::string build_kernel_tool(const std::string& kernel_dir);

// On-device personalisation as a device runs it: dftgaze_personalize through the kernel folder's
// own tool (built by build_kernel_tool) on a wearer's eye images (each h x w) and unit gazes;
// the user blob goes to blob_path (atomically), the tool's JSON report (personalize_ms,
// work_bytes, blob_bytes, ...) comes back. Unset options: the kernel's defaults (the export's
// personalize.*).
struct KernelTuneOptions {
  std::optional<int64_t> steps, batch_size;
  std::optional<double> lr, replay_fraction;
  std::optional<uint64_t> seed;
  std::optional<bool> train_head;
};
Json personalize_in_kernel(const std::string& kernel_dir, const std::vector<Frame>& eyes, int32_t h, int32_t w,
                           const std::vector<std::array<float, 3>>& gazes, const std::string& blob_path,
                           const KernelTuneOptions& options = {});

// `gaze personalize --kernel`: every participant of config.data calibrated inside the kernel as
// `gaze personalize` calibrates them on a workstation (the same k shots, the same batch draws
// from the same seed stream, config.personalize's steps, batch, lr and replay share), by
// dftgaze_personalize; each blob written to out_dir/user_<id>.gzu, and the kernel's error on
// the participant's other images before and after.
struct KernelUser {
  int64_t participant = 0, eval_frames = 0;
  double before_deg = 0, after_deg = 0, personalize_ms = 0;
  std::string blob;
};
struct KernelUsersReport {
  std::vector<KernelUser> users;
  double before_deg = 0, after_deg = 0, personalize_ms = 0;  // means over users
  Json tool;                                                 // the last tool report (sizes, path)
  Json json() const;
  std::string markdown() const;
};
KernelUsersReport personalize_users_in_kernel(const Config& config, const std::string& kernel_dir,
                                              const std::string& out_dir);

// Frames from config.data at the kernel input size: `count` evenly spaced items starting at
// `offset` (a fraction of the spacing), resampled with gz_resample_u8.
std::vector<Frame> load_frames(const Config& config, int64_t count, double offset, int32_t h, int32_t w);
std::vector<Frame> load_frames(const Dataset& data, int64_t count, double offset, int32_t h, int32_t w);

// Writes frames in the kernel tool's GZFR format ("GZFR", uint32 count, h, w, pixels).
void write_frames_file(const std::string& path, const std::vector<Frame>& frames, int32_t h, int32_t w);

// The kernel input size: export.input_size, else data.input_size.
void kernel_input_size(const Config& config, int32_t* h, int32_t* w);

// "AMD EPYC, 2 cores, 2596 MHz" and the clock in MHz (0 when /proc/cpuinfo does not say).
std::string describe_machine(double* mhz);

// The p-th fraction of timings (0.5 = median).
double percentile_ms(std::vector<double> timings, double p);

// Runs a shell command and returns what it printed (stdout and stderr); throws gaze::Error with
// the command and its output when it exits non-zero.
std::string run_command(const std::string& command);

// The JSON object in a tool's printed output (from its first '{' to its last '}', so log lines
// around it are skipped); throws gaze::Error naming `program` when there is none.
Json json_printed_by(const std::string& output, const std::string& program);

// The student of a checkpoint in eval mode, with a user's adapters merged in if `user` is set.
GazeNet load_student(const std::string& checkpoint, const std::string& user);

// LibTorch fp32 latency of a checkpoint's model, batch 1: `count` timed forwards over `frames`
// (cycled) after 20 warm-up ones, with `threads` intra-op threads.
std::vector<double> time_torch_fp32_ms(const std::string& checkpoint, const std::vector<Frame>& frames, int32_t h,
                                       int32_t w, int64_t count, int64_t threads);

struct BenchReport {
  Json json;  // one object: the kernel tool's numbers + torch_fp32_* + speedup + threads + onnxruntime_*
  std::string markdown;
};

// `cycle_model` "pi4" adds the Raspberry Pi 4 cycle model of the kernel (export/cycle_model.h).
// `personalize_rounds` > 0 adds one wearer's calibration timed both ways on the data's test
// split (gaze personalize in LibTorch with `threads` threads, dftgaze_personalize in the kernel),
// that many rounds alternated: JSON "personalize".
BenchReport bench_kernel(const Config& config, const std::string& checkpoint, const std::string& kernel_dir,
                         int64_t frames, int64_t threads, const std::string& cycle_model = "",
                         int64_t personalize_rounds = 0);

}  // namespace gaze
