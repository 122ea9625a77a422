// JSON for everything libgaze writes or reads (reports, eval, bench, metrics.jsonl, the Python
// bridge), through one library: nlohmann/json (Debian nlohmann-json3-dev).
//
// Json keeps keys in insertion order, so a report reads in the order it was built. Numbers that
// are not finite become null (JSON has no NaN), and parse_json() turns a syntax error into a
// gaze::Error naming the source.
#pragma once

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "libgaze/core/error.h"

namespace gaze {

using Json = nlohmann::ordered_json;

// `v`, or null when it is NaN or infinite.
inline Json json_number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

// Parses `text`; `source` names it in the error.
inline Json parse_json(const std::string& text, const std::string& source) {
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": invalid JSON: " + e.what());
  }
}

// A member that must be present, with a message naming `source` and `key` otherwise.
inline const Json& json_at(const Json& object, const std::string& key, const std::string& source) {
  if (!object.is_object() || !object.contains(key)) throw Error(source + ": JSON lacks '" + key + "'");
  return object.at(key);
}

// A member that must be a string.
inline std::string json_string_at(const Json& object, const std::string& key, const std::string& source) {
  const Json& v = json_at(object, key, source);
  if (!v.is_string()) throw Error(source + ": '" + key + "' is not a string");
  return v.get<std::string>();
}

}  // namespace gaze
