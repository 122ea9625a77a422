#include "trainers/score_cache.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"
#include "libgaze/io/checkpoint_file.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;

// A checkpoint's weights, by their CRC-32C rather than the file's: a run resumed to its end saves
// model.h5 again, and the file also holds the step, the config's paths and (before session 41)
// HDF5's timestamps, none of which change a score.
std::string weights_crc(const std::string& checkpoint) {
  char text[16];
  std::snprintf(text, sizeof text, "%08x", arrays_crc32c(read_checkpoint_file(checkpoint).model));
  return text;
}

Json number(double v) { return json_number(v); }
double number(const Json& j) { return j.is_null() ? std::numeric_limits<double>::quiet_NaN() : j.get<double>(); }

Json per_id(const std::map<int64_t, double>& m) {
  Json out = Json::object();
  for (const auto& [id, v] : m) out[std::to_string(id)] = number(v);
  return out;
}
std::map<int64_t, double> per_id(const Json& j) {
  std::map<int64_t, double> out;
  for (const auto& [id, v] : j.items()) out[std::stoll(id)] = number(v);
  return out;
}

}  // namespace

std::string score_key(const Config& scoring, const std::string& checkpoint, const std::string& pack,
                      const std::string& code) {
  if (code == "unknown" || code.find('+') != std::string::npos) return "";
  const std::string file = starts_with(pack, "pack:") ? pack.substr(5) : pack;
  const auto written = fs::last_write_time(file).time_since_epoch().count();
  return "libgaze code " + code + "; checkpoint " + checkpoint + " weights " + weights_crc(checkpoint) + "; config " +
         config_hash(scoring) + "; pack " + file + " " + std::to_string(fs::file_size(file)) + " " +
         std::to_string(written);
}

Json dataset_scores_json(const DatasetScores& s) {
  Json errors = Json::array();
  for (const double e : s.errors) errors.push_back(number(e));
  return {{"generalised", number(s.generalised)},
          {"personalised", number(s.personalised)},
          {"before", number(s.before)},
          {"baseline", number(s.baseline)},
          {"blink_auc", number(s.blink_auc)},
          {"k_curve", per_id(s.k_curve)},
          {"seconds_per_user", number(s.seconds_per_user)},
          {"calibrate_seconds_per_user", number(s.calibrate_seconds_per_user)},
          {"protocol",
           {{"unit", s.protocol.unit},
            {"gap_ms", number(s.protocol.gap_ms)},
            {"calibration_window_ms", number(s.protocol.calibration_window_ms)}}},
          {"errors", errors},
          {"people", per_id(s.people)},
          {"baseline_people", per_id(s.baseline_people)}};
}

DatasetScores dataset_scores_from_json(const Json& j, const std::string& source) {
  try {
    DatasetScores s;
    s.generalised = number(j.at("generalised"));
    s.personalised = number(j.at("personalised"));
    s.before = number(j.at("before"));
    s.baseline = number(j.at("baseline"));
    s.blink_auc = number(j.at("blink_auc"));
    s.k_curve = per_id(j.at("k_curve"));
    s.seconds_per_user = number(j.at("seconds_per_user"));
    s.calibrate_seconds_per_user = number(j.at("calibrate_seconds_per_user"));
    const Json& protocol = j.at("protocol");
    s.protocol.unit = protocol.at("unit").get<std::string>();
    s.protocol.gap_ms = number(protocol.at("gap_ms"));
    s.protocol.calibration_window_ms = number(protocol.at("calibration_window_ms"));
    for (const Json& e : j.at("errors")) s.errors.push_back(number(e));
    s.people = per_id(j.at("people"));
    s.baseline_people = per_id(j.at("baseline_people"));
    return s;
  } catch (const std::exception& e) {  // nlohmann's type and key errors, std::stoll's
    throw Error(source + ": not a scores file of this libgaze (" + e.what() + "); delete it to score again");
  }
}

std::optional<DatasetScores> read_cached_scores(const std::string& path, const std::string& key) {
  if (key.empty() || !fs::exists(path)) return std::nullopt;
  const Json j = parse_json(read_text_file(path), path);
  if (!j.is_object() || !j.contains("key") || !j.contains("scores"))
    throw Error(path + ": not a scores file (no key and scores); delete it to score again");
  if (j.at("key") != key) return std::nullopt;
  return dataset_scores_from_json(j.at("scores"), path);
}

void write_cached_scores(const std::string& path, const std::string& key, const DatasetScores& s) {
  if (key.empty()) return;
  const Json j = {{"key", key}, {"scores", dataset_scores_json(s)}};
  write_text_atomically(path, j.dump(1) + "\n");
}

}  // namespace gaze
