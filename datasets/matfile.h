// MATLAB .mat files through matio (Debian libmatio-dev), for the MPII datasets (no torch).
//
// MatFile opens a file for reading (level-5 files, zlib-compressed or not; v7.3 where matio
// was built with HDF5) and reads whole variables. MatVar walks struct fields and cells of a
// read variable and returns its data; every accessor checks the class and shape it expects
// and throws gaze::Error naming the file and the path inside it, e.g.
//   "p00/day01.mat: data.left.image: expected uint8, found double [3 5]".
// Numeric data come back column-major, as MATLAB stores them: element (i, j, k) of an
// [I J K] array is at i + I * (j + J * k).
//
// write_mat_file() writes the same structures back (level 5, every variable zlib-compressed,
// characters as UTF-16 code units: what MATLAB's save writes), atomically, for gaze synth and
// the loaders' tests.
#pragma once

#include <matio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace gaze {

class MatVar {
 public:
  MatVar(std::shared_ptr<matvar_t> root, matvar_t* var, std::string where);
  MatVar field(const std::string& name) const;  // of a 1x1 struct
  MatVar cell(size_t index) const;              // of a cell array (column-major index)
  const std::vector<size_t>& dims() const { return dims_; }
  size_t numel() const;
  std::vector<double> doubles() const;       // any real numeric class, converted
  std::vector<uint8_t> uint8s() const;       // class uint8
  std::string text() const;                  // a char row
  std::vector<std::string> strings() const;  // a cell array of char rows, column-major
  // Checks the number of elements (and the dims when given; 0 in `want` matches any size).
  void expect_numel(size_t count) const;
  void expect_dims(const std::vector<size_t>& want) const;

 private:
  std::string describe() const;  // "double [3 5]"
  std::shared_ptr<matvar_t> root_;
  matvar_t* var_;
  std::string where_;
  std::vector<size_t> dims_;
};

class MatFile {
 public:
  explicit MatFile(const std::string& path);
  ~MatFile();
  MatFile(const MatFile&) = delete;
  MatFile& operator=(const MatFile&) = delete;
  MatVar read(const std::string& name) const;
  bool has(const std::string& name) const;

 private:
  std::string path_;
  mat_t* mat_ = nullptr;
};

// A value to write: a real double or uint8 array, a char row, a cell array or a 1x1 struct.
struct MatValue {
  enum class Kind { kDouble, kUint8, kText, kCell, kStruct } kind = Kind::kDouble;
  std::vector<size_t> dims;
  std::vector<double> doubles;  // column-major
  std::vector<uint8_t> bytes;   // column-major
  std::string text;
  std::vector<MatValue> cells;                           // column-major
  std::vector<std::pair<std::string, MatValue>> fields;  // in order

  static MatValue matrix(std::vector<size_t> dims, std::vector<double> values);
  static MatValue uint8_array(std::vector<size_t> dims, std::vector<uint8_t> values);
  static MatValue string(std::string text);
  static MatValue cell_column(std::vector<MatValue> cells);  // N x 1
  static MatValue structure(std::vector<std::pair<std::string, MatValue>> fields);
};

void write_mat_file(const std::string& path, const std::vector<std::pair<std::string, MatValue>>& variables);

}  // namespace gaze
