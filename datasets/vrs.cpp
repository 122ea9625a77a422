#include "datasets/vrs.h"

#include <fcntl.h>
#include <lz4frame.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "datasets/limits.h"
#include "libgaze/core/error.h"

namespace gaze {
namespace {

constexpr uint32_t kMagic1 = 0x69736956;  // "Visi"
constexpr uint32_t kMagic2 = 0x65526e6f;  // "onRe"
constexpr char kMagic3[8] = {'c', 'o', 'r', 'd', 'V', 'R', 'S', '2'};
constexpr uint32_t kFileHeaderSize = 80;
constexpr uint32_t kRecordHeaderSize = 32;

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // VRS is little-endian, as is every target we build for
  return v;
}

template <class T>
void store(std::vector<uint8_t>& out, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof v);
}

std::string at_byte(const std::string& path, uint64_t offset) { return path + ": byte " + std::to_string(offset); }

}  // namespace

VrsReader::VrsReader(const std::string& path, bool allow_truncated) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error(path + ": cannot open VRS file: " + std::strerror(errno));
  struct stat st;
  ::fstat(fd_, &st);
  file_size_ = static_cast<uint64_t>(st.st_size);

  uint8_t header[kFileHeaderSize];
  if (file_size_ < 48 || ::pread(fd_, header, std::min<uint64_t>(sizeof header, file_size_), 0) < 48) {
    ::close(fd_);
    throw Error(path + ": too short for a VRS file header (" + std::to_string(file_size_) + " bytes)");
  }
  if (load<uint32_t>(header) != kMagic1 || load<uint32_t>(header + 4) != kMagic2) {
    ::close(fd_);
    throw Error(path + ": not a VRS file (bad magic)");
  }
  creation_id_ = load<uint64_t>(header + 8);
  const uint32_t file_header_size = load<uint32_t>(header + 16);
  const uint32_t record_header_size = load<uint32_t>(header + 20);
  if (record_header_size < kRecordHeaderSize || file_header_size < 48 || file_header_size > file_size_) {
    ::close(fd_);
    throw Error(path + ": implausible VRS header (file header " + std::to_string(file_header_size) +
                " bytes, record header " + std::to_string(record_header_size) + " bytes)");
  }

  uint64_t pos = file_header_size;
  uint8_t rh[kRecordHeaderSize];
  while (pos < file_size_) {
    const auto fail_or_stop = [&](const std::string& what) {
      if (!allow_truncated) {
        ::close(fd_);
        fd_ = -1;
        throw Error(at_byte(path, pos) + ": " + what);
      }
      truncated_ = true;
    };
    if (file_size_ - pos < record_header_size) {
      fail_or_stop("truncated VRS file (record header cut off)");
      break;
    }
    if (::pread(fd_, rh, sizeof rh, static_cast<off_t>(pos)) != static_cast<ssize_t>(sizeof rh)) {
      fail_or_stop("read error");
      break;
    }
    VrsRecord r;
    r.offset = pos;
    r.size = load<uint32_t>(rh);
    r.type_id = load<int32_t>(rh + 8);
    r.format_version = load<uint32_t>(rh + 12);
    r.timestamp = load<double>(rh + 16);
    r.instance_id = load<uint16_t>(rh + 24);
    r.record_type = rh[26];
    r.compression = rh[27];
    r.uncompressed_size = load<uint32_t>(rh + 28);
    r.header_size = record_header_size;
    if (r.size < record_header_size) {
      fail_or_stop("corrupt VRS record (size " + std::to_string(r.size) + " is smaller than its header)");
      break;
    }
    if (r.size > file_size_ - pos) {
      fail_or_stop("truncated VRS file (record of " + std::to_string(r.size) + " bytes, " +
                   std::to_string(file_size_ - pos) + " left)");
      break;
    }
    records_.push_back(r);
    pos += r.size;
  }
}

VrsReader::~VrsReader() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<uint8_t> VrsReader::read_payload(const VrsRecord& r) const {
  std::vector<uint8_t> stored(r.payload_size());
  if (!stored.empty() && ::pread(fd_, stored.data(), stored.size(), static_cast<off_t>(r.offset + r.header_size)) !=
                             static_cast<ssize_t>(stored.size())) {
    throw Error(at_byte(path_, r.offset) + ": cannot read record payload");
  }
  const std::string where =
      at_byte(path_, r.offset) + ": record " + std::to_string(r.type_id) + "-" + std::to_string(r.instance_id);
  // The declared size is checked before it is allocated: a record header must not claim 4 GB.
  // Eye-camera records hold one JPEG of well under a megabyte (limits.h).
  const int64_t limit = decode_limits().record_bytes;
  if (r.compression != 0 && int64_t(r.uncompressed_size) > limit) {
    throw Error(where + ": declares " + std::to_string(r.uncompressed_size) + " uncompressed bytes (limit " +
                std::to_string(limit) + ", data.max_record_mib)");
  }
  switch (static_cast<VrsCompression>(r.compression)) {
    case VrsCompression::kNone:
      return stored;
    case VrsCompression::kZstd: {
      const unsigned long long declared = ZSTD_getFrameContentSize(stored.data(), stored.size());
      if (declared == ZSTD_CONTENTSIZE_ERROR) throw Error(where + ": corrupt zstd payload (not a zstd frame)");
      if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != r.uncompressed_size) {
        throw Error(where + ": zstd frame holds " + std::to_string(declared) + " bytes, the record header says " +
                    std::to_string(r.uncompressed_size));
      }
      std::vector<uint8_t> out(r.uncompressed_size);
      const size_t n = ZSTD_decompress(out.data(), out.size(), stored.data(), stored.size());
      if (ZSTD_isError(n) || n != out.size()) {
        throw Error(where + ": corrupt zstd payload (" + (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "size mismatch") +
                    ")");
      }
      return out;
    }
    case VrsCompression::kLz4: {
      std::vector<uint8_t> out(r.uncompressed_size);
      LZ4F_dctx* ctx = nullptr;
      if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION))) {
        throw Error(where + ": cannot create an lz4 decompression context");
      }
      size_t out_size = out.size(), in_size = stored.size();
      const size_t rc = LZ4F_decompress(ctx, out.data(), &out_size, stored.data(), &in_size, nullptr);
      LZ4F_freeDecompressionContext(ctx);
      if (LZ4F_isError(rc) || out_size != out.size()) {
        throw Error(where + ": corrupt lz4 payload");
      }
      return out;
    }
  }
  throw Error(where + ": unknown compression type " + std::to_string(r.compression));
}

VrsWriter::VrsWriter(const std::string& path, uint64_t creation_id)
    : path_(path), tmp_path_(path + ".tmp-" + std::to_string(::getpid())) {
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (!file_) throw Error(path + ": cannot create VRS file: " + std::strerror(errno));
  std::vector<uint8_t> header;
  store(header, kMagic1);
  store(header, kMagic2);
  store(header, creation_id);
  store(header, kFileHeaderSize);
  store(header, kRecordHeaderSize);
  store<int64_t>(header, 0);                // indexRecordOffset: no index record (readers scan)
  store<int64_t>(header, 0);                // descriptionRecordOffset: none
  store<int64_t>(header, kFileHeaderSize);  // firstUserRecordOffset
  header.resize(kFileHeaderSize - 8, 0);    // reserved
  header.insert(header.end(), kMagic3, kMagic3 + 8);
  std::fwrite(header.data(), 1, header.size(), file_);
}

VrsWriter::~VrsWriter() {
  if (!finished_) {
    if (file_) std::fclose(file_);
    std::remove(tmp_path_.c_str());
  }
}

void VrsWriter::add_record(int32_t type_id, uint16_t instance_id, VrsRecordType type, double timestamp,
                           uint32_t format_version, const std::vector<uint8_t>& payload, VrsCompression compression) {
  std::vector<uint8_t> stored;
  uint32_t uncompressed = 0;
  if (compression == VrsCompression::kZstd) {
    stored.resize(ZSTD_compressBound(payload.size()));
    const size_t n = ZSTD_compress(stored.data(), stored.size(), payload.data(), payload.size(), 3);
    if (ZSTD_isError(n)) throw Error(path_ + ": zstd compression failed");
    stored.resize(n);
    uncompressed = static_cast<uint32_t>(payload.size());
  } else if (compression == VrsCompression::kLz4) {
    stored.resize(LZ4F_compressFrameBound(payload.size(), nullptr));
    const size_t n = LZ4F_compressFrame(stored.data(), stored.size(), payload.data(), payload.size(), nullptr);
    if (LZ4F_isError(n)) throw Error(path_ + ": lz4 compression failed");
    stored.resize(n);
    uncompressed = static_cast<uint32_t>(payload.size());
  } else {
    stored = payload;
  }
  std::vector<uint8_t> header;
  const uint32_t size = kRecordHeaderSize + static_cast<uint32_t>(stored.size());
  store(header, size);
  store(header, previous_size_);
  store(header, type_id);
  store(header, format_version);
  store(header, timestamp);
  store(header, instance_id);
  header.push_back(static_cast<uint8_t>(type));
  header.push_back(static_cast<uint8_t>(compression));
  store(header, uncompressed);
  if (std::fwrite(header.data(), 1, header.size(), file_) != header.size() ||
      std::fwrite(stored.data(), 1, stored.size(), file_) != stored.size()) {
    throw Error(path_ + ": write failed");
  }
  previous_size_ = size;
}

void VrsWriter::finish() {
  if (std::fflush(file_) != 0 || ::fsync(fileno(file_)) != 0) throw Error(path_ + ": write failed");
  std::fclose(file_);
  file_ = nullptr;
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    throw Error(path_ + ": cannot move VRS file into place: " + std::strerror(errno));
  }
  finished_ = true;
}

int64_t find_jpeg_start(const std::vector<uint8_t>& payload) {
  for (size_t i = 0; i + 2 < payload.size(); ++i) {
    if (payload[i] == 0xFF && payload[i + 1] == 0xD8 && payload[i + 2] == 0xFF) return int64_t(i);
  }
  return -1;
}

}  // namespace gaze
