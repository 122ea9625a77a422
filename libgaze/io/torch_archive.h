// A torch.save() state dict as LibTorch tensors, without Python and without torch::pickle_load
// (which in LibTorch 1.13 aborts on pickled OrderedDicts: "Expected GenericDict but got None").
// Reading, CRC and bounds checks: torch_save.h (torch-free); here the tensors are built from
// the checked views and copied. Errors name the file.
#pragma once

#include <string>

#include "libgaze/io/checkpoint.h"

namespace gaze {

TensorList read_torch_state_dict(const std::string& path);

}  // namespace gaze
