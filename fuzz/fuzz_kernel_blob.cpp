// The generated kernel's dftgaze_set_user(): every blob is either refused with an error code
// or valid in every field, and a valid one runs predict without undefined behaviour. Half the
// inputs (first byte even) are taken as the payload, sized to fit, and given a correct header
// and CRC-32, so mutations reach the range checks behind the checksum.
#include <cstring>
#include <vector>

#include "dftgaze.h"

namespace {

uint32_t crc32_of(const uint8_t* p, size_t n) {  // IEEE 802.3, as gz_crc32
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put32(std::vector<uint8_t>& b, uint32_t v) {
  for (int k = 0; k < 4; ++k) b.push_back(uint8_t(v >> (8 * k)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> blob;
  if (size > 0 && data[0] % 2 == 0) {  // the rest is the payload, cut or zero-padded to size
    std::vector<uint8_t> payload(data + 1, data + size);
    payload.resize(DFTGAZE_USER_PAYLOAD_BYTES);
    blob = {'G', 'Z', 'U', 'A'};
    put32(blob, 2);  // the blob version (GZ_USER_BLOB_VERSION)
    put32(blob, DFTGAZE_FINGERPRINT);
    put32(blob, uint32_t(payload.size()));
    put32(blob, crc32_of(payload.data(), payload.size()));
    blob.insert(blob.end(), payload.begin(), payload.end());
  } else {
    blob.assign(data, data + size);
  }
  static uint8_t eye[DFTGAZE_INPUT_H * DFTGAZE_INPUT_W];
  for (size_t i = 0; i < sizeof eye; ++i) eye[i] = uint8_t(i * 29);
  float out[4];
  if (dftgaze_set_user(blob.data(), blob.size()) == 0) {
    if (dftgaze_predict(eye, DFTGAZE_INPUT_H, DFTGAZE_INPUT_W, out) != 0) __builtin_trap();
  }
  dftgaze_set_user(nullptr, 0);
  return 0;
}
