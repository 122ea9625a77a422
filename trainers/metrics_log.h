// Metrics of a run, written two ways (no torch):
//   metrics.jsonl                one JSON object per line: {"step": 10, "loss": 0.31, ...}
//   events.out.tfevents.<t>.<host>  TensorBoard event file: records of
//       uint64 length | uint32 masked CRC-32C(length) | Event protobuf | uint32 masked CRC-32C(data)
//   with Event{wall_time=1 (double), step=2 (int64), file_version=3 | summary=5 {value=1
//   {tag=1, simple_value=2 (float)}}}, hand-encoded. Both files are appended and flushed per
//   write, so a resumed run continues them (entries past the resume step are not rewritten).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace gaze {

class MetricsLog {
 public:
  // Appends to <run_dir>/metrics.jsonl; a resumed run (first_step > 0) first drops the lines
  // logged after its checkpoint, so no step appears twice.
  explicit MetricsLog(const std::string& run_dir, int64_t first_step = 0);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void write(int64_t step, const std::vector<std::pair<std::string, double>>& values);
  const std::string& event_path() const { return event_path_; }

 private:
  void write_event(const std::string& event);
  std::FILE* jsonl_ = nullptr;
  std::FILE* events_ = nullptr;
  std::string jsonl_path_, event_path_;
};

// Protobuf-encoded Event bytes (exposed for tests).
std::string encode_scalar_event(double wall_time, int64_t step, const std::string& tag, float value);
std::string encode_file_version_event(double wall_time);

}  // namespace gaze
