#include "datasets/limits.h"

#include <atomic>

namespace gaze {
namespace {

std::atomic<int64_t> g_image_pixels{DecodeLimits{}.image_pixels};
std::atomic<int64_t> g_record_bytes{DecodeLimits{}.record_bytes};

}  // namespace

DecodeLimits decode_limits() { return {g_image_pixels.load(), g_record_bytes.load()}; }

void set_decode_limits(const DecodeLimits& limits) {
  g_image_pixels = limits.image_pixels;
  g_record_bytes = limits.record_bytes;
}

}  // namespace gaze
