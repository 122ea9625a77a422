#include "libgaze/core/atomic_file.h"

#include <catch2/catch.hpp>
#include <filesystem>

#include "libgaze/core/error.h"
#include "tests/test_util.h"

using namespace gaze;

TEST_CASE("atomic write replaces the file and leaves no temporary", "[atomic]") {
  testing::TempDir dir;
  const std::string path = dir.file("a.txt");
  write_text_atomically(path, "first");
  write_text_atomically(path, "second");
  CHECK(read_text_file(path) == "second");
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++entries;
  CHECK(entries == 1);
}

TEST_CASE("a failing writer leaves the old file untouched", "[atomic]") {
  testing::TempDir dir;
  const std::string path = dir.file("ckpt.bin");
  write_text_atomically(path, "good");
  CHECK_THROWS_WITH(write_atomically(path,
                                     [](const std::string& tmp) {
                                       std::ofstream(tmp) << "half-written";
                                       throw Error("disk full");
                                     }),
                    "disk full");
  CHECK(read_text_file(path) == "good");
  CHECK_FALSE(std::filesystem::exists(path + ".tmp-" + std::to_string(::getpid())));
}

TEST_CASE("writing into a missing folder names the folder", "[atomic]") {
  CHECK_THROWS_WITH(write_text_atomically("/nonexistent-libgaze/x.txt", "x"),
                    Catch::Contains("/nonexistent-libgaze") && Catch::Contains("does not exist"));
  CHECK_THROWS_WITH(read_text_file("/nonexistent-libgaze/x.txt"), Catch::Contains("cannot open file"));
}
