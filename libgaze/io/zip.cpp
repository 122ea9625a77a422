#include "libgaze/io/zip.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "libgaze/core/error.h"

namespace gaze {
namespace {

// Signatures and fixed record sizes (PKWARE APPNOTE 6.3, sections 4.3.7 - 4.3.16).
constexpr uint32_t kLocalHeader = 0x04034b50, kCentralHeader = 0x02014b50, kEnd = 0x06054b50,
                   kEnd64Locator = 0x07064b50, kEnd64 = 0x06064b50;
constexpr size_t kLocalHeaderSize = 30, kCentralHeaderSize = 46, kEndSize = 22, kEnd64LocatorSize = 20, kEnd64Size = 56;
constexpr size_t kMaxComment = 0xFFFF;
constexpr uint64_t kMaxEntries = 1 << 20;

uint16_t u16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
uint32_t u32(const uint8_t* p) { return uint32_t(u16(p)) | uint32_t(u16(p + 2)) << 16; }
uint64_t u64(const uint8_t* p) { return uint64_t(u32(p)) | uint64_t(u32(p + 4)) << 32; }

}  // namespace

ZipReader::ZipReader(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw Error(path + ": not a regular file");
  }
  file_size_ = uint64_t(st.st_size);
  try {
    const auto fail = [&](const std::string& what) { throw Error(path + ": not a readable zip archive: " + what); };
    const auto read_at = [&](uint64_t offset, size_t size) {
      if (offset > file_size_ || size > file_size_ - offset) fail("a record reaches past the end of the file");
      std::vector<uint8_t> bytes(size);
      if (size && ::pread(fd_, bytes.data(), size, off_t(offset)) != ssize_t(size)) fail("read error");
      return bytes;
    };

    // The end-of-central-directory record: the last 22 bytes, or earlier when a comment follows.
    if (file_size_ < kEndSize) fail("shorter than an end-of-directory record");
    const size_t tail_size = size_t(std::min<uint64_t>(file_size_, kEndSize + kMaxComment));
    const uint64_t tail_start = file_size_ - tail_size;
    const std::vector<uint8_t> tail = read_at(tail_start, tail_size);
    int64_t end_at = -1;
    for (int64_t i = int64_t(tail_size - kEndSize); i >= 0; --i) {
      if (u32(&tail[size_t(i)]) == kEnd && size_t(i) + kEndSize + u16(&tail[size_t(i) + 20]) == tail_size) {
        end_at = i;
        break;
      }
    }
    if (end_at < 0) fail("no end-of-directory record (truncated, or not a zip)");
    const uint8_t* end = &tail[size_t(end_at)];
    const uint64_t end_offset = tail_start + uint64_t(end_at);
    if (u16(end + 4) != 0 || u16(end + 6) != 0) fail("multi-disk archives are not supported");
    uint64_t count = u16(end + 10), directory_size = u32(end + 12), directory_offset = u32(end + 16);
    uint64_t directory_end = end_offset;
    // Zip64: a locator right before the end record points at the 64-bit end record. miniz (inside
    // torch.save) writes one into every archive; others only when a field overflows.
    std::vector<uint8_t> locator;
    if (end_offset >= kEnd64LocatorSize) locator = read_at(end_offset - kEnd64LocatorSize, kEnd64LocatorSize);
    const bool zip64 = !locator.empty() && u32(locator.data()) == kEnd64Locator;
    if (!zip64 && (count == 0xFFFF || directory_size == 0xFFFFFFFF || directory_offset == 0xFFFFFFFF)) {
      fail("zip64 locator missing");
    }
    if (zip64) {
      const uint64_t end64_offset = u64(&locator[8]);
      if (end64_offset > end_offset - kEnd64LocatorSize) fail("zip64 end record out of place");
      const std::vector<uint8_t> end64 = read_at(end64_offset, kEnd64Size);
      if (u32(end64.data()) != kEnd64) fail("zip64 end record missing");
      if (u32(&end64[16]) != 0 || u32(&end64[20]) != 0) fail("multi-disk archives are not supported");
      count = u64(&end64[32]);
      directory_size = u64(&end64[40]);
      directory_offset = u64(&end64[48]);
      directory_end = end64_offset;
    }
    if (directory_offset > directory_end || directory_size > directory_end - directory_offset) {
      fail("the central directory reaches past the end record");
    }
    if (count > kMaxEntries || count * kCentralHeaderSize > directory_size) fail("impossible entry count");

    // The central directory, each entry checked against its local header.
    const std::vector<uint8_t> directory = read_at(directory_offset, size_t(directory_size));
    std::set<std::string> names;
    size_t at = 0;
    for (uint64_t e = 0; e < count; ++e) {
      if (directory.size() - at < kCentralHeaderSize || u32(&directory[at]) != kCentralHeader) {
        fail("central directory entry " + std::to_string(e) + " is damaged");
      }
      const uint8_t* h = &directory[at];
      const uint16_t flags = u16(h + 8), method = u16(h + 10);
      const size_t name_size = u16(h + 28), extra_size = u16(h + 30), comment_size = u16(h + 32);
      if (directory.size() - at - kCentralHeaderSize < name_size + extra_size + comment_size) {
        fail("central directory entry " + std::to_string(e) + " is truncated");
      }
      ZipEntry entry;
      entry.name.assign(reinterpret_cast<const char*>(h + kCentralHeaderSize), name_size);
      entry.crc32 = u32(h + 16);
      uint64_t compressed = u32(h + 20), size = u32(h + 24), local = u32(h + 42);
      // Zip64 extended information: the 64-bit values of the fields set to 0xFFFFFFFF, in order.
      const uint8_t* extra = h + kCentralHeaderSize + name_size;
      for (size_t x = 0; x + 4 <= extra_size;) {
        const uint16_t id = u16(extra + x), length = u16(extra + x + 2);
        if (x + 4 + length > extra_size) fail(entry.name + ": damaged extra field");
        if (id == 0x0001) {
          size_t f = x + 4;
          for (uint64_t* field : {&size, &compressed, &local}) {
            if (*field != 0xFFFFFFFF) continue;
            if (f + 8 > x + 4 + length) fail(entry.name + ": short zip64 extra field");
            *field = u64(extra + f);
            f += 8;
          }
        }
        x += 4 + length;
      }
      if (flags & 1) fail(entry.name + ": encrypted entries are not supported");
      if (method != 0) {
        fail(entry.name + ": compressed entries (method " + std::to_string(method) +
             ") are not supported; torch.save stores entries uncompressed");
      }
      if (compressed != size) fail(entry.name + ": a stored entry whose sizes differ");
      const std::vector<uint8_t> lh = read_at(local, kLocalHeaderSize);
      if (u32(lh.data()) != kLocalHeader) fail(entry.name + ": no local header where the directory points");
      entry.data_offset = local + kLocalHeaderSize + u16(&lh[26]) + u16(&lh[28]);
      entry.size = size;
      if (entry.data_offset > directory_offset || entry.size > directory_offset - entry.data_offset) {
        fail(entry.name + ": its data reaches into the central directory");
      }
      if (!names.insert(entry.name).second) fail("the name '" + entry.name + "' appears twice");
      entries_.push_back(std::move(entry));
      at += kCentralHeaderSize + name_size + extra_size + comment_size;
    }
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

ZipReader::~ZipReader() {
  if (fd_ >= 0) ::close(fd_);
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  for (const ZipEntry& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

std::string ZipReader::read(const ZipEntry& entry) const {
  std::string bytes(size_t(entry.size), '\0');
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::pread(fd_, bytes.data() + done, bytes.size() - done, off_t(entry.data_offset + done));
    if (n <= 0) throw Error(path_ + ": " + entry.name + ": read error");
    done += size_t(n);
  }
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t done = 0; done < bytes.size();) {  // zlib takes 32-bit lengths
    const uInt chunk = uInt(std::min<size_t>(bytes.size() - done, size_t(1) << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + done), chunk);
    done += chunk;
  }
  if (uint32_t(crc) != entry.crc32) {
    throw Error(path_ + ": " + entry.name + ": CRC-32 mismatch (the archive is damaged)");
  }
  return bytes;
}

}  // namespace gaze
