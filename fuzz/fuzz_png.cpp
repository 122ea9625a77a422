// PNG decoding (libpng behind our size limits), grey and RGB.
#include "datasets/codec.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (int32_t channels : {1, 3}) {
    gaze::fuzz::expect_success_or_error([&] { gaze::decode_png(data, size, "fuzz.png", channels); });
  }
  return 0;
}
