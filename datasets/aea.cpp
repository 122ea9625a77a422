#include "datasets/aea.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "datasets/codec.h"
#include "datasets/csv.h"
#include "libgaze/core/error.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;

constexpr int32_t kEyeTypeId = 211;
constexpr uint16_t kEyeInstance = 1;

std::vector<fs::path> find_recordings(const fs::path& root) {
  if (fs::is_regular_file(root / "recording.vrs")) return {root};
  if (!fs::is_directory(root)) throw Error(root.string() + ": AEA root not found");
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_directory() && fs::is_regular_file(entry.path() / "recording.vrs")) {
      out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end());
  if (out.empty()) throw Error(root.string() + ": no AEA recording (no */recording.vrs) found");
  return out;
}

}  // namespace

int64_t vrs_time_to_us(double seconds) {
  // 86.43530625 s is 86435306.25 µs; binary rounding may give ...305.9999997, so nudge by
  // well under a microsecond before truncating.
  return static_cast<int64_t>(std::floor(seconds * 1e6 + 1e-3));
}

AeaDataset::AeaDataset(const std::string& root, const AeaOptions& options) : root_(root), options_(options) {
  std::vector<Side> sides;
  if (options.eye == "pair")
    sides = {Side::kPair};
  else if (options.eye == "left")
    sides = {Side::kLeft};
  else if (options.eye == "right")
    sides = {Side::kRight};
  else if (options.eye == "both")
    sides = {Side::kLeft, Side::kRight};
  else
    throw Error("AEA: unknown eye '" + options.eye + "' (pair, left, right or both)");

  for (const fs::path& dir : find_recordings(root)) {
    const std::string name = dir.filename().string();
    const fs::path csv = dir / "mps" / "eye_gaze" / "general_eye_gaze.csv";
    if (!fs::is_regular_file(csv)) throw Error(csv.string() + ": gaze CSV not found");
    SkipLog* skip = options.skip_bad ? &skipped_ : nullptr;
    std::unique_ptr<VrsReader> reader;
    MpsGazeTable table;
    try {
      reader = std::make_unique<VrsReader>((dir / "recording.vrs").string(), options.skip_bad);
      if (reader->truncated()) skipped_.add((dir / "recording.vrs").string() + ": truncated; read up to the cut");
      table = read_mps_gaze_csv(csv.string(), skip);
    } catch (const Error& e) {
      if (!options.skip_bad) throw;
      skipped_.add(e.what());
      continue;
    }
    // Optional list of blink timestamps (written by gaze synth; absent in real recordings).
    const std::set<int64_t> blinks = read_id_list((dir / "synth_blinks.txt").string());
    RecordingInfo info{name, 0, 0, table.layout};
    const size_t index = readers_.size();
    for (const VrsRecord& r : reader->records()) {
      if (r.type_id != kEyeTypeId || r.instance_id != kEyeInstance ||
          r.record_type != static_cast<uint8_t>(VrsRecordType::kData)) {
        continue;
      }
      ++info.eye_frames;
      // A timestamp that is not a time (NaN, negative, past year 2255) is damage, not a frame to drop quietly.
      if (!(r.timestamp >= 0 && r.timestamp < 9.2e9)) {
        const std::string message = (dir / "recording.vrs").string() + ": byte " + std::to_string(r.offset) +
                                    ": eye record timestamp " + std::to_string(r.timestamp) + " s is not a time";
        if (!options.skip_bad) throw Error(message);
        skipped_.add(message);
        continue;
      }
      const int64_t t_us = vrs_time_to_us(r.timestamp);
      const MpsGazeRow* row = table.match(t_us, options.tolerance_us);
      if (!row) continue;
      ++info.matched;
      for (Side side : sides) {
        Item item{index, r, side, {}};
        item.label.gaze = row->direction;
        item.label.participant = static_cast<int64_t>(index);
        item.label.timestamp_us = t_us;
        item.label.blink = blinks.count(t_us) > 0;
        item.label.key = name + "/" + std::to_string(t_us) +
                         (side == Side::kLeft    ? "/L"
                          : side == Side::kRight ? "/R"
                                                 : "");
        if (side == Side::kRight && options.mirror_right) item.label.gaze[0] = -item.label.gaze[0];
        items_.push_back(item);
      }
    }
    readers_.push_back(std::move(reader));
    info_.push_back(info);
  }
}

Sample AeaDataset::get(int64_t index) const {
  const Item& item = items_.at(index);
  const VrsReader& reader = *readers_[item.recording];
  const std::string where = reader.path() + ": byte " + std::to_string(item.record.offset);
  const std::vector<uint8_t> payload = reader.read_payload(item.record);
  const int64_t start = find_jpeg_start(payload);
  if (start < 0) throw Error(where + ": eye record holds no JPEG (no FF D8 FF marker)");
  Image frame = decode_jpeg(payload.data() + start, payload.size() - start, where);
  Sample sample;
  sample.label = item.label;
  if (item.side == Side::kPair) {
    sample.image = std::move(frame);
    return sample;
  }
  if (frame.width % 2 != 0) {
    throw Error(where + ": eye frame is " + std::to_string(frame.width) +
                " px wide; expected two eye images side by side (even width)");
  }
  const int32_t half = frame.width / 2;
  sample.image = crop(frame, 0, item.side == Side::kLeft ? 0 : half, frame.height, half);
  if (item.side == Side::kRight && options_.mirror_right) sample.image = mirror_horizontal(sample.image);
  return sample;
}

std::string AeaDataset::describe() const {
  return "aea " + root_ + " (" + std::to_string(info_.size()) + " recordings, eye=" + options_.eye + ")";
}

}  // namespace gaze
