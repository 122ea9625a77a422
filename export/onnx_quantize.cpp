#include "export/onnx_quantize.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "export/onnx_graph.h"
#include "libgaze/core/error.h"
#include "libgaze/core/json.h"

namespace gaze {
namespace {

onnx::ModelProto parse_model(const std::string& bytes) {
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) throw Error("ONNX int8: not a serialised ONNX model");
  return model;
}

const onnx::TensorProto* find_initializer(const onnx::GraphProto& graph, const std::string& name) {
  for (const auto& t : graph.initializer())
    if (t.name() == name) return &t;
  return nullptr;
}

// Conv and MatMul with constant weights: the products ONNX Runtime runs in int8.
bool quantized_node(const onnx::NodeProto& node, const onnx::GraphProto& graph) {
  return (node.op_type() == "Conv" || node.op_type() == "MatMul") && node.input_size() >= 2 &&
         find_initializer(graph, node.input(1)) != nullptr;
}

bool is_graph_output(const onnx::GraphProto& graph, const std::string& name) {
  for (const auto& o : graph.output())
    if (o.name() == name) return true;
  return false;
}

// uint8, asymmetric over [min(lo, 0), max(hi, 0)], as ONNX Runtime's MinMax calibration.
struct Uint8Params {
  float scale;
  uint8_t zero_point;
};
Uint8Params uint8_params(const std::string& tensor, const TensorRanges& ranges) {
  const auto it = ranges.find(tensor);
  if (it == ranges.end()) throw Error("ONNX int8: no calibration range for tensor '" + tensor + "'");
  const double lo = std::min<double>(it->second.min, 0), hi = std::max<double>(it->second.max, 0);
  if (!std::isfinite(lo) || !std::isfinite(hi))
    throw Error("ONNX int8: tensor '" + tensor + "' has a non-finite calibration range");
  const double scale = hi > lo ? (hi - lo) / 255.0 : 1.0;
  return {float(scale), uint8_t(std::clamp(std::nearbyint(-lo / scale), 0.0, 255.0))};
}

// Symmetric int8 weights in [-127, 127], one scale per slice along axis 0 (`slices` of them:
// a Conv's output channels) or one for the whole tensor (slices = 1).
struct Int8Weights {
  std::vector<int8_t> values;
  std::vector<float> scales;
};
Int8Weights int8_weights(const std::vector<float>& w, int64_t slices) {
  Int8Weights q{std::vector<int8_t>(w.size()), std::vector<float>(size_t(slices))};
  const size_t per = w.size() / size_t(slices);
  for (size_t s = 0; s < size_t(slices); ++s) {
    float amax = 0;
    for (size_t i = s * per; i < (s + 1) * per; ++i) amax = std::max(amax, std::fabs(w[i]));
    q.scales[s] = amax > 0 ? amax / 127.0f : 1.0f;
    for (size_t i = s * per; i < (s + 1) * per; ++i)
      q.values[i] = int8_t(std::clamp(std::nearbyint(w[i] / q.scales[s]), -127.0f, 127.0f));
  }
  return q;
}

class QdqWriter {
 public:
  QdqWriter(onnx::GraphProto* graph, const TensorRanges& ranges) : g_(graph), ranges_(ranges) {}

  // The DequantizeLinear output standing for activation `tensor` (one Q -> DQ pair per tensor).
  std::string dequantized(const std::string& tensor) {
    if (const auto it = dequantized_.find(tensor); it != dequantized_.end()) return it->second;
    const Uint8Params p = uint8_params(tensor, ranges_);
    const std::string scale = g_.scalar(tensor + "_scale", p.scale);
    const std::string zero = g_.constant(tensor + "_zero_point", onnx::TensorProto::UINT8, {}, &p.zero_point, 1);
    const std::string q = g_.node("QuantizeLinear", {tensor, scale, zero}, tensor + "_quantized");
    const std::string dq = g_.node("DequantizeLinear", {q, scale, zero}, tensor + "_dequantized");
    scales_[tensor] = p.scale;
    return dequantized_[tensor] = dq;
  }

  // DequantizeLinear of `w` as int8 (per output channel when `per_channel`); its scales go to
  // `scales`.
  std::string weights(const onnx::TensorProto& w, bool per_channel, std::vector<float>* scales) {
    const std::vector<float> values = onnx_float_values(w);
    const std::vector<int64_t> dims(w.dims().begin(), w.dims().end());
    const Int8Weights q = int8_weights(values, per_channel ? dims.at(0) : 1);
    *scales = q.scales;
    const std::vector<int64_t> scale_dims = per_channel ? std::vector<int64_t>{dims[0]} : std::vector<int64_t>{};
    const std::vector<int8_t> zeros(q.scales.size(), 0);
    const std::string qw =
        g_.constant(w.name() + "_quantized", onnx::TensorProto::INT8, dims, q.values.data(), q.values.size());
    const std::string scale = g_.floats(w.name() + "_scale", scale_dims, q.scales);
    const std::string zero =
        g_.constant(w.name() + "_zero_point", onnx::TensorProto::INT8, scale_dims, zeros.data(), zeros.size());
    return g_.node(
        "DequantizeLinear", {qw, scale, zero}, w.name() + "_dequantized",
        per_channel ? std::vector<onnx::AttributeProto>{onnx_int("axis", 0)} : std::vector<onnx::AttributeProto>{});
  }

  // DequantizeLinear of a Conv's bias as int32 at input scale x each channel's weight scale.
  std::string bias(const onnx::TensorProto& b, float input_scale, const std::vector<float>& weight_scales) {
    const std::vector<float> values = onnx_float_values(b);
    if (values.size() != weight_scales.size())
      throw Error("ONNX int8: bias '" + b.name() + "' has " + std::to_string(values.size()) + " values for " +
                  std::to_string(weight_scales.size()) + " output channels");
    std::vector<int32_t> q(values.size());
    std::vector<float> scales(values.size());
    for (size_t c = 0; c < values.size(); ++c) {
      scales[c] = input_scale * weight_scales[c];
      q[c] = int32_t(std::clamp(std::nearbyint(double(values[c]) / scales[c]), -2147483647.0, 2147483647.0));
    }
    const std::vector<int32_t> zeros(q.size(), 0);
    const std::vector<int64_t> dims = {int64_t(q.size())};
    const std::string qb =
        g_.constant(b.name() + "_quantized", onnx::TensorProto::INT32, dims, q.data(), q.size() * sizeof(int32_t));
    const std::string scale = g_.floats(b.name() + "_scale", dims, scales);
    const std::string zero =
        g_.constant(b.name() + "_zero_point", onnx::TensorProto::INT32, dims, zeros.data(), zeros.size() * 4);
    return g_.node("DequantizeLinear", {qb, scale, zero}, b.name() + "_dequantized", {onnx_int("axis", 0)});
  }

  float scale_of(const std::string& tensor) const { return scales_.at(tensor); }

 private:
  GraphBuilder g_;
  const TensorRanges& ranges_;
  std::map<std::string, std::string> dequantized_;
  std::map<std::string, float> scales_;
};

}  // namespace

namespace {

// Inputs and outputs of the graph's quantised products, in graph order, each once.
std::vector<std::string> quantized_activations(const onnx::GraphProto& graph) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const auto& node : graph.node()) {
    if (!quantized_node(node, graph)) continue;
    for (const std::string& t : {node.input(0), node.output(0)}) {
      if (!is_graph_output(graph, t) && seen.insert(t).second) names.push_back(t);
    }
  }
  return names;
}

}  // namespace

std::vector<std::string> onnx_quantized_activations(const std::string& model_bytes) {
  return quantized_activations(parse_model(model_bytes).graph());
}

std::string onnx_calibration_model(const std::string& model_bytes) {
  onnx::ModelProto model = parse_model(model_bytes);
  for (const std::string& name : quantized_activations(model.graph())) {
    onnx::ValueInfoProto* output = model.mutable_graph()->add_output();
    output->set_name(name);
    output->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  }
  return model.SerializeAsString();
}

TensorRanges parse_tensor_ranges(const std::string& json_text, const std::string& where) {
  const Json json = parse_json(json_text, where);
  if (!json.is_object()) throw Error(where + ": expected an object of [min, max] pairs");
  TensorRanges ranges;
  for (const auto& [name, pair] : json.items()) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number() || !pair[1].is_number())
      throw Error(where + ": '" + name + "' is not a [min, max] pair of numbers");
    ranges[name] = {pair[0].get<float>(), pair[1].get<float>()};
  }
  return ranges;
}

std::string onnx_quantize_qdq(const std::string& model_bytes, const TensorRanges& ranges) {
  onnx::ModelProto model = parse_model(model_bytes);
  onnx::GraphProto* graph = model.mutable_graph();
  // Re-emit the nodes in order, with the Q/DQ nodes beside the products they feed.
  std::vector<onnx::NodeProto> nodes(graph->node().begin(), graph->node().end());
  QdqWriter writer(graph, ranges);  // before clearing: the old names stay taken
  graph->clear_node();
  std::set<std::string> replaced;              // float weights now stored as int8
  std::map<std::string, std::string> rewired;  // a quantised product's output -> its DQ
  for (onnx::NodeProto node : nodes) {
    const bool quantize = quantized_node(node, *graph);
    const std::string x = node.input_size() > 0 ? node.input(0) : "";
    for (auto& input : *node.mutable_input()) {
      if (const auto it = rewired.find(input); it != rewired.end()) input = it->second;
    }
    if (!quantize) {
      *graph->add_node() = node;
      continue;
    }
    const bool conv = node.op_type() == "Conv";
    node.set_input(0, writer.dequantized(x));
    std::vector<float> weight_scales;
    const onnx::TensorProto weight = *find_initializer(*graph, node.input(1));
    node.set_input(1, writer.weights(weight, conv, &weight_scales));
    replaced.insert(weight.name());
    if (conv && node.input_size() >= 3 && !node.input(2).empty()) {
      const onnx::TensorProto* bias = find_initializer(*graph, node.input(2));
      if (bias) {
        node.set_input(2, writer.bias(*bias, writer.scale_of(x), weight_scales));
        replaced.insert(bias->name());
      }
    }
    *graph->add_node() = node;
    const std::string y = node.output(0);
    if (!is_graph_output(*graph, y)) rewired[y] = writer.dequantized(y);
  }
  // Drop the float copies of what is now int8.
  auto* initializers = graph->mutable_initializer();
  initializers->erase(std::remove_if(initializers->begin(), initializers->end(),
                                     [&](const onnx::TensorProto& t) { return replaced.count(t.name()) > 0; }),
                      initializers->end());
  model.set_producer_name("libgaze (int8 QDQ)");
  check_onnx_model(model, "ONNX int8 model");
  return model.SerializeAsString();
}

}  // namespace gaze
