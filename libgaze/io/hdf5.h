// A thin RAII layer over the HDF5 C API (no torch): files, groups, n-d arrays, strings.
//
// Contract: every failure throws gaze::Error naming the file and the object path
// ("ckpt.h5: /model/stages.0.0.dwconv.weight: ..."); HDF5's own stderr error stack is
// silenced. Arrays are row-major; dtypes are the few libgaze stores. Files written here open
// in h5py as ordinary datasets and attributes, and carry no timestamps: the same content
// written twice is the same bytes.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace gaze::h5 {

// Debian's HDF5 is built without thread safety: every caller that may run beside another
// thread's HDF5 use (checkpoint saves beside prefetching pack readers) holds this lock.
std::mutex& library_mutex();

enum class DType { kF32, kF64, kI8, kU8, kI16, kI32, kI64 };
size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

// An owned n-d array in host memory.
struct Array {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  int64_t numel() const;
};

// Owns one hid_t and closes it with the right H5*close.
class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(Handle&& other) noexcept { *this = std::move(other); }
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle();
  hid_t id() const { return id_; }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

// A creation property list of `property_class` (H5P_FILE_CREATE, H5P_GROUP_CREATE,
// H5P_DATASET_CREATE) whose objects record no access or modification times; `where` names the
// file in errors.
Handle untimed_properties(hid_t property_class, const std::string& where);

class File {
 public:
  static File create(const std::string& path);  // truncates
  static File open(const std::string& path);    // read-only
  hid_t id() const { return handle_.id(); }
  const std::string& path() const { return path_; }
  void flush();

 private:
  File(Handle handle, std::string path) : handle_(std::move(handle)), path_(std::move(path)) {}
  Handle handle_;
  std::string path_;
};

// `where` is the file path, used only in error messages. `name` may contain '/' for nested
// groups when reading; group names must not contain '/'.
Handle create_group(hid_t parent, const std::string& name, const std::string& where);
Handle open_group(hid_t parent, const std::string& name, const std::string& where);
bool exists(hid_t parent, const std::string& name);
bool has_attr(hid_t object, const std::string& name, const std::string& where);
std::vector<std::string> list_children(hid_t group, const std::string& where);

void write_array(hid_t parent, const std::string& name, const Array& array, const std::string& where);
Array read_array(hid_t parent, const std::string& name, const std::string& where);

void write_string(hid_t parent, const std::string& name, const std::string& text, const std::string& where);
std::string read_string(hid_t parent, const std::string& name, const std::string& where);

void write_int_attr(hid_t object, const std::string& name, int64_t value, const std::string& where);
int64_t read_int_attr(hid_t object, const std::string& name, const std::string& where);
void write_string_attr(hid_t object, const std::string& name, const std::string& value, const std::string& where);
std::string read_string_attr(hid_t object, const std::string& name, const std::string& where);

}  // namespace gaze::h5
