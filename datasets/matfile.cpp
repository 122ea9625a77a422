#include "datasets/matfile.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>

#include "libgaze/core/error.h"
#include "libgaze/io/hdf5.h"

namespace gaze {
namespace {

// matio reports problems through a log function; keep the last message for our error instead
// of letting it print to stderr.
thread_local std::string last_matio_message;
void record_matio_message(int, char* message) { last_matio_message = message ? message : ""; }
void route_matio_log() {
  static std::once_flag once;
  std::call_once(once, [] { Mat_LogInitFunc("libgaze", record_matio_message); });
}
std::string matio_detail() {
  std::string m = std::move(last_matio_message);
  last_matio_message.clear();
  return m.empty() ? "" : " (" + m + ")";
}

uint64_t saturating_multiply(uint64_t a, uint64_t b) { return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b; }

// Level-5 MAT files are checked before matio reads them. matio allocates what a header
// declares (cell and struct element counts, numeric element counts) before it reads the data
// behind it, so a damaged header can ask for terabytes. This walks the file's data elements the
// way the format nests them (compressed variables inflated, within a size cap) and refuses any
// count that the bytes behind it cannot hold: every cell or struct field is at least an 8-byte
// tag, every numeric or character element at least one byte.
class Mat5Check {
 public:
  Mat5Check(std::string path, bool swap) : path_(std::move(path)), swap_(swap) {}

  // Top level: [compressed] miMATRIX elements, one per variable.
  void variables(const uint8_t* p, size_t n) {
    while (n > 0) {
      const Tag t = tag(p, n, "a variable");
      if (t.type == kCompressed) {
        const std::vector<uint8_t> inflated = inflate(p + 8, t.size);
        size_t m = inflated.size();
        const uint8_t* q = inflated.data();
        while (m > 0) {
          const Tag inner = tag(q, m, "a compressed variable");
          if (inner.type == kMatrix) matrix(q + inner.header, inner.size, 0);
          q += inner.total;
          m -= inner.total;
        }
      } else if (t.type == kMatrix) {
        matrix(p + t.header, t.size, 0);
      }
      p += t.total;
      n -= t.total;
    }
  }

 private:
  static constexpr uint32_t kInt8 = 1, kInt32 = 5, kUint32 = 6, kMatrix = 14, kCompressed = 15;
  static constexpr int kMaxDepth = 64;
  struct Tag {
    uint32_t type = 0;
    uint64_t size = 0;
    size_t header = 8, total = 0;  // bytes before the data; the whole element, padding included
  };

  [[noreturn]] void damaged(const std::string& what) const { throw Error(path_ + ": damaged MATLAB file: " + what); }

  uint32_t u32(const uint8_t* p) const {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return swap_ ? __builtin_bswap32(v) : v;
  }

  Tag tag(const uint8_t* p, size_t n, const char* what) const {
    if (n < 8) damaged(std::string("a data element of ") + what + " is cut short");
    Tag t;
    const uint32_t first = u32(p);
    if (first >> 16) {  // the small element format: size and type in 4 bytes, data in the next 4
      t.type = first & 0xffff;
      t.size = first >> 16;
      t.header = 4;
      t.total = 8;
      if (t.size > 4) damaged(std::string("a small data element of ") + what + " declares more than 4 bytes");
      return t;
    }
    t.type = first;
    t.size = u32(p + 4);
    const uint64_t padded = t.type == kCompressed ? t.size : (t.size + 7) / 8 * 8;
    if (padded > n - 8) {
      damaged(std::string("a data element of ") + what + " declares " + std::to_string(t.size) + " bytes where " +
              std::to_string(n - 8) + " remain");
    }
    t.total = size_t(8 + padded);
    return t;
  }

  std::vector<uint8_t> inflate(const uint8_t* p, uint64_t n) const {
    // Deflate expands at most ~1032:1; and no variable of a gaze dataset comes near 1 GiB.
    const uint64_t cap = std::min<uint64_t>(1032 * n + 1024, uint64_t(1) << 30);
    std::vector<uint8_t> out;
    z_stream z{};
    if (inflateInit(&z) != Z_OK) damaged("zlib cannot start");
    z.next_in = const_cast<uint8_t*>(p);
    z.avail_in = uInt(n);
    int status = Z_OK;
    while (status == Z_OK) {
      const size_t used = out.size();
      if (used >= cap) break;
      out.resize(size_t(std::min<uint64_t>(cap, std::max<uint64_t>(4096, used * 2))));
      z.next_out = out.data() + used;
      z.avail_out = uInt(out.size() - used);
      status = ::inflate(&z, Z_NO_FLUSH);
      out.resize(out.size() - z.avail_out);
      if (status == Z_BUF_ERROR && z.avail_in == 0) break;  // the stream ends early: matio will say so
    }
    inflateEnd(&z);
    if (status == Z_NEED_DICT || status == Z_DATA_ERROR || status == Z_MEM_ERROR) {
      damaged("a compressed variable does not inflate");
    }
    return out;
  }

  // The data of one miMATRIX element (array flags, dimensions, name, then the class's data).
  void matrix(const uint8_t* p, size_t n, int depth) const {
    if (n == 0) return;  // an empty array
    if (depth > kMaxDepth) damaged("cells or structs nested more than 64 deep");
    const Tag flags = tag(p, n, "an array");
    if (flags.type != kUint32 || flags.size != 8) damaged("an array's flags are malformed");
    const auto array_class = matio_classes(u32(p + flags.header) & 0xff);
    p += flags.total, n -= flags.total;
    const Tag dims = tag(p, n, "an array");
    if (dims.type != kInt32 || dims.size < 8 || dims.size % 4) damaged("an array's dimensions are malformed");
    uint64_t elements = 1;
    for (uint64_t i = 0; i < dims.size; i += 4) {
      elements = saturating_multiply(elements, u32(p + dims.header + i) & 0x7fffffffu);
    }
    p += dims.total, n -= dims.total;
    const Tag name = tag(p, n, "an array");
    if (name.type != kInt8) damaged("an array's name is malformed");
    p += name.total, n -= name.total;
    if (array_class == MAT_C_CELL || array_class == MAT_C_STRUCT) {
      uint64_t fields = 1;
      if (array_class == MAT_C_STRUCT) {
        const Tag length = tag(p, n, "a struct");
        const uint32_t field_length = length.size == 4 ? u32(p + length.header) : 0;
        if (length.type != kInt32 || field_length == 0) damaged("a struct's field name length is malformed");
        p += length.total, n -= length.total;
        const Tag names = tag(p, n, "a struct");
        if (names.type != kInt8) damaged("a struct's field names are malformed");
        fields = names.size / field_length;
        p += names.total, n -= names.total;
      }
      const uint64_t children = saturating_multiply(elements, fields);
      if (children > n / 8) {
        damaged("an array declares " + std::to_string(children) + " cells or fields in " + std::to_string(n) +
                " bytes");
      }
      for (uint64_t i = 0; i < children; ++i) {
        const Tag child = tag(p, n, "a cell or field");
        if (child.type != kMatrix) damaged("a cell or field is not an array");
        matrix(p + child.header, child.size, depth + 1);
        p += child.total, n -= child.total;
      }
      return;
    }
    if (array_class == MAT_C_OBJECT || array_class == MAT_C_SPARSE || array_class == MAT_C_FUNCTION ||
        array_class > MAT_C_UINT64) {
      return;  // not the data we read; matio reports these as classes we refuse
    }
    if (elements > 0) {
      const Tag real = tag(p, n, "an array's data");
      if (real.size < elements) {
        damaged("an array declares " + std::to_string(elements) + " elements in " + std::to_string(real.size) +
                " bytes of data");
      }
    }
  }

  std::string path_;
  bool swap_;
};

// Level-5 files (a 128-byte header ending in version 0x0100 and "IM"/"MI") are walked by
// Mat5Check; v7.3 files are HDF5 files and go through HDF5; anything else is refused.
void check_mat_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.eof() && in.fail()) throw Error(path + ": cannot read");
  if (bytes.size() < 128) throw Error(path + ": not a MATLAB .mat file (shorter than the 128-byte header)");
  const bool little = bytes[126] == 'I' && bytes[127] == 'M', big = bytes[126] == 'M' && bytes[127] == 'I';
  if (!little && !big) throw Error(path + ": not a level-5 or v7.3 MATLAB .mat file (no endian mark)");
  const uint16_t version = little ? uint16_t(bytes[124] | bytes[125] << 8) : uint16_t(bytes[125] | bytes[124] << 8);
  if (version == 0x0200) return;  // v7.3: an HDF5 file behind the header
  if (version != 0x0100) throw Error(path + ": unknown MATLAB file version " + std::to_string(version));
  Mat5Check(path, big).variables(bytes.data() + 128, bytes.size() - 128);
}

// The bytes a variable's header says its data takes, summed over struct fields and cells (as
// Mat_VarReadInfo describes them, before any data is read), saturating.
uint64_t declared_bytes(matvar_t* info) {
  uint64_t elements = 1;
  for (int i = 0; i < info->rank; ++i) elements = saturating_multiply(elements, uint64_t(info->dims[i]));
  if (info->class_type == MAT_C_STRUCT) {
    const unsigned fields = Mat_VarGetNumberOfFields(info);
    uint64_t total = 0;
    for (size_t e = 0; e < elements && info->data; ++e) {
      for (unsigned f = 0; f < fields; ++f) {
        matvar_t* field = Mat_VarGetStructFieldByIndex(info, f, e);
        if (field) total = std::min<uint64_t>(UINT64_MAX - 1, total) + declared_bytes(field);
      }
    }
    return total;
  }
  if (info->class_type == MAT_C_CELL) {
    uint64_t total = 0;
    for (size_t e = 0; e < elements && info->data; ++e) {
      matvar_t* cell = Mat_VarGetCell(info, int(e));
      if (cell) total = std::min<uint64_t>(UINT64_MAX - 1, total) + declared_bytes(cell);
    }
    return total;
  }
  return saturating_multiply(elements, std::max<uint64_t>(1, Mat_SizeOfClass(info->class_type)));
}

const char* class_name(matio_classes c) {
  switch (c) {
    case MAT_C_EMPTY:
      return "empty";
    case MAT_C_CELL:
      return "cell";
    case MAT_C_STRUCT:
      return "struct";
    case MAT_C_CHAR:
      return "char";
    case MAT_C_DOUBLE:
      return "double";
    case MAT_C_SINGLE:
      return "single";
    case MAT_C_INT8:
      return "int8";
    case MAT_C_UINT8:
      return "uint8";
    case MAT_C_INT16:
      return "int16";
    case MAT_C_UINT16:
      return "uint16";
    case MAT_C_INT32:
      return "int32";
    case MAT_C_UINT32:
      return "uint32";
    case MAT_C_INT64:
      return "int64";
    case MAT_C_UINT64:
      return "uint64";
    default:
      return "another class";
  }
}

template <class T>
void append_converted(const void* data, size_t count, std::vector<double>& out) {
  const T* values = static_cast<const T*>(data);
  for (size_t i = 0; i < count; ++i) out.push_back(double(values[i]));
}

}  // namespace

MatVar::MatVar(std::shared_ptr<matvar_t> root, matvar_t* var, std::string where)
    : root_(std::move(root)), var_(var), where_(std::move(where)) {
  if (var_->rank < 0 || var_->rank > 32) throw Error(where_ + ": bad rank " + std::to_string(var_->rank));
  dims_.assign(var_->dims, var_->dims + var_->rank);
}

size_t MatVar::numel() const {
  size_t n = 1;
  for (const size_t d : dims_) n *= d;
  return n;
}

std::string MatVar::describe() const {
  std::string s = std::string(class_name(var_->class_type)) + " [";
  for (size_t i = 0; i < dims_.size(); ++i) s += (i ? " " : "") + std::to_string(dims_[i]);
  return s + "]";
}

MatVar MatVar::field(const std::string& name) const {
  if (var_->class_type != MAT_C_STRUCT || numel() != 1)
    throw Error(where_ + ": expected a 1x1 struct, found " + describe());
  matvar_t* f = Mat_VarGetStructFieldByName(var_, name.c_str(), 0);
  if (!f) throw Error(where_ + ": no field '" + name + "'");
  return MatVar(root_, f, where_ + "." + name);
}

MatVar MatVar::cell(size_t index) const {
  if (var_->class_type != MAT_C_CELL) throw Error(where_ + ": expected a cell array, found " + describe());
  if (index >= numel()) throw Error(where_ + ": cell " + std::to_string(index) + " of " + std::to_string(numel()));
  matvar_t* c = Mat_VarGetCell(var_, int(index));
  if (!c) throw Error(where_ + "{" + std::to_string(index + 1) + "}: missing");
  return MatVar(root_, c, where_ + "{" + std::to_string(index + 1) + "}");
}

std::vector<double> MatVar::doubles() const {
  if (var_->isComplex) throw Error(where_ + ": expected real numbers, found complex " + describe());
  const size_t n = numel();
  std::vector<double> out;
  out.reserve(n);
  if (n == 0) return out;
  if (!var_->data) throw Error(where_ + ": no data");
  switch (var_->class_type) {
    case MAT_C_DOUBLE:
      append_converted<double>(var_->data, n, out);
      break;
    case MAT_C_SINGLE:
      append_converted<float>(var_->data, n, out);
      break;
    case MAT_C_INT8:
      append_converted<int8_t>(var_->data, n, out);
      break;
    case MAT_C_UINT8:
      append_converted<uint8_t>(var_->data, n, out);
      break;
    case MAT_C_INT16:
      append_converted<int16_t>(var_->data, n, out);
      break;
    case MAT_C_UINT16:
      append_converted<uint16_t>(var_->data, n, out);
      break;
    case MAT_C_INT32:
      append_converted<int32_t>(var_->data, n, out);
      break;
    case MAT_C_UINT32:
      append_converted<uint32_t>(var_->data, n, out);
      break;
    case MAT_C_INT64:
      append_converted<int64_t>(var_->data, n, out);
      break;
    case MAT_C_UINT64:
      append_converted<uint64_t>(var_->data, n, out);
      break;
    default:
      throw Error(where_ + ": expected numbers, found " + describe());
  }
  return out;
}

std::vector<uint8_t> MatVar::uint8s() const {
  if (var_->class_type != MAT_C_UINT8 || var_->isComplex) throw Error(where_ + ": expected uint8, found " + describe());
  const uint8_t* data = static_cast<const uint8_t*>(var_->data);
  if (numel() > 0 && !data) throw Error(where_ + ": no data");
  return std::vector<uint8_t>(data, data + numel());
}

std::string MatVar::text() const {
  if (var_->class_type != MAT_C_CHAR) throw Error(where_ + ": expected text (char), found " + describe());
  if (dims_.size() != 2 || (dims_[0] > 1 && dims_[1] > 1))
    throw Error(where_ + ": expected one row of text, found " + describe());
  const size_t n = numel();
  std::string s;
  if (n > 0 && !var_->data) throw Error(where_ + ": no data");
  for (size_t i = 0; i < n; ++i) {
    uint32_t code = 0;
    switch (var_->data_type) {  // MATLAB stores UTF-16 code units; other writers bytes
      case MAT_T_UINT16:
      case MAT_T_UTF16:
        code = static_cast<const uint16_t*>(var_->data)[i];
        break;
      case MAT_T_UINT8:
      case MAT_T_INT8:
      case MAT_T_UTF8:
        code = static_cast<const uint8_t*>(var_->data)[i];
        break;
      default:
        throw Error(where_ + ": unsupported character encoding " + std::to_string(int(var_->data_type)));
    }
    if (code == 0 || code > 0x7f) throw Error(where_ + ": non-ASCII character " + std::to_string(code));
    s.push_back(char(code));
  }
  return s;
}

std::vector<std::string> MatVar::strings() const {
  if (var_->class_type != MAT_C_CELL) throw Error(where_ + ": expected a cell array of text, found " + describe());
  std::vector<std::string> out;
  for (size_t i = 0; i < numel(); ++i) out.push_back(cell(i).text());
  return out;
}

void MatVar::expect_numel(size_t count) const {
  if (numel() != count) throw Error(where_ + ": expected " + std::to_string(count) + " elements, found " + describe());
}

void MatVar::expect_dims(const std::vector<size_t>& want) const {
  bool ok = want.size() == dims_.size();
  for (size_t i = 0; ok && i < want.size(); ++i) ok = want[i] == 0 || want[i] == dims_[i];
  if (!ok) {
    std::string w;
    for (size_t i = 0; i < want.size(); ++i) w += (i ? " " : "") + (want[i] ? std::to_string(want[i]) : "N");
    throw Error(where_ + ": expected [" + w + "], found " + describe());
  }
}

// matio reads v7.3 files through HDF5, which is built here without thread safety: every matio
// call that may reach it takes the process-wide HDF5 lock the packs take.
MatFile::MatFile(const std::string& path) : path_(path) {
  route_matio_log();
  if (!std::filesystem::is_regular_file(path)) throw Error(path + ": no such MATLAB file");
  check_mat_file(path);
  std::lock_guard<std::mutex> lock(h5::library_mutex());
  mat_ = Mat_Open(path.c_str(), MAT_ACC_RDONLY);
  if (!mat_) throw Error(path + ": not a MATLAB .mat file matio can read" + matio_detail());
}

MatFile::~MatFile() {
  std::lock_guard<std::mutex> lock(h5::library_mutex());
  if (mat_) Mat_Close(mat_);
}

bool MatFile::has(const std::string& name) const {
  std::lock_guard<std::mutex> lock(h5::library_mutex());
  matvar_t* info = Mat_VarReadInfo(mat_, name.c_str());
  matio_detail();
  if (info) Mat_VarFree(info);
  return info != nullptr;
}

MatVar MatFile::read(const std::string& name) const {
  std::unique_lock<std::mutex> lock(h5::library_mutex());
  // matio allocates what a header declares before reading the data: a damaged header must not
  // ask for gigabytes. Deflate expands at most ~1032:1, so a variable cannot hold more than
  // that times the file's size.
  matvar_t* info = Mat_VarReadInfo(mat_, name.c_str());
  if (!info) throw Error(path_ + ": no readable variable '" + name + "'" + matio_detail());
  const uint64_t declared = declared_bytes(info);
  Mat_VarFree(info);
  const uint64_t file_bytes = std::filesystem::file_size(path_);
  if (declared > 1032 * file_bytes + 65536) {
    throw Error(path_ + ": " + name + ": its header declares " + std::to_string(declared) +
                " bytes of data, more than a " + std::to_string(file_bytes) +
                "-byte file can hold; the file is damaged");
  }
  matvar_t* var = Mat_VarRead(mat_, name.c_str());
  if (!var) throw Error(path_ + ": no readable variable '" + name + "'" + matio_detail());
  lock.unlock();
  std::shared_ptr<matvar_t> root(var, Mat_VarFree);
  return MatVar(root, var, path_ + ": " + name);
}

MatValue MatValue::matrix(std::vector<size_t> dims, std::vector<double> values) {
  MatValue v;
  v.kind = Kind::kDouble;
  v.dims = std::move(dims);
  v.doubles = std::move(values);
  return v;
}

MatValue MatValue::uint8_array(std::vector<size_t> dims, std::vector<uint8_t> values) {
  MatValue v;
  v.kind = Kind::kUint8;
  v.dims = std::move(dims);
  v.bytes = std::move(values);
  return v;
}

MatValue MatValue::string(std::string text) {
  MatValue v;
  v.kind = Kind::kText;
  v.dims = {1, text.size()};
  v.text = std::move(text);
  return v;
}

MatValue MatValue::cell_column(std::vector<MatValue> cells) {
  MatValue v;
  v.kind = Kind::kCell;
  v.dims = {cells.size(), 1};
  v.cells = std::move(cells);
  return v;
}

MatValue MatValue::structure(std::vector<std::pair<std::string, MatValue>> fields) {
  MatValue v;
  v.kind = Kind::kStruct;
  v.dims = {1, 1};
  v.fields = std::move(fields);
  return v;
}

namespace {

size_t product(const std::vector<size_t>& dims) {
  size_t n = 1;
  for (const size_t d : dims) n *= d;
  return n;
}

// A matio variable for `value` (the caller owns it; struct fields and cells are owned by it).
matvar_t* make_matvar(const char* name, const MatValue& value, const std::string& where) {
  std::vector<size_t> dims = value.dims;
  const int rank = int(dims.size());
  matvar_t* var = nullptr;
  switch (value.kind) {
    case MatValue::Kind::kDouble:
      if (value.doubles.size() != product(dims))
        throw Error(where + ": " + std::to_string(value.doubles.size()) + " values for its dims");
      var = Mat_VarCreate(name, MAT_C_DOUBLE, MAT_T_DOUBLE, rank, dims.data(),
                          const_cast<double*>(value.doubles.data()), 0);
      break;
    case MatValue::Kind::kUint8:
      if (value.bytes.size() != product(dims))
        throw Error(where + ": " + std::to_string(value.bytes.size()) + " values for its dims");
      var =
          Mat_VarCreate(name, MAT_C_UINT8, MAT_T_UINT8, rank, dims.data(), const_cast<uint8_t*>(value.bytes.data()), 0);
      break;
    case MatValue::Kind::kText: {
      std::vector<uint16_t> units(value.text.begin(), value.text.end());
      var = Mat_VarCreate(name, MAT_C_CHAR, MAT_T_UINT16, rank, dims.data(), units.data(), 0);
      break;
    }
    case MatValue::Kind::kCell: {
      var = Mat_VarCreate(name, MAT_C_CELL, MAT_T_CELL, rank, dims.data(), nullptr, 0);
      for (size_t i = 0; var && i < value.cells.size(); ++i)
        Mat_VarSetCell(var, int(i), make_matvar(nullptr, value.cells[i], where + "{" + std::to_string(i + 1) + "}"));
      break;
    }
    case MatValue::Kind::kStruct: {
      std::vector<const char*> names;
      for (const auto& f : value.fields) names.push_back(f.first.c_str());
      names.push_back(nullptr);  // the list's end
      var = Mat_VarCreateStruct2(name, rank, dims.data(), names.data());
      for (const auto& [field, v] : value.fields)
        if (var) Mat_VarSetStructFieldByName(var, field.c_str(), 0, make_matvar(nullptr, v, where + "." + field));
      break;
    }
  }
  if (!var) throw Error(where + ": matio cannot create it" + matio_detail());
  return var;
}

}  // namespace

void write_mat_file(const std::string& path, const std::vector<std::pair<std::string, MatValue>>& variables) {
  route_matio_log();
  std::lock_guard<std::mutex> lock(h5::library_mutex());
  const std::string temp = path + ".tmp";
  mat_t* mat = Mat_CreateVer(temp.c_str(), "MATLAB 5.0 MAT-file, written by libgaze", MAT_FT_MAT5);
  if (!mat) throw Error(path + ": cannot create the MATLAB file" + matio_detail());
  try {
    for (const auto& [name, value] : variables) {
      std::unique_ptr<matvar_t, void (*)(matvar_t*)> var(make_matvar(name.c_str(), value, path + ": " + name),
                                                         Mat_VarFree);
      if (Mat_VarWrite(mat, var.get(), MAT_COMPRESSION_ZLIB) != 0)
        throw Error(path + ": cannot write variable '" + name + "'" + matio_detail());
    }
  } catch (...) {
    Mat_Close(mat);
    std::filesystem::remove(temp);
    throw;
  }
  Mat_Close(mat);
  std::filesystem::rename(temp, path);
}

}  // namespace gaze
