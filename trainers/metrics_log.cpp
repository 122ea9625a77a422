#include "trainers/metrics_log.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "libgaze/core/atomic_file.h"
#include "libgaze/core/crc32c.h"
#include "libgaze/core/error.h"
#include "libgaze/core/json.h"

namespace gaze {
namespace {

// Protobuf wire format: varint keys (field << 3 | wire type).
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char(v | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
}
void put_key(std::string& out, int field, int wire) { put_varint(out, uint64_t(field) << 3 | uint64_t(wire)); }
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}
template <class T>
void put_fixed(std::string& out, int field, T value) {
  put_key(out, field, sizeof(T) == 8 ? 1 : 5);
  char raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));
  out.append(raw, sizeof(T));
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string encode_scalar_event(double wall_time, int64_t step, const std::string& tag, float value) {
  std::string summary_value;
  put_bytes(summary_value, 1, tag);
  put_fixed(summary_value, 2, value);
  std::string summary;
  put_bytes(summary, 1, summary_value);
  std::string event;
  put_fixed(event, 1, wall_time);
  put_key(event, 2, 0);
  put_varint(event, uint64_t(step));
  put_bytes(event, 5, summary);
  return event;
}

std::string encode_file_version_event(double wall_time) {
  std::string event;
  put_fixed(event, 1, wall_time);
  put_bytes(event, 3, "brain.Event:2");
  return event;
}

MetricsLog::MetricsLog(const std::string& run_dir, int64_t first_step) {
  const std::string jsonl = run_dir + "/metrics.jsonl";
  if (first_step > 0 && std::filesystem::exists(jsonl)) {
    std::istringstream in(read_text_file(jsonl));
    std::string kept;
    for (std::string line; std::getline(in, line);) {
      const Json entry = Json::parse(line, nullptr, /*allow_exceptions=*/false);
      // A torn last line (killed mid-write) or a step past the checkpoint goes.
      if (entry.is_object() && entry.contains("step") && entry["step"].is_number_integer() &&
          entry["step"].get<int64_t>() <= first_step) {
        kept += line + "\n";
      }
    }
    write_text_atomically(jsonl, kept);
  }
  jsonl_path_ = jsonl;
  jsonl_ = std::fopen(jsonl.c_str(), "a");
  if (!jsonl_) throw Error(jsonl + ": cannot open for writing: " + std::strerror(errno));
  char host[128] = "host";
  ::gethostname(host, sizeof host - 1);
  event_path_ = run_dir + "/events.out.tfevents." + std::to_string(int64_t(now_seconds())) + "." + host;
  events_ = std::fopen(event_path_.c_str(), "ab");
  if (!events_) throw Error(event_path_ + ": cannot open for writing: " + std::strerror(errno));
  write_event(encode_file_version_event(now_seconds()));
}

MetricsLog::~MetricsLog() {
  if (jsonl_) std::fclose(jsonl_);
  if (events_) std::fclose(events_);
}

void MetricsLog::write_event(const std::string& event) {
  const uint64_t length = event.size();
  const uint32_t length_crc = masked_crc32c(&length, 8);
  const uint32_t data_crc = masked_crc32c(event.data(), event.size());
  const bool ok = std::fwrite(&length, 8, 1, events_) == 1 && std::fwrite(&length_crc, 4, 1, events_) == 1 &&
                  std::fwrite(event.data(), 1, event.size(), events_) == event.size() &&
                  std::fwrite(&data_crc, 4, 1, events_) == 1 && std::fflush(events_) == 0;
  if (!ok) throw Error(event_path_ + ": cannot write: " + std::strerror(errno));
}

void MetricsLog::write(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  Json line = {{"step", step}};
  const double t = now_seconds();
  for (const auto& [name, value] : values) {
    line[name] = json_number(value);
    write_event(encode_scalar_event(t, step, name, float(value)));
  }
  if (std::fputs((line.dump() + "\n").c_str(), jsonl_) < 0 || std::fflush(jsonl_) != 0) {
    throw Error(jsonl_path_ + ": cannot write: " + std::strerror(errno));
  }
}

}  // namespace gaze
