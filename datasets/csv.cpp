#include "datasets/csv.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"

namespace gaze {

std::vector<CsvRow> read_csv_rows(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open file");
  std::vector<CsvRow> rows;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (number == 1 && starts_with(line, "\xEF\xBB\xBF")) line.erase(0, 3);  // a UTF-8 byte-order mark
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    rows.push_back({number, split(line, ',')});
  }
  return rows;
}

std::set<int64_t> read_id_list(const std::string& path) {
  std::set<int64_t> ids;
  std::ifstream probe(path);
  if (!probe) return ids;
  for (const CsvRow& row : read_csv_rows(path)) {
    ids.insert(parse_int64(row.fields[0], path + ":" + std::to_string(row.line)));
  }
  return ids;
}

double parse_finite_double(const std::string& text, const std::string& where) {
  const std::string t = trim(text);
  char* end = nullptr;
  errno = 0;
  const double v = t.empty() ? NAN : std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size() || errno == ERANGE || !std::isfinite(v)) {
    throw Error(where + " is not a finite number: '" + text + "'");
  }
  return v;
}

int64_t parse_int64(const std::string& text, const std::string& where) {
  const std::string t = trim(text);
  char* end = nullptr;
  errno = 0;
  const long long v = t.empty() ? 0 : std::strtoll(t.c_str(), &end, 10);
  if (t.empty() || end != t.c_str() + t.size() || errno == ERANGE) {
    throw Error(where + " is not an integer: '" + text + "'");
  }
  return v;
}

}  // namespace gaze
