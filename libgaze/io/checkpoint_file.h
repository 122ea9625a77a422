// The checkpoint file, without torch: one HDF5 file per save, written atomically (temp file,
// fsync, rename), read back with every array's CRC-32C checked (hdf5.h).
//
// Layout (opens in h5py):
//   /@format = "libgaze-checkpoint", /@version = 1, /@stage, /@step
//   /config              the resolved YAML config of the run (string)
//   /model/<name>        parameters and buffers by official name ("stages.2.5.pwconv1.weight")
//   /optimizer/<name>    optimiser state ("<param name>:exp_avg", ...), see optimizer_state.h
//   /state/<name>        anything else a trainer resumes from (RNG states, data position)
// A crash during save leaves the previous file intact; loading a truncated, damaged or foreign
// file fails with a message naming it. checkpoint.h converts to and from tensors; the fuzzer
// (fuzz/fuzz_checkpoint.cpp) runs this reader on hostile files.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "libgaze/io/hdf5.h"

namespace gaze {

using ArrayList = std::vector<std::pair<std::string, h5::Array>>;

struct CheckpointFile {
  std::string stage;
  int64_t step = 0;
  std::string config_yaml;
  ArrayList model, optimizer, state;
};

void write_checkpoint_file(const std::string& path, const CheckpointFile& checkpoint);
CheckpointFile read_checkpoint_file(const std::string& path);

// CRC-32C of the arrays' names and bytes, chained in list order: a fingerprint of a checkpoint's
// weights (arrays_crc32c(read_checkpoint_file(p).model)) that is the same however and whenever the
// file holding them was written. tensors_crc32c (checkpoint.h) gives the same number for the same
// weights held as tensors.
uint32_t arrays_crc32c(const ArrayList& arrays);

}  // namespace gaze
