// Building and checking ONNX graphs (no torch): what the float exporter (onnx_export.cpp) and
// the int8 quantiser (onnx_quantize.cpp) share.
//
// GraphBuilder appends nodes and initialisers under unique names: a node has one output, named
// like the node. check_onnx_model() runs ONNX's checker and strict shape inference and throws
// gaze::Error naming what failed, so nothing we write is a model ONNX itself would refuse.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gaze {

constexpr int64_t kOnnxOpset = 17;  // the first with LayerNormalization

class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto* graph);

  // An initialiser of `type` (onnx::TensorProto::FLOAT, INT8, ...) and `dims` holding `bytes`
  // (little-endian, row-major); returns its name.
  std::string constant(const std::string& name, int32_t type, const std::vector<int64_t>& dims, const void* bytes,
                       size_t size);
  std::string floats(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& values);
  std::string scalar(const std::string& name, double value);

  // One node with one output; returns the output's name.
  std::string node(const std::string& op, const std::vector<std::string>& inputs, const std::string& name,
                   const std::vector<onnx::AttributeProto>& attributes = {});

 private:
  std::string unique(const std::string& name);
  onnx::GraphProto* graph_;
  std::map<std::string, int> used_;
};

onnx::AttributeProto onnx_ints(const std::string& name, const std::vector<int64_t>& values);
onnx::AttributeProto onnx_int(const std::string& name, int64_t value);
onnx::AttributeProto onnx_float(const std::string& name, double value);

// A float tensor type on `value` with these dims: digits are fixed sizes, names symbolic.
void set_float_tensor_type(onnx::ValueInfoProto* value, const std::vector<std::string>& dims);

// ONNX's checker and shape inference (types checked, errors thrown); `what` names the model.
void check_onnx_model(onnx::ModelProto& model, const std::string& what);

// The initialiser's values as floats (raw_data or float_data); throws unless it is FLOAT.
std::vector<float> onnx_float_values(const onnx::TensorProto& tensor);

}  // namespace gaze
