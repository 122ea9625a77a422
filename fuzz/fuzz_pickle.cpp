// The restricted unpickler behind .pt imports (protocol 2 opcodes, no code execution).
#include "fuzz/fuzz_util.h"
#include "libgaze/io/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  gaze::fuzz::expect_success_or_error([&] { gaze::pickle::unpickle(bytes, "fuzz.pkl"); });
  return 0;
}
