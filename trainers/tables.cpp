#include "trainers/tables.h"

#include <cstdio>

#include "libgaze/core/strings.h"

namespace gaze {

std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::string out = "| " + join(header, " | ") + " |\n|";
  for (size_t i = 0; i < header.size(); ++i) out += "---|";
  out += "\n";
  for (const auto& row : rows) out += "| " + join(row, " | ") + " |\n";
  return out;
}

std::string csv_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::string out = join(header, ",") + "\n";
  for (const auto& row : rows) out += join(row, ",") + "\n";
  return out;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string fmt(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace gaze
