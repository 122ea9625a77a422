// PNG and JPEG for grey images: libpng (simplified API) and libjpeg-turbo (TurboJPEG API).
//
// Decoders convert any colour type to 8-bit grey and throw gaze::Error naming `where` (a file
// path, or "file.vrs: record at byte N") with the library's own reason on corrupt input.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datasets/image.h"

namespace gaze {

GreyImage decode_png(const uint8_t* data, size_t size, const std::string& where);
GreyImage read_png(const std::string& path);
std::vector<uint8_t> encode_png(const GreyImage& image);
void write_png(const std::string& path, const GreyImage& image);

GreyImage decode_jpeg(const uint8_t* data, size_t size, const std::string& where);
std::vector<uint8_t> encode_jpeg(const GreyImage& image, int quality = 90);

// Whole-file read; throws gaze::Error naming the file.
std::vector<uint8_t> read_binary_file(const std::string& path);

}  // namespace gaze
