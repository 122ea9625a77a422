#include "libgaze/io/hdf5.h"

#include "libgaze/core/crc32c.h"
#include "libgaze/core/error.h"

namespace gaze::h5 {
namespace {

// No HDF5 shutdown at exit. When a write fails (a full disk), H5Fclose fails too and leaves the
// file half-closed; the library's atexit teardown then closes it again and crashes (SIGSEGV in
// H5F__close_cb, HDF5 1.10.8), after our error was already reported. Every file we open is
// closed by its Handle, and a file whose close failed is a temp file write_atomically deletes,
// so the teardown has nothing to flush. This must run before the library initialises.
const bool kNoHdf5Teardown = H5dont_atexit() >= 0;

// HDF5 prints an error stack to stderr on every failed call; we report our own messages.
void silence_hdf5_errors() {
  static const bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

constexpr size_t kMaxStringBytes = size_t(64) << 20;  // a resolved config is a few KiB

// The operating system's reason behind the HDF5 call that just failed, when there is one:
// HDF5 records it as "..., errno = 28, error message = 'No space left on device', ...".
std::string os_reason() {
  std::string reason;
  const auto visit = [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
    const std::string desc = e->desc ? e->desc : "";
    const size_t at = desc.find("error message = '");
    if (at != std::string::npos) {
      const size_t start = at + 17, end = desc.find('\'', start);
      *static_cast<std::string*>(data) = desc.substr(start, end == std::string::npos ? end : end - start);
      return 1;  // the innermost one is enough
    }
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, visit, &reason);
  return reason.empty() ? "" : " (" + reason + ")";
}

[[noreturn]] void fail(const std::string& where, const std::string& name, const std::string& what) {
  throw Error(where + ": " + name + ": " + what + os_reason());
}

hid_t native_type(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return H5T_NATIVE_FLOAT;
    case DType::kF64:
      return H5T_NATIVE_DOUBLE;
    case DType::kI8:
      return H5T_NATIVE_INT8;
    case DType::kU8:
      return H5T_NATIVE_UINT8;
    case DType::kI16:
      return H5T_NATIVE_INT16;
    case DType::kI32:
      return H5T_NATIVE_INT32;
    case DType::kI64:
      return H5T_NATIVE_INT64;
  }
  return -1;
}

// Maps a stored datatype to ours; class + size + sign identify it.
bool dtype_from_h5(hid_t type, DType* out) {
  const H5T_class_t cls = H5Tget_class(type);
  const size_t size = H5Tget_size(type);
  if (cls == H5T_FLOAT) {
    if (size == 4) return *out = DType::kF32, true;
    if (size == 8) return *out = DType::kF64, true;
  } else if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    if (size == 1) return *out = is_signed ? DType::kI8 : DType::kU8, true;
    if (size == 2 && is_signed) return *out = DType::kI16, true;
    if (size == 4 && is_signed) return *out = DType::kI32, true;
    if (size == 8 && is_signed) return *out = DType::kI64, true;
  }
  return false;
}

Handle string_type(size_t length) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.id(), std::max<size_t>(1, length));
  H5Tset_strpad(type.id(), H5T_STR_NULLPAD);
  H5Tset_cset(type.id(), H5T_CSET_UTF8);
  return type;
}

}  // namespace

std::mutex& library_mutex() {
  static std::mutex m;
  return m;
}

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 4;
    case DType::kF64:
      return 8;
    case DType::kI8:
      return 1;
    case DType::kU8:
      return 1;
    case DType::kI16:
      return 2;
    case DType::kI32:
      return 4;
    case DType::kI64:
      return 8;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "float32";
    case DType::kF64:
      return "float64";
    case DType::kI8:
      return "int8";
    case DType::kU8:
      return "uint8";
    case DType::kI16:
      return "int16";
    case DType::kI32:
      return "int32";
    case DType::kI64:
      return "int64";
  }
  return "?";
}

int64_t Array::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    if (id_ >= 0 && close_) close_(id_);
    id_ = other.id_;
    close_ = other.close_;
    other.id_ = -1;
  }
  return *this;
}

Handle::~Handle() {
  if (id_ >= 0 && close_) close_(id_);
}

Handle untimed_properties(hid_t property_class, const std::string& where) {
  Handle props(H5Pcreate(property_class), H5Pclose);
  if (props.id() < 0 || H5Pset_obj_track_times(props.id(), false) < 0) {
    throw Error(where + ": cannot make an HDF5 object creation property list");
  }
  return props;
}

File File::create(const std::string& path) {
  silence_hdf5_errors();
  // The 1.10 file format: every metadata block (superblock, object headers, B-trees, heaps)
  // carries a checksum, so a damaged byte is an error instead of a wild read inside libhdf5.
  // h5py and HDF5 >= 1.10 read it.
  Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (H5Pset_libver_bounds(access.id(), H5F_LIBVER_V110, H5F_LIBVER_LATEST) < 0) {
    throw Error(path + ": cannot select the HDF5 1.10 file format");
  }
  const Handle create = untimed_properties(H5P_FILE_CREATE, path);  // the root group's times
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, create.id(), access.id());
  if (id < 0) throw Error(path + ": cannot create HDF5 file");
  return File(Handle(id, H5Fclose), path);
}

File File::open(const std::string& path) {
  silence_hdf5_errors();
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    throw Error(path + ": not a readable HDF5 file (missing, truncated or another format)");
  }
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) throw Error(path + ": cannot open HDF5 file");
  return File(Handle(id, H5Fclose), path);
}

void File::flush() {
  if (H5Fflush(id(), H5F_SCOPE_GLOBAL) < 0) throw Error(path_ + ": cannot flush HDF5 file");
}

Handle create_group(hid_t parent, const std::string& name, const std::string& where) {
  // Track creation order so readers (and h5py) list members in the order they were written.
  Handle props = untimed_properties(H5P_GROUP_CREATE, where);
  H5Pset_link_creation_order(props.id(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  const hid_t id = H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, props.id(), H5P_DEFAULT);
  if (id < 0) fail(where, name, "cannot create group");
  return Handle(id, H5Gclose);
}

Handle open_group(hid_t parent, const std::string& name, const std::string& where) {
  const hid_t id = H5Gopen2(parent, name.c_str(), H5P_DEFAULT);
  if (id < 0) fail(where, name, "cannot open group (damaged file?)");
  return Handle(id, H5Gclose);
}

bool has_attr(hid_t object, const std::string& name, const std::string& where) {
  const htri_t found = H5Aexists(object, name.c_str());
  if (found < 0) fail(where, "@" + name, "cannot read attributes (damaged file?)");
  return found > 0;
}

bool exists(hid_t parent, const std::string& name) {
  silence_hdf5_errors();
  // Check each path component: H5Lexists fails on a missing intermediate group.
  std::string prefix;
  size_t start = 0;
  while (start <= name.size()) {
    const size_t slash = name.find('/', start);
    prefix = name.substr(0, slash);
    if (H5Lexists(parent, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

std::vector<std::string> list_children(hid_t group, const std::string& where) {
  std::vector<std::string> names;
  const auto collect = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  if (H5Literate(group, H5_INDEX_CRT_ORDER, H5_ITER_INC, nullptr, collect, &names) < 0) {
    names.clear();  // the file was written without creation-order tracking: fall back to names
    if (H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect, &names) < 0) {
      throw Error(where + ": cannot list group");
    }
  }
  return names;
}

void write_array(hid_t parent, const std::string& name, const Array& array, const std::string& where) {
  if (array.bytes.size() != static_cast<size_t>(array.numel()) * dtype_size(array.dtype)) {
    fail(where, name, "array byte size does not match its shape");
  }
  std::vector<hsize_t> dims(array.shape.begin(), array.shape.end());
  Handle space(array.shape.empty() ? H5Screate(H5S_SCALAR)
                                   : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
               H5Sclose);
  Handle set(H5Dcreate2(parent, name.c_str(), native_type(array.dtype), space.id(), H5P_DEFAULT,
                        untimed_properties(H5P_DATASET_CREATE, where).id(), H5P_DEFAULT),
             H5Dclose);
  if (set.id() < 0) fail(where, name, "cannot create dataset");
  if (array.numel() > 0 &&
      H5Dwrite(set.id(), native_type(array.dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, array.bytes.data()) < 0) {
    fail(where, name, "cannot write dataset");
  }
  // HDF5 checksums nothing here: a flipped bit in a weight would load silently without this.
  write_int_attr(set.id(), "crc32c", crc32c(array.bytes.data(), array.bytes.size()), where + ": " + name);
}

Array read_array(hid_t parent, const std::string& name, const std::string& where) {
  if (!exists(parent, name)) fail(where, name, "no such dataset");
  Handle set(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (set.id() < 0) fail(where, name, "cannot open dataset");
  Handle type(H5Dget_type(set.id()), H5Tclose);
  Array array;
  if (!dtype_from_h5(type.id(), &array.dtype)) fail(where, name, "unsupported element type");
  Handle space(H5Dget_space(set.id()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.id());
  if (rank < 0) fail(where, name, "cannot read shape");
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
  array.shape.assign(dims.begin(), dims.end());
  // The declared shape is checked against what the file stores before memory is allocated
  // (checkpoint arrays are contiguous and unfiltered: every byte is stored).
  double declared = double(dtype_size(array.dtype));
  for (hsize_t d : dims) declared *= double(d);
  Handle plist(H5Dget_create_plist(set.id()), H5Pclose);
  const bool unfiltered = H5Pget_nfilters(plist.id()) == 0;
  const double stored = double(H5Dget_storage_size(set.id()));
  if ((unfiltered && declared > stored) || declared > 64e9) {
    fail(where, name,
         "declares " + std::to_string(int64_t(declared)) + " bytes but the file stores " +
             std::to_string(int64_t(stored)));
  }
  array.bytes.resize(static_cast<size_t>(array.numel()) * dtype_size(array.dtype));
  if (array.numel() > 0 &&
      H5Dread(set.id(), native_type(array.dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, array.bytes.data()) < 0) {
    fail(where, name, "cannot read dataset (corrupt file?)");
  }
  // Files from before the checksum have none; every file written since is verified.
  if (H5Aexists(set.id(), "crc32c") > 0) {
    const int64_t stored = read_int_attr(set.id(), "crc32c", where + ": " + name);
    if (uint32_t(stored) != crc32c(array.bytes.data(), array.bytes.size())) {
      fail(where, name, "checksum mismatch (CRC-32C): the data is damaged");
    }
  }
  return array;
}

void write_string(hid_t parent, const std::string& name, const std::string& text, const std::string& where) {
  Handle type = string_type(text.size());
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle set(H5Dcreate2(parent, name.c_str(), type.id(), space.id(), H5P_DEFAULT,
                        untimed_properties(H5P_DATASET_CREATE, where).id(), H5P_DEFAULT),
             H5Dclose);
  if (set.id() < 0) fail(where, name, "cannot create string dataset");
  std::string padded = text;
  padded.resize(std::max<size_t>(1, text.size()), '\0');
  if (H5Dwrite(set.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, padded.data()) < 0) {
    fail(where, name, "cannot write string dataset");
  }
  write_int_attr(set.id(), "crc32c", crc32c(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
                 where + ": " + name);
}

std::string read_string(hid_t parent, const std::string& name, const std::string& where) {
  if (!exists(parent, name)) fail(where, name, "no such dataset");
  Handle set(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), H5Dclose);
  Handle type(H5Dget_type(set.id()), H5Tclose);
  if (set.id() < 0 || H5Tget_class(type.id()) != H5T_STRING || H5Tis_variable_str(type.id()) > 0) {
    fail(where, name, "not a fixed-length string dataset");
  }
  // The declared length must be stored in the file before it is allocated.
  const size_t declared = H5Tget_size(type.id());
  if (declared == 0 || declared > kMaxStringBytes || declared > H5Dget_storage_size(set.id())) {
    fail(where, name, "string length " + std::to_string(declared) + " does not match the file");
  }
  std::string text(declared, '\0');
  if (H5Dread(set.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data()) < 0) {
    fail(where, name, "cannot read string dataset");
  }
  text.resize(text.find('\0') == std::string::npos ? text.size() : text.find('\0'));
  if (has_attr(set.id(), "crc32c", where + ": " + name)) {  // written since the checksum exists
    const int64_t stored = read_int_attr(set.id(), "crc32c", where + ": " + name);
    if (uint32_t(stored) != crc32c(reinterpret_cast<const uint8_t*>(text.data()), text.size())) {
      fail(where, name, "checksum mismatch (CRC-32C): the text is damaged");
    }
  }
  return text;
}

void write_int_attr(hid_t object, const std::string& name, int64_t value, const std::string& where) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(H5Acreate2(object, name.c_str(), H5T_NATIVE_INT64, space.id(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (attr.id() < 0 || H5Awrite(attr.id(), H5T_NATIVE_INT64, &value) < 0) {
    fail(where, "@" + name, "cannot write attribute");
  }
}

int64_t read_int_attr(hid_t object, const std::string& name, const std::string& where) {
  if (H5Aexists(object, name.c_str()) <= 0) fail(where, "@" + name, "missing attribute");
  Handle attr(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose);
  int64_t value = 0;
  if (attr.id() < 0 || H5Aread(attr.id(), H5T_NATIVE_INT64, &value) < 0) {
    fail(where, "@" + name, "cannot read integer attribute");
  }
  return value;
}

void write_string_attr(hid_t object, const std::string& name, const std::string& value, const std::string& where) {
  Handle type = string_type(value.size());
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(H5Acreate2(object, name.c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  std::string padded = value;
  padded.resize(std::max<size_t>(1, value.size()), '\0');
  if (attr.id() < 0 || H5Awrite(attr.id(), type.id(), padded.data()) < 0) {
    fail(where, "@" + name, "cannot write attribute");
  }
}

std::string read_string_attr(hid_t object, const std::string& name, const std::string& where) {
  if (H5Aexists(object, name.c_str()) <= 0) fail(where, "@" + name, "missing attribute");
  Handle attr(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose);
  Handle type(H5Aget_type(attr.id()), H5Tclose);
  if (attr.id() < 0 || H5Tget_class(type.id()) != H5T_STRING || H5Tis_variable_str(type.id()) > 0) {
    fail(where, "@" + name, "not a fixed-length string attribute");
  }
  // Attributes live in the (checksummed) object header, at most 64 KiB.
  if (H5Tget_size(type.id()) > 65536 || H5Aget_storage_size(attr.id()) < H5Tget_size(type.id())) {
    fail(where, "@" + name, "attribute length does not match the file");
  }
  std::string text(H5Tget_size(type.id()), '\0');
  if (H5Aread(attr.id(), type.id(), text.data()) < 0) fail(where, "@" + name, "cannot read");
  text.resize(text.find('\0') == std::string::npos ? text.size() : text.find('\0'));
  return text;
}

}  // namespace gaze::h5
