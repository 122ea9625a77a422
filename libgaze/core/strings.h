// Small string helpers shared across libgaze (no dependencies).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gaze {

// Levenshtein distance (insert/delete/substitute, each cost 1).
int edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` by edit distance, or "" when none is plausibly a typo of it
// (distance more than max(2, |word|/2)).
std::string nearest_name(std::string_view word, const std::vector<std::string>& candidates);

// "unknown X 'word'; did you mean 'near'?" or "...; valid: a, b, c" when nothing is near.
std::string suggest_suffix(std::string_view word, const std::vector<std::string>& candidates);

std::vector<std::string> split(std::string_view text, char sep);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
std::string trim(std::string_view text);

// Whether `text` begins / ends with `affix` (C++20's members, here for C++17).
inline bool starts_with(std::string_view text, std::string_view affix) {
  return text.size() >= affix.size() && text.compare(0, affix.size(), affix) == 0;
}
inline bool ends_with(std::string_view text, std::string_view affix) {
  return text.size() >= affix.size() && text.compare(text.size() - affix.size(), affix.size(), affix) == 0;
}

// "1,234,567" — parameter counts read better grouped.
std::string group_thousands(long long value);

}  // namespace gaze
