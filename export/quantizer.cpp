#include "export/quantizer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/utils.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>

#include "datasets/preprocess.h"
#include "export/quantize.h"
#include "export/tune_data.h"
#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"
#include "libgaze/metrics/angular_error.h"

namespace gaze {
namespace {

constexpr float kInt16Headroom = 1.25f;  // residual stream / depthwise output: range x 1.25
constexpr size_t kSamplesPerCall = 4096;

// ---------------------------------------------------------------------------------------------
// The float shadow forward: the model's own modules, in the integer network's order, with a
// callback at every tensor the integer network quantises.

// Returns the tensor the forward continues with: the same one when calibrating, a fake-quantised
// copy when simulating the integer network in float.
using Observe = std::function<at::Tensor(const std::string&, const at::Tensor&)>;

std::string block_name(size_t s, size_t b) { return std::to_string(s) + "." + std::to_string(b); }

at::Tensor shadow_block(BlockImpl& block, const at::Tensor& input, const std::string& name, const std::string& res,
                        const Observe& observe) {
  observe(name + ".in", input.permute({0, 2, 3, 1}));  // the depthwise conv's bias correction and GPTQ
  auto x = observe(name + ".dw", block.dwconv->forward(input).permute({0, 2, 3, 1}));  // NHWC
  x = observe(name + ".norm", block.norm->forward(x));
  x = at::gelu(observe(name + ".pw1", block.pwconv1->forward(x)));  // GELU keeps pw1's scale
  x = observe(name + ".grn", block.grn->forward(x));
  const auto f = observe(res, observe(name + ".pw2", block.pwconv2->forward(x)));
  auto out = observe(res, input.permute({0, 2, 3, 1}) + f);
  if (block.adapter) {
    AdapterImpl& a = *block.adapter;
    const auto shape = f.sizes().vec();
    auto h = observe(name + ".down", a.bn->forward(a.down->forward(f.reshape({-1, shape.back()}))));
    h = observe(name + ".lrelu", at::leaky_relu(h, a.slope()));  // keeps the down projection's scale
    const auto up = observe(res, a.up->forward(h).reshape(shape));
    out = observe(res, out + up);
  }
  return out.permute({0, 3, 1, 2});
}

at::Tensor nhwc(const at::Tensor& x) { return x.permute({0, 2, 3, 1}); }
at::Tensor nchw(const at::Tensor& x) { return x.permute({0, 3, 1, 2}); }

at::Tensor shadow_forward(GazeNet& model, const at::Tensor& images, const Observe& observe) {
  auto stem = model->downsample_layers[0]->as<torch::nn::Sequential>();
  auto x = nchw(observe("stem", nhwc(stem->ptr(0)->as<torch::nn::Conv2d>()->forward(images))));
  x = stem->ptr(1)->as<LayerNorm2d>()->forward(x);
  for (size_t s = 0; s < 4; ++s) {
    const std::string res = "residual." + std::to_string(s);
    if (s > 0) {
      auto ds = model->downsample_layers[s]->as<torch::nn::Sequential>();
      x = nchw(observe("ds." + std::to_string(s) + ".norm", nhwc(ds->ptr(0)->as<LayerNorm2d>()->forward(x))));
      x = ds->ptr(1)->as<torch::nn::Conv2d>()->forward(x);
    }
    x = nchw(observe(res, nhwc(x)));
    size_t b = 0;
    for (const auto& block : *model->stages[s]->as<torch::nn::ModuleList>()) {
      x = shadow_block(*block->as<Block>(), x, block_name(s, b++), res, observe);
    }
  }
  const auto normed = observe("head.norm", model->head_features(x));
  observe("head.out", model->head->forward(normed));
  return model->head->forward(normed);
}

// ---------------------------------------------------------------------------------------------
// Observers.

struct Observer {
  float min = INFINITY, max = -INFINITY;
  std::vector<float> samples;
  at::Tensor channel_sum;  // double, per channel of the last axis
  int64_t rows = 0;
  at::Tensor gram_sum;  // double [in][in]: sum of x x^T over the input rows of the layer it feeds
  int64_t gram_rows = 0;
  at::Tensor tap_sum, tap_gram_sum;  // a depthwise input's: double [C][49], [C][49][49]
  int64_t tap_rows = 0;

  // `nhwc`: the input of a depthwise 7x7 conv (zero padding 3). Every output position sees a
  // 7x7 patch of it; the sum over positions of each tap's value (and with `gram`, of p p^T).
  void add_taps(const at::Tensor& nhwc, bool gram) {
    const at::Tensor x = nhwc.detach().permute({0, 3, 1, 2}).to(at::kFloat).contiguous();  // NCHW
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const at::Tensor padded = at::constant_pad_nd(x.sum(0), {3, 3, 3, 3}).to(at::kDouble);  // [C][h+6][w+6]
    std::vector<at::Tensor> taps;
    for (int64_t ky = 0; ky < 7; ++ky)
      for (int64_t kx = 0; kx < 7; ++kx)
        taps.push_back(padded.slice(1, ky, ky + h).slice(2, kx, kx + w).sum(at::IntArrayRef{1, 2}));
    const at::Tensor sum = at::stack(taps, 1);
    tap_sum = tap_sum.defined() ? tap_sum + sum : sum;
    tap_rows += n * h * w;
    if (!gram) return;
    constexpr int64_t kImages = 4;  // im2col holds 49x the chunk: 4 images keep it ~100 MB at 224x224
    for (int64_t i = 0; i < n; i += kImages) {
      const at::Tensor chunk = x.slice(0, i, std::min(n, i + kImages));
      const int64_t m = chunk.size(0);
      const at::Tensor patches = at::im2col(chunk, {7, 7}, {1, 1}, {3, 3}, {1, 1})  // [m][C * 49][h * w]
                                     .reshape({m, c, 49, h * w})
                                     .permute({1, 2, 0, 3})
                                     .reshape({c, 49, m * h * w});
      const at::Tensor g = at::bmm(patches, patches.transpose(1, 2)).to(at::kDouble);
      tap_gram_sum = tap_gram_sum.defined() ? tap_gram_sum + g : g;
    }
  }

  void add_gram(const at::Tensor& input_rows) {
    const at::Tensor x = input_rows.detach().to(at::kFloat).contiguous();
    const at::Tensor g = at::matmul(x.t(), x).to(at::kDouble);  // float products, double across batches
    gram_sum = gram_sum.defined() ? gram_sum + g : g;
    gram_rows += x.size(0);
  }

  void add(const at::Tensor& t) {
    const at::Tensor rows_by_channel = t.detach().reshape({-1, t.size(-1)}).to(at::kDouble);
    const at::Tensor sum = rows_by_channel.sum(0);
    channel_sum = channel_sum.defined() ? channel_sum + sum : sum;
    rows += rows_by_channel.size(0);
    const at::Tensor flat = t.detach().contiguous().flatten();
    min = std::min(min, flat.min().item<float>());
    max = std::max(max, flat.max().item<float>());
    const int64_t step = std::max<int64_t>(1, flat.numel() / int64_t(kSamplesPerCall));
    const at::Tensor picked = flat.slice(0, 0, flat.numel(), step).contiguous();
    samples.insert(samples.end(), picked.data_ptr<float>(), picked.data_ptr<float>() + picked.numel());
  }

  ActivationRange range(const QuantizeOptions& options) {
    ActivationRange r{min, max, min, max, {}, {}, {}, {}};
    const at::Tensor mean = (channel_sum / double(rows)).contiguous();
    r.channel_mean.assign(mean.data_ptr<double>(), mean.data_ptr<double>() + mean.numel());
    if (gram_sum.defined()) {
      const at::Tensor g = (gram_sum / double(gram_rows)).contiguous();
      r.gram.assign(g.data_ptr<double>(), g.data_ptr<double>() + g.numel());
    }
    const auto mean_of = [&](const at::Tensor& sum, std::vector<double>& out) {
      if (!sum.defined()) return;
      const at::Tensor m = (sum / double(tap_rows)).contiguous();
      out.assign(m.data_ptr<double>(), m.data_ptr<double>() + m.numel());
    };
    mean_of(tap_sum, r.tap_mean);
    mean_of(tap_gram_sum, r.tap_gram);
    if (options.observer == "percentile" && !samples.empty()) {
      const auto at_fraction = [&](double f) {
        const size_t k = std::min(samples.size() - 1, size_t(f * double(samples.size() - 1) + 0.5));
        std::nth_element(samples.begin(), samples.begin() + long(k), samples.end());
        return samples[k];
      };
      r.low = at_fraction(1.0 - options.percentile / 100.0);
      r.high = at_fraction(options.percentile / 100.0);
    }
    return r;
  }
};

// The input rows of the backbone pointwise layer an activation feeds (for GPTQ's Gram
// matrices), or an undefined tensor: a block's "s.b.norm" feeds pw1 and "s.b.grn" pw2 (one row
// per position), a downsample's "ds.s.norm" (NHWC) its 2x2 stride-2 conv (one (ky, kx, c) patch
// per output position, the order the kernel gathers).
at::Tensor pointwise_input_rows(const std::string& name, const at::Tensor& t) {
  if (starts_with(name, "ds.") && ends_with(name, ".norm")) {
    const int64_t n = t.size(0), h = t.size(1), w = t.size(2), c = t.size(3);
    return t.reshape({n, h / 2, 2, w / 2, 2, c}).permute({0, 1, 3, 2, 4, 5}).reshape({-1, 4 * c});
  }
  if (!name.empty() && std::isdigit(static_cast<unsigned char>(name[0])) &&
      (ends_with(name, ".norm") || ends_with(name, ".grn")))
    return t.reshape({-1, t.size(-1)});
  return {};
}

// A block's input, which its depthwise 7x7 conv reads ("s.b.in").
bool is_depthwise_input(const std::string& name) {
  return name.size() > 3 && std::isdigit(static_cast<unsigned char>(name[0])) &&
         name.compare(name.size() - 3, 3, ".in") == 0;
}

}  // namespace

at::Tensor frames_to_batch(const std::vector<Frame>& frames, size_t begin, size_t end, int32_t h, int32_t w) {
  at::Tensor batch = at::empty({int64_t(end - begin), 3, h, w}, at::kFloat);
  PreprocessOptions plain;
  plain.height = h;
  plain.width = w;
  float* data = batch.data_ptr<float>();
  for (size_t i = begin; i < end; ++i) {
    if (frames[i].size() != size_t(h) * w) {
      throw Error("calibration frame " + std::to_string(i) + " has " + std::to_string(frames[i].size()) +
                  " pixels, expected " + std::to_string(h) + "x" + std::to_string(w));
    }
    Image image(h, w);
    image.pixels = frames[i];
    preprocess_image(image, plain, 0, data + (i - begin) * 3 * size_t(h) * w);
  }
  return batch;
}

void require_exportable_head(const ModelConfig& config) {
  if (config.head.keypoints > 0) {
    throw Error("export: model.head.keypoints=" + std::to_string(config.head.keypoints) +
                ": the exported kernel and the ONNX graph have no key point maps yet; export a model without them");
  }
}

ActivationRanges calibrate(GazeNet& model, const std::vector<Frame>& frames, const QuantizeOptions& options) {
  require_exportable_head(model->config());
  if (frames.empty()) throw Error("calibration needs at least one frame");
  torch::NoGradGuard no_grad;
  model->eval();
  std::map<std::string, Observer> observers;
  const bool grams = options.weight_rounding == "gptq";
  const Observe observe = [&](const std::string& name, const at::Tensor& t) {
    Observer& o = observers[name];
    o.add(t);
    if (grams) {
      const at::Tensor rows = pointwise_input_rows(name, t);
      if (rows.defined()) o.add_gram(rows);
    }
    if (is_depthwise_input(name)) o.add_taps(t, grams);
    return t;
  };
  constexpr size_t kBatch = 32;
  for (size_t begin = 0; begin < frames.size(); begin += kBatch) {
    const size_t end = std::min(frames.size(), begin + kBatch);
    shadow_forward(model, frames_to_batch(frames, begin, end, options.input_h, options.input_w), observe);
  }
  ActivationRanges ranges;
  for (auto& [name, observer] : observers) ranges[name] = observer.range(options);
  return ranges;
}

namespace {

// ---------------------------------------------------------------------------------------------
// Weights.

const ActivationRange& range_of(const ActivationRanges& ranges, const std::string& name) {
  const auto it = ranges.find(name);
  if (it == ranges.end()) throw Error("quantize: no calibration range for activation '" + name + "'");
  return it->second;
}

float int16_scale(const ActivationRanges& ranges, const std::string& name) {
  const ActivationRange& r = range_of(ranges, name);
  const float absmax = std::max(std::fabs(r.low), std::fabs(r.high));
  return absmax > 0 ? absmax * kInt16Headroom / 32767.0f : 1.0f;
}

// The scale a pointwise layer's input is quantised at: the int16 activation's (x16_scale), or,
// for a layer in options.int8_layers, the int8 scale of the activation's calibrated extremes (no
// headroom: rare outliers saturate at +-127), reached from the int16 tensor by to_s8.
struct LinearInput {
  float scale = 1;
  gz_requant to_s8{0, 0};
};

LinearInput linear_input(const ActivationRanges& ranges, const std::string& activation, float x16_scale,
                         const std::string& layer, const QuantizeOptions& options) {
  if (!options.int8_layers.count(layer)) return {x16_scale, {0, 0}};
  const ActivationRange& r = range_of(ranges, activation);
  const float absmax = std::max(std::fabs(r.low), std::fabs(r.high));
  const float s8 = std::max(absmax / 127.0f, x16_scale);  // never finer than the int16 grid it comes from
  return {s8, gz_requant_compute(double(x16_scale) / s8)};
}

// The Gram matrix GPTQ rounds the layer fed by `activation` with (empty: round to nearest): the
// pointwise one, or with `taps` a depthwise conv's per-channel ones.
const std::vector<double>& rounding_gram(const ActivationRanges& ranges, const std::string& activation,
                                         const QuantizeOptions& options, bool taps = false) {
  static const std::vector<double> nearest;
  if (options.weight_rounding != "gptq") return nearest;
  const ActivationRange& r = range_of(ranges, activation);
  const std::vector<double>& gram = taps ? r.tap_gram : r.gram;
  if (gram.empty())
    throw Error("quantize: weight_rounding gptq needs ranges calibrated with it ('" + activation +
                "' has no Gram matrix)");
  return gram;
}

std::vector<float> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

int32_t round_to_int32(double v, const char* what) {
  if (!(std::fabs(v) < 2e9))
    throw Error(std::string("quantize: ") + what + " does not fit int32 (" + std::to_string(v) + ")");
  return int32_t(std::llround(v));
}

// GPTQ (Frantar et al., 2022) for one int8 layer: w [out][in] with its per-row scales fixed,
// `gram` the mean x x^T of the layer's inputs ([in][in]). Columns are rounded in order; each
// column's rounding error, divided by the matching diagonal entry of U (the upper Cholesky
// factor of the inverse Gram matrix), is taken off the columns still to be rounded in
// proportion to U's row, so the layer's outputs on the calibration inputs stay as close as
// least squares allows to the float layer's. The Gram matrix is damped by 1 % of its mean
// diagonal; an input that never varies from zero rounds to 0.
void gptq_round(const float* weight, int32_t out, int32_t in, const double* gram, const float* scale, int8_t* q) {
  at::Tensor h = at::from_blob(const_cast<double*>(gram), {in, in}, at::kDouble).clone();
  at::Tensor diag = h.diagonal();
  const at::Tensor dead = diag <= 0;
  diag.masked_fill_(dead, 1.0);
  diag.add_(0.01 * diag.mean().item<double>());
  const at::Tensor u = at::linalg_cholesky(at::cholesky_inverse(at::linalg_cholesky(h))).t().contiguous();
  const double* U = u.data_ptr<double>();
  const at::Tensor dead_cpu = dead.contiguous();
  const bool* is_dead = dead_cpu.data_ptr<bool>();
  std::vector<double> w(weight, weight + size_t(out) * size_t(in));
  for (int32_t o = 0; o < out; ++o)
    for (int32_t i = 0; i < in; ++i)
      if (is_dead[i]) w[size_t(o) * in + size_t(i)] = 0;
  for (int32_t i = 0; i < in; ++i) {
    const double* u_row = U + size_t(i) * in;
    for (int32_t o = 0; o < out; ++o) {
      double* row = w.data() + size_t(o) * in;
      const double v = std::clamp(std::nearbyint(row[i] / scale[o]), -127.0, 127.0);
      q[size_t(o) * in + size_t(i)] = int8_t(v);
      const double err = (row[i] - v * scale[o]) / u_row[i];
      for (int32_t j = i + 1; j < in; ++j) row[j] -= err * u_row[j];
    }
  }
}

// weight [out][in] floats, bias [out]; y_scale 0 = no requantisation (the head). Two planes
// hold 16-bit weights where int8 costs accuracy (the adapters' down projections, the head).
// `input_mean` (per input channel, or empty) drives bias correction; `gram` (the input's
// [in][in] Gram matrix, or empty) rounds int8 weights by GPTQ instead of to nearest. The
// arithmetic is gz_quantize_linear_f32 (export/quantize.h), shared with personalisation on the
// device, with GPTQ between its two steps.
QLinear quantize_linear(const std::vector<float>& weight, const std::vector<float>& bias, int32_t out, int32_t in,
                        LinearInput input, double y_scale, bool two_planes, const std::vector<double>& input_mean,
                        const std::vector<double>& gram = {}) {
  QLinear l;
  l.in = in;
  l.out = out;
  l.to_s8 = input.to_s8;
  l.weight.resize(size_t(out) * in);
  l.weight_scale.resize(size_t(out));
  l.bias.resize(size_t(out));
  if (two_planes) l.weight_lo.resize(l.weight.size()), l.bias_lo.resize(size_t(out));
  if (y_scale > 0) {
    l.requant.resize(size_t(out));
    if (two_planes) l.requant_lo.resize(size_t(out));
  }
  std::vector<float> min_scales(static_cast<size_t>(out));
  int8_t* w_lo = two_planes ? l.weight_lo.data() : nullptr;
  gz_quantize_linear_weights_f32(weight.data(), bias.data(), out, in, input.scale, y_scale, min_scales.data(),
                                 l.weight.data(), w_lo, l.weight_scale.data());
  if (!gram.empty() && !two_planes) {
    if (gram.size() != size_t(in) * size_t(in)) throw Error("quantize: a Gram matrix does not match its layer");
    gptq_round(weight.data(), out, in, gram.data(), l.weight_scale.data(), l.weight.data());
  }
  const int rc = gz_quantize_linear_bias_f32(
      weight.data(), bias.data(), out, in, input.scale, l.int8_input(), y_scale,
      input_mean.size() == size_t(in) ? input_mean.data() : nullptr, l.weight.data(), w_lo, l.weight_scale.data(),
      l.bias.data(), two_planes ? l.bias_lo.data() : nullptr, y_scale > 0 ? l.requant.data() : nullptr,
      two_planes && y_scale > 0 ? l.requant_lo.data() : nullptr);
  if (rc == GZ_QUANTIZE_BIAS_RANGE) throw Error("quantize: a bias does not fit int32");
  if (rc == GZ_QUANTIZE_OVERFLOW)
    throw Error("quantize: a " + std::to_string(in) + "-input layer could overflow int32");
  return l;
}

QLayerNorm quantize_layernorm(const at::Tensor& gamma, const at::Tensor& beta, double eps, float x_scale,
                              float y_scale) {
  QLayerNorm n;
  const std::vector<float> g = to_vector(gamma), b = to_vector(beta);
  n.channels = int32_t(g.size());
  if (n.channels > GZ_LAYERNORM_MAX_CHANNELS) throw Error("quantize: LayerNorm wider than the kernel supports");
  const double c = n.channels;
  n.eps = int64_t(std::min(std::llround(eps * c * c / (double(x_scale) * x_scale)), 1LL << 50));
  for (size_t i = 0; i < g.size(); ++i) {
    const gz_requant r = gz_requant_compute_signed(double(g[i]) / (double(y_scale) * 65536.0));  // z is Q16
    n.gamma_multiplier.push_back(r.multiplier);
    n.gamma_shift.push_back(r.shift);
    n.beta.push_back(round_to_int32(b[i] / double(y_scale), "a LayerNorm offset"));
  }
  return n;
}

// GELU at every 64th int16 value of a tensor with scale s (the same scale out).
std::vector<int16_t> gelu_table(float s) {
  std::vector<int16_t> t(GZ_GELU_TABLE);
  for (int32_t i = 0; i < GZ_GELU_TABLE; ++i) {
    const double x = double(i * 64 - 32768) * s;
    t[size_t(i)] = int16_t(std::clamp(std::llround(gz_gelu_f32(float(x)) / s), -32768LL, 32767LL));
  }
  return t;
}

QBlock quantize_block(BlockImpl& block, int32_t stage, const std::string& name, float res_scale,
                      const ActivationRanges& ranges, double ln_eps, const QuantizeOptions& options) {
  QBlock q;
  q.dim = int32_t(block.dwconv->options.in_channels());
  const float dw_scale = int16_scale(ranges, name + ".dw");
  {
    const std::vector<float> w = to_vector(block.dwconv->weight), b = to_vector(block.dwconv->bias);
    q.dw_weight.resize(w.size());
    q.dw_weight_scale.resize(size_t(q.dim));
    gz_quantize_weights_per_channel(w.data(), q.dim, 49, nullptr, q.dw_weight.data(), q.dw_weight_scale.data());
    const std::vector<double>& gram = rounding_gram(ranges, name + ".in", options, true);
    const std::vector<double>& tap_mean = range_of(ranges, name + ".in").tap_mean;
    if (tap_mean.size() != size_t(q.dim) * 49 || (!gram.empty() && gram.size() != size_t(q.dim) * 49 * 49))
      throw Error("quantize: the calibration of '" + name + ".in' does not match its depthwise conv");
    for (int32_t c = 0; c < q.dim; ++c) {
      const size_t row = size_t(c) * 49;
      if (!gram.empty()) {  // one output row over 49 taps, with that channel's Gram matrix
        gptq_round(w.data() + row, 1, 49, gram.data() + row * 49, &q.dw_weight_scale[size_t(c)], &q.dw_weight[row]);
      }
      const double acc_scale = double(res_scale) * q.dw_weight_scale[size_t(c)];
      double shift = 0;  // bias correction, tap by tap
      for (size_t k = 0; k < 49; ++k) {
        shift += (double(w[row + k]) - double(q.dw_weight[row + k]) * q.dw_weight_scale[size_t(c)]) * tap_mean[row + k];
      }
      q.dw_bias.push_back(round_to_int32((b[size_t(c)] + shift) / acc_scale, "a depthwise bias"));
      q.dw_requant.push_back(gz_requant_compute(acc_scale / dw_scale));
    }
  }
  const float u = int16_scale(ranges, name + ".norm"), h = int16_scale(ranges, name + ".pw1"),
              v = int16_scale(ranges, name + ".grn");
  q.norm = quantize_layernorm(block.norm->weight, block.norm->bias, ln_eps, dw_scale, u);
  q.pw1 =
      quantize_linear(to_vector(block.pwconv1->weight), to_vector(block.pwconv1->bias), int32_t(4 * q.dim), q.dim,
                      linear_input(ranges, name + ".norm", u, name + ".pw1", options), h, false,
                      range_of(ranges, name + ".norm").channel_mean, rounding_gram(ranges, name + ".norm", options));
  q.gelu = gelu_table(h);

  const LinearInput pw2_input = linear_input(ranges, name + ".grn", v, name + ".pw2", options);
  // GRN's input and output scales: pw1's and pw2's int16 inputs, or, with int8 GELU outputs,
  // those outputs' int8 scale (GELU of pw1's calibrated range) and pw2's int8 input scale.
  float grn_in = h, grn_out = v;
  if (options.int8_hidden_stages.count(stage)) {
    if (!pw2_input.to_s8.multiplier)
      throw Error("quantize: stage " + std::to_string(stage) + " keeps int8 GELU outputs but " + name +
                  ".pw2 takes int16 inputs (export.int8 did not choose it)");
    const ActivationRange& r = range_of(ranges, name + ".pw1");
    double absmax = std::max(std::fabs(gz_gelu_f32(r.low)), std::fabs(gz_gelu_f32(r.high)));
    if (r.low < -0.7518 && r.high > -0.7518) absmax = std::max(absmax, 0.16997);  // GELU's minimum inside
    grn_in = std::max(float(absmax / 127.0), h);
    grn_out = pw2_input.scale;
    q.hidden_s8 = gz_requant_compute(double(h) / grn_in);
  }
  q.grn.channels = 4 * q.dim;
  q.grn.eps = std::llround(1e-6 * 256.0 / grn_in);
  for (float gamma : to_vector(block.grn->gamma)) q.grn.gamma.push_back(round_to_int32(gamma * 65536.0, "a GRN gamma"));
  for (float beta : to_vector(block.grn->beta))
    q.grn.beta.push_back(round_to_int32(beta / double(grn_out), "a GRN beta"));
  q.grn.scale = gz_requant_compute(double(grn_in) / (double(grn_out) * 4096.0));

  q.pw2 = quantize_linear(to_vector(block.pwconv2->weight), to_vector(block.pwconv2->bias), q.dim, 4 * q.dim, pw2_input,
                          res_scale, false, range_of(ranges, name + ".grn").channel_mean,
                          rounding_gram(ranges, name + ".grn", options));
  if (block.adapter) {
    AdapterImpl& a = *block.adapter;
    q.has_adapter = true;
    const float d = int16_scale(ranges, name + ".down");
    // BatchNorm (eval) folded into the down projection: W' = diag(k) W, b' = k (b - mean) + beta.
    const at::Tensor k = a.bn->weight / at::sqrt(a.bn->running_var + a.bn->options.eps());
    const at::Tensor w = a.down->weight * k.unsqueeze(1);
    const at::Tensor bias = (a.down->bias - a.bn->running_mean) * k + a.bn->bias;
    const int32_t hidden = int32_t(a.down->options.out_features());
    q.adapter.down = quantize_linear(to_vector(w), to_vector(bias), hidden, q.dim, {res_scale, {0, 0}}, d, true,
                                     range_of(ranges, name + ".pw2").channel_mean);
    q.adapter.slope = gz_requant_compute_signed(a.slope());
    q.adapter.up = quantize_linear(to_vector(a.up->weight), to_vector(a.up->bias), q.dim, hidden, {d, {0, 0}},
                                   res_scale, false, range_of(ranges, name + ".lrelu").channel_mean);
  }
  return q;
}

// Per-channel means repeated for the 2x2 patch order (ky, kx, c).
std::vector<double> patch_mean(const std::vector<double>& mean) {
  std::vector<double> out;
  for (int k = 0; k < 4; ++k) out.insert(out.end(), mean.begin(), mean.end());
  return out;
}

// [out][c][ky][kx] -> [out][(ky, kx, c)], the order the kernel gathers patches in.
std::vector<float> patch_major(const at::Tensor& weight) { return to_vector(weight.permute({0, 2, 3, 1})); }

}  // namespace

ActivationRanges user_adapter_ranges(GazeNet& user_model, const std::vector<Frame>& frames,
                                     const ActivationRanges& base_ranges, const QuantizeOptions& options) {
  const ActivationRanges user = calibrate(user_model, frames, options);
  ActivationRanges merged = base_ranges;
  const std::string last = std::to_string(user_model->config().depths.size() - 1) + ".";
  for (const auto& [name, range] : user) {
    const bool adapter_inside = starts_with(name, last) && ends_with(name, ".down");
    if (adapter_inside) merged[name] = range;
  }
  // The head's input keeps the base's scale (its LayerNorm is the base's), but the user's head is
  // bias-corrected with the user's channel means.
  const auto head = user.find("head.norm");
  if (head != user.end() && merged.count("head.norm")) merged["head.norm"].channel_mean = head->second.channel_mean;
  return merged;
}

QuantizedNet quantize_model(GazeNet& model, const ActivationRanges& ranges, const QuantizeOptions& options) {
  torch::NoGradGuard no_grad;
  model->eval();
  const ModelConfig& cfg = model->config();
  require_exportable_head(cfg);
  const int64_t head_inputs = cfg.dims.back() * cfg.head.grid[0] * cfg.head.grid[1];
  if (head_inputs > GZ_HEAD_MAX_FEATURES) {
    throw Error("export: the head reads " + std::to_string(head_inputs) + " features (model.head.grid [" +
                std::to_string(cfg.head.grid[0]) + ", " + std::to_string(cfg.head.grid[1]) + "] of " +
                std::to_string(cfg.dims.back()) + " channels); the kernel holds at most " +
                std::to_string(GZ_HEAD_MAX_FEATURES));
  }
  if (options.input_h % 32 || options.input_w % 32 || options.input_h < 32 || options.input_w < 32) {
    throw Error("export: input size " + std::to_string(options.input_h) + "x" + std::to_string(options.input_w) +
                " must be multiples of 32");
  }
  if (options.weight_rounding != "nearest" && options.weight_rounding != "gptq")
    throw Error("export: unknown weight rounding '" + options.weight_rounding + "' (nearest or gptq)");
  QuantizedNet net;
  net.input_h = options.input_h;
  net.input_w = options.input_w;
  net.scale_trained = cfg.head.uncertainty;
  for (int64_t d : cfg.depths) net.depths.push_back(int32_t(d));
  for (int64_t d : cfg.dims) net.dims.push_back(int32_t(d));
  for (const auto& [name, range] : ranges) net.scales.activations[name] = int16_scale(ranges, name);
  for (size_t s = 0; s < 4; ++s) net.scales.residual[s] = int16_scale(ranges, "residual." + std::to_string(s));

  // Stem: 3 input channels folded into 1, with the /255 and ImageNet normalisation, so the
  // kernel multiplies raw pixels p (fed as p - 128, see below).
  auto stem = model->downsample_layers[0]->as<torch::nn::Sequential>();
  auto conv = stem->ptr(0)->as<torch::nn::Conv2d>();
  const at::Tensor w = conv->weight;  // [d0][C][4][4]
  const int64_t in_chans = w.size(1);
  at::Tensor folded = at::zeros({w.size(0), 4, 4});
  at::Tensor bias = conv->bias.clone();
  for (int64_t c = 0; c < in_chans; ++c) {
    const int64_t stat = in_chans == 3 ? c : 0;
    const float mean = in_chans == 3 ? kInputMean[stat] : 0.0f, stdev = in_chans == 3 ? kInputStd[stat] : 1.0f;
    folded += w.select(1, c) / (255.0f * stdev);
    bias -= w.select(1, c).sum({1, 2}) * (mean / stdev);
  }
  // The kernel feeds p - 128 (int16, scale 1): conv(p) = conv(p - 128) + 128 * sum(w).
  bias += folded.sum({1, 2}) * 128.0f;
  net.scales.stem = int16_scale(ranges, "stem");
  // int8 input: p - 128 is already an 8-bit integer (scale 1; pixel 0 saturates to -127).
  const LinearInput pixels =
      options.int8_layers.count("stem") ? LinearInput{1.0f, gz_requant_compute(1.0)} : LinearInput{1.0f, {0, 0}};
  net.stem =
      quantize_linear(to_vector(folded), to_vector(bias), int32_t(w.size(0)), 16, pixels, net.scales.stem, false, {});
  auto stem_norm = stem->ptr(1)->as<LayerNorm2d>();
  net.stem_norm =
      quantize_layernorm(stem_norm->weight, stem_norm->bias, cfg.ln_eps, net.scales.stem, net.scales.residual[0]);

  for (size_t s = 0; s < 4; ++s) {
    if (s > 0) {
      auto ds = model->downsample_layers[s]->as<torch::nn::Sequential>();
      auto norm = ds->ptr(0)->as<LayerNorm2d>();
      auto dconv = ds->ptr(1)->as<torch::nn::Conv2d>();
      const float u = int16_scale(ranges, "ds." + std::to_string(s) + ".norm");
      QDownsample d;
      d.norm = quantize_layernorm(norm->weight, norm->bias, cfg.ln_eps, net.scales.residual[s - 1], u);
      const std::string name = "ds." + std::to_string(s);
      d.conv =
          quantize_linear(patch_major(dconv->weight), to_vector(dconv->bias), int32_t(dconv->weight.size(0)),
                          int32_t(4 * dconv->weight.size(1)), linear_input(ranges, name + ".norm", u, name, options),
                          net.scales.residual[s], false, patch_mean(range_of(ranges, name + ".norm").channel_mean),
                          rounding_gram(ranges, name + ".norm", options));
      net.downsamples.push_back(std::move(d));
    }
    std::vector<QBlock> blocks;
    size_t b = 0;
    for (const auto& block : *model->stages[s]->as<torch::nn::ModuleList>()) {
      blocks.push_back(quantize_block(*block->as<Block>(), int32_t(s), block_name(s, b), net.scales.residual[s], ranges,
                                      cfg.ln_eps, options));
      ++b;
    }
    net.stages.push_back(std::move(blocks));
  }

  net.head_grid = {int32_t(cfg.head.grid[0]), int32_t(cfg.head.grid[1])};
  const float hn = int16_scale(ranges, "head.norm");
  net.head_norm = quantize_layernorm(model->norm->weight, model->norm->bias, cfg.ln_eps, net.scales.residual[3], hn);
  net.head = quantize_linear(to_vector(model->head->weight), to_vector(model->head->bias), 4,
                             int32_t(model->head->weight.size(1)), {hn, {0, 0}}, 0, true,
                             range_of(ranges, "head.norm").channel_mean);
  gz_head_dequant_compute(hn, net.head.weight_scale.data(), net.head_dequant.data(), net.head_dequant_lo.data());
  for (const std::string& name : options.int8_layers) {
    const QLinear* l = net.layer(name);
    if (!l || !l->int8_input()) throw Error("quantize: no pointwise layer '" + name + "' to feed int8 inputs");
  }
  net.tune = tune_data(*model, options.input_h, options.input_w);
  net.tune.head_norm_scale = hn;
  return net;
}

std::array<float, 4> float_predict(GazeNet& model, const Frame& frame, int32_t h, int32_t w) {
  torch::NoGradGuard no_grad;
  model->eval();
  const at::Tensor out = model->forward(frames_to_batch({frame}, 0, 1, h, w));
  const std::vector<float> d = to_vector(gaze_directions(out));
  return {d[0], d[1], d[2], gaze_log_scales(out).item<float>()};
}

std::map<std::string, at::Tensor> float_activations(GazeNet& model, const Frame& frame,
                                                    const QuantizeOptions& options) {
  require_exportable_head(model->config());
  torch::NoGradGuard no_grad;
  model->eval();
  std::map<std::string, at::Tensor> tensors;
  const Observe keep = [&](const std::string& name, const at::Tensor& t) {
    tensors[name] = t.contiguous();
    return t;
  };
  shadow_forward(model, frames_to_batch({frame}, 0, 1, options.input_h, options.input_w), keep);
  return tensors;
}

namespace {

// The float model's predictions for `frames`, in batches (as float_predict, one frame each).
std::vector<std::array<float, 4>> float_predictions(GazeNet& model, const std::vector<Frame>& frames, int32_t h,
                                                    int32_t w) {
  torch::NoGradGuard no_grad;
  model->eval();
  std::vector<std::array<float, 4>> out;
  constexpr size_t kBatch = 32;
  for (size_t begin = 0; begin < frames.size(); begin += kBatch) {
    const size_t end = std::min(frames.size(), begin + kBatch);
    const at::Tensor y = model->forward(frames_to_batch(frames, begin, end, h, w));
    const at::Tensor d = gaze_directions(y).contiguous(), s = gaze_log_scales(y).reshape({-1}).contiguous();
    for (size_t i = 0; i < end - begin; ++i) {
      const float* di = d.data_ptr<float>() + 3 * i;
      out.push_back({di[0], di[1], di[2], s.data_ptr<float>()[i]});
    }
  }
  return out;
}

// Float vs fixed point given the float predictions; the integer reference runs on the frames in
// parallel (it is plain C++), the sums are taken in frame order.
QuantizationError compare_with(const std::vector<std::array<float, 4>>& floats, const QuantizedNet& net,
                               const std::vector<Frame>& frames) {
  std::vector<std::array<float, 4>> fixed(frames.size());
  at::parallel_for(0, int64_t(frames.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      fixed[size_t(i)] = qnet_predict(net, frames[size_t(i)].data(), net.input_h, net.input_w);
  });
  QuantizationError e;
  for (size_t i = 0; i < frames.size(); ++i) {
    const auto& f = floats[i];
    const auto& q = fixed[i];
    const double deg = angular_error_deg({f[0], f[1], f[2]}, {q[0], q[1], q[2]});
    e.mean_deg += deg;
    e.max_deg = std::max(e.max_deg, deg);
    e.mean_log_scale += std::fabs(double(f[3]) - q[3]);
    ++e.frames;
  }
  if (e.frames) {
    e.mean_deg /= double(e.frames);
    e.mean_log_scale /= double(e.frames);
  }
  return e;
}

}  // namespace

QuantizationError compare_float_fixed(GazeNet& model, const QuantizedNet& net, const std::vector<Frame>& frames) {
  return compare_with(float_predictions(model, frames, net.input_h, net.input_w), net, frames);
}

Int8Choice choose_int8_layers(GazeNet& model, const ActivationRanges& ranges, const QuantizeOptions& options,
                              const std::vector<Frame>& frames, double budget_deg, double max_deg) {
  if (frames.empty()) throw Error("export.int8=auto: no frames for the sensitivity pass");
  Int8Choice choice;
  choice.frames = frames.size();
  choice.budget_deg = budget_deg;
  choice.max_deg = max_deg;
  const auto floats = float_predictions(model, frames, options.input_h, options.input_w);
  size_t int8_macs = 0;  // of the last network measured
  const auto angle_with = [&](const std::vector<std::string>& layers) {
    QuantizeOptions o = options;
    o.int8_layers = std::set<std::string>(layers.begin(), layers.end());
    const QuantizedNet net = quantize_model(model, ranges, o);
    ++choice.evaluations;
    int8_macs = net.int8_macs();
    return compare_with(floats, net, frames).mean_deg;
  };
  choice.base_deg = choice.chosen_deg = angle_with({});
  const double bound = choice.bound_deg = std::max(choice.base_deg, std::min(choice.base_deg + budget_deg, max_deg));
  QuantizeOptions none = options;
  none.int8_layers.clear();
  const std::vector<std::string> candidates = quantize_model(model, ranges, none).int8_candidates();

  struct Ranked {
    std::string name;
    double cost, per_mac;
  };
  std::vector<Ranked> ranked;
  for (const std::string& name : candidates) {
    const double cost = angle_with({name}) - choice.base_deg;
    ranked.push_back({name, cost, std::max(cost, 0.0) / double(std::max<size_t>(1, int8_macs))});
  }
  // Cheapest degrees per multiply-accumulate first; stable, so ties keep the network's order.
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const Ranked& a, const Ranked& b) { return a.per_mac < b.per_mac; });
  for (const Ranked& r : ranked) choice.ranking.emplace_back(r.name, r.cost);
  const auto prefix = [&](size_t n) {
    std::vector<std::string> names;
    for (size_t i = 0; i < n; ++i) names.push_back(ranked[i].name);
    return names;
  };
  // Bisection for the longest prefix within the bound; `good` is always a measured prefix.
  size_t good = 0, bad = ranked.size() + 1;
  double good_deg = choice.base_deg;
  while (bad - good > 1) {
    const size_t mid = (good + bad) / 2;
    const double deg = angle_with(prefix(mid));
    if (deg <= bound) {
      good = mid;
      good_deg = deg;
    } else {
      bad = mid;
    }
  }
  choice.layers = prefix(good);
  choice.chosen_deg = good_deg;
  return choice;
}

TuneData tune_data(GazeNetImpl& model, int32_t input_h, int32_t input_w) {
  const ModelConfig& cfg = model.config();
  require_exportable_head(cfg);
  TuneData t;
  t.height = input_h / 32, t.width = input_w / 32;
  t.channels = int32_t(cfg.dims.back());
  t.grid_h = int32_t(cfg.head.grid[0]), t.grid_w = int32_t(cfg.head.grid[1]);
  t.norm_eps = float(cfg.ln_eps);
  t.slope = float(cfg.adapter.slope);
  t.scale_trained = cfg.head.uncertainty;
  const auto& stage = *model.stages[model.stages->size() - 1]->as<torch::nn::ModuleList>();
  if (4 * t.channels > GZ_TUNE_MAX_GRN)
    throw Error("personalisation on the device: the last stage is wider than GZ_TUNE_MAX_GRN / 4 channels");
  if (stage.size() > GZ_TUNE_MAX_BLOCKS)
    throw Error("personalisation on the device: the last stage has more than " + std::to_string(GZ_TUNE_MAX_BLOCKS) +
                " blocks");
  for (size_t b = 0; b < stage.size(); ++b) {
    BlockImpl& block = *stage[b]->as<Block>();
    if (!block.adapter) return {};
    AdapterImpl& a = *block.adapter;
    t.hidden = int32_t(a.down->options.out_features());
    t.bn_eps = float(a.bn->options.eps());
    TuneBlockData d;
    d.bn_mean = to_vector(a.bn->running_mean);
    d.bn_var = to_vector(a.bn->running_var);
    for (const at::Tensor& p : {a.down->weight, a.down->bias, a.bn->weight, a.bn->bias, a.up->weight, a.up->bias}) {
      const std::vector<float> v = to_vector(p);
      t.adapters.insert(t.adapters.end(), v.begin(), v.end());
    }
    if (b > 0) {
      d.dw_weight = to_vector(block.dwconv->weight.reshape({t.channels, 49}).t());  // [49][C]
      d.dw_bias = to_vector(block.dwconv->bias);
      d.norm_weight = to_vector(block.norm->weight);
      d.norm_bias = to_vector(block.norm->bias);
      d.pw1_weight = to_vector(block.pwconv1->weight.t());  // [in][out]
      d.pw1_bias = to_vector(block.pwconv1->bias);
      d.grn_gamma = to_vector(block.grn->gamma);
      d.grn_beta = to_vector(block.grn->beta);
      d.pw2_weight = to_vector(block.pwconv2->weight.t());
      d.pw2_bias = to_vector(block.pwconv2->bias);
    }
    t.blocks.push_back(std::move(d));
  }
  t.head_norm_weight = to_vector(model.norm->weight);
  t.head_norm_bias = to_vector(model.norm->bias);
  t.head_weight = to_vector(model.head->weight);
  t.head_bias = to_vector(model.head->bias);
  return t;
}

}  // namespace gaze
