#include "libgaze/io/hdf5.h"

#include <catch2/catch.hpp>
#include <cstring>

#include "libgaze/core/error.h"
#include "tests/test_util.h"

using namespace gaze;
using Catch::Contains;

TEST_CASE("arrays, strings and attributes round-trip through HDF5", "[hdf5]") {
  testing::TempDir dir;
  const std::string path = dir.file("t.h5");
  h5::Array a;
  a.dtype = h5::DType::kI16;
  a.shape = {2, 3};
  const int16_t values[6] = {1, -2, 3, -4, 5, 32767};
  a.bytes.assign(reinterpret_cast<const uint8_t*>(values), reinterpret_cast<const uint8_t*>(values) + 12);
  {
    h5::File f = h5::File::create(path);
    const h5::Handle g = h5::create_group(f.id(), "group", path);
    h5::write_array(g.id(), "b.second", a, path);
    h5::write_array(g.id(), "a.first", a, path);
    h5::write_string(f.id(), "text", "model:\n  arch: student\n", path);
    h5::write_string(f.id(), "empty", "", path);
    h5::write_int_attr(f.id(), "step", 1234567890123LL, path);
    h5::write_string_attr(f.id(), "stage", "distill", path);
  }
  h5::File f = h5::File::open(path);
  CHECK(h5::exists(f.id(), "group/a.first"));
  CHECK_FALSE(h5::exists(f.id(), "nothing/here"));
  const h5::Handle g(H5Gopen2(f.id(), "group", H5P_DEFAULT), H5Gclose);
  CHECK(h5::list_children(g.id(), path) == std::vector<std::string>{"b.second", "a.first"});
  const h5::Array b = h5::read_array(g.id(), "b.second", path);
  CHECK(b.dtype == h5::DType::kI16);
  CHECK(b.shape == std::vector<int64_t>{2, 3});
  CHECK(std::memcmp(b.bytes.data(), values, 12) == 0);
  CHECK(h5::read_string(f.id(), "text", path) == "model:\n  arch: student\n");
  CHECK(h5::read_string(f.id(), "empty", path).empty());
  CHECK(h5::read_int_attr(f.id(), "step", path) == 1234567890123LL);
  CHECK(h5::read_string_attr(f.id(), "stage", path) == "distill");
  CHECK_THROWS_WITH(h5::read_array(f.id(), "group/none", path), path + ": group/none: no such dataset");
  CHECK_THROWS_WITH(h5::read_int_attr(f.id(), "nope", path), Contains("@nope: missing attribute"));
}

TEST_CASE("missing, foreign and truncated files are reported by name", "[hdf5]") {
  testing::TempDir dir;
  CHECK_THROWS_WITH(h5::File::open(dir.file("none.h5")), Contains("none.h5: not a readable HDF5"));
  const std::string text = dir.write("text.h5", "this is not hdf5");
  CHECK_THROWS_WITH(h5::File::open(text), Contains("text.h5: not a readable HDF5"));
  const std::string path = dir.file("full.h5");
  {
    h5::File f = h5::File::create(path);
    h5::Array a;
    a.shape = {1000};
    a.bytes.resize(4000);
    h5::write_array(f.id(), "x", a, path);
  }
  const std::string bytes = testing::read_file(path);
  const std::string cut = dir.write("cut.h5", bytes.substr(0, bytes.size() / 2));
  CHECK_THROWS_AS(
      [&] {
        h5::File f = h5::File::open(cut);
        h5::read_array(f.id(), "x", cut);
      }(),
      Error);
}

TEST_CASE("a flipped bit in stored data and a dataset never written are refused", "[hdf5]") {
  testing::TempDir dir;
  const std::string path = dir.file("w.h5");
  {
    h5::File f = h5::File::create(path);
    h5::Array a;
    a.shape = {256};
    a.dtype = h5::DType::kF32;
    a.bytes.resize(1024);
    for (size_t i = 0; i < a.bytes.size(); ++i) a.bytes[i] = uint8_t(i * 13 + 7);
    h5::write_array(f.id(), "weights", a, path);
    // Declared 1 GB, never written: reading it must not allocate a gigabyte.
    const hsize_t huge = hsize_t(1) << 28;
    const h5::Handle space(H5Screate_simple(1, &huge, nullptr), H5Sclose);
    const h5::Handle set(
        H5Dcreate2(f.id(), "ghost", H5T_NATIVE_FLOAT, space.id(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  }
  {
    h5::File f = h5::File::open(path);
    CHECK(h5::read_array(f.id(), "weights", path).bytes.size() == 1024);
    CHECK_THROWS_WITH(h5::read_array(f.id(), "ghost", path),
                      Contains("ghost: declares 1073741824 bytes but the file stores 0"));
  }
  // Flip one bit inside the weights (found by their byte pattern).
  std::string bytes = testing::read_file(path);
  std::string pattern;
  for (int i = 0; i < 16; ++i) pattern += char(uint8_t(i * 13 + 7));
  const size_t at = bytes.find(pattern);
  REQUIRE(at != std::string::npos);
  bytes[at + 5] ^= 0x10;
  const std::string damaged = dir.write("damaged.h5", bytes);
  h5::File f = h5::File::open(damaged);
  CHECK_THROWS_WITH(h5::read_array(f.id(), "weights", damaged),
                    Contains("weights: checksum mismatch (CRC-32C): the data is damaged"));
}
