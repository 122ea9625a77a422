// dftgaze_tool's frames-file reader, and dftgaze_predict() on whatever frame sizes it admits
// (the resampler on 1x1, 1x4000, ... eyes). The tool's source is compiled in, its main renamed.
#define main dftgaze_tool_main
#include "dftgaze_tool.cpp"
#undef main

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Frames frames;
  if (!parse_frames(std::vector<uint8_t>(data, data + size), &frames).empty()) return 0;
  float out[4];
  for (uint32_t i = 0; i < frames.count && i < 2; ++i) {
    if (dftgaze_predict(frames.frame(i), int(frames.height), int(frames.width), out) != 0) __builtin_trap();
  }
  return 0;
}
