// ONNX Runtime as `gaze bench`'s peer: the runtime a user would pick instead of our kernel,
// timed on the same model and frames.
//
// time_onnxruntime() exports `model` to ONNX (export/onnx_export.h) in `work_dir`, writes the
// frames as the normalised float batch LibTorch sees, and runs the embedded ort_run.js in Node
// with npm's onnxruntime-node (CPU; $LIBGAZE_ORT_DIR, default ~/.cache/libgaze/onnxruntime-node,
// where scripts/setup installs it), on two models:
//   - fp32: the exported model; its batch output must equal LibTorch's (1e-4, else gaze::Error:
//     a bench must not time a model that computes something else);
//   - int8: the same model statically quantised in ONNX Runtime's QDQ format
//     (export/onnx_quantize.h), calibrated on these frames; how far its gaze is from LibTorch's
//     is reported (mean and max degrees), not bounded: a barely trained model can have
//     near-zero outputs whose direction int8 flips (onnx_export_test bounds it on a real one).
// Then `count` timed single-frame runs of each after 20 warm-up ones, the two alternated frame
// by frame, `threads` intra-op threads.
//
// Without Node or the package the result says why (ran = false) and the bench reports it as
// not run; any other failure throws gaze::Error with ONNX Runtime's message.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "export/quantizer.h"  // Frame
#include "libgaze/models/gaze_net.h"

namespace gaze {

struct PeerTiming {
  bool ran = false;
  std::string reason;                          // why not, when !ran
  std::string version;                         // e.g. "1.30.0"
  double p50_ms = 0, p99_ms = 0;               // fp32
  double max_abs_error = 0;                    // fp32 vs LibTorch on the batch
  double int8_p50_ms = 0, int8_p99_ms = 0;     // int8 QDQ
  double int8_mean_deg = 0, int8_max_deg = 0;  // int8 gaze vs LibTorch's on the batch
  double best_p50_ms() const { return std::min(p50_ms, int8_p50_ms); }
};

PeerTiming time_onnxruntime(GazeNet& model, const std::vector<Frame>& frames, int32_t h, int32_t w, int64_t count,
                            int64_t threads, const std::string& work_dir);

}  // namespace gaze
