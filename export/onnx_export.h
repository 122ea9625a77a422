// ONNX export of a float GazeNet (student or teacher), for other runtimes and devices.
//
// The graph is the model's eval-mode forward, op for op (opset 17):
//   input  "image"  [batch, in_chans, height, width] float, normalised as the loaders do;
//          batch, height and width are symbolic (any size the network accepts: multiples of 32)
//   output "output" [batch, 4]: the head's raw 3-D gaze direction and Laplace log-scale, as
//          GazeNet::forward returns them (gaze_directions() normalises the first three).
// Stem and downsamples are Conv + LayerNormalization (over channels, via NHWC transposes);
// each block is a depthwise Conv, then in NHWC LayerNormalization, MatMul+Add, GELU as
// x * 0.5 * (1 + Erf(x / sqrt 2)) (opset 17 has no Gelu), GRN from ReduceL2/ReduceMean, MatMul+Add,
// the adapter with its eval-mode BatchNorm folded into the down projection, and the residual.
// The head is GlobalAveragePool, LayerNormalization and Gemm.
//
// onnx_model_bytes() checks the model with ONNX's checker and its shape inference (the output
// must come out as [batch, 4]) and throws gaze::Error naming what failed. export_onnx() writes
// the file atomically, so a failed export leaves an existing file untouched.
#pragma once

#include <string>

#include "libgaze/models/gaze_net.h"

namespace gaze {

// The serialised ModelProto; `source` (e.g. the checkpoint path) is kept in its metadata.
std::string onnx_model_bytes(GazeNet& model, const std::string& source = "");

void export_onnx(GazeNet& model, const std::string& path, const std::string& source = "");

}  // namespace gaze
