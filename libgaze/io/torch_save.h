// The state dict inside a torch.save() file, read without torch or Python: the zip (zip.h,
// CRC-32 checked), data.pkl (pickle.h, never executed), and each tensor's storage bytes, with
// every view bounds-checked against its storage before anyone builds a tensor from it.
//
// The state dict is the top-level dict itself when its values are tensors, else the first of
// its "model", "state_dict", "model_ema" entries that is. Errors name the file. torch_archive.h
// turns the result into LibTorch tensors; fuzz/fuzz_torch_save.cpp runs this on hostile files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gaze {

struct SavedTensor {
  std::string name;
  std::string storage_type;  // "FloatStorage", "LongStorage", ...
  size_t element_size = 0;
  std::shared_ptr<const std::string> storage;  // the storage's raw little-endian elements
  int64_t offset = 0;                          // the view, in elements
  std::vector<int64_t> sizes, strides;
  int64_t storage_numel() const { return int64_t(storage->size() / element_size); }
};

std::vector<SavedTensor> read_torch_save(const std::string& path);

}  // namespace gaze
