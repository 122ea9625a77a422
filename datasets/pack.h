// HDF5 packs: any source -> one chunked, compressed, checksummed file that streams.
//
// Layout (opens in h5py):
//   /images        uint8  [N, H, W]   chunks of one image, deflate + shuffle, fletcher32
//   /gaze          float32 [N, 3]     unit vectors
//   /head          float32 [N, 2]     head pose (pitch, yaw) radians, zero where unknown (version 4)
//   /participant   int64  [N]
//   /split         uint8  [N]         index into the `split_names` attribute
//   /keys          fixed-length strings [N]
//   /timestamp_us  int64  [N]         -1 where unknown
//   /blink         uint8  [N]
//   /images_crc32c uint32 [N]         CRC-32C of each image's pixels (version 2)
//   attributes: format="libgaze-pack", version=4, source, participant_unit, split_names; each
//   label column (and /images_crc32c) has a "crc32c" attribute over all its rows (version 3)
// Every dataset carries HDF5's fletcher32 filter, so a flipped bit fails the read with an error
// naming the file and item instead of returning garbage; fletcher32 cannot see a 0x0000 <->
// 0xFFFF word swap, so each image and each label column is also checked against its CRC-32C
// (older packs, which have none, still load). Rows a file declares but does not store are
// refused before anything is allocated for them. All images must share one size (pass
// a size to resize). The file is written atomically.
//
// PackDataset reads labels into memory at open and images one chunk at a time (never the
// whole file). HDF5 here is built without thread safety, so reads take a process-wide lock;
// decoding work around it still overlaps in the prefetching loader.
#pragma once

#include <hdf5.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace gaze {

extern const std::vector<std::string> kSplitNames;  // train, validation, test

struct PackOptions {
  int32_t height = 0, width = 0;  // 0: keep the source size (all items must match)
  int compression = 4;            // deflate level
  int64_t threads = 0;
  bool skip_bad = false;
  // Split of each item (index into kSplitNames); default: all "train".
  std::function<uint8_t(int64_t index, const SampleLabel&)> split_of;
};

struct PackReport {
  int64_t written = 0;
  SkipLog skipped;
  double seconds = 0;
  int64_t bytes = 0;
};

PackReport write_pack(const Dataset& source, const std::string& path, const PackOptions& options);

class PackDataset : public Dataset {
 public:
  // `split` selects items of one split ("" = all). With `hold_out` >= 0 the pack's split column
  // is ignored for a leave-one-person-out fold instead: "train" is everyone but participant
  // `hold_out`, "validation" and "test" that participant only (a pack without them is refused).
  // With `train_people` >= 0 the train split keeps only its first that many participants (lowest
  // ids; fewer there is an error); the other splits are untouched (data.train_people).
  explicit PackDataset(const std::string& path, const std::string& split = "", int64_t hold_out = -1,
                       int64_t train_people = -1);
  ~PackDataset() override;
  int64_t size() const override { return static_cast<int64_t>(rows_.size()); }
  Sample get(int64_t index) const override;
  const SampleLabel& label(int64_t index) const override { return labels_[rows_[index]]; }
  std::string describe() const override;
  // The source's unit, stored at packing (packs from before it was stored: "participant").
  std::string participant_unit() const override { return participant_unit_; }
  // The item's split: the pack's own, or under hold_out the fold's (0 train, 1 validation).
  uint8_t split_of(int64_t index) const { return row_split(rows_[index]); }
  int32_t height() const { return height_; }
  int32_t width() const { return width_; }

 private:
  void open_and_index(const std::string& path, const std::string& split);  // holding the HDF5 lock
  void close_handles();
  uint8_t row_split(int64_t row) const {
    if (hold_out_ >= 0) return labels_[row].participant == hold_out_ ? 1 : 0;
    return splits_[row];
  }
  std::string path_, split_, participant_unit_ = "participant";
  int64_t hold_out_ = -1, train_people_ = -1;
  hid_t file_ = -1, images_ = -1;
  int32_t height_ = 0, width_ = 0;
  std::vector<SampleLabel> labels_;
  std::vector<uint8_t> splits_;
  std::vector<int64_t> rows_;         // selected row numbers
  std::vector<uint32_t> image_crcs_;  // CRC-32C of each image (empty for version-1 packs)
};

}  // namespace gaze
