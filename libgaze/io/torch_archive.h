// Reads a state dict from a torch.save() file without Python and without torch::pickle_load
// (which in LibTorch 1.13 aborts on pickled OrderedDicts: "Expected GenericDict but got None").
//
// A torch.save() file is a zip: <archive>/data.pkl (the pickle) and <archive>/data/<key> (one
// raw little-endian storage per key). caffe2's PyTorchStreamReader opens the zip; our pickle
// reader (pickle.h) decodes data.pkl; tensors are rebuilt as views on their storages, copied.
//
// The state dict is the top-level dict itself when its values are tensors, else the first of
// its "model", "state_dict", "model_ema" entries that is. Errors name the file.
#pragma once

#include <string>

#include "libgaze/io/checkpoint.h"

namespace gaze {

TensorList read_torch_state_dict(const std::string& path);

}  // namespace gaze
