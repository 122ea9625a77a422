// The kernel's runtime files, embedded into libgaze at build time (export/CMakeLists.txt), so
// `gaze export` writes them into the generated folder without needing the source tree; also
// scripts/ort/ort_run.js, which `gaze bench` runs to time ONNX Runtime beside the kernel.
#pragma once

#include <string>
#include <vector>

namespace gaze {

struct RuntimeSource {
  std::string name;  // file name under export/ (or cmake/ for the toolchain file)
  std::string text;
};

const std::vector<RuntimeSource>& runtime_sources();

// The text of one embedded file by name; throws gaze::Error if it is not embedded.
const std::string& runtime_source(const std::string& name);

}  // namespace gaze
