#include "libgaze/io/torch_archive.h"

#include <ATen/ATen.h>

#include <map>

#include "libgaze/core/error.h"
#include "libgaze/io/torch_save.h"

namespace gaze {
namespace {

at::ScalarType scalar_type(const std::string& storage_type) {
  static const std::map<std::string, at::ScalarType> types = {
      {"FloatStorage", at::kFloat},       {"DoubleStorage", at::kDouble}, {"HalfStorage", at::kHalf},
      {"BFloat16Storage", at::kBFloat16}, {"LongStorage", at::kLong},     {"IntStorage", at::kInt},
      {"ShortStorage", at::kShort},       {"CharStorage", at::kChar},     {"ByteStorage", at::kByte},
      {"BoolStorage", at::kBool},
  };
  return types.at(storage_type);  // read_torch_save() admits only these
}

}  // namespace

TensorList read_torch_state_dict(const std::string& path) {
  TensorList tensors;
  std::map<const std::string*, at::Tensor> storages;  // views of one storage share its tensor
  for (const SavedTensor& t : read_torch_save(path)) {
    at::Tensor& storage = storages[t.storage.get()];
    if (!storage.defined()) {
      storage = at::empty({t.storage_numel()}, at::TensorOptions().dtype(scalar_type(t.storage_type)));
      std::memcpy(storage.data_ptr(), t.storage->data(), size_t(t.storage_numel()) * t.element_size);
    }
    tensors.emplace_back(t.name, storage.as_strided(t.sizes, t.strides, t.offset).clone());
  }
  return tensors;
}

}  // namespace gaze
