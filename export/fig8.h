// The paper's Fig. 8 as a table: per-frame latency of the teacher and of DFT Gaze, measured
// here (LibTorch fp32 and our fixed-point kernel, batch 1, one thread, the same frames, one
// run) beside the paper's Raspberry Pi 4 numbers, each cell labelled with its device.
//
// Latency does not depend on the weights, so without checkpoints freshly initialised models
// are timed. Frames come from config.data (the paper used 1,000 AEA eye images); the kernel
// runs at export.input_size (default here 224x224, the benchmark size). A model the kernel
// cannot lower (today: the teacher, whose 640- and 1280-input layers exceed the int16 x int8
// scheme's int32 accumulator bound) gets the reason instead of a number.
#pragma once

#include <string>
#include <vector>

#include "libgaze/config/config.h"
#include "libgaze/core/json.h"

namespace gaze {

struct Fig8Row {
  std::string model;          // "teacher", "student"
  int64_t params = 0;         // counted on the model
  double paper_pi4_ms = 0;    // the paper's Raspberry Pi 4 (8 GB), mean over 1,000 AEA images
  double torch_p50_ms = 0;    // LibTorch fp32 here
  double kernel_p50_ms = -1;  // our kernel here; -1 with kernel_note saying why
  double pi4_bound_ms = -1;   // our kernel's MACs at the A72's int8 peak (a lower bound)
  std::string kernel_note;
};

struct Fig8Report {
  std::vector<Fig8Row> rows;
  std::string machine;
  int32_t input_h = 0, input_w = 0;
  int64_t frames = 0;
  Json json() const;
  std::string markdown() const;
};

// `student` / `teacher`: checkpoints, empty = a fresh model of that architecture.
Fig8Report reproduce_fig8(const Config& config, const std::string& student, const std::string& teacher, int64_t frames);

}  // namespace gaze
