#include "export/onnx_graph.h"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <cctype>
#include <cstring>

#include "libgaze/core/error.h"

namespace gaze {

GraphBuilder::GraphBuilder(onnx::GraphProto* graph) : graph_(graph) {
  // Names already in the graph stay taken (the quantiser builds on an existing graph).
  for (const auto& t : graph->initializer()) used_[t.name()] = 1;
  for (const auto& n : graph->node()) {
    used_[n.name()] = 1;
    for (const auto& o : n.output()) used_[o] = 1;
  }
  for (const auto& i : graph->input()) used_[i.name()] = 1;
}

std::string GraphBuilder::constant(const std::string& name, int32_t type, const std::vector<int64_t>& dims,
                                   const void* bytes, size_t size) {
  onnx::TensorProto* tensor = graph_->add_initializer();
  tensor->set_name(unique(name));
  tensor->set_data_type(type);
  for (const int64_t d : dims) tensor->add_dims(d);
  tensor->set_raw_data(bytes, size);
  return tensor->name();
}

std::string GraphBuilder::floats(const std::string& name, const std::vector<int64_t>& dims,
                                 const std::vector<float>& values) {
  return constant(name, onnx::TensorProto::FLOAT, dims, values.data(), values.size() * sizeof(float));
}

std::string GraphBuilder::scalar(const std::string& name, double value) { return floats(name, {}, {float(value)}); }

std::string GraphBuilder::node(const std::string& op, const std::vector<std::string>& inputs, const std::string& name,
                               const std::vector<onnx::AttributeProto>& attributes) {
  onnx::NodeProto* n = graph_->add_node();
  n->set_op_type(op);
  n->set_name(unique(name));
  for (const auto& input : inputs) n->add_input(input);
  n->add_output(n->name());
  for (const auto& a : attributes) *n->add_attribute() = a;
  return n->name();
}

std::string GraphBuilder::unique(const std::string& name) {
  const int count = used_[name]++;
  return count == 0 ? name : unique(name + "_" + std::to_string(count));
}

onnx::AttributeProto onnx_ints(const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INTS);
  for (const int64_t v : values) a.add_ints(v);
  return a;
}

onnx::AttributeProto onnx_int(const std::string& name, int64_t value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(value);
  return a;
}

onnx::AttributeProto onnx_float(const std::string& name, double value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::FLOAT);
  a.set_f(float(value));
  return a;
}

void set_float_tensor_type(onnx::ValueInfoProto* value, const std::vector<std::string>& dims) {
  auto* type = value->mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx::TensorProto::FLOAT);
  for (const auto& d : dims) {
    auto* dim = type->mutable_shape()->add_dim();
    if (!d.empty() && std::isdigit(static_cast<unsigned char>(d[0]))) {
      dim->set_dim_value(std::stoll(d));
    } else {
      dim->set_dim_param(d);
    }
  }
}

void check_onnx_model(onnx::ModelProto& model, const std::string& what) {
  try {
    onnx::checker::check_model(model);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*error_mode=*/1));
  } catch (const std::exception& e) {
    throw Error(what + ": the model fails ONNX's checks: " + e.what());
  }
}

std::vector<float> onnx_float_values(const onnx::TensorProto& tensor) {
  if (tensor.data_type() != onnx::TensorProto::FLOAT)
    throw Error("ONNX initialiser '" + tensor.name() + "': expected float32 values");
  int64_t count = 1;
  for (const int64_t d : tensor.dims()) count *= d;
  std::vector<float> values(static_cast<size_t>(count));
  if (tensor.has_raw_data()) {
    if (tensor.raw_data().size() != values.size() * sizeof(float))
      throw Error("ONNX initialiser '" + tensor.name() + "': " + std::to_string(tensor.raw_data().size()) +
                  " bytes of raw data for " + std::to_string(count) + " floats");
    std::memcpy(values.data(), tensor.raw_data().data(), tensor.raw_data().size());
  } else {
    if (tensor.float_data_size() != count)
      throw Error("ONNX initialiser '" + tensor.name() + "': " + std::to_string(tensor.float_data_size()) +
                  " floats for " + std::to_string(count) + " elements");
    values.assign(tensor.float_data().begin(), tensor.float_data().end());
  }
  return values;
}

}  // namespace gaze
