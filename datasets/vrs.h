// A native reader and writer for VRS, the container of Project Aria recordings (no VRS SDK).
//
// File: a little-endian header (magic "VisionRe"/"cordVRS2", creationId, fileHeaderSize,
// recordHeaderSize, indexRecordOffset, descriptionRecordOffset, firstUserRecordOffset), then
// records back to back. Each record starts with a recordHeaderSize-byte header:
//   recordSize u32 (header + payload), previousRecordSize u32, recordableTypeId i32,
//   formatVersion u32, timestamp f64 (s), recordableInstanceId u16, recordType u8
//   (1 configuration, 2 state, 3 data), compressionType u8 (0 none, 1 lz4, 2 zstd),
//   uncompressedSize u32 (payload size before compression; 0 when uncompressed).
// The reader walks the records sequentially (it does not need the index record, so files
// whose index was never written still read), validates every size against the file, and
// decompresses zstd (single frame) and lz4 (frame format) payloads on request.
// Errors name the file and the byte offset of the offending record.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace gaze {

enum class VrsRecordType : uint8_t { kConfiguration = 1, kState = 2, kData = 3 };
enum class VrsCompression : uint8_t { kNone = 0, kLz4 = 1, kZstd = 2 };

struct VrsRecord {
  uint64_t offset = 0;       // of the record header in the file
  uint32_t size = 0;         // header + stored payload
  int32_t type_id = 0;       // recordableTypeId, e.g. 211 = eye-tracking camera
  uint16_t instance_id = 0;  // e.g. 1 for stream 211-1
  uint32_t format_version = 0;
  double timestamp = 0;  // seconds, device time
  uint8_t record_type = 0;
  uint8_t compression = 0;
  uint32_t uncompressed_size = 0;
  uint32_t header_size = 0;
  uint32_t payload_size() const { return size - header_size; }
};

class VrsReader {
 public:
  // Reads the header and indexes every record. With `allow_truncated`, a cut-off last record
  // ends the walk (truncated() then says so) instead of throwing.
  explicit VrsReader(const std::string& path, bool allow_truncated = false);
  ~VrsReader();
  VrsReader(const VrsReader&) = delete;
  VrsReader& operator=(const VrsReader&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<VrsRecord>& records() const { return records_; }
  bool truncated() const { return truncated_; }
  uint64_t creation_id() const { return creation_id_; }

  // The record's payload, decompressed. Thread-safe (positioned reads).
  std::vector<uint8_t> read_payload(const VrsRecord& record) const;

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  uint64_t creation_id_ = 0;
  bool truncated_ = false;
  std::vector<VrsRecord> records_;
};

// Writes a VRS file atomically (temp file renamed into place by finish()).
class VrsWriter {
 public:
  VrsWriter(const std::string& path, uint64_t creation_id);
  ~VrsWriter();  // abandons (deletes) the temp file unless finish() ran
  void add_record(int32_t type_id, uint16_t instance_id, VrsRecordType type, double timestamp, uint32_t format_version,
                  const std::vector<uint8_t>& payload, VrsCompression compression = VrsCompression::kNone);
  void finish();

 private:
  std::string path_, tmp_path_;
  std::FILE* file_ = nullptr;
  uint32_t previous_size_ = 0;
  bool finished_ = false;
};

// Finds the JPEG inside an image record's payload (after the metadata block): the first
// FF D8 FF start-of-image marker. Returns the offset, or -1 when there is none.
int64_t find_jpeg_start(const std::vector<uint8_t>& payload);

}  // namespace gaze
