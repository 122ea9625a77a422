#include "export/qnet.h"

#include <algorithm>
#include <cmath>

#include "export/quantize.h"
#include "libgaze/core/error.h"

namespace gaze {
namespace {

using Tensor16 = std::vector<int16_t>;

std::vector<int32_t> pointwise_acc(const int8_t* weight, const std::vector<int32_t>& bias, int32_t in, int32_t out,
                                   const int16_t* x, int32_t positions) {
  std::vector<int32_t> acc(size_t(positions) * out);
  gz_pointwise_acc_s16_ref(x, positions, in, weight, bias.data(), out, acc.data());
  return acc;
}

Tensor16 requantise(const std::vector<int32_t>& acc, const std::vector<gz_requant>& requant) {
  Tensor16 y(acc.size());
  for (size_t i = 0; i < acc.size(); ++i) y[i] = gz_requant_s32_to_s16(acc[i], requant[i % requant.size()]);
  return y;
}

// One plane, or the saturating sum of the two planes' int16 outputs; an int8-input layer first
// requantises its input to [-127, 127] unless `given_s8` says x16 already holds int8 values.
Tensor16 pointwise(const QLinear& l, const Tensor16& x16, int32_t positions, bool given_s8 = false) {
  Tensor16 x8;
  if (l.int8_input() && !given_s8) {
    x8.resize(x16.size());
    for (size_t i = 0; i < x16.size(); ++i) x8[i] = gz_requant_s32_to_s8(x16[i], l.to_s8);
  }
  const Tensor16& x = l.int8_input() && !given_s8 ? x8 : x16;
  Tensor16 y = requantise(pointwise_acc(l.weight.data(), l.bias, l.in, l.out, x.data(), positions), l.requant);
  if (l.two_planes()) {
    const Tensor16 lo =
        requantise(pointwise_acc(l.weight_lo.data(), l.bias_lo, l.in, l.out, x.data(), positions), l.requant_lo);
    for (size_t i = 0; i < y.size(); ++i) y[i] = int16_t(gz_clamp_s32(int64_t(y[i]) + lo[i], -32768, 32767));
  }
  return y;
}

Tensor16 layernorm(const QLayerNorm& n, const Tensor16& x) {
  const gz_layernorm_params p = n.params();
  Tensor16 y(x.size());
  for (size_t i = 0; i < x.size(); i += size_t(n.channels)) gz_layernorm_s16(&x[i], &p, &y[i]);
  return y;
}

// In place; `s8`: x holds int8 values and gets int8 values back.
void grn(const QGrn& g, Tensor16& x, bool s8) {
  const gz_grn_params p = g.params();
  const size_t c_count = size_t(g.channels);
  std::vector<int64_t> sum_sq(c_count, 0);
  for (size_t i = 0; i < x.size(); ++i) sum_sq[i % c_count] += int64_t(x[i]) * x[i];
  std::vector<uint32_t> norms(c_count);
  std::vector<int32_t> multiplier(c_count), shift(c_count);
  gz_grn_requants(sum_sq.data(), &p, norms.data(), multiplier.data(), shift.data());
  std::vector<int16_t> m16(c_count), neg_right(c_count), beta16(c_count);
  if (s8) gz_grn_requants_s8(multiplier.data(), shift.data(), &p, m16.data(), neg_right.data(), beta16.data());
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t c = i % c_count;
    x[i] = s8 ? gz_grn_apply_s8(int8_t(x[i]), m16[c], neg_right[c], beta16[c])
              : gz_grn_apply_s16(x[i], multiplier[c], shift[c], g.beta[c]);
  }
}

void add_saturating(Tensor16& r, const Tensor16& f) {
  for (size_t i = 0; i < r.size(); ++i) r[i] = int16_t(gz_clamp_s32(int64_t(r[i]) + f[i], -32768, 32767));
}

// `tune_f` (optional) receives the pw2 output f, and `tune_c` (optional) r + f before the adapter.
void block_forward(const QBlock& b, Tensor16& r, int32_t h, int32_t w, const std::string& name, QTrace* trace,
                   Tensor16* tune_c = nullptr, Tensor16* tune_f = nullptr) {
  const auto record = [&](const char* what, const Tensor16& t) {
    if (trace && trace->record_blocks) trace->blocks[name + what] = t;
  };
  const int32_t positions = h * w;
  std::vector<int32_t> acc(r.size());
  gz_dwconv7x7_acc_s16_ref(r.data(), h, w, b.dim, b.dw_weight.data(), b.dw_bias.data(), acc.data());
  const Tensor16 t = requantise(acc, b.dw_requant);
  record(".dw", t);
  const Tensor16 u = layernorm(b.norm, t);
  record(".norm", u);
  Tensor16 hidden = pointwise(b.pw1, u, positions);
  record(".pw1", hidden);
  for (int16_t& v : hidden) v = gz_gelu_s16(v, b.gelu.data());
  if (b.int8_hidden()) {
    for (int16_t& v : hidden) v = gz_requant_s32_to_s8(v, b.hidden_s8);
  }
  grn(b.grn, hidden, b.int8_hidden());
  record(".grn", hidden);
  const Tensor16 f = pointwise(b.pw2, hidden, positions, b.int8_hidden());
  record(".pw2", f);
  add_saturating(r, f);
  if (tune_c) *tune_c = r;
  if (tune_f) *tune_f = f;
  if (b.has_adapter) {
    Tensor16 bottleneck = pointwise(b.adapter.down, f, positions);
    record(".down", bottleneck);
    for (int16_t& v : bottleneck) v = gz_leaky_relu_s16(v, b.adapter.slope);
    add_saturating(r, pointwise(b.adapter.up, bottleneck, positions));
  }
}

// Gathers non-overlapping k x k patches of a [h][w][c] tensor into [h/k * w/k][(ky, kx, c)].
Tensor16 gather_patches(const int16_t* x, int32_t h, int32_t w, int32_t c, int32_t k) {
  Tensor16 out(size_t(h) * w * c);
  size_t o = 0;
  for (int32_t y = 0; y < h / k; ++y)
    for (int32_t xx = 0; xx < w / k; ++xx)
      for (int32_t ky = 0; ky < k; ++ky)
        for (int32_t kx = 0; kx < k; ++kx)
          for (int32_t ch = 0; ch < c; ++ch) out[o++] = x[((y * k + ky) * w + xx * k + kx) * c + ch];
  return out;
}

}  // namespace

std::vector<uint8_t> qnet_resample(const QuantizedNet& net, const uint8_t* eye, int32_t h, int32_t w) {
  if (eye == nullptr || h < 1 || w < 1) throw Error("qnet_predict: empty eye image");
  std::vector<uint8_t> image(size_t(net.input_h) * net.input_w);
  gz_resample_u8(eye, h, w, image.data(), net.input_h, net.input_w);
  return image;
}

std::array<float, 4> qnet_predict(const QuantizedNet& net, const uint8_t* eye, int32_t h, int32_t w, QTrace* trace) {
  const std::vector<uint8_t> image = qnet_resample(net, eye, h, w);
  int32_t height = net.input_h / 4, width = net.input_w / 4;

  Tensor16 pixels(image.size());
  for (size_t i = 0; i < image.size(); ++i) pixels[i] = int16_t(int32_t(image[i]) - 128);
  const Tensor16 patches = gather_patches(pixels.data(), net.input_h, net.input_w, 1, 4);
  Tensor16 r = layernorm(net.stem_norm, pointwise(net.stem, patches, height * width));
  if (trace) trace->stem_output = r;

  for (size_t s = 0; s < net.stages.size(); ++s) {
    if (s > 0) {
      const QDownsample& d = net.downsamples[s - 1];
      const Tensor16 gathered = gather_patches(layernorm(d.norm, r).data(), height, width, d.norm.channels, 2);
      height /= 2;
      width /= 2;
      r = pointwise(d.conv, gathered, height * width);
    }
    for (size_t b = 0; b < net.stages[s].size(); ++b) {
      const bool tune_point = trace && b == 0 && s + 1 == net.stages.size();
      block_forward(net.stages[s][b], r, height, width, std::to_string(s) + "." + std::to_string(b), trace,
                    tune_point ? &trace->tune_c : nullptr, tune_point ? &trace->tune_f : nullptr);
    }
    if (trace) trace->stage_outputs[s] = r;
  }

  const int32_t c_last = net.dims.back();
  Tensor16 pooled(size_t(c_last) * size_t(net.head_grid[0] * net.head_grid[1]));
  gz_pool_cells_s16(r.data(), height, width, c_last, net.head_grid[0], net.head_grid[1], pooled.data());
  const Tensor16 normed = layernorm(net.head_norm, pooled);  // per cell
  std::array<int64_t, 4> acc, acc_lo;
  gz_head_acc_s16(normed.data(), net.head.in, net.head.weight.data(), net.head.weight_lo.data(), net.head.bias.data(),
                  net.head.bias_lo.data(), acc.data(), acc_lo.data());
  if (trace) trace->head_acc = acc, trace->head_acc_lo = acc_lo;
  std::array<float, 4> out;
  gz_head_output(acc.data(), acc_lo.data(), net.head_dequant.data(), net.head_dequant_lo.data(), out.data());
  return out;
}

namespace {
size_t linear_bytes(const QLinear& l) {
  return l.weight.size() + l.weight_lo.size() + 4 * (l.bias.size() + l.bias_lo.size());
}

// Multiply-accumulates per frame, all or only the int8 x int8 ones.
size_t count_macs(const QuantizedNet& net, bool int8_only) {
  const auto linear = [&](const QLinear& l, size_t positions) {
    return int8_only && !l.int8_input() ? 0 : positions * size_t(l.in) * size_t(l.out);
  };
  const size_t dw_taps = int8_only ? 0 : 49;
  size_t h = size_t(net.input_h) / 4, w = size_t(net.input_w) / 4;
  size_t total = linear(net.stem, h * w);
  for (size_t s = 0; s < net.stages.size(); ++s) {
    if (s > 0) {
      h /= 2;
      w /= 2;
      total += linear(net.downsamples[s - 1].conv, h * w);
    }
    for (const QBlock& b : net.stages[s]) {
      total += h * w * dw_taps * size_t(b.dim) + linear(b.pw1, h * w) + linear(b.pw2, h * w);
      if (b.has_adapter) total += linear(b.adapter.down, h * w) + linear(b.adapter.up, h * w);
    }
  }
  return total + linear(net.head, 1);
}
}  // namespace

size_t QuantizedNet::weight_bytes() const {
  size_t bytes = linear_bytes(stem) + linear_bytes(head);
  for (const auto& d : downsamples) bytes += linear_bytes(d.conv);
  for (const auto& stage : stages)
    for (const QBlock& b : stage) {
      bytes += b.dw_weight.size() + 4 * b.dw_bias.size() + linear_bytes(b.pw1) + linear_bytes(b.pw2);
      if (b.has_adapter) bytes += linear_bytes(b.adapter.down) + linear_bytes(b.adapter.up);
    }
  return bytes;
}

size_t QuantizedNet::macs() const { return count_macs(*this, false); }

size_t QuantizedNet::int8_macs() const { return count_macs(*this, true); }

std::vector<std::string> QuantizedNet::int8_candidates() const {
  std::vector<std::string> names = {"stem"};
  for (size_t s = 0; s < stages.size(); ++s) {
    if (s > 0) names.push_back("ds." + std::to_string(s));
    for (size_t b = 0; b < stages[s].size(); ++b) {
      const std::string block = std::to_string(s) + "." + std::to_string(b);
      names.push_back(block + ".pw1");
      names.push_back(block + ".pw2");
    }
  }
  return names;
}

const QLinear* QuantizedNet::layer(const std::string& name) const {
  if (name == "stem") return &stem;
  for (size_t s = 1; s <= downsamples.size(); ++s)
    if (name == "ds." + std::to_string(s)) return &downsamples[s - 1].conv;
  for (size_t s = 0; s < stages.size(); ++s)
    for (size_t b = 0; b < stages[s].size(); ++b) {
      const std::string block = std::to_string(s) + "." + std::to_string(b);
      if (name == block + ".pw1") return &stages[s][b].pw1;
      if (name == block + ".pw2") return &stages[s][b].pw2;
    }
  return nullptr;
}

}  // namespace gaze
