// torch.save() files (official checkpoints): zip directory and CRC-32s, data.pkl, storages and
// the bounds of every tensor view.
#include "fuzz/fuzz_util.h"
#include "libgaze/io/torch_save.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const gaze::fuzz::MemoryFile file(data, size);
  gaze::fuzz::expect_success_or_error([&] { gaze::read_torch_save(file.path()); });
  return 0;
}
