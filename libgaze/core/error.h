// gaze::Error — the one exception type libgaze throws for bad input.
//
// Contract: what() is a single line that names the offending file (with line:column or byte
// offset where known), key or tensor, so the CLI can print it as-is and exit non-zero.
// Programming errors (broken invariants) use assert/TORCH_CHECK instead.
#pragma once

#include <stdexcept>
#include <string>

namespace gaze {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace gaze
