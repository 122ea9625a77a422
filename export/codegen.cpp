#include "export/codegen.h"

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "export/kernel.h"
#include "export/runtime_sources.h"
#include "export/tune_run.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"

namespace gaze {
namespace fs = std::filesystem;
namespace {

// ---------------------------------------------------------------------------------------------
// The kernel's packed layouts (see export/kernel.h).

struct PackedPw {
  int32_t in = 0, out = 0, out8 = 0, out16 = 0;
  std::vector<int8_t> weight;
  std::vector<int32_t> bias, multiplier, left, right;
  gz_requant to_s8{0, 0};
};

struct PackedDw {
  int32_t channels = 0;
  std::vector<int8_t> weight;
  std::vector<int32_t> bias, multiplier, left, right;
};

void split_requant(const gz_requant& r, int32_t* left, int32_t* right, const char* what) {
  *left = r.shift > 0 ? r.shift : 0;
  *right = r.shift > 0 ? 0 : -r.shift;
  if (*left > 30 || *right > 31) throw Error(std::string("export: requantisation shift out of range in ") + what);
}

// One weight plane of a layer (lo = the low plane of a two-plane layer), by gz_pack_pw_plane.
PackedPw pack_pw(const QLinear& l, const char* what, bool lo = false) {
  PackedPw p;
  p.in = l.in;
  p.out = l.out;
  p.to_s8 = l.to_s8;
  if (l.int8_input() && (l.two_planes() || !gz_requant_valid(l.to_s8)))
    throw Error(std::string("export: bad int8 input requantisation in ") + what);
  p.out8 = (l.out + 7) / 8 * 8;
  p.out16 = (l.out + 15) / 16 * 16;
  p.weight.resize(size_t((l.in + 1) / 2) * p.out8 * 2);
  p.bias.resize(size_t(p.out16));
  p.multiplier.resize(size_t(p.out16));
  p.left.resize(size_t(p.out16));
  p.right.resize(size_t(p.out16));
  if (gz_pack_pw_plane((lo ? l.weight_lo : l.weight).data(), (lo ? l.bias_lo : l.bias).data(),
                       (lo ? l.requant_lo : l.requant).data(), l.in, l.out, p.weight.data(), p.bias.data(),
                       p.multiplier.data(), p.left.data(), p.right.data()))
    throw Error(std::string("export: requantisation shift out of range in ") + what);
  return p;
}

PackedDw pack_dw(const QBlock& b) {
  PackedDw p;
  p.channels = b.dim;
  p.weight.resize(b.dw_weight.size());
  for (int32_t c = 0; c < b.dim; ++c)
    for (int32_t k = 0; k < 49; ++k) p.weight[size_t(k) * b.dim + c] = b.dw_weight[size_t(c) * 49 + k];
  p.bias = b.dw_bias;
  for (const gz_requant& r : b.dw_requant) {
    p.multiplier.push_back(r.multiplier);
    p.left.push_back(0);
    p.right.push_back(0);
    split_requant(r, &p.left.back(), &p.right.back(), "a depthwise conv");
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Byte streams: the fingerprint and the user blob serialise parameters in one fixed order.

struct Bytes {
  std::vector<uint8_t> data;
  template <class T>
  void put(const std::vector<T>& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    data.insert(data.end(), p, p + v.size() * sizeof(T));
  }
  void put32(int64_t v) {
    const int32_t x = int32_t(v);
    const auto* p = reinterpret_cast<const uint8_t*>(&x);
    data.insert(data.end(), p, p + 4);
  }
  void put_requant(const std::vector<gz_requant>& v) {
    for (const gz_requant& r : v) put32(r.multiplier), put32(r.shift);
  }
  void put_linear(const QLinear& l) {
    put32(l.in), put32(l.out);
    put(l.weight), put(l.weight_lo), put(l.bias), put(l.bias_lo), put_requant(l.requant), put_requant(l.requant_lo);
    put_requant({l.to_s8});
  }
  void put_norm(const QLayerNorm& n) {
    put32(n.channels), put32(n.eps), put32(n.eps >> 32);
    put(n.gamma_multiplier), put(n.gamma_shift), put(n.beta);
  }
};

// The blob payload of one adapter, int32 fields first, then int8 (so it stays aligned):
//   slope (multiplier, shift), {bias, multiplier, left, right}[out16] of down_hi, down_lo, up |
//   the weights of down_hi, down_lo, up (each a multiple of 16 bytes, so int32 stays aligned)
struct AdapterPlanes {
  PackedPw down_hi, down_lo, up;
  explicit AdapterPlanes(const QAdapter& a)
      : down_hi(pack_pw(a.down, "an adapter")),
        down_lo(pack_pw(a.down, "an adapter", true)),
        up(pack_pw(a.up, "an adapter")) {}
};

void put_adapter_payload(Bytes& b, gz_requant slope, const AdapterPlanes& planes) {
  b.put32(slope.multiplier), b.put32(slope.shift);
  for (const PackedPw* p : {&planes.down_hi, &planes.down_lo, &planes.up}) {
    b.put(p->bias), b.put(p->multiplier), b.put(p->left), b.put(p->right);
  }
  for (const PackedPw* p : {&planes.down_hi, &planes.down_lo, &planes.up}) b.put(p->weight);
}

// The head's part of the payload (gz_head_write_payload's layout, export/kernel.h).
void put_head_payload(Bytes& b, const QuantizedNet& net) {
  const QLinear& l = net.head;
  gz_head head{l.weight.data(), l.weight_lo.data(), l.bias.data(), l.bias_lo.data(), {}, {}};
  std::copy(net.head_dequant.begin(), net.head_dequant.end(), head.dequant);
  std::copy(net.head_dequant_lo.begin(), net.head_dequant_lo.end(), head.dequant_lo);
  const size_t at = b.data.size();
  b.data.resize(at + gz_head_payload_bytes(l.in));
  gz_head_write_payload(&head, l.in, b.data.data() + at);
}

bool is_user_block(const QuantizedNet& net, size_t stage) { return stage + 1 == net.stages.size(); }

// ---------------------------------------------------------------------------------------------
// C++ emission.

std::string hex_float(float v) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%af", double(v));
  return buffer;
}

class Emitter {
 public:
  std::ostringstream out;
  size_t const_bytes = 0;   // every constant array
  size_t weight_bytes = 0;  // of which weights and biases

  template <class T>
  std::string array(const std::string& name, const std::vector<T>& v, const char* type, bool weights = false) {
    const_bytes += v.size() * sizeof(T);
    if (weights) weight_bytes += v.size() * sizeof(T);
    out << "alignas(32) static const " << type << " " << name << "[" << std::max<size_t>(1, v.size()) << "] = {";
    for (size_t i = 0; i < v.size(); ++i) {
      if (i % 24 == 0) out << "\n   ";
      out << " " << int64_t(v[i]) << ",";
    }
    if (v.empty()) out << "0";
    out << "\n};\n";
    return name;
  }

  std::string float_array(const std::string& name, const std::vector<float>& v) {
    const_bytes += v.size() * sizeof(float);
    out << "alignas(32) static const float " << name << "[" << std::max<size_t>(1, v.size()) << "] = {";
    for (size_t i = 0; i < v.size(); ++i) out << (i % 8 == 0 ? "\n    " : " ") << hex_float(v[i]) << ",";
    if (v.empty()) out << "0";
    out << "\n};\n";
    return name;
  }

  // Returns the C initialiser of a gz_pw whose arrays were emitted under `name`.
  std::string pw(const std::string& name, const QLinear& l, bool lo = false) {
    const PackedPw p = pack_pw(l, name.c_str(), lo);
    if (l.int8_input()) {  // both weight layouts; the target compiles the one it reads (GZ_PW_S8_ROWS)
      std::vector<int8_t> rows(size_t(gz_pw_rows_out(l.out)) * size_t(gz_pw_rows_in(l.in)));
      gz_pack_pw_rows_s8(l.weight.data(), l.in, l.out, rows.data());
      const size_t const_before = const_bytes, weight_before = weight_bytes;
      out << "#if GZ_PW_S8_ROWS\n";
      array(name + "_w", rows, "int8_t", true);
      out << "#else\n";
      const size_t rows_bytes = const_bytes - const_before;
      const_bytes = const_before, weight_bytes = weight_before;
      array(name + "_w", p.weight, "int8_t", true);
      out << "#endif\n";
      const size_t extra = rows_bytes > const_bytes - const_before ? rows_bytes - (const_bytes - const_before) : 0;
      const_bytes += extra, weight_bytes += extra;  // the larger of the two counts
    } else {
      array(name + "_w", p.weight, "int8_t", true);
    }
    array(name + "_b", p.bias, "int32_t", true);
    array(name + "_m", p.multiplier, "int32_t");
    array(name + "_l", p.left, "int32_t");
    array(name + "_r", p.right, "int32_t");
    return init_pw(name, p);
  }

  static std::string init_pw(const std::string& name, const PackedPw& p) {
    std::ostringstream s;
    s << "{" << p.in << ", " << p.out << ", " << p.out8 << ", " << p.out16 << ", " << name << "_w, " << name << "_b, "
      << name << "_m, " << name << "_l, " << name << "_r, {" << p.to_s8.multiplier << ", " << p.to_s8.shift << "}}";
    return s.str();
  }

  std::string norm(const std::string& name, const QLayerNorm& n) {
    array(name + "_gamma_m", n.gamma_multiplier, "int32_t");
    array(name + "_gamma_s", n.gamma_shift, "int32_t");
    array(name + "_beta", n.beta, "int32_t");
    std::ostringstream s;
    s << "{" << n.channels << ", " << n.eps << "LL, " << name << "_gamma_m, " << name << "_gamma_s, " << name
      << "_beta}";
    return s.str();
  }
};

// Headers inlined into the generated source, their project includes removed.
std::string inline_runtime() {
  // The runtime headers hold more helpers than one network uses; inlined into a .cpp, clang
  // (unlike GCC) calls the unused static inline ones unused, which -Werror builds would reject.
  std::string all = "\n#if defined(__GNUC__)\n#pragma GCC diagnostic ignored \"-Wunused-function\"\n#endif\n";
  for (const char* name :
       {"fixed_point.h", "quantize.h", "nonlinear.h", "layers.h", "kernel.h", "tune.h", "tune_run.h"}) {
    std::istringstream in(runtime_source(name));
    all += "\n/* ==== export/" + std::string(name) + " ==== */\n";
    for (std::string line; std::getline(in, line);) {
      if (starts_with(line, "#include \"export/")) continue;
      all += line + "\n";
    }
  }
  return all;
}

constexpr const char* kEmptyAdapter =
    "    {{0, 0, 0, 0, 0, 0, 0, 0, 0, {0, 0}}, {0, 0, 0, 0, 0, 0, 0, 0, 0, {0, 0}}, {0, 0}, "
    "{0, 0, 0, 0, 0, 0, 0, 0, 0, {0, 0}}},\n";

struct Generated {
  std::string header, source;
  KernelSummary summary;
};

// On-device personalisation (export/tune_run.h): the float side and replay pack as constant
// arrays, gz_tune_model filled by a function (its graph holds pointers), and the public entry
// points. Without tune data (no last-stage adapters, export.replay_frames 0) the entry points
// remain and report DFTGAZE_ERROR_NO_ADAPTERS.
std::string tune_source(const QuantizedNet& net, Emitter& e) {
  std::ostringstream s;
  const TuneData& t = net.tune;
  s << "/* On-device personalisation (export/tune_run.h). */\n";
  if (t.empty()) {
    s << "size_t dftgaze_personalize_work_bytes(int k, const dftgaze_personalize_options* options) {\n"
      << "  (void)k;\n  (void)options;\n  return 0;\n}\n"
      << "void dftgaze_personalize_defaults(dftgaze_personalize_options* o) { memset(o, 0, sizeof *o); }\n"
      << "int dftgaze_personalize(const uint8_t* const* eyes, int h, int w, const float* gazes, int k,\n"
      << "                        const dftgaze_personalize_options* options, void* work, size_t work_bytes,\n"
      << "                        uint8_t* blob, size_t blob_bytes) {\n"
      << "  (void)eyes, (void)h, (void)w, (void)gazes, (void)k, (void)options, (void)work, (void)work_bytes, "
         "(void)blob,\n"
      << "      (void)blob_bytes;\n  return DFTGAZE_ERROR_NO_ADAPTERS;\n}\n";
    return s.str();
  }
  const size_t last = net.stages.size() - 1;
  std::ostringstream init;  // the body of tune_model()
  init << "  m.graph.height = " << t.height << ";\n  m.graph.width = " << t.width
       << ";\n  m.graph.channels = " << t.channels << ";\n  m.graph.hidden = " << t.hidden
       << ";\n  m.graph.grid_h = " << t.grid_h << ";\n  m.graph.grid_w = " << t.grid_w
       << ";\n  m.graph.blocks = " << t.blocks.size() << ";\n  m.graph.norm_eps = " << hex_float(t.norm_eps)
       << ";\n  m.graph.bn_eps = " << hex_float(t.bn_eps) << ";\n  m.graph.slope = " << hex_float(t.slope) << ";\n";
  for (size_t b = 0; b < t.blocks.size(); ++b) {
    const TuneBlockData& d = t.blocks[b];
    const std::string n = "tune_b" + std::to_string(b);
    init << "  m.graph.bn_mean[" << b << "] = " << e.float_array(n + "_bn_mean", d.bn_mean) << ";\n"
         << "  m.graph.bn_var[" << b << "] = " << e.float_array(n + "_bn_var", d.bn_var) << ";\n";
    if (b == 0) continue;
    const QBlock& q = net.stages[last][b];
    const std::string body = "  m.graph.body[" + std::to_string(b) + "].";
    init << body << "dw_bias = " << e.float_array(n + "_dw_bias", d.dw_bias) << ";\n"
         << body << "norm_weight = " << e.float_array(n + "_norm_weight", d.norm_weight) << ";\n"
         << body << "norm_bias = " << e.float_array(n + "_norm_bias", d.norm_bias) << ";\n"
         << body << "pw1_bias = " << e.float_array(n + "_pw1_bias", d.pw1_bias) << ";\n"
         << body << "grn_gamma = " << e.float_array(n + "_grn_gamma", d.grn_gamma) << ";\n"
         << body << "grn_beta = " << e.float_array(n + "_grn_beta", d.grn_beta) << ";\n"
         << body << "pw2_bias = " << e.float_array(n + "_pw2_bias", d.pw2_bias) << ";\n"
         << "  m.scales[" << b << "].dw = " << e.float_array(n + "_dw_scale", q.dw_weight_scale) << ";\n"
         << "  m.scales[" << b << "].pw1 = " << e.float_array(n + "_pw1_scale", q.pw1.weight_scale) << ";\n"
         << "  m.scales[" << b << "].pw2 = " << e.float_array(n + "_pw2_scale", q.pw2.weight_scale) << ";\n";
  }
  const gz_requant slope = net.stages[last][0].adapter.slope;
  const size_t replay = t.replay_gaze.size() / 3;
  init << "  m.graph.head_norm_weight = " << e.float_array("tune_head_norm_weight", t.head_norm_weight) << ";\n"
       << "  m.graph.head_norm_bias = " << e.float_array("tune_head_norm_bias", t.head_norm_bias) << ";\n"
       << "  m.graph.head_weight = " << e.float_array("tune_head_weight", t.head_weight) << ";\n"
       << "  m.graph.head_bias = " << e.float_array("tune_head_bias", t.head_bias) << ";\n"
       << "  m.graph.laplace_nll = " << int(t.defaults.laplace_nll) << ";\n"
       << "  m.graph.scale_trained = " << int(t.scale_trained) << ";\n"
       << "  m.blocks = kStage" << last << ";\n"
       << "  m.base_params = " << e.float_array("tune_base_params", t.adapters) << ";\n"
       << "  m.residual_scale = " << hex_float(net.scales.residual[last]) << ";\n"
       << "  m.head_norm_scale = " << hex_float(t.head_norm_scale) << ";\n"
       << "  m.slope.multiplier = " << slope.multiplier << ";\n  m.slope.shift = " << slope.shift << ";\n"
       << "  m.replay_count = " << replay << ";\n"
       << "  m.replay_c = " << e.array("tune_replay_c", t.replay_c, "int16_t") << ";\n"
       << "  m.replay_f = " << e.array("tune_replay_f", t.replay_f, "int16_t") << ";\n"
       << "  m.replay_gaze = " << e.float_array("tune_replay_gaze", t.replay_gaze) << ";\n"
       << "  m.fingerprint = DFTGAZE_FINGERPRINT;\n";
  const TuneDefaults& o = t.defaults;
  s << "static gz_tune_model tune_model(void) {\n  gz_tune_model m;\n  memset(&m, 0, sizeof m);\n"
    << init.str() << "  return m;\n}\n\n"
    << "static gz_tune_options tune_options(const dftgaze_personalize_options* o) {\n"
    << "  gz_tune_options t;\n  t.steps = o->steps;\n  t.batch_size = o->batch_size;\n  t.views = o->views;\n"
    << "  t.lr = o->lr;\n  t.replay_fraction = o->replay_fraction;\n  t.seed = o->seed;\n  t.shift = o->shift;\n"
    << "  t.brightness = o->brightness;\n  t.contrast = o->contrast;\n  t.gamma = o->gamma;\n  t.noise = o->noise;\n"
    << "  t.train_head = o->train_head;\n  return t;\n}\n\n"
    << "void dftgaze_personalize_defaults(dftgaze_personalize_options* o) {\n"
    << "  o->steps = " << o.steps << ";\n  o->batch_size = " << o.batch_size << ";\n  o->views = " << o.views
    << ";\n  o->lr = " << hex_float(o.lr) << ";\n  o->replay_fraction = " << hex_float(o.replay_fraction)
    << ";\n  o->seed = 0;\n  o->shift = " << hex_float(o.shift) << ";\n  o->brightness = " << hex_float(o.brightness)
    << ";\n  o->contrast = " << hex_float(o.contrast) << ";\n  o->gamma = " << hex_float(o.gamma)
    << ";\n  o->noise = " << hex_float(o.noise) << ";\n  o->train_head = " << int(o.train_head) << ";\n}\n\n"
    << "size_t dftgaze_personalize_work_bytes(int k, const dftgaze_personalize_options* options) {\n"
    << "  dftgaze_personalize_options defaults;\n"
    << "  if (!options) dftgaze_personalize_defaults(&defaults), options = &defaults;\n"
    << "  if (k < 1 || options->views < 1) return 0;\n  const gz_tune_model m = tune_model();\n"
    << "  const gz_tune_options o = tune_options(options);\n  return gz_tune_work_bytes(&m, k, &o);\n}\n\n"
    << "int dftgaze_personalize(const uint8_t* const* eyes, int h, int w, const float* gazes, int k,\n"
    << "                        const dftgaze_personalize_options* options, void* work, size_t work_bytes,\n"
    << "                        uint8_t* blob, size_t blob_bytes) {\n"
    << "  dftgaze_personalize_options defaults;\n"
    << "  if (!options) dftgaze_personalize_defaults(&defaults), options = &defaults;\n"
    << "  const gz_tune_model m = tune_model();\n  const gz_tune_options o = tune_options(options);\n"
    << "  return gz_tune_run(&kNet, &m, g_arena, sizeof g_arena, eyes, h, w, gazes, k, &o, work, work_bytes, blob,\n"
    << "                     blob_bytes);\n}\n";
  return s.str();
}

Generated generate(const QuantizedNet& net, const KernelOptions& options) {
  const std::string& provenance = options.provenance;
  if (net.stages.size() != 4 || net.downsamples.size() != 3) throw Error("export: the network needs 4 stages");
  for (int32_t d : net.dims) {
    if (4 * d > GZ_PW_MAX_IN || d > GZ_LAYERNORM_MAX_CHANNELS)
      throw Error("export: stage width too large for the kernel");
  }
  Emitter e;
  e.out << "/* ---- weights and the network table (generated) ---- */\n\n";
  const std::string stem = e.pw("stem", net.stem);
  const std::string stem_norm = e.norm("stem_norm", net.stem_norm);
  std::vector<std::string> downsample;
  for (size_t s = 1; s < 4; ++s) {
    const std::string n = "ds" + std::to_string(s);
    const std::string norm = e.norm(n + "_norm", net.downsamples[s - 1].norm);
    downsample.push_back("{" + norm + ", " + e.pw(n + "_conv", net.downsamples[s - 1].conv) + "}");
  }

  // Last-stage adapters: mutable, so dftgaze_set_user() can repoint them at a user's blob.
  std::ostringstream user_adapters, blocks;
  size_t user_count = 0, payload_bytes = 0;
  std::ostringstream parse;  // the blob walk in dftgaze_set_user
  // Where each requantisation sits in the payload (byte offsets), so dftgaze_set_user can check
  // every shift and multiplier before it copies anything: a blob with a valid CRC but a shift
  // of 256 would otherwise be undefined behaviour in every requantisation of stage 4.
  std::ostringstream requant_rows, slope_offsets;
  size_t requant_row_count = 0, slope_count = 0;
  for (size_t s = 0; s < 4; ++s) {
    std::vector<std::string> inits;
    for (size_t b = 0; b < net.stages[s].size(); ++b) {
      const QBlock& q = net.stages[s][b];
      const std::string n = "s" + std::to_string(s) + "b" + std::to_string(b);
      const PackedDw dw = pack_dw(q);
      e.array(n + "_dw_w", dw.weight, "int8_t", true);
      e.array(n + "_dw_b", dw.bias, "int32_t", true);
      e.array(n + "_dw_m", dw.multiplier, "int32_t");
      e.array(n + "_dw_l", dw.left, "int32_t");
      e.array(n + "_dw_r", dw.right, "int32_t");
      const std::string norm = e.norm(n + "_norm", q.norm);
      const std::string pw1 = e.pw(n + "_pw1", q.pw1);
      if (q.gelu.size() != GZ_GELU_TABLE)
        throw Error("export: " + n + "'s GELU table is not " + std::to_string(GZ_GELU_TABLE) + " entries");
      if (const int32_t at = gz_gelu_table_check(q.gelu.data()); at >= 0)
        throw Error("export: " + n + "'s GELU table steps by more than " + std::to_string(GZ_GELU_MAX_STEP) +
                    " between entries " + std::to_string(at) + " and " + std::to_string(at + 1));
      const std::string gelu = e.array(n + "_gelu", q.gelu, "int16_t");
      e.array(n + "_grn_gamma", q.grn.gamma, "int32_t");
      e.array(n + "_grn_beta", q.grn.beta, "int32_t");
      std::ostringstream grn;
      grn << "{" << q.grn.channels << ", " << q.grn.eps << "LL, " << n << "_grn_gamma, " << n << "_grn_beta, {"
          << q.grn.scale.multiplier << ", " << q.grn.scale.shift << "}}";
      const std::string pw2 = e.pw(n + "_pw2", q.pw2);
      std::string adapter = "0";
      if (q.has_adapter) {
        const QAdapter& a = q.adapter;
        std::ostringstream init;
        init << "{" << e.pw(n + "_down_hi", a.down) << ", " << e.pw(n + "_down_lo", a.down, true) << ", {"
             << a.slope.multiplier << ", " << a.slope.shift << "}, " << e.pw(n + "_up", a.up) << "}";
        if (is_user_block(net, s)) {
          user_adapters << "    " << init.str() << ",\n";
          adapter = "&g_user_adapter[" + std::to_string(user_count) + "]";
          const AdapterPlanes planes(a);
          const size_t i = user_count++;
          slope_offsets << (slope_count++ ? ", " : "") << payload_bytes;
          size_t at = payload_bytes + 8;  // after the slope
          for (const PackedPw* p : {&planes.down_hi, &planes.down_lo, &planes.up}) {
            const size_t lanes = size_t(p->out16) * 4;  // bytes of one int32 field
            requant_rows << "    {" << at + lanes << "u, " << at + 2 * lanes << "u, " << at + 3 * lanes << "u, "
                         << p->out16 << "u},\n";
            ++requant_row_count;
            at += 4 * lanes;
          }
          parse << "  /* " << n << " */\n"
                << "  a[" << i << "].slope.multiplier = *i32++;\n  a[" << i << "].slope.shift = *i32++;\n";
          const std::pair<const char*, const PackedPw*> parts[] = {
              {"down_hi", &planes.down_hi}, {"down_lo", &planes.down_lo}, {"up", &planes.up}};
          for (const auto& [part, p] : parts) {
            for (const char* field : {"bias", "multiplier", "left", "right"}) {
              parse << "  a[" << i << "]." << part << "." << field << " = i32; i32 += " << p->out16 << ";\n";
            }
          }
          parse << "  i8 = (const int8_t*)i32;\n";
          for (const auto& [part, p] : parts) {
            parse << "  a[" << i << "]." << part << ".weight = i8; i8 += " << p->weight.size() << ";\n";
          }
          parse << "  i32 = (const int32_t*)(const void*)i8;\n";
          Bytes bytes;
          put_adapter_payload(bytes, a.slope, planes);
          payload_bytes += bytes.data.size();
        } else {
          adapter = "&" + n + "_adapter";
          e.out << "static const gz_adapter " << n << "_adapter = " << init.str() << ";\n";
        }
      }
      std::ostringstream block;
      block << "{" << q.dim << ", {" << dw.channels << ", " << n << "_dw_w, " << n << "_dw_b, " << n << "_dw_m, " << n
            << "_dw_l, " << n << "_dw_r}, " << norm << ", " << pw1 << ", " << gelu << ", {" << q.hidden_s8.multiplier
            << ", " << q.hidden_s8.shift << "}, " << grn.str() << ", " << pw2 << ", " << adapter << "}";
      inits.push_back(block.str());
    }
    blocks << "static const gz_block kStage" << s << "[" << inits.size() << "] = {\n";
    for (const auto& init : inits) blocks << "    " << init << ",\n";
    blocks << "};\n";
  }
  const std::string head_norm = e.norm("head_norm", net.head_norm);
  e.array("head_w", net.head.weight, "int8_t", true);
  e.array("head_w_lo", net.head.weight_lo, "int8_t", true);
  e.array("head_b", net.head.bias, "int32_t", true);
  e.array("head_b_lo", net.head.bias_lo, "int32_t", true);
  const size_t head_at = payload_bytes;  // the head follows the adapters in a user's payload
  if (user_count) payload_bytes += gz_head_payload_bytes(net.head.in);

  const std::array<int32_t, 4> hidden_s8 = int8_hidden_stages(net);
  const std::array<int32_t, 4> keep_rows =
      plan_kept_rows(net.input_h, net.input_w, net.dims, hidden_s8, options.arena_budget);
  const gz_arena_plan plan =
      gz_arena_plan_compute(net.input_h, net.input_w, net.dims.data(), keep_rows.data(), hidden_s8.data());
  const size_t before_tune = e.const_bytes;
  const std::string tune = tune_source(net, e);
  KernelSummary summary;
  summary.personalize_bytes = e.const_bytes - before_tune;
  summary.replay_frames = net.tune.replay_gaze.size() / 3;
  if (!net.tune.empty()) {
    gz_tune_model m{};
    m.graph = net.tune.graph(false, false);
    gz_tune_options o{};
    o.views = net.tune.defaults.views, o.train_head = net.tune.defaults.train_head;
    summary.personalize_work_bytes = gz_tune_work_bytes(&m, 5, &o);
  }
  summary.weight_bytes = e.weight_bytes;
  summary.constant_bytes = e.const_bytes;
  summary.arena_bytes = plan.total;
  summary.macs = net.macs();
  summary.int8_macs = net.int8_macs();
  summary.fingerprint = base_fingerprint(net);
  summary.user_blob_bytes = user_count ? 20 + payload_bytes : 0;
  summary.keep_rows = keep_rows;
  summary.int8_hidden = hidden_s8;
  for (int32_t stage = 0; stage < 4; ++stage) summary.hidden_rows[stage] = (net.input_h / 4) >> stage;

  std::ostringstream src;
  src << "/* DFT Gaze fixed-point kernel — generated by `gaze export`; do not edit.\n"
      << " * " << provenance << "\n"
      << " * Requantisation: gemmlowp SaturatingRoundingDoublingHighMul (ties up) then\n"
      << " * RoundingDivideByPOT (ties away from zero); see export/fixed_point.h below. */\n"
      << "#include \"dftgaze.h\"\n\n#include <math.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n"
      << inline_runtime() << "\n"
      << e.out.str() << "\n";
  src << "/* Last-stage adapters: the base's, or a user's after dftgaze_set_user(). */\n"
      << "static const gz_adapter kBaseAdapter[" << std::max<size_t>(1, user_count) << "] = {\n"
      << (user_count ? user_adapters.str() : kEmptyAdapter) << "};\nstatic gz_adapter g_user_adapter["
      << std::max<size_t>(1, user_count) << "] = {\n"
      << (user_count ? user_adapters.str() : kEmptyAdapter) << "};\n\n"
      << blocks.str() << "\n"
      << "/* The head's Linear: the base's, or a user's after dftgaze_set_user(). */\n"
      << "static const gz_head kBaseHead = {head_w, head_w_lo, head_b, head_b_lo,\n"
      << "    {" << hex_float(net.head_dequant[0]) << ", " << hex_float(net.head_dequant[1]) << ", "
      << hex_float(net.head_dequant[2]) << ", " << hex_float(net.head_dequant[3]) << "},\n"
      << "    {" << hex_float(net.head_dequant_lo[0]) << ", " << hex_float(net.head_dequant_lo[1]) << ", "
      << hex_float(net.head_dequant_lo[2]) << ", " << hex_float(net.head_dequant_lo[3]) << "}};\n"
      << "static gz_head g_user_head = kBaseHead;\n\n"
      << "static const gz_net kNet = {\n"
      << "    " << net.input_h << ", " << net.input_w << ",\n"
      << "    {" << net.depths[0] << ", " << net.depths[1] << ", " << net.depths[2] << ", " << net.depths[3] << "},\n"
      << "    {" << net.dims[0] << ", " << net.dims[1] << ", " << net.dims[2] << ", " << net.dims[3] << "},\n"
      << "    {" << keep_rows[0] << ", " << keep_rows[1] << ", " << keep_rows[2] << ", " << keep_rows[3]
      << "}, /* rows keeping their pw1/GELU outputs, per stage */\n"
      << "    {" << hidden_s8[0] << ", " << hidden_s8[1] << ", " << hidden_s8[2] << ", " << hidden_s8[3]
      << "}, /* stages keeping them as int8 */\n"
      << "    " << stem << ",\n    " << stem_norm << ",\n"
      << "    {" << downsample[0] << ",\n     " << downsample[1] << ",\n     " << downsample[2] << "},\n"
      << "    {kStage0, kStage1, kStage2, kStage3},\n"
      << "    {" << net.head_grid[0] << ", " << net.head_grid[1] << "}, /* the head's cells */\n"
      << "    " << head_norm << ",\n    &g_user_head,\n};\n\n";
  src << "alignas(64) static uint8_t g_arena[DFTGAZE_ARENA_BYTES];\n"
      << "alignas(16) static int32_t g_user_storage[(DFTGAZE_USER_PAYLOAD_BYTES + 3) / 4 + 1];\n\n"
      << "int dftgaze_predict(const uint8_t* eye, int h, int w, float out[4]) {\n"
      << "  return gz_net_predict(&kNet, g_arena, sizeof g_arena, eye, h, w, out);\n}\n\n"
      << "static uint32_t read_u32(const uint8_t* p) {\n  uint32_t v;\n  memcpy(&v, p, 4);\n  return v;\n}\n\n"
      << "/* The user payload's requantisations: LeakyReLU slopes (byte offsets of {multiplier, shift}),\n"
      << " * and per adapter plane the offsets of its multiplier, left and right arrays and their length. */\n"
      << "static const uint32_t kUserSlope[" << std::max<size_t>(1, slope_count) << "] = {"
      << (slope_count ? slope_offsets.str() : "0") << "};\n"
      << "static const uint32_t kUserRequant[" << std::max<size_t>(1, requant_row_count) << "][4] = {\n"
      << (requant_row_count ? requant_rows.str() : "    {0u, 0u, 0u, 0u},\n") << "};\n"
      << "static const uint32_t kUserHeadAt = " << head_at << "u; /* the head's offset in the payload */\n\n"
      << "int dftgaze_set_user(const uint8_t* blob, size_t size) {\n"
      << "  gz_adapter* a = g_user_adapter;\n"
      << "  if (blob == 0) {\n"
      << "    memcpy(g_user_adapter, kBaseAdapter, sizeof g_user_adapter);\n"
      << "    g_user_head = kBaseHead;\n    return 0;\n  }\n"
      << "  if (DFTGAZE_USER_PAYLOAD_BYTES == 0) return DFTGAZE_ERROR_NO_ADAPTERS;\n"
      << "  if (size < 20 || memcmp(blob, \"GZUA\", 4) != 0 || read_u32(blob + 4) != GZ_USER_BLOB_VERSION) return "
         "DFTGAZE_ERROR_BAD_BLOB;\n"
      << "  if (read_u32(blob + 8) != DFTGAZE_FINGERPRINT) return DFTGAZE_ERROR_OTHER_BASE;\n"
      << "  if (read_u32(blob + 12) != DFTGAZE_USER_PAYLOAD_BYTES || size != 20 + (size_t)DFTGAZE_USER_PAYLOAD_BYTES)\n"
      << "    return DFTGAZE_ERROR_BAD_BLOB;\n"
      << "  if (gz_crc32(blob + 20, DFTGAZE_USER_PAYLOAD_BYTES) != read_u32(blob + 16)) return "
         "DFTGAZE_ERROR_BAD_BLOB;\n"
      << "  /* every requantisation in range (a CRC only proves the bytes arrived as written) */\n"
      << "  for (size_t i = 0; i < sizeof kUserSlope / sizeof kUserSlope[0]; ++i) {\n"
      << "    const gz_requant r = {(int32_t)read_u32(blob + 20 + kUserSlope[i]), "
         "(int32_t)read_u32(blob + 24 + kUserSlope[i])};\n"
      << "    if (!gz_requant_valid(r)) return DFTGAZE_ERROR_BAD_BLOB;\n  }\n"
      << "  for (size_t i = 0; i < sizeof kUserRequant / sizeof kUserRequant[0]; ++i) {\n"
      << "    const uint8_t* p = blob + 20;\n"
      << "    for (uint32_t o = 0; o < kUserRequant[i][3]; ++o) {\n"
      << "      const int32_t m = (int32_t)read_u32(p + kUserRequant[i][0] + 4 * o);\n"
      << "      const int32_t l = (int32_t)read_u32(p + kUserRequant[i][1] + 4 * o);\n"
      << "      const int32_t r = (int32_t)read_u32(p + kUserRequant[i][2] + 4 * o);\n"
      << "      if (!gz_requant_split_valid(m, l, r)) return DFTGAZE_ERROR_BAD_BLOB;\n    }\n  }\n"
      << "  if (!gz_head_payload_valid(blob + 20 + kUserHeadAt, " << net.head.in
      << ")) return DFTGAZE_ERROR_BAD_BLOB;\n"
      << "  memcpy(g_user_storage, blob + 20, DFTGAZE_USER_PAYLOAD_BYTES);\n"
      << "  const int32_t* i32 = g_user_storage;\n  const int8_t* i8 = 0;\n"
      << parse.str() << "  (void)a;\n  (void)i8;\n  (void)i32;\n"
      << "  gz_head_read_payload((const uint8_t*)g_user_storage + kUserHeadAt, " << net.head.in << ", &g_user_head);\n"
      << "  return 0;\n}\n\n"
      << tune << "\n"
      << "const char* dftgaze_simd(void) { return gz_simd_name(); }\n\n"
      << "#if defined(GZ_MCA_COUNT)\n"
      << "/* The Pi 4 cycle model's pass counts (GZ_MCA_* above; `gaze bench --model pi4`): region i's\n"
      << " * name and passes since the last reset; -1 past the last region. */\n"
      << "#define GZ_MCA_NAME(name) #name,\n"
      << "static const char* const kMcaNames[] = {GZ_MCA_REGION_LIST(GZ_MCA_NAME)};\n"
      << "extern \"C\" int dftgaze_mca_region(int i, const char** name, unsigned long long* passes) {\n"
      << "  if (i < 0 || i >= GZ_MCA_REGION_COUNT) return -1;\n"
      << "  *name = kMcaNames[i];\n  *passes = gz_mca_passes[i];\n  return 0;\n}\n"
      << "extern \"C\" void dftgaze_mca_reset(void) { memset(gz_mca_passes, 0, sizeof gz_mca_passes); }\n"
      << "#endif\n";

  std::ostringstream hdr;
  hdr << "/* DFT Gaze fixed-point kernel — generated by `gaze export`; do not edit.\n"
      << " * " << provenance << "\n"
      << " *\n"
      << " * int dftgaze_predict(const uint8_t* eye, int h, int w, float out[4])\n"
      << " *   eye: h x w grey pixels, row-major (any size; the centred window of the network's aspect\n"
      << " *   ratio is resampled to " << net.input_h << " x " << net.input_w << "). out[0..2]: unit gaze direction\n"
      << (net.scale_trained
              ? " *   (x, y, z; +z ahead), out[3]: log of the Laplace scale (the model's uncertainty; large on\n"
                " *   closed eyes or glare). Returns 0, or a negative DFTGAZE_ERROR_*.\n"
              : " *   (x, y, z; +z ahead), out[3]: UNTRAINED (the model was trained without its uncertainty\n"
                " *   output); ignore it. Returns 0, or a negative DFTGAZE_ERROR_*.\n")
      << " * int dftgaze_set_user(const uint8_t* blob, size_t size)\n"
      << " *   swaps in a user's last-stage adapters and head (a blob written by `gaze export --users` or\n"
      << " *   dftgaze_personalize); a null blob restores the base. The blob is copied. Returns 0 or\n"
      << " *   DFTGAZE_ERROR_*.\n"
      << " * int dftgaze_personalize(eyes, h, w, gazes, k, options, work, work_bytes, blob_out, blob_bytes)\n"
      << " *   calibrates a wearer on the device: k eye images (h x w each) with their unit gaze vectors\n"
      << " *   (gazes[3 * i ..]) train the last-stage adapters, and with options->train_head the head's\n"
      << " *   Linear (AdamW in float, mixed with the replay pack, as `gaze personalize`); the result is a\n"
      << " *   user blob (DFTGAZE_USER_BLOB_BYTES) for dftgaze_set_user(). options null = the defaults.\n"
      << " *   work: at least dftgaze_personalize_work_bytes(k, options) bytes, 16-byte aligned. Returns 0\n"
      << " *   or DFTGAZE_ERROR_*.\n"
      << " * Not thread-safe: one static arena serves all calls. No heap, no exceptions.\n"
      << " * Requantisation: gemmlowp rounding-doubling high multiply, then rounding right shift.\n"
      << " */\n"
      << "#ifndef DFTGAZE_H_\n#define DFTGAZE_H_\n\n#include <stddef.h>\n#include <stdint.h>\n\n"
      << "#define DFTGAZE_INPUT_H " << net.input_h << "\n#define DFTGAZE_INPUT_W " << net.input_w << "\n"
      << "#define DFTGAZE_ARENA_BYTES " << plan.total << "\n#define DFTGAZE_WEIGHT_BYTES " << summary.weight_bytes
      << "\n#define DFTGAZE_CONSTANT_BYTES " << summary.constant_bytes << "\n#define DFTGAZE_MACS " << summary.macs
      << "ULL\n#define DFTGAZE_INT8_MACS " << summary.int8_macs << "ULL\n"
      << "#define DFTGAZE_FINGERPRINT 0x" << std::hex << summary.fingerprint << std::dec << "u\n"
      << "#define DFTGAZE_USER_PAYLOAD_BYTES " << payload_bytes << "u\n\n"
      << "#define DFTGAZE_ERROR_NULL (-1)\n#define DFTGAZE_ERROR_SIZE (-2)\n#define DFTGAZE_ERROR_ARENA (-3)\n"
      << "#define DFTGAZE_ERROR_BAD_BLOB (-10)\n#define DFTGAZE_ERROR_OTHER_BASE (-11)\n"
      << "#define DFTGAZE_ERROR_NO_ADAPTERS (-12)\n"
      << "#define DFTGAZE_ERROR_ARGUMENT (-1)  /* = DFTGAZE_ERROR_NULL: a null pointer or a bad option */\n"
      << "#define DFTGAZE_ERROR_WORK (-4)      /* dftgaze_personalize: work buffer too small */\n"
      << "#define DFTGAZE_ERROR_BLOB_SIZE (-5) /* dftgaze_personalize: blob_out too small */\n"
      << "#define DFTGAZE_ERROR_QUANTIZE (-6)  /* dftgaze_personalize: adapters do not fit the format */\n"
      << "#define DFTGAZE_ERROR_DIVERGED (-7)  /* dftgaze_personalize: training diverged (lower lr) */\n\n"
      << "#define DFTGAZE_USER_BLOB_BYTES (20u + DFTGAZE_USER_PAYLOAD_BYTES)\n"
      << "#define DFTGAZE_REPLAY_FRAMES " << summary.replay_frames << "u /* replay pack of dftgaze_personalize */\n\n"
      << "/* dftgaze_personalize's options; dftgaze_personalize_defaults() fills `gaze personalize`'s. */\n"
      << "typedef struct {\n  int steps, batch_size, views; /* AdamW steps, frames per step, views per calibration "
         "frame */\n"
      << "  float lr, replay_fraction;     /* learning rate; share of each batch drawn from the replay pack */\n"
      << "  unsigned long long seed;       /* batch draws and augmentation */\n"
      << "  float shift, brightness, contrast, gamma, noise; /* augmentation of views 1.. */\n"
      << "  int train_head;                /* 1: train the head's Linear as well as the adapters */\n"
      << "} dftgaze_personalize_options;\n\n"
      << "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
      << "int dftgaze_predict(const uint8_t* eye, int h, int w, float out[4]);\n"
      << "int dftgaze_set_user(const uint8_t* blob, size_t size);\n"
      << "void dftgaze_personalize_defaults(dftgaze_personalize_options* options);\n"
      << "size_t dftgaze_personalize_work_bytes(int k, const dftgaze_personalize_options* options);\n"
      << "int dftgaze_personalize(const uint8_t* const* eyes, int h, int w, const float* gazes, int k,\n"
      << "                        const dftgaze_personalize_options* options, void* work, size_t work_bytes,\n"
      << "                        uint8_t* blob_out, size_t blob_bytes);\n"
      << "const char* dftgaze_simd(void); /* \"scalar\", \"avx2\" or \"neon\": the path compiled in */\n\n"
      << "#ifdef __cplusplus\n}\n#endif\n\n#endif /* DFTGAZE_H_ */\n";
  return {hdr.str(), src.str(), summary};
}

std::string readme(const QuantizedNet& net, const KernelSummary& s, const std::string& provenance) {
  std::ostringstream r;
  r << "# DFT Gaze fixed-point kernel\n\nGenerated by `gaze export` (" << provenance << ").\n\n"
    << "| | |\n|---|---|\n"
    << "| input | " << net.input_h << " x " << net.input_w << " grey (any eye image is resampled) |\n"
    << "| multiply-accumulates | " << s.macs << " per frame, " << s.int8_macs << " of them int8 x int8 |\n"
    << "| weights | " << s.weight_bytes << " bytes (int8 weight planes and int32 biases, packed) |\n"
    << "| all constant data | " << s.constant_bytes << " bytes (+ requantisation, norms, GELU tables) |\n"
    << "| static arena | " << s.arena_bytes << " bytes |\n"
    << "| user adapter blob | " << s.user_blob_bytes << " bytes |\n"
    << "| on-device personalisation | " << s.replay_frames << " replay frames, " << s.personalize_bytes
    << " bytes of constants, work buffer " << s.personalize_work_bytes << " bytes for k = 5 |\n\n"
    << "Dependency-free C++17: no heap, no exceptions, no LibTorch. Weights are int8 symmetric per output\n"
    << "channel (16-bit as two int8 planes for the adapters' down projections and the head), activations\n"
    << "int16 symmetric (the pointwise layers `gaze export` chose by `export.int8` requantise their\n"
    << "inputs to int8 first), requantisation the gemmlowp convention (rounding-doubling high multiply,\n"
    << "then rounding right shift).\n\n"
    << "## API\n\n```c\n#include \"dftgaze.h\"\n\nfloat out[4];\n"
    << "int rc = dftgaze_predict(eye, h, w, out);   // out[0..2] unit gaze, out[3] log Laplace scale\n"
    << "rc = dftgaze_set_user(blob, blob_size);      // a user's last-stage adapters and head; NULL = base\n```\n\n"
    << "On-device calibration (`dftgaze_personalize`): the wearer looks at k targets; their eye images and\n"
    << "unit gazes train the last-stage adapters (and, with `options.train_head`, the head's Linear) inside\n"
    << "this code (float AdamW, the replay pack compiled in, as `gaze personalize` trains them), and the\n"
    << "result is a user blob for `dftgaze_set_user`:\n\n"
    << "```c\nstatic float work[...];                        // dftgaze_personalize_work_bytes(k, NULL) bytes\n"
    << "uint8_t blob[DFTGAZE_USER_BLOB_BYTES];\n"
    << "rc = dftgaze_personalize(eyes, h, w, gazes, k, NULL, work, sizeof work, blob, sizeof blob);\n"
    << "rc = dftgaze_set_user(blob, sizeof blob);\n```\n\n"
    << "`./build/dftgaze_tool personalize FRAMES GAZES OUT --json` runs it on files (GZFR frames, float32 x 3\n"
    << "gazes per frame) and times it.\n\n"
    << "Errors are negative `DFTGAZE_ERROR_*` codes (null pointers, sizes, a blob for another base).\n"
    << "Calls share one static arena: use one thread, or guard the calls.\n\n"
    << "## Build\n\n```sh\ncmake -S . -B build -DCMAKE_BUILD_TYPE=Release   # -DDFTGAZE_SIMD=auto|avx2|neon|scalar\n"
    << "cmake --build build\n./build/dftgaze_tool bench --json                # latency over 1000 frames\n```\n\n"
    << "`DFTGAZE_SIMD=auto` picks AVX2 on an x86-64 machine that has it, NEON on AArch64, scalar\n"
    << "elsewhere. Every path gives the same bits. Options: `-DDFTGAZE_WERROR=ON`, `-DDFTGAZE_SANITIZE=ON`\n"
    << "(ASan + UBSan), `-DDFTGAZE_STATIC=ON` (one static binary).\n\n"
    << "## Raspberry Pi 4 (Cortex-A72)\n\nCross-build a static benchmark on a Debian machine "
    << "(`apt install g++-aarch64-linux-gnu`):\n\n"
    << "```sh\ncmake -S . -B build-pi -DCMAKE_TOOLCHAIN_FILE=toolchain-aarch64.cmake -DCMAKE_BUILD_TYPE=Release \\\n"
    << "      -DDFTGAZE_STATIC=ON\ncmake --build build-pi\nscp build-pi/dftgaze_tool pi@raspberrypi:\n"
    << "ssh pi@raspberrypi ./dftgaze_tool bench --frames 1000\n```\n\n"
    << "The A72 at 1.5 GHz multiplies integers on one NEON pipe: 4 MACs per cycle with int16 x int8\n"
    << "(SMLAL on 16-bit lanes), 8 with int8 x int8 (SMULL + SMLAL on 8-bit lanes), so this network's\n"
    << "multiply floor is " << (double(s.macs - s.int8_macs) / 4 + double(s.int8_macs) / 8) / 1.5e6
    << " ms per frame.\n"
    << "Run the same binary under `qemu-aarch64` to check it without a Pi.\n";
  return r.str();
}

}  // namespace

std::array<int32_t, 4> int8_hidden_stages(const QuantizedNet& net) {
  std::array<int32_t, 4> stages{};
  for (size_t s = 0; s < net.stages.size() && s < 4; ++s) {
    for (size_t b = 0; b < net.stages[s].size(); ++b) {
      const QBlock& q = net.stages[s][b];
      const std::string n = "block " + std::to_string(s) + "." + std::to_string(b);
      if (q.int8_hidden() && (!q.pw2.int8_input() || !gz_requant_valid(q.hidden_s8)))
        throw Error("export: " + n +
                    " keeps int8 GELU outputs without a valid requantisation to them or int8 pw2 inputs");
      if (b > 0 && q.int8_hidden() != bool(stages[s]))
        throw Error("export: " + n + " keeps its GELU outputs in another type than the stage's first block");
      stages[s] = q.int8_hidden() ? 1 : 0;
    }
  }
  return stages;
}

std::array<int32_t, 4> plan_kept_rows(int32_t input_h, int32_t input_w, const std::vector<int32_t>& dims,
                                      const std::array<int32_t, 4>& hidden_s8, size_t arena_budget) {
  if (dims.size() != 4) throw Error("export: the network needs 4 stages");
  std::array<int32_t, 4> keep_rows{};
  for (int32_t stage = 3; stage >= 0; --stage) {
    const int32_t h = (input_h / 4) >> stage;
    while (keep_rows[stage] < h) {
      ++keep_rows[stage];
      if (gz_arena_plan_compute(input_h, input_w, dims.data(), keep_rows.data(), hidden_s8.data()).total >
          arena_budget) {
        --keep_rows[stage];
        break;
      }
    }
    if (keep_rows[stage] < h) break;
  }
  return keep_rows;
}

uint32_t base_fingerprint(const QuantizedNet& net) {
  Bytes b;
  b.put32(net.input_h), b.put32(net.input_w);
  b.put(net.depths), b.put(net.dims);
  b.put_linear(net.stem), b.put_norm(net.stem_norm);
  for (const auto& d : net.downsamples) b.put_norm(d.norm), b.put_linear(d.conv);
  for (size_t s = 0; s < net.stages.size(); ++s)
    for (const QBlock& q : net.stages[s]) {
      b.put(q.dw_weight), b.put(q.dw_bias), b.put_requant(q.dw_requant);
      b.put_norm(q.norm), b.put_linear(q.pw1), b.put(q.gelu);
      if (q.int8_hidden()) b.put32(q.hidden_s8.multiplier), b.put32(q.hidden_s8.shift);
      b.put32(q.grn.eps), b.put(q.grn.gamma), b.put(q.grn.beta), b.put32(q.grn.scale.multiplier),
          b.put32(q.grn.scale.shift);
      b.put_linear(q.pw2);
      if (q.has_adapter && !is_user_block(net, s)) {
        b.put32(q.adapter.slope.multiplier), b.put32(q.adapter.slope.shift);
        b.put_linear(q.adapter.down), b.put_linear(q.adapter.up);
      }
    }
  b.put_norm(net.head_norm);  // not the head's Linear: a user blob carries its own
  return gz_crc32(b.data.data(), b.data.size());
}

std::vector<uint8_t> user_blob(const QuantizedNet& base, const QuantizedNet& user) {
  const uint32_t fingerprint = base_fingerprint(base);
  if (base_fingerprint(user) != fingerprint) {
    throw Error(
        "export: the user model differs from the base outside the last stage's adapters and the head "
        "(was it personalised from this checkpoint?)");
  }
  Bytes payload;
  for (const QBlock& q : user.stages.back()) {
    if (q.has_adapter) put_adapter_payload(payload, q.adapter.slope, AdapterPlanes(q.adapter));
  }
  if (payload.data.empty()) throw Error("export: the model has no last-stage adapters to personalise");
  put_head_payload(payload, user);
  Bytes blob;
  blob.data = {'G', 'Z', 'U', 'A'};
  blob.put32(GZ_USER_BLOB_VERSION);
  blob.put32(int64_t(fingerprint));
  blob.put32(int64_t(payload.data.size()));
  blob.put32(int64_t(gz_crc32(payload.data.data(), payload.data.size())));
  blob.data.insert(blob.data.end(), payload.data.begin(), payload.data.end());
  return blob.data;
}

KernelSummary write_kernel(const QuantizedNet& net, const std::string& out_dir, const KernelOptions& options) {
  const Generated g = generate(net, options);
  const std::string& provenance = options.provenance;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw Error("export: cannot create '" + out_dir + "': " + ec.message());
  const fs::path dir(out_dir);
  write_text_atomically((dir / "dftgaze.h").string(), g.header);
  write_text_atomically((dir / "dftgaze.cpp").string(), g.source);
  write_text_atomically((dir / "dftgaze_tool.cpp").string(), runtime_source("kernel_tool.cpp"));
  write_text_atomically((dir / "CMakeLists.txt").string(), runtime_source("kernel_CMakeLists.txt"));
  write_text_atomically((dir / "toolchain-aarch64.cmake").string(), runtime_source("aarch64-linux-gnu.cmake"));
  write_text_atomically((dir / "README.md").string(), readme(net, g.summary, provenance));
  return g.summary;
}

}  // namespace gaze
