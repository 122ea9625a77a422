#include "datasets/dataset.h"

#include <cmath>

#include "libgaze/core/error.h"

namespace gaze {

void SkipLog::add(const std::string& message) {
  ++count;
  if (examples.size() < 5) examples.push_back(message);
}

void SkipLog::merge(const SkipLog& other) {
  count += other.count;
  for (const auto& e : other.examples) {
    if (examples.size() < 5) examples.push_back(e);
  }
}

std::string SkipLog::summary() const {
  if (count == 0) return "";
  std::string s = "skipped " + std::to_string(count) + " bad item" + (count == 1 ? "" : "s");
  for (const auto& e : examples) s += "\n  " + e;
  return s;
}

std::array<float, 3> unit_gaze(double x, double y, double z, const std::string& where) {
  const double n = std::sqrt(x * x + y * y + z * z);
  if (!std::isfinite(n) || n == 0.0) throw Error(where + ": gaze vector is zero or not finite");
  return {float(x / n), float(y / n), float(z / n)};
}

std::array<double, 3> gaze_label_sum(const Dataset& data) {
  std::array<double, 3> sum{0, 0, 0};
  for (int64_t i = 0; i < data.size(); ++i) {
    const auto& g = data.label(i).gaze;
    for (size_t k = 0; k < 3; ++k) sum[k] += g[k];
  }
  return sum;
}

}  // namespace gaze
