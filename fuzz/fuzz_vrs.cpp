// The VRS reader: header, record walk, lz4/zstd payloads, and the JPEG an image record carries
// (what the AEA loader does with every eye-tracking record).
#include "datasets/codec.h"
#include "datasets/vrs.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const gaze::fuzz::MemoryFile file(data, size);
  for (bool allow_truncated : {false, true}) {
    gaze::fuzz::expect_success_or_error([&] {
      const gaze::VrsReader reader(file.path(), allow_truncated);
      size_t read = 0;
      for (const gaze::VrsRecord& record : reader.records()) {
        if (++read > 64) break;
        gaze::fuzz::expect_success_or_error([&] {
          const std::vector<uint8_t> payload = reader.read_payload(record);
          const int64_t jpeg = gaze::find_jpeg_start(payload);
          if (jpeg >= 0) gaze::decode_jpeg(payload.data() + jpeg, payload.size() - size_t(jpeg), "record");
        });
      }
    });
  }
  return 0;
}
