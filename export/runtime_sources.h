// The kernel's runtime files, embedded into libgaze at build time (export/CMakeLists.txt), so
// `gaze export` writes them into the generated folder without needing the source tree.
#pragma once

#include <string>
#include <vector>

namespace gaze {

struct RuntimeSource {
  std::string name;  // file name under export/ (or cmake/ for the toolchain file)
  std::string text;
};

const std::vector<RuntimeSource>& runtime_sources();

}  // namespace gaze
