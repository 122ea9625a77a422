#include "libgaze/io/checkpoint_file.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include "libgaze/core/crc32c.h"
#include "libgaze/core/error.h"
#include "tests/test_util.h"

using namespace gaze;
using Catch::Contains;

namespace {

h5::Array float_array(std::vector<int64_t> shape, float first) {
  h5::Array a;
  a.dtype = h5::DType::kF32;
  a.shape = std::move(shape);
  a.bytes.resize(size_t(a.numel()) * 4);
  for (int64_t i = 0; i < a.numel(); ++i) {
    const float v = first + 0.25f * float(i);
    std::memcpy(&a.bytes[size_t(i) * 4], &v, 4);
  }
  return a;
}

CheckpointFile small_checkpoint() {
  CheckpointFile c;
  c.stage = "distill";
  c.step = 42;
  c.config_yaml = "model:\n  arch: student\n";
  c.model = {{"stem.weight", float_array({4, 3}, 1)}, {"stem.bias", float_array({4}, -2)}};
  c.optimizer = {{"stem.weight:exp_avg", float_array({4, 3}, 0.5f)}};
  h5::Array rng;
  rng.dtype = h5::DType::kU8;
  rng.shape = {5};
  rng.bytes = {1, 2, 3, 4, 5};
  c.state = {{"rng", rng}};
  return c;
}

bool same(const ArrayList& a, const ArrayList& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].first != b[i].first || a[i].second.dtype != b[i].second.dtype || a[i].second.shape != b[i].second.shape ||
        a[i].second.bytes != b[i].second.bytes) {
      return false;
    }
  }
  return true;
}

// What differs, or "" when nothing does.
std::string difference(const CheckpointFile& a, const CheckpointFile& b) {
  if (a.stage != b.stage) return "stage '" + a.stage + "' vs '" + b.stage + "'";
  if (a.step != b.step) return "step " + std::to_string(a.step) + " vs " + std::to_string(b.step);
  if (a.config_yaml != b.config_yaml) return "config '" + a.config_yaml + "' vs '" + b.config_yaml + "'";
  if (!same(a.model, b.model)) return "/model";
  if (!same(a.optimizer, b.optimizer)) return "/optimizer";
  if (!same(a.state, b.state)) return "/state";
  return "";
}

bool same(const CheckpointFile& a, const CheckpointFile& b) { return difference(a, b).empty(); }

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("checkpoint files round-trip without torch", "[checkpoint]") {
  testing::TempDir dir;
  const CheckpointFile c = small_checkpoint();
  write_checkpoint_file(dir.file("c.h5"), c);
  CHECK(same(read_checkpoint_file(dir.file("c.h5")), c));
  dir.write("not.h5", "plain text");
  CHECK_THROWS_WITH(read_checkpoint_file(dir.file("not.h5")), Contains("not.h5: not a readable HDF5 file"));
}

// HDF5 stamps each object with the time it was written unless told not to (hdf5.h): without
// that, a checkpoint is a function of its content, so identical trainings write identical files.
TEST_CASE("the same checkpoint written twice, seconds apart, is the same bytes", "[checkpoint]") {
  testing::TempDir dir;
  write_checkpoint_file(dir.file("a.h5"), small_checkpoint());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // HDF5's times count seconds
  write_checkpoint_file(dir.file("b.h5"), small_checkpoint());
  CHECK(read_bytes(dir.file("a.h5")) == read_bytes(dir.file("b.h5")));
}

TEST_CASE("arrays_crc32c chains the names and bytes of the arrays in order", "[checkpoint]") {
  const ArrayList model = small_checkpoint().model;
  std::string chained;
  for (const auto& [name, array] : model) chained += name + std::string(array.bytes.begin(), array.bytes.end());
  const uint32_t crc = arrays_crc32c(model);
  CHECK(crc == crc32c(chained.data(), chained.size()));
  ArrayList renamed = model, changed = model;
  renamed[0].first = "stem.w";
  changed[1].second.bytes[0] ^= 1;
  CHECK(arrays_crc32c(renamed) != crc);
  CHECK(arrays_crc32c(changed) != crc);
  CHECK(arrays_crc32c({model[1], model[0]}) != crc);
}

// Every byte of a checkpoint flipped in turn: each damaged file either reads back exactly the
// original (the byte was unused) or is refused with gaze::Error — never a crash, never other
// data. Before the 1.10 format (checksummed metadata) one flipped metadata byte could crash
// libhdf5 while listing groups; array bytes are covered by their CRC-32C.
TEST_CASE("a checkpoint with any one byte damaged is refused or reads back unchanged", "[checkpoint][hostile]") {
  testing::TempDir dir;
  const CheckpointFile c = small_checkpoint();
  write_checkpoint_file(dir.file("c.h5"), c);
  const std::string original = read_bytes(dir.file("c.h5"));
  REQUIRE(original.size() < 64 * 1024);
  int64_t refused = 0, unchanged = 0;
  for (size_t at = 0; at < original.size(); ++at) {
    std::string damaged = original;
    damaged[at] = char(damaged[at] ^ 0xFF);
    const std::string path = dir.write("d.h5", damaged);
    try {
      const CheckpointFile got = read_checkpoint_file(path);
      INFO("byte " << at << " of " << original.size() << " flipped and not noticed: " << difference(got, c));
      REQUIRE(same(got, c));
      ++unchanged;
    } catch (const Error&) {
      ++refused;
    }
  }
  INFO(refused << " refused, " << unchanged << " unused bytes");
  CHECK(refused > int64_t(original.size()) / 4);
}
