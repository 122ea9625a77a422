#include "libgaze/io/checkpoint_file.h"

#include "libgaze/core/atomic_file.h"
#include "libgaze/core/crc32c.h"
#include "libgaze/core/error.h"

namespace gaze {
namespace {

constexpr const char* kFormat = "libgaze-checkpoint";
constexpr int64_t kVersion = 1;

void write_group(hid_t file, const char* group_name, const ArrayList& arrays, const std::string& where) {
  const h5::Handle group = h5::create_group(file, group_name, where);
  for (const auto& [name, array] : arrays) {
    if (name.find('/') != std::string::npos) throw Error(where + ": tensor name '" + name + "' contains '/'");
    h5::write_array(group.id(), name, array, where + ": /" + group_name);
  }
}

ArrayList read_group(hid_t file, const char* group_name, const std::string& where) {
  ArrayList arrays;
  if (!h5::exists(file, group_name)) return arrays;
  const h5::Handle group = h5::open_group(file, group_name, where);
  const std::string group_where = where + ": /" + group_name;
  for (const auto& name : h5::list_children(group.id(), group_where)) {
    arrays.emplace_back(name, h5::read_array(group.id(), name, group_where));
  }
  return arrays;
}

}  // namespace

void write_checkpoint_file(const std::string& path, const CheckpointFile& checkpoint) {
  write_atomically(path, [&](const std::string& tmp) {
    std::lock_guard<std::mutex> lock(h5::library_mutex());
    h5::File file = h5::File::create(tmp);
    h5::write_string_attr(file.id(), "format", kFormat, path);
    h5::write_int_attr(file.id(), "version", kVersion, path);
    h5::write_string_attr(file.id(), "stage", checkpoint.stage, path);
    h5::write_int_attr(file.id(), "step", checkpoint.step, path);
    h5::write_string(file.id(), "config", checkpoint.config_yaml, path);
    write_group(file.id(), "model", checkpoint.model, path);
    write_group(file.id(), "optimizer", checkpoint.optimizer, path);
    write_group(file.id(), "state", checkpoint.state, path);
    file.flush();
  });
}

CheckpointFile read_checkpoint_file(const std::string& path) {
  std::lock_guard<std::mutex> lock(h5::library_mutex());
  h5::File file = h5::File::open(path);
  if (!h5::has_attr(file.id(), "format", path) || h5::read_string_attr(file.id(), "format", path) != kFormat) {
    throw Error(path + ": not a libgaze checkpoint (no format=" + kFormat + " attribute)");
  }
  const int64_t version = h5::read_int_attr(file.id(), "version", path);
  if (version > kVersion) {
    throw Error(path + ": checkpoint format version " + std::to_string(version) +
                " is newer than this libgaze reads (" + std::to_string(kVersion) + ")");
  }
  CheckpointFile checkpoint;
  checkpoint.stage = h5::read_string_attr(file.id(), "stage", path);
  checkpoint.step = h5::read_int_attr(file.id(), "step", path);
  checkpoint.config_yaml = h5::read_string(file.id(), "config", path);
  checkpoint.model = read_group(file.id(), "model", path);
  checkpoint.optimizer = read_group(file.id(), "optimizer", path);
  checkpoint.state = read_group(file.id(), "state", path);
  return checkpoint;
}

uint32_t arrays_crc32c(const ArrayList& arrays) {
  uint32_t crc = 0;
  for (const auto& [name, array] : arrays) {
    crc = crc32c(name.data(), name.size(), crc);
    crc = crc32c(array.bytes.data(), array.bytes.size(), crc);
  }
  return crc;
}

}  // namespace gaze
