#include "export/qnet.h"

#include <cmath>

#include "export/quantize.h"
#include "libgaze/core/error.h"

namespace gaze {
namespace {

using Tensor16 = std::vector<int16_t>;
using Tensor8 = std::vector<int8_t>;

std::vector<int32_t> pointwise_acc(const QLinear& l, const int8_t* x, int32_t positions) {
  std::vector<int32_t> acc(size_t(positions) * l.out);
  gz_pointwise_acc_s8_ref(x, positions, l.in, l.in_zero_point, l.weight.data(), l.bias.data(), l.out, acc.data());
  return acc;
}

Tensor8 pointwise_s8(const QLinear& l, const int8_t* x, int32_t positions) {
  const std::vector<int32_t> acc = pointwise_acc(l, x, positions);
  Tensor8 y(acc.size());
  for (size_t i = 0; i < acc.size(); ++i) y[i] = gz_requant_s32_to_s8(acc[i], l.requant[i % l.out], l.out_zero_point);
  return y;
}

Tensor16 pointwise_s16(const QLinear& l, const int8_t* x, int32_t positions) {
  const std::vector<int32_t> acc = pointwise_acc(l, x, positions);
  Tensor16 y(acc.size());
  for (size_t i = 0; i < acc.size(); ++i) y[i] = gz_requant_s32_to_s16(acc[i], l.requant[i % l.out]);
  return y;
}

Tensor8 layernorm_s8(const QLayerNorm& n, const Tensor16& x) {
  const gz_layernorm_params p = n.params();
  Tensor8 y(x.size());
  for (size_t i = 0; i < x.size(); i += size_t(n.channels)) gz_layernorm_s16_to_s8(&x[i], &p, &y[i]);
  return y;
}

Tensor16 layernorm_s16(const QLayerNorm& n, const Tensor16& x) {
  const gz_layernorm_params p = n.params();
  Tensor16 y(x.size());
  for (size_t i = 0; i < x.size(); i += size_t(n.channels)) gz_layernorm_s16_to_s16(&x[i], &p, &y[i]);
  return y;
}

void apply_lut(const Lut8& lut, Tensor8& x) {
  for (int8_t& v : x) v = gz_lut_s8_apply(lut.data(), v);
}

void grn(const QGrn& g, Tensor8& x) {
  const gz_grn_params p = g.params();
  const size_t c_count = size_t(g.channels);
  std::vector<int64_t> sum_sq(c_count, 0);
  for (size_t i = 0; i < x.size(); ++i) {
    const int64_t d = int64_t(x[i]) - g.in_zero_point;
    sum_sq[i % c_count] += d * d;
  }
  std::vector<int32_t> a(c_count);
  gz_grn_coefficients(sum_sq.data(), &p, a.data());
  for (size_t i = 0; i < x.size(); ++i) x[i] = gz_grn_apply_s8(x[i], a[i % c_count], g.beta[i % c_count], &p);
}

void add_saturating(Tensor16& r, const Tensor16& f) {
  for (size_t i = 0; i < r.size(); ++i) r[i] = int16_t(gz_clamp_s32(int64_t(r[i]) + f[i], -32768, 32767));
}

void block_forward(const QBlock& b, Tensor16& r, int32_t h, int32_t w) {
  const int32_t positions = h * w;
  std::vector<int32_t> acc(r.size());
  gz_dwconv7x7_acc_s16_ref(r.data(), h, w, b.dim, b.dw_weight.data(), b.dw_bias.data(), acc.data());
  Tensor16 t(r.size());
  for (size_t i = 0; i < acc.size(); ++i) t[i] = gz_requant_s32_to_s16(acc[i], b.dw_requant[i % size_t(b.dim)]);
  const Tensor8 u = layernorm_s8(b.norm, t);
  Tensor8 hidden = pointwise_s8(b.pw1, u.data(), positions);
  apply_lut(b.gelu, hidden);
  grn(b.grn, hidden);
  const Tensor16 f = pointwise_s16(b.pw2, hidden.data(), positions);
  add_saturating(r, f);
  if (b.has_adapter) {
    const QAdapter& a = b.adapter;
    Tensor8 f8(f.size());
    for (size_t i = 0; i < f.size(); ++i) f8[i] = gz_requant_s32_to_s8(f[i], a.to_s8, a.in_zero_point);
    Tensor8 bottleneck = pointwise_s8(a.down, f8.data(), positions);
    apply_lut(a.leaky_relu, bottleneck);
    add_saturating(r, pointwise_s16(a.up, bottleneck.data(), positions));
  }
}

// Gathers non-overlapping k x k patches of a [h][w][c] tensor into [h/k * w/k][(ky, kx, c)].
template <class T>
std::vector<T> gather_patches(const T* x, int32_t h, int32_t w, int32_t c, int32_t k) {
  std::vector<T> out(size_t(h) * w * c);
  size_t o = 0;
  for (int32_t y = 0; y < h / k; ++y)
    for (int32_t xx = 0; xx < w / k; ++xx)
      for (int32_t ky = 0; ky < k; ++ky)
        for (int32_t kx = 0; kx < k; ++kx)
          for (int32_t ch = 0; ch < c; ++ch) out[o++] = x[((y * k + ky) * w + xx * k + kx) * c + ch];
  return out;
}

}  // namespace

std::array<float, 4> qnet_head_output(const int32_t* acc, const std::array<float, 4>& dequant) {
  std::array<float, 4> out;
  for (int j = 0; j < 4; ++j) out[size_t(j)] = float(acc[j]) * dequant[size_t(j)];
  // The generated kernel does exactly these float operations (compiled without FP contraction).
  const float length = std::sqrt(out[0] * out[0] + out[1] * out[1] + out[2] * out[2]);
  if (length > 0) {
    for (int j = 0; j < 3; ++j) out[size_t(j)] = out[size_t(j)] / length;
  }
  return out;
}

std::vector<uint8_t> qnet_resample(const QuantizedNet& net, const uint8_t* eye, int32_t h, int32_t w) {
  if (eye == nullptr || h < 1 || w < 1) throw Error("qnet_predict: empty eye image");
  std::vector<uint8_t> image(size_t(net.input_h) * net.input_w);
  gz_resample_u8(eye, h, w, image.data(), net.input_h, net.input_w);
  return image;
}

std::array<float, 4> qnet_predict(const QuantizedNet& net, const uint8_t* eye, int32_t h, int32_t w, QTrace* trace) {
  const std::vector<uint8_t> image = qnet_resample(net, eye, h, w);
  int32_t height = net.input_h / 4, width = net.input_w / 4;

  Tensor8 pixels(image.size());
  for (size_t i = 0; i < image.size(); ++i) pixels[i] = int8_t(int32_t(image[i]) - 128);
  const Tensor8 patches = gather_patches(pixels.data(), net.input_h, net.input_w, 1, 4);
  Tensor16 r = layernorm_s16(net.stem_norm, pointwise_s16(net.stem, patches.data(), height * width));
  if (trace) trace->stem_output = r;

  for (size_t s = 0; s < net.stages.size(); ++s) {
    if (s > 0) {
      const QDownsample& d = net.downsamples[s - 1];
      const Tensor8 normed = layernorm_s8(d.norm, r);
      const Tensor8 gathered = gather_patches(normed.data(), height, width, d.norm.channels, 2);
      height /= 2;
      width /= 2;
      r = pointwise_s16(d.conv, gathered.data(), height * width);
    }
    for (const QBlock& b : net.stages[s]) block_forward(b, r, height, width);
    if (trace) trace->stage_outputs[s] = r;
  }

  const int32_t c_last = net.dims.back(), positions = height * width;
  Tensor16 pooled(static_cast<size_t>(c_last));
  for (int32_t c = 0; c < c_last; ++c) {
    int64_t sum = 0;
    for (int32_t p = 0; p < positions; ++p) sum += r[size_t(p) * c_last + c];
    pooled[size_t(c)] = int16_t(sum >= 0 ? (sum + positions / 2) / positions : -((-sum + positions / 2) / positions));
  }
  const Tensor8 normed = layernorm_s8(net.head_norm, pooled);
  const std::vector<int32_t> acc = pointwise_acc(net.head, normed.data(), 1);
  if (trace) std::copy(acc.begin(), acc.end(), trace->head_acc.begin());
  return qnet_head_output(acc.data(), net.head_dequant);
}

namespace {
size_t linear_bytes(const QLinear& l) {
  return l.weight.size() + 4 * l.bias.size() + 8 * l.requant.size();
}
size_t norm_bytes(const QLayerNorm& n) { return 12 * size_t(n.channels); }
}  // namespace

size_t QuantizedNet::weight_bytes() const {
  size_t bytes = linear_bytes(stem) + norm_bytes(stem_norm) + norm_bytes(head_norm) + linear_bytes(head);
  for (const auto& d : downsamples) bytes += norm_bytes(d.norm) + linear_bytes(d.conv);
  for (const auto& stage : stages)
    for (const QBlock& b : stage) {
      bytes += b.dw_weight.size() + 12 * b.dw_bias.size() + norm_bytes(b.norm) + linear_bytes(b.pw1) + 256 +
               8 * size_t(b.grn.channels) + linear_bytes(b.pw2);
      if (b.has_adapter) bytes += linear_bytes(b.adapter.down) + 256 + linear_bytes(b.adapter.up);
    }
  return bytes;
}

size_t QuantizedNet::macs() const {
  auto linear = [](const QLinear& l, size_t positions) { return positions * size_t(l.in) * size_t(l.out); };
  size_t h = size_t(input_h) / 4, w = size_t(input_w) / 4;
  size_t total = linear(stem, h * w);
  for (size_t s = 0; s < stages.size(); ++s) {
    if (s > 0) {
      h /= 2;
      w /= 2;
      total += linear(downsamples[s - 1].conv, h * w);
    }
    for (const QBlock& b : stages[s]) {
      total += h * w * (49 * size_t(b.dim) + size_t(b.pw1.in) * b.pw1.out + size_t(b.pw2.in) * b.pw2.out);
      if (b.has_adapter) total += linear(b.adapter.down, h * w) + linear(b.adapter.up, h * w);
    }
  }
  return total + linear(head, 1);
}

}  // namespace gaze
