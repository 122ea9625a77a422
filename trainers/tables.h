// Plain-text tables for the reports: Markdown and CSV (RFC 4180) from rows of cells, and the
// fixed-point number format every report cell uses.
#pragma once

#include <string>
#include <vector>

namespace gaze {

std::string markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
std::string csv_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);

// A CSV field, quoted when it holds a comma, quote or line break.
std::string csv_field(const std::string& text);

// `v` with `digits` decimals ("7.41").
std::string fmt(double v, int digits = 2);

}  // namespace gaze
