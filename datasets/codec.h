// PNG and JPEG: libpng (simplified API) and libjpeg-turbo (TurboJPEG API).
//
// Decoders convert any colour type to what the caller asks for: 8-bit grey (channels = 1, eye
// images) or RGB (channels = 3), and throw gaze::Error naming `where` (a file path, or
// "file.vrs: record at byte N") with the library's own reason on corrupt input. Encoders take
// grey or RGB images.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datasets/image.h"

namespace gaze {

// Decoded images are bounded before any pixel memory is allocated: a few header bytes must not
// claim gigabytes (decode_limits().image_pixels, limits.h; an eye image is well under a
// megapixel, ImageNet images a few).

Image decode_png(const uint8_t* data, size_t size, const std::string& where, int32_t channels = 1);
Image read_png(const std::string& path, int32_t channels = 1);
std::vector<uint8_t> encode_png(const Image& image);
void write_png(const std::string& path, const Image& image);

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& where, int32_t channels = 1);
std::vector<uint8_t> encode_jpeg(const Image& image, int quality = 90);

// Whole-file read; throws gaze::Error naming the file.
std::vector<uint8_t> read_binary_file(const std::string& path);

}  // namespace gaze
