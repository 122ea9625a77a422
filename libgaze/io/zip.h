// A reader for zip archives as torch.save() writes them (no torch, no miniz): the central
// directory (zip64 when large), stored entries, and every entry's CRC-32 checked when it is
// read. (LibTorch's own reader, PyTorchStreamReader, disables miniz's CRC check, so a damaged
// official checkpoint would load silently.)
//
// Contract: the constructor validates the whole directory against the file — sizes, offsets,
// local headers, duplicate names — before anything is read; read() returns an entry's bytes or
// throws gaze::Error naming the file and the entry. Compressed, encrypted and multi-disk
// archives are refused by name (torch.save writes none of them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gaze {

struct ZipEntry {
  std::string name;
  uint64_t data_offset = 0;  // of the stored bytes, past the local header
  uint64_t size = 0;
  uint32_t crc32 = 0;
};

class ZipReader {
 public:
  explicit ZipReader(const std::string& path);
  ~ZipReader();
  ZipReader(const ZipReader&) = delete;
  ZipReader& operator=(const ZipReader&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;  // nullptr when absent
  std::string read(const ZipEntry& entry) const;        // CRC-32 checked

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  std::vector<ZipEntry> entries_;
};

}  // namespace gaze
