#include "datasets/codec.h"

#include <png.h>
#include <turbojpeg.h>

#include <cstring>
#include <fstream>

#include "datasets/limits.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"

namespace gaze {

std::vector<uint8_t> read_binary_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(path + ": cannot open file");
  const std::streamsize size = in.tellg();
  std::vector<uint8_t> bytes(static_cast<size_t>(std::max<std::streamsize>(size, 0)));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size)) {
    throw Error(path + ": read failed");
  }
  return bytes;
}

namespace {

void check_declared_size(int64_t height, int64_t width, size_t file_bytes, double max_ratio, const std::string& what,
                         const std::string& where) {
  const int64_t limit = decode_limits().image_pixels;
  if (height < 1 || width < 1 || height * width > limit) {
    throw Error(where + ": " + what + " header declares " + std::to_string(width) + "x" + std::to_string(height) +
                " pixels (limit " + std::to_string(limit) + ", data.max_image_pixels)");
  }
  // A compressed stream cannot expand beyond its format's ratio (deflate: 1032:1).
  if (double(height) * double(width) > double(file_bytes) * max_ratio + 65536.0) {
    throw Error(where + ": " + what + " header declares " + std::to_string(width) + "x" + std::to_string(height) +
                " pixels, more than " + std::to_string(file_bytes) + " bytes can hold");
  }
}

void check_channels(int32_t channels) {
  if (channels != 1 && channels != 3)
    throw Error("images have 1 (grey) or 3 (RGB) channels, not " + std::to_string(channels));
}

}  // namespace

Image decode_png(const uint8_t* data, size_t size, const std::string& where, int32_t channels) {
  check_channels(channels);
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, data, size)) {
    throw Error(where + ": corrupt PNG (" + png.message + ")");
  }
  png.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  try {
    check_declared_size(png.height, png.width, size, 1032.0, "PNG", where);
  } catch (const Error&) {
    png_image_free(&png);
    throw;
  }
  Image image(static_cast<int32_t>(png.height), static_cast<int32_t>(png.width), 0, channels);
  if (!png_image_finish_read(&png, nullptr, image.pixels.data(), 0, nullptr)) {
    const std::string message = png.message;
    png_image_free(&png);
    throw Error(where + ": corrupt PNG (" + message + ")");
  }
  return image;
}

Image read_png(const std::string& path, int32_t channels) {
  const auto bytes = read_binary_file(path);
  return decode_png(bytes.data(), bytes.size(), path, channels);
}

std::vector<uint8_t> encode_png(const Image& image) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  png.width = image.width;
  png.height = image.height;
  check_channels(image.channels);
  png.format = image.channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&png, nullptr, &size, 0, image.pixels.data(), 0, nullptr)) {
    throw Error(std::string("PNG encode failed: ") + png.message);
  }
  std::vector<uint8_t> out(size);
  if (!png_image_write_to_memory(&png, out.data(), &size, 0, image.pixels.data(), 0, nullptr)) {
    throw Error(std::string("PNG encode failed: ") + png.message);
  }
  out.resize(size);
  return out;
}

void write_png(const std::string& path, const Image& image) {
  const auto bytes = encode_png(image);
  write_text_atomically(path, std::string(bytes.begin(), bytes.end()));
}

namespace {

struct TurboHandle {
  tjhandle handle;
  explicit TurboHandle(tjhandle h) : handle(h) {}
  ~TurboHandle() {
    if (handle) tjDestroy(handle);
  }
};

}  // namespace

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& where, int32_t channels) {
  check_channels(channels);
  TurboHandle tj(tjInitDecompress());
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.handle, data, static_cast<unsigned long>(size), &width, &height, &subsampling,
                          &colorspace) != 0) {
    throw Error(where + ": corrupt JPEG (" + tjGetErrorStr2(tj.handle) + ")");
  }
  check_declared_size(height, width, size, 4096.0, "JPEG", where);
  Image image(height, width, 0, channels);
  if (tjDecompress2(tj.handle, data, static_cast<unsigned long>(size), image.pixels.data(), width, 0, height,
                    channels == 3 ? TJPF_RGB : TJPF_GRAY, TJFLAG_ACCURATEDCT) != 0) {
    // Warnings too ("premature end of data"): a truncated frame must not pass as an image.
    throw Error(where + ": corrupt JPEG (" + tjGetErrorStr2(tj.handle) + ")");
  }
  return image;
}

std::vector<uint8_t> encode_jpeg(const Image& image, int quality) {
  TurboHandle tj(tjInitCompress());
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  check_channels(image.channels);
  const bool rgb = image.channels == 3;
  if (tjCompress2(tj.handle, image.pixels.data(), image.width, 0, image.height, rgb ? TJPF_RGB : TJPF_GRAY, &buffer,
                  &size, rgb ? TJSAMP_420 : TJSAMP_GRAY, quality, TJFLAG_ACCURATEDCT) != 0) {
    throw Error(std::string("JPEG encode failed: ") + tjGetErrorStr2(tj.handle));
  }
  std::vector<uint8_t> out(buffer, buffer + size);
  tjFree(buffer);
  return out;
}

}  // namespace gaze
