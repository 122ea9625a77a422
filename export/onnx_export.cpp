#include "export/onnx_export.h"

#include <cmath>

#include "export/onnx_graph.h"
#include "export/quantizer.h"

#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"

namespace gaze {
namespace {

// A float initialiser holding `t` (any shape; copied as contiguous float32).
std::string tensor_constant(GraphBuilder& g, const std::string& name, const at::Tensor& t) {
  const at::Tensor values = t.detach().to(at::kFloat).contiguous();
  return g.constant(name, onnx::TensorProto::FLOAT, values.sizes().vec(), values.data_ptr<float>(),
                    size_t(values.numel()) * sizeof(float));
}

// Emits the network into a graph, reading weights from the modules.
class GazeNetWriter {
 public:
  GazeNetWriter(GraphBuilder& g, GazeNet& model) : g_(g), model_(model), eps_(model->config().ln_eps) {}

  std::string network(const std::string& image) {
    std::string x = image;
    for (size_t i = 0; i < model_->stages->size(); ++i) {
      const std::string prefix = "stages." + std::to_string(i);
      auto& down = *model_->downsample_layers[i]->as<torch::nn::Sequential>();
      if (i == 0) {  // stem: Conv 4x4/4, then LayerNorm over channels
        x = conv(x, *down[0]->as<torch::nn::Conv2d>(), "downsample_layers.0.0", 4, 0, 1);
        x = layer_norm_nchw(x, *down[1]->as<LayerNorm2d>(), "downsample_layers.0.1");
      } else {  // LayerNorm over channels, then Conv 2x2/2
        const std::string name = "downsample_layers." + std::to_string(i);
        x = layer_norm_nchw(x, *down[0]->as<LayerNorm2d>(), name + ".0");
        x = conv(x, *down[1]->as<torch::nn::Conv2d>(), name + ".1", 2, 0, 1);
      }
      const auto& blocks = *model_->stages[i]->as<torch::nn::ModuleList>();
      for (size_t b = 0; b < blocks.size(); ++b)
        x = block(x, *blocks[b]->as<Block>(), prefix + "." + std::to_string(b));
    }
    // Head: global average pool (or the mean of each cell of model.head.grid) -> LayerNorm (per
    // cell) -> Linear.
    const std::vector<int64_t>& grid = model_->config().head.grid;
    const bool global = grid[0] == 1 && grid[1] == 1;
    x = global ? g_.node("GlobalAveragePool", {x}, "head.pool") : to_nhwc(pool_cells(x, grid), "head.pool");
    if (global) x = g_.node("Flatten", {x}, "head.flatten", {onnx_int("axis", 1)});
    x = g_.node("LayerNormalization",
                {x, tensor_constant(g_, "norm.weight", model_->norm->weight),
                 tensor_constant(g_, "norm.bias", model_->norm->bias)},
                "norm", {onnx_int("axis", -1), onnx_float("epsilon", model_->norm->options.eps())});
    if (!global) x = g_.node("Flatten", {x}, "head.flatten", {onnx_int("axis", 1)});  // cell-major
    return g_.node("Gemm",
                   {x, tensor_constant(g_, "head.weight", model_->head->weight),
                    tensor_constant(g_, "head.bias", model_->head->bias)},
                   "head", {onnx_int("transB", 1)});
  }

 private:
  std::string conv(const std::string& x, torch::nn::Conv2dImpl& c, const std::string& name, int64_t stride, int64_t pad,
                   int64_t groups) {
    const int64_t k = c.weight.size(2);
    return g_.node(
        "Conv", {x, tensor_constant(g_, name + ".weight", c.weight), tensor_constant(g_, name + ".bias", c.bias)}, name,
        {onnx_ints("kernel_shape", {k, k}), onnx_ints("strides", {stride, stride}),
         onnx_ints("pads", {pad, pad, pad, pad}), onnx_int("group", groups)});
  }

  std::string layer_norm(const std::string& x, const at::Tensor& weight, const at::Tensor& bias, double eps,
                         const std::string& name) {
    return g_.node("LayerNormalization",
                   {x, tensor_constant(g_, name + ".weight", weight), tensor_constant(g_, name + ".bias", bias)}, name,
                   {onnx_int("axis", -1), onnx_float("epsilon", eps)});
  }

  std::string to_nhwc(const std::string& x, const std::string& name) {
    return g_.node("Transpose", {x}, name + ".to_nhwc", {onnx_ints("perm", {0, 2, 3, 1})});
  }
  std::string to_nchw(const std::string& x, const std::string& name) {
    return g_.node("Transpose", {x}, name + ".to_nchw", {onnx_ints("perm", {0, 3, 1, 2})});
  }

  std::string layer_norm_nchw(const std::string& x, LayerNorm2dImpl& ln, const std::string& name) {
    return to_nchw(layer_norm(to_nhwc(x, name), ln.weight, ln.bias, eps_, name), name);
  }

  // A 1-D int64 constant holding `values`.
  std::string int64s(const std::string& name, const std::vector<int64_t>& values) {
    return g_.constant(name, onnx::TensorProto::INT64, {int64_t(values.size())}, values.data(),
                       values.size() * sizeof(int64_t));
  }

  // Adaptive average pooling of the NCHW map x (any H, W, known only at run time) to grid cells:
  // cell (i, j) is the mean of rows [floor(i H / r), ceil((i + 1) H / r)) and the columns
  // likewise; returns [N, C, 1, cells], cell-major.
  std::string pool_cells(const std::string& x, const std::vector<int64_t>& grid) {
    const std::string shape = g_.node("Shape", {x}, "head.shape");
    // The bounds of cell i of `cells` along axis 2 or 3.
    const auto bound = [&](int64_t axis, int64_t i, int64_t cells, bool end) {
      const std::string name = "head.axis" + std::to_string(axis) + (end ? ".end" : ".begin") + std::to_string(i);
      const std::string size = g_.node("Gather", {shape, int64s(name + ".axis", {axis})}, name + ".size");
      std::string n = g_.node("Mul", {size, int64s(name + ".times", {end ? i + 1 : i})}, name + ".times_size");
      if (end) n = g_.node("Add", {n, int64s(name + ".round_up", {cells - 1})}, name + ".rounded");
      return g_.node("Div", {n, int64s(name + ".cells", {cells})}, name);
    };
    std::vector<std::string> row_begin, row_end, col_begin, col_end;
    for (int64_t i = 0; i < grid[0]; ++i)
      row_begin.push_back(bound(2, i, grid[0], false)), row_end.push_back(bound(2, i, grid[0], true));
    for (int64_t j = 0; j < grid[1]; ++j)
      col_begin.push_back(bound(3, j, grid[1], false)), col_end.push_back(bound(3, j, grid[1], true));
    const std::string axes = int64s("head.cell_axes", {2, 3});
    std::vector<std::string> cells;
    for (size_t i = 0; i < row_begin.size(); ++i) {
      for (size_t j = 0; j < col_begin.size(); ++j) {
        const std::string name = "head.cell" + std::to_string(i) + "_" + std::to_string(j);
        const std::string begin =
            g_.node("Concat", {row_begin[i], col_begin[j]}, name + ".begin", {onnx_int("axis", 0)});
        const std::string end = g_.node("Concat", {row_end[i], col_end[j]}, name + ".end", {onnx_int("axis", 0)});
        const std::string cell = g_.node("Slice", {x, begin, end, axes}, name + ".slice");
        cells.push_back(g_.node("ReduceMean", {cell}, name, {onnx_ints("axes", {2, 3}), onnx_int("keepdims", 1)}));
      }
    }
    return g_.node("Concat", cells, "head.cells", {onnx_int("axis", 3)});
  }

  // y = x W^T + b on the last axis.
  std::string linear(const std::string& x, const at::Tensor& weight, const at::Tensor& bias, const std::string& name) {
    const std::string y = g_.node("MatMul", {x, tensor_constant(g_, name + ".weight_t", weight.t())}, name + ".matmul");
    return g_.node("Add", {y, tensor_constant(g_, name + ".bias", bias)}, name);
  }

  // Exact (erf) GELU: x * 0.5 * (1 + erf(x / sqrt(2))).
  std::string gelu(const std::string& x, const std::string& name) {
    const std::string e =
        g_.node("Erf", {g_.node("Div", {x, g_.scalar(name + ".sqrt2", std::sqrt(2.0))}, name + ".div")}, name + ".erf");
    const std::string half = g_.node("Mul", {x, g_.scalar(name + ".half", 0.5)}, name + ".half_x");
    return g_.node("Mul", {half, g_.node("Add", {e, g_.scalar(name + ".one", 1.0)}, name + ".one_plus")}, name);
  }

  // gamma * (x * nx) + beta + x with gx = L2 over H, W and nx = gx / (mean_c gx + 1e-6); NHWC.
  std::string grn(const std::string& x, GRNImpl& grn, const std::string& name) {
    const std::string gx = g_.node("ReduceL2", {x}, name + ".gx", {onnx_ints("axes", {1, 2}), onnx_int("keepdims", 1)});
    const std::string mean =
        g_.node("ReduceMean", {gx}, name + ".mean", {onnx_ints("axes", {-1}), onnx_int("keepdims", 1)});
    const std::string denom = g_.node("Add", {mean, g_.scalar(name + ".eps", 1e-6)}, name + ".denom");
    const std::string nx = g_.node("Div", {gx, denom}, name + ".nx");
    const std::string scaled =
        g_.node("Mul", {tensor_constant(g_, name + ".gamma", grn.gamma), g_.node("Mul", {x, nx}, name + ".x_nx")},
                name + ".scaled");
    const std::string shifted =
        g_.node("Add", {scaled, tensor_constant(g_, name + ".beta", grn.beta)}, name + ".shifted");
    return g_.node("Add", {shifted, x}, name);
  }

  // x + up(LeakyReLU(BN(down(x)))) with the eval-mode BatchNorm folded into down.
  std::string adapter(const std::string& x, AdapterImpl& a, const std::string& name) {
    auto& bn = *a.bn;
    const at::Tensor scale = bn.weight / at::sqrt(bn.running_var + bn.options.eps());
    const at::Tensor weight = a.down->weight * scale.unsqueeze(1);
    const at::Tensor bias = (a.down->bias - bn.running_mean) * scale + bn.bias;
    std::string h = linear(x, weight, bias, name + ".down_bn");
    h = g_.node("LeakyRelu", {h}, name + ".act", {onnx_float("alpha", a.slope())});
    return g_.node("Add", {x, linear(h, a.up->weight, a.up->bias, name + ".up")}, name);
  }

  std::string block(const std::string& input, BlockImpl& b, const std::string& name) {
    const int64_t channels = b.dwconv->weight.size(0);
    std::string x = to_nhwc(conv(input, *b.dwconv, name + ".dwconv", 1, 3, channels), name);
    x = layer_norm(x, b.norm->weight, b.norm->bias, b.norm->options.eps(), name + ".norm");
    x = gelu(linear(x, b.pwconv1->weight, b.pwconv1->bias, name + ".pwconv1"), name + ".act");
    x = linear(grn(x, *b.grn, name + ".grn"), b.pwconv2->weight, b.pwconv2->bias, name + ".pwconv2");
    if (b.adapter) x = adapter(x, *b.adapter, name + ".adapter");
    return g_.node("Add", {input, to_nchw(x, name)}, name);
  }

  GraphBuilder& g_;
  GazeNet& model_;
  double eps_;
};

}  // namespace

std::string onnx_model_bytes(GazeNet& model, const std::string& source) {
  require_exportable_head(model->config());
  at::NoGradGuard no_grad;
  onnx::ModelProto proto;
  proto.set_ir_version(onnx::IR_VERSION);
  proto.set_producer_name("libgaze");
  if (!source.empty()) {
    auto* entry = proto.add_metadata_props();
    entry->set_key("source");
    entry->set_value(source);
  }
  proto.set_doc_string("DFT Gaze (" + model->config().arch +
                       "): output[:, :3] raw gaze direction, output[:, 3] Laplace log-scale");
  auto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  onnx::GraphProto* graph = proto.mutable_graph();
  graph->set_name("gaze_net");
  set_float_tensor_type(graph->add_input(), {"batch", std::to_string(model->config().in_chans), "height", "width"});
  graph->mutable_input(0)->set_name("image");

  GraphBuilder builder(graph);
  GazeNetWriter writer(builder, model);
  const std::string out = writer.network("image");
  builder.node("Identity", {out}, "output");
  set_float_tensor_type(graph->add_output(), {"batch", "4"});
  graph->mutable_output(0)->set_name("output");

  check_onnx_model(proto, "ONNX export");
  return proto.SerializeAsString();
}

void export_onnx(GazeNet& model, const std::string& path, const std::string& source) {
  write_text_atomically(path, onnx_model_bytes(model, source));
}

}  // namespace gaze
