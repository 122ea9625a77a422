// The sizes every decoder checks a file's declared sizes against before it allocates, so a few
// hundred bytes of header never become gigabytes: image pixels (PNG, JPEG, also inside VRS) and
// uncompressed VRS record bytes. Process-wide; open_dataset() sets them from the config
// (data.max_image_pixels, data.max_record_mib) before any loader runs. The defaults hold any eye
// camera, AEA's RGB frames and ImageNet with room to spare.
#pragma once

#include <cstdint>

namespace gaze {

struct DecodeLimits {
  int64_t image_pixels = int64_t(1) << 26;   // 67 MP
  int64_t record_bytes = int64_t(64) << 20;  // 64 MiB
};

DecodeLimits decode_limits();
void set_decode_limits(const DecodeLimits& limits);

}  // namespace gaze
