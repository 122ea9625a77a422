// Checkpoints of LibTorch models: tensors to and from the checkpoint file (checkpoint_file.h:
// layout, atomic writes, checksums), and loading a state into a module.
#pragma once

#include <torch/nn/module.h>

#include <string>
#include <utility>
#include <vector>

namespace gaze {

using TensorList = std::vector<std::pair<std::string, at::Tensor>>;

struct Checkpoint {
  std::string stage;
  int64_t step = 0;
  std::string config_yaml;
  TensorList model;
  TensorList optimizer;
  TensorList state;
};

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);
Checkpoint load_checkpoint(const std::string& path);

// Every parameter and buffer of `module`, by name, detached (shares storage).
TensorList module_state(const torch::nn::Module& module);

// What a state load found: names missing from the file, names the model lacks, and names
// whose shapes differ ("name: file [4,320] vs model [1000,320]").
struct LoadReport {
  std::vector<std::string> missing, unexpected, mismatched;
  int64_t loaded = 0;
  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string describe() const;  // one line, empty lists omitted
};

// Copies every tensor whose name and shape match. With `strict`, any missing, unexpected or
// mismatched tensor throws gaze::Error (naming `source` and the tensors) before anything is
// copied, so a failed load never leaves the model half-overwritten.
LoadReport load_module_state(torch::nn::Module& module, const TensorList& tensors, bool strict,
                             const std::string& source);

// Torch's global CPU generator state (a uint8 tensor) and its restore.
at::Tensor cpu_rng_state();
void set_cpu_rng_state(const at::Tensor& state);

// Lookup in a TensorList; undefined tensor when absent.
at::Tensor find_tensor(const TensorList& tensors, const std::string& name);

// CRC-32C of the tensors' names and values (contiguous bytes), chained in list order: the
// fingerprint arrays_crc32c (checkpoint_file.h) gives the same weights read from a file.
uint32_t tensors_crc32c(const TensorList& tensors);

}  // namespace gaze
