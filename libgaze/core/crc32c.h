// CRC-32C (Castagnoli), as TensorBoard records and checkpoint fingerprints use it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gaze {

// `seed` continues a running CRC over several buffers (pass the previous result).
uint32_t crc32c(const void* data, size_t size, uint32_t seed = 0);
// TensorBoard's masked form: rotate right by 15 and add 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t size);

}  // namespace gaze
