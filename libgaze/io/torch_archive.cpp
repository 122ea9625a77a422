#include "libgaze/io/torch_archive.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include <filesystem>
#include <map>

#include "libgaze/core/error.h"
#include "libgaze/io/pickle.h"

namespace gaze {
namespace {

using pickle::Value;
using pickle::ValuePtr;

at::ScalarType storage_dtype(const std::string& type, const std::string& where) {
  static const std::map<std::string, at::ScalarType> types = {
      {"FloatStorage", at::kFloat},       {"DoubleStorage", at::kDouble}, {"HalfStorage", at::kHalf},
      {"BFloat16Storage", at::kBFloat16}, {"LongStorage", at::kLong},     {"IntStorage", at::kInt},
      {"ShortStorage", at::kShort},       {"CharStorage", at::kChar},     {"ByteStorage", at::kByte},
      {"BoolStorage", at::kBool},
  };
  const auto it = types.find(type);
  if (it == types.end()) throw Error(where + ": unsupported storage type " + type);
  return it->second;
}

bool is_tensor_dict(const ValuePtr& v) {
  if (!v || v->kind != Value::Kind::kDict || v->items.empty()) return false;
  for (size_t i = 0; i + 1 < v->items.size(); i += 2) {
    if (v->items[i]->kind != Value::Kind::kString || v->items[i + 1]->kind != Value::Kind::kTensor) {
      return false;
    }
  }
  return true;
}

}  // namespace

TensorList read_torch_state_dict(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw Error(path + ": file not found");
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error&) {
    throw Error(path + ": not a torch.save() zip archive (legacy or corrupt file)");
  }
  const auto record = [&](const std::string& name) {
    if (!reader->hasRecord(name)) throw Error(path + ": archive has no record '" + name + "'");
    try {
      auto [data, size] = reader->getRecord(name);
      return std::string(static_cast<const char*>(data.get()), size);
    } catch (const c10::Error&) {
      throw Error(path + ": cannot read record '" + name + "' (corrupt archive)");
    }
  };

  const ValuePtr root = pickle::unpickle(record("data.pkl"), path + ": data.pkl");
  ValuePtr dict = root;
  if (!is_tensor_dict(dict)) {
    dict = nullptr;
    for (const char* key : {"model", "state_dict", "model_ema"}) {
      if (is_tensor_dict(root->get(key))) {
        dict = root->get(key);
        break;
      }
    }
  }
  if (!dict) {
    std::string keys;
    if (root->kind == Value::Kind::kDict) {
      for (size_t i = 0; i < root->items.size(); i += 2) keys += " " + root->items[i]->text;
    }
    throw Error(path + ": no state dict found (top level is a " + root->kind_name() +
                (keys.empty() ? "" : " with keys:" + keys) + ")");
  }

  std::map<std::string, at::Tensor> storages;
  TensorList tensors;
  for (size_t i = 0; i + 1 < dict->items.size(); i += 2) {
    const std::string& name = dict->items[i]->text;
    const Value& t = *dict->items[i + 1];
    const Value& s = *t.storage;
    const at::ScalarType dtype = storage_dtype(s.storage_type, path + ": " + name);
    auto& storage = storages[s.text];
    if (!storage.defined()) {
      const std::string bytes = record("data/" + s.text);
      const int64_t numel = static_cast<int64_t>(bytes.size() / c10::elementSize(dtype));
      if (numel < s.storage_numel) {
        throw Error(path + ": storage data/" + s.text + " is truncated");
      }
      storage = at::empty({numel}, at::TensorOptions().dtype(dtype));
      std::memcpy(storage.data_ptr(), bytes.data(), numel * c10::elementSize(dtype));
    }
    // Bounds check the view before building it: a bad stride must not read out of range, and
    // the copy must not exceed the storage (a state dict holds no broadcast, stride-0 views:
    // 533 bytes must not become a gigabyte).
    if (t.storage_offset < 0) throw Error(path + ": " + name + ": negative storage offset");
    int64_t extent = t.storage_offset, numel = 1;
    bool overflow = false;
    for (size_t d = 0; d < t.sizes.size(); ++d) {
      if (t.sizes[d] < 0 || t.strides[d] < 0) throw Error(path + ": " + name + ": negative size or stride");
      int64_t reach = 0;
      if (t.sizes[d] > 0) {
        overflow |= __builtin_mul_overflow(t.sizes[d] - 1, t.strides[d], &reach);
        overflow |= __builtin_add_overflow(extent, reach, &extent);
      }
      overflow |= __builtin_mul_overflow(numel, t.sizes[d], &numel);
    }
    if (overflow) throw Error(path + ": " + name + ": view sizes overflow");
    if (numel > 0 && extent >= storage.numel()) {
      throw Error(path + ": " + name + ": view reaches past its storage");
    }
    if (numel > storage.numel()) {
      throw Error(path + ": " + name + ": a " + std::to_string(numel) + "-element view of a " +
                  std::to_string(storage.numel()) + "-element storage (repeated elements; not a state dict)");
    }
    tensors.emplace_back(name, storage.as_strided(t.sizes, t.strides, t.storage_offset).clone());
  }
  return tensors;
}

}  // namespace gaze
