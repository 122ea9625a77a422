// `gaze export`'s code generator: a QuantizedNet -> a self-contained C++17 kernel folder (SPEC §4).
//
// The folder holds
//   dftgaze.h            the API (below) and the kernel's constants
//   dftgaze.cpp          export/{fixed_point,quantize,nonlinear,layers,kernel}.h verbatim, the
//                        weights as constant int8/int32 arrays in the kernel's packed layouts,
//                        the network table, a static arena sized here, the API functions
//   dftgaze_tool.cpp     predict / bench / allocation-check tool (not part of the kernel)
//   CMakeLists.txt       scalar | avx2 | neon chosen at build time, -Werror / sanitizer /
//                        static options, the allocation-counting check
//   toolchain-aarch64.cmake, README.md
// API:
//   int dftgaze_predict(const uint8_t* eye, int h, int w, float out[4]);
//   int dftgaze_set_user(const uint8_t* blob, size_t size);   // null: back to the base
//
// User blobs (version GZ_USER_BLOB_VERSION, export/kernel.h) carry the last stage's quantised
// adapters and the head's Linear (what personalisation changes), a CRC-32 of the payload and the
// fingerprint of the base kernel they were quantised against.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "export/qnet.h"

namespace gaze {

struct KernelSummary {
  size_t weight_bytes = 0;    // int8 weight planes + int32 biases, as packed in the source
  size_t constant_bytes = 0;  // all constant data (+ requantisation, norms, GELU tables)
  size_t arena_bytes = 0;
  size_t user_blob_bytes = 0;
  size_t macs = 0;
  size_t int8_macs = 0;  // of which int8 x int8 (layers with int8 inputs)
  uint32_t fingerprint = 0;
  // Per stage, the rows whose pw1/GELU outputs the arena keeps (of hidden_rows); the others keep
  // their LayerNorm outputs and recompute pw1 + GELU after GRN's statistics.
  std::array<int32_t, 4> keep_rows{};
  std::array<int32_t, 4> hidden_rows{};
  std::array<int32_t, 4> int8_hidden{};  // 1: the stage keeps them as int8 (QBlock::hidden_s8)
  // On-device personalisation (dftgaze_personalize; 0 when the kernel has none): the constant
  // data it adds (float side + replay pack), the replay pack's frames, and the work buffer it
  // needs for 5 calibration frames in the default views.
  size_t personalize_bytes = 0;
  size_t replay_frames = 0;
  size_t personalize_work_bytes = 0;
};

struct KernelOptions {
  std::string provenance;                 // a line for the generated headers (checkpoint, data)
  size_t arena_budget = size_t(1) << 20;  // keep pw1/GELU outputs while the arena fits this
};

// Writes the kernel folder (created if needed; files replaced atomically).
KernelSummary write_kernel(const QuantizedNet& net, const std::string& out_dir, const KernelOptions& options);

// Per stage, 1 when its blocks keep their GELU outputs as int8 (throws if a stage's blocks
// disagree or one lacks the int8 pw2 that needs).
std::array<int32_t, 4> int8_hidden_stages(const QuantizedNet& net);

// Per stage, the rows that keep their pw1/GELU outputs within `arena_budget`: whole stages from
// the last (the smallest maps), then as many leading rows of the next as still fit.
std::array<int32_t, 4> plan_kept_rows(int32_t input_h, int32_t input_w, const std::vector<int32_t>& dims,
                                      const std::array<int32_t, 4>& hidden_s8, size_t arena_budget);

// CRC-32 over every integer parameter except the last stage's adapters and the head's Linear: a
// user blob fits a kernel exactly when their fingerprints agree.
uint32_t base_fingerprint(const QuantizedNet& net);

// The blob dftgaze_set_user() takes: `user`'s last-stage adapters and head, stamped with the
// base's fingerprint. Throws if `user` differs from `base` anywhere else.
std::vector<uint8_t> user_blob(const QuantizedNet& base, const QuantizedNet& user);

}  // namespace gaze
