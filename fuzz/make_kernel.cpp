// Writes a small generated kernel for the kernel fuzzers, without LibTorch: a QuantizedNet with
// random int8 weights and valid requantisations (the code generator only needs the shapes and
// the ranges it emits), exported by the real code generator, plus seed inputs:
//
//   fuzz_make_kernel OUT_DIR   ->  OUT_DIR/{dftgaze.h, dftgaze.cpp, dftgaze_tool.cpp, ...}
//                                  OUT_DIR/seeds/fuzz_kernel_blob/*          (a valid user blob,
//                                                                             and its payload)
//                                  OUT_DIR/seeds/fuzz_kernel_frames/*.gzfr   (valid frame files)
// The build runs it whenever the generator changes, so the fuzzers test today's kernel code.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "export/codegen.h"
#include "export/layers.h"

namespace fs = std::filesystem;
using namespace gaze;

namespace {

std::mt19937 g_rng(20261201);

int32_t uniform(int32_t lo, int32_t hi) { return std::uniform_int_distribution<int32_t>(lo, hi)(g_rng); }

std::vector<int8_t> int8s(size_t n) {
  std::vector<int8_t> v(n);
  for (auto& x : v) x = int8_t(uniform(-64, 63));
  return v;
}

QLinear linear(int32_t out, int32_t in, bool two_planes, bool requantised = true) {
  QLinear l;
  l.in = in;
  l.out = out;
  l.weight = int8s(size_t(out) * in);
  if (two_planes) l.weight_lo = int8s(l.weight.size());
  const double acc_to_out = 1.0 / (64.0 * in);
  for (int32_t o = 0; o < out; ++o) {
    l.weight_scale.push_back(0.01f);
    l.bias.push_back(uniform(-1000, 1000));
    if (two_planes) l.bias_lo.push_back(uniform(-100, 100));
    if (!requantised) continue;
    l.requant.push_back(gz_requant_compute(two_planes ? 256.0 * acc_to_out : acc_to_out));
    if (two_planes) l.requant_lo.push_back(gz_requant_compute(acc_to_out));
  }
  return l;
}

QLayerNorm norm(int32_t channels) {
  QLayerNorm n;
  n.channels = channels;
  n.eps = 1000;
  for (int32_t c = 0; c < channels; ++c) {
    const gz_requant r = gz_requant_compute(0.02 * (1.0 + 0.01 * c));
    n.gamma_multiplier.push_back(r.multiplier);
    n.gamma_shift.push_back(r.shift);
    n.beta.push_back(uniform(-200, 200));
  }
  return n;
}

QBlock block(int32_t dim, bool adapter) {
  QBlock q;
  q.dim = dim;
  q.dw_weight = int8s(size_t(dim) * 49);
  for (int32_t c = 0; c < dim; ++c) {
    q.dw_weight_scale.push_back(0.01f);
    q.dw_bias.push_back(uniform(-500, 500));
    q.dw_requant.push_back(gz_requant_compute(1.0 / (49.0 * 64.0)));
  }
  q.norm = norm(dim);
  q.pw1 = linear(4 * dim, dim, false);
  for (int32_t i = 0; i < GZ_GELU_TABLE; ++i) {  // GELU-shaped: 0 below, identity above
    const int32_t x = i * 64 - 32768;
    q.gelu.push_back(int16_t(x > 32767 ? 32767 : x > 0 ? x : x / 16));  // entry 1024 is x = 32768
  }
  q.grn.channels = 4 * dim;
  q.grn.eps = 1;
  for (int32_t c = 0; c < 4 * dim; ++c) {
    q.grn.gamma.push_back(uniform(-65536, 65536));
    q.grn.beta.push_back(uniform(-100, 100));
  }
  q.grn.scale = gz_requant_compute(1.0 / 4096.0);
  q.pw2 = linear(dim, 4 * dim, false);
  q.pw2.to_s8 = gz_requant_compute(1.0 / 256.0);  // int8 inputs: the fuzzers run both product paths
  q.has_adapter = adapter;
  if (adapter) {
    q.adapter.down = linear(dim / 4, dim, true);
    q.adapter.slope = gz_requant_compute(0.01);
    q.adapter.up = linear(dim, dim / 4, false);
  }
  return q;
}

QuantizedNet synthetic_net() {
  QuantizedNet net;
  net.input_h = net.input_w = 32;
  net.depths = {1, 1, 1, 1};
  net.dims = {16, 16, 32, 64};
  net.stem = linear(net.dims[0], 16, false);
  net.stem_norm = norm(net.dims[0]);
  for (size_t s = 0; s < 4; ++s) {
    if (s > 0) net.downsamples.push_back({norm(net.dims[s - 1]), linear(net.dims[s], 4 * net.dims[s - 1], false)});
    net.stages.push_back({block(net.dims[s], s == 3)});
    if (s == 0) net.stages[0][0].hidden_s8 = gz_requant_compute(1.0 / 128.0);  // stage 1 keeps int8 GELU outputs
    net.scales.residual[s] = 0.01f;
  }
  net.scales.stem = 0.01f;
  net.head_norm = norm(net.dims[3]);
  net.head = linear(4, net.dims[3], true, false);
  for (size_t j = 0; j < 4; ++j) net.head_dequant[j] = 256e-6f, net.head_dequant_lo[j] = 1e-6f;
  return net;
}

void write(const fs::path& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::vector<uint8_t> frames_file(uint32_t count, uint32_t h, uint32_t w) {
  std::vector<uint8_t> bytes = {'G', 'Z', 'F', 'R'};
  for (uint32_t v : {count, h, w})
    for (int b = 0; b < 4; ++b) bytes.push_back(uint8_t(v >> (8 * b)));
  for (size_t i = 0; i < size_t(count) * h * w; ++i) bytes.push_back(uint8_t(uniform(0, 255)));
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_make_kernel OUT_DIR\n";
    return 2;
  }
  const fs::path out = argv[1];
  const QuantizedNet base = synthetic_net();
  write_kernel(base, out.string(), {"a synthetic network for the fuzzers (fuzz/make_kernel.cpp)"});
  QuantizedNet user = base;
  QBlock& last = user.stages[3][0];
  for (auto& w : last.adapter.up.weight) w = int8_t(-w);
  last.adapter.slope = gz_requant_compute(0.2);
  for (auto& w : user.head.weight) w = int8_t(-w);  // a user's own head too
  user.head_dequant[0] *= 2;
  const std::vector<uint8_t> blob = user_blob(base, user);
  write(out / "seeds/fuzz_kernel_blob/user.gzu", blob);
  std::vector<uint8_t> payload = {0};  // even first byte: the fuzzer adds header and CRC
  payload.insert(payload.end(), blob.begin() + 20, blob.end());
  write(out / "seeds/fuzz_kernel_blob/user_payload.bin", payload);
  write(out / "seeds/fuzz_kernel_frames/one_32x32.gzfr", frames_file(1, 32, 32));
  write(out / "seeds/fuzz_kernel_frames/two_7x19.gzfr", frames_file(2, 7, 19));
  write(out / "seeds/fuzz_kernel_frames/one_1x1.gzfr", frames_file(1, 1, 1));
  return 0;
}
