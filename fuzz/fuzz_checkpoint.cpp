// Checkpoints: the HDF5 file, its attributes, groups and every array with its CRC-32C.
#include "fuzz/fuzz_util.h"
#include "libgaze/io/checkpoint_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const gaze::fuzz::MemoryFile file(data, size);
  gaze::fuzz::expect_success_or_error([&] { gaze::read_checkpoint_file(file.path()); });
  return 0;
}
