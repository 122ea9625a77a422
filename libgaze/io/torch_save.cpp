#include "libgaze/io/torch_save.h"

#include <filesystem>
#include <map>

#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"
#include "libgaze/io/pickle.h"
#include "libgaze/io/zip.h"

namespace gaze {
namespace {

using pickle::Value;
using pickle::ValuePtr;

size_t element_size(const std::string& storage_type, const std::string& where) {
  static const std::map<std::string, size_t> sizes = {
      {"FloatStorage", 4}, {"DoubleStorage", 8}, {"HalfStorage", 2}, {"BFloat16Storage", 2}, {"LongStorage", 8},
      {"IntStorage", 4},   {"ShortStorage", 2},  {"CharStorage", 1}, {"ByteStorage", 1},     {"BoolStorage", 1},
  };
  const auto it = sizes.find(storage_type);
  if (it == sizes.end()) throw Error(where + ": unsupported storage type " + storage_type);
  return it->second;
}

bool is_tensor_dict(const ValuePtr& v) {
  if (!v || v->kind != Value::Kind::kDict || v->items.empty()) return false;
  for (size_t i = 0; i + 1 < v->items.size(); i += 2) {
    if (v->items[i]->kind != Value::Kind::kString || v->items[i + 1]->kind != Value::Kind::kTensor) return false;
  }
  return true;
}

ValuePtr find_state_dict(const ValuePtr& root, const std::string& path) {
  if (is_tensor_dict(root)) return root;
  for (const char* key : {"model", "state_dict", "model_ema"}) {
    if (is_tensor_dict(root->get(key))) return root->get(key);
  }
  std::string keys;
  if (root->kind == Value::Kind::kDict) {
    for (size_t i = 0; i < root->items.size(); i += 2) keys += " " + root->items[i]->text;
  }
  throw Error(path + ": no state dict found (top level is a " + root->kind_name() +
              (keys.empty() ? "" : " with keys:" + keys) + ")");
}

// A view must stay inside its storage, and may not repeat elements (a state dict holds no
// broadcast, stride-0 views: 533 bytes must not become a gigabyte).
void check_view(const SavedTensor& t, const std::string& where) {
  if (t.offset < 0) throw Error(where + ": negative storage offset");
  int64_t extent = t.offset, numel = 1;
  bool overflow = false;
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    if (t.sizes[d] < 0 || t.strides[d] < 0) throw Error(where + ": negative size or stride");
    int64_t reach = 0;
    if (t.sizes[d] > 0) {
      overflow |= __builtin_mul_overflow(t.sizes[d] - 1, t.strides[d], &reach);
      overflow |= __builtin_add_overflow(extent, reach, &extent);
    }
    overflow |= __builtin_mul_overflow(numel, t.sizes[d], &numel);
  }
  if (overflow) throw Error(where + ": view sizes overflow");
  const int64_t available = t.storage_numel();
  if (numel > 0 && extent >= available) throw Error(where + ": view reaches past its storage");
  if (numel > available) {
    throw Error(where + ": a " + std::to_string(numel) + "-element view of a " + std::to_string(available) +
                "-element storage (repeated elements; not a state dict)");
  }
}

}  // namespace

std::vector<SavedTensor> read_torch_save(const std::string& path) {
  if (!std::filesystem::is_regular_file(path) && !starts_with(path, "/proc/self/fd/")) {
    throw Error(path + ": file not found");
  }
  const ZipReader zip(path);
  if (zip.entries().empty()) throw Error(path + ": an empty zip archive, not a torch.save() file");
  // Records live under one folder, named after the file torch.save() first wrote ("archive/").
  const std::string& first = zip.entries().front().name;
  const std::string root = first.substr(0, first.find('/') + 1);
  const auto record = [&](const std::string& name) {
    const ZipEntry* entry = zip.find(root + name);
    if (!entry) throw Error(path + ": archive has no record '" + root + name + "'");
    return zip.read(*entry);
  };

  const ValuePtr dict = find_state_dict(pickle::unpickle(record("data.pkl"), path + ": data.pkl"), path);
  std::map<std::string, std::shared_ptr<const std::string>> storages;
  std::vector<SavedTensor> tensors;
  for (size_t i = 0; i + 1 < dict->items.size(); i += 2) {
    const Value& t = *dict->items[i + 1];
    const Value& s = *t.storage;
    SavedTensor saved;
    saved.name = dict->items[i]->text;
    const std::string where = path + ": " + saved.name;
    saved.storage_type = s.storage_type;
    saved.element_size = element_size(s.storage_type, where);
    auto& storage = storages[s.text];
    if (!storage) storage = std::make_shared<const std::string>(record("data/" + s.text));
    saved.storage = storage;
    if (saved.storage_numel() < s.storage_numel) throw Error(path + ": storage data/" + s.text + " is truncated");
    saved.offset = t.storage_offset;
    saved.sizes = t.sizes;
    saved.strides = t.strides;
    check_view(saved, where);
    tensors.push_back(std::move(saved));
  }
  return tensors;
}

}  // namespace gaze
