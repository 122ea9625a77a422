// A Raspberry Pi 4 cycle model of a generated kernel (`gaze bench --model pi4`), for when no Pi
// is at hand: llvm-mca's Cortex-A72 model times each hot NEON loop body, and a count of how often
// one frame passes through each body turns that into cycles per frame.
//
//   1. The kernel folder's dftgaze.cpp is compiled to AArch64 assembly by the Pi build's compiler
//      and flags (aarch64-linux-gnu-g++ -O3 -mcpu=cortex-a72) with GZ_MCA_REGIONS, which turns
//      the GZ_MCA_BEGIN/END fences of export/layers.h into llvm-mca region comments.
//   2. `llvm-mca -mcpu=cortex-a72` runs every region as a loop body: cycles per pass (a body
//      inlined at several call sites is there once per site: the mean over its copies).
//   3. The same source built with GZ_MCA_COUNT (a static AArch64 dftgaze_tool, run under
//      qemu-aarch64) counts each region's passes over one call: one frame of dftgaze_predict, and
//      one dftgaze_personalize of 5 calibration frames at the export's defaults (shapes, steps,
//      batch size and views decide them).
//   4. Cycles per call = sum over regions of passes x cycles per pass; at 1.5 GHz (the Pi 4's
//      clock) that is a latency. A body the compiler laid out around its loop's back edge (END
//      above BEGIN) cannot be a region; it is listed as untimed and adds nothing.
//
// What it leaves out, so the figure is a lower bound of a real Pi's: code outside the fenced
// bodies (row copies and gathers through memcpy, per-position LayerNorm reciprocals, GRN's
// per-image factors, resampling, the head, loop control between bodies; in personalisation the
// adapters' BatchNorm and LeakyReLU, pooling, head and loss, the batch draw, augmentation),
// cache misses (llvm-mca assumes every load hits L1) and branch mispredictions. Needs Debian's g++-aarch64-linux-gnu,
// qemu-user and llvm; a missing tool is named with its package.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gaze {

// One code region of llvm-mca's report.
struct McaRegion {
  std::string name;
  int64_t iterations = 0, instructions = 0, cycles = 0;  // as llvm-mca prints them ("Total Cycles")
};

// The regions of an llvm-mca report, in order; throws gaze::Error when the text holds none.
std::vector<McaRegion> parse_mca_report(const std::string& text);

struct CycleRegion {
  std::string name;
  uint64_t passes = 0;         // per frame
  double cycles_per_pass = 0;  // llvm-mca: total cycles / iterations
  double instructions_per_pass = 0;
  int64_t copies = 0;    // of the body in the assembly (inlined at several sites: the mean)
  bool untimed = false;  // passed through, but no well-formed region in the assembly
  double cycles() const { return double(passes) * cycles_per_pass; }
};

// One call's regions and their sum.
struct CycleCount {
  std::vector<CycleRegion> regions;  // every fenced region, passes from one call
  double cycles = 0;
};

struct CycleModel {
  CycleCount predict;      // one frame
  CycleCount personalize;  // one 5-frame calibration (no regions: the kernel has no on-device personalisation)
  double clock_ghz = 1.5;
  double ms(const CycleCount& call) const { return call.cycles / (clock_ghz * 1e6); }
  double ms_per_frame() const { return ms(predict); }
  std::string compiler, llvm_mca;  // the tools' first version lines
};

// Runs steps 1-4 on a generated kernel folder (work files go to `work_dir`).
CycleModel model_pi4_cycles(const std::string& kernel_dir, const std::string& work_dir);

}  // namespace gaze
