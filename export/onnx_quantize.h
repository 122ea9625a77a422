// Static int8 quantisation of a float ONNX model in ONNX Runtime's QDQ format (no torch).
//
// The model `onnxruntime.quantization.quantize_static` writes with QuantFormat.QDQ and MinMax
// calibration, restated in C++ because the runtime comes from npm, without its Python tools:
//   - every Conv and MatMul whose weights are an initialiser is quantised: its activation input
//     and its output pass through QuantizeLinear -> DequantizeLinear (uint8, asymmetric, the
//     range a calibration run observed, widened to include 0), its weights become int8
//     (symmetric; per output channel for Conv, per tensor for MatMul) behind a DequantizeLinear,
//     and a Conv's bias becomes int32 at scale input_scale x weight_scale;
//   - ONNX Runtime's optimiser then fuses DQ -> Conv -> Q into QLinearConv and DQ -> MatMul -> Q
//     into QLinearMatMul; LayerNormalization, GELU, GRN and the head stay float.
// Calibration: onnx_calibration_model() returns the model with every tensor the quantiser needs
// as an extra graph output; run it on calibration frames (scripts/ort/ort_run.js --ranges) and
// pass the observed ranges to onnx_quantize_qdq(). A needed tensor without a finite range is a
// gaze::Error naming it; the result passes ONNX's checker and shape inference.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace gaze {

struct TensorRange {
  float min = 0, max = 0;
};
using TensorRanges = std::map<std::string, TensorRange>;

// The activations a QDQ model of `model_bytes` quantises (inputs and outputs of its Conv and
// MatMul nodes), in graph order.
std::vector<std::string> onnx_quantized_activations(const std::string& model_bytes);

// `model_bytes` with onnx_quantized_activations() appended to the graph's outputs.
std::string onnx_calibration_model(const std::string& model_bytes);

// Ranges from the JSON ort_run.js --ranges writes ({"name": [min, max], ...}); `where` names
// the file in errors.
TensorRanges parse_tensor_ranges(const std::string& json_text, const std::string& where);

// The QDQ model (serialised ModelProto).
std::string onnx_quantize_qdq(const std::string& model_bytes, const TensorRanges& ranges);

}  // namespace gaze
