// Minimal CSV reading for label files (no dependencies): comma-separated, no quoting (the
// formats we read never quote), CRLF tolerated, blank lines ignored. Numbers are parsed
// strictly: "abc", "", "nan" and "inf" are errors, reported as file:line.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace gaze {

struct CsvRow {
  int64_t line = 0;  // 1-based line number in the file
  std::vector<std::string> fields;
};

// All non-blank rows of a file (including a header, if any). Throws gaze::Error if unreadable.
std::vector<CsvRow> read_csv_rows(const std::string& path);

// The integers in the first column of `path` (one per line); empty when the file is absent.
std::set<int64_t> read_id_list(const std::string& path);

// Strict parses; throw gaze::Error("<where>: <what> is not a number: 'x'").
double parse_finite_double(const std::string& text, const std::string& where);
int64_t parse_int64(const std::string& text, const std::string& where);

}  // namespace gaze
