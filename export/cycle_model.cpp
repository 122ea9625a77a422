#include "export/cycle_model.h"

#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "export/export_job.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCompiler = "aarch64-linux-gnu-g++";
// The Pi build's flags (kernel_CMakeLists.txt Release + toolchain-aarch64.cmake).
constexpr const char* kFlags = "-O3 -DNDEBUG -mcpu=cortex-a72 -std=c++17 -ffp-contract=off -fno-exceptions -fno-rtti";

// "'path'" for the shell (paths here come from our own folders; quotes inside are refused).
std::string quoted(const std::string& path) {
  if (path.find('\'') != std::string::npos) throw Error(path + ": a path with a quote cannot be passed to the tools");
  return "'" + path + "'";
}

void require_tool(const std::string& tool, const std::string& package) {
  try {
    run_command("command -v " + tool);
  } catch (const Error&) {
    throw Error("the Pi 4 cycle model needs " + tool + " (Debian package " + package + ")");
  }
}

std::string first_line(const std::string& text) { return trim(text.substr(0, text.find('\n'))); }

// "label:   123" -> 123, for the llvm-mca summary lines.
int64_t summary_number(const std::string& line, const std::string& label) {
  const std::string rest = trim(line.substr(label.size()));
  try {
    size_t used = 0;
    const long long v = std::stoll(rest, &used);
    if (used != rest.size()) throw std::invalid_argument(rest);
    return v;
  } catch (const std::exception&) {
    throw Error("llvm-mca report: '" + line + "' is not '" + label + " <number>'");
  }
}

// llvm-mca 14's Cortex-A72 model makes a load or store's base-register writeback wait for the
// whole access, so a loop that stores through a post-incremented pointer is serialised on its
// own store data (measured: 24 cycles per pass instead of 6 for the same body with a separate
// add). The A72 updates the base in an integer pipe, independently of the data; each writeback
// form is rewritten as the plain access plus that add, which the model times correctly:
//   op Rt, [Xn], #imm  ->  op Rt, [Xn]         ; add Xn, Xn, #imm   (post-index)
//   op Rt, [Xn, #imm]! ->  add Xn, Xn, #imm    ; op Rt, [Xn]        (pre-index)
std::string split_writeback(const std::string& line) {
  static const std::regex post(R"(^(\s*\w+\s+.*)\[(\w+)\],\s*#?([-\w]+)\s*$)");
  static const std::regex pre(R"(^(\s*\w+\s+.*)\[(\w+),\s*#?([-\w]+)\]!\s*$)");
  std::smatch m;
  if (std::regex_match(line, m, post)) {
    return m[1].str() + "[" + m[2].str() + "]\n\tadd " + m[2].str() + ", " + m[2].str() + ", " + m[3].str();
  }
  if (std::regex_match(line, m, pre)) {
    return "\tadd " + m[2].str() + ", " + m[2].str() + ", " + m[3].str() + "\n" + m[1].str() + "[" + m[2].str() + "]";
  }
  return line;
}

// The compiler lays a loop out as it likes: sometimes a body's END marker lands above its
// BEGIN (the loop rotated around its back edge), or a BEGIN is copied into a peeled iteration.
// llvm-mca refuses such a file, so only well-formed pairs are kept (in layout order, a BEGIN
// then the END of the same name with no other marker of that name between); the other markers
// are removed and their regions stay untimed (`untimed` gets their names). Writeback addressing
// is split on the way (split_writeback).
std::string keep_well_formed_regions(const std::string& assembly, std::vector<std::string>& untimed) {
  std::vector<std::string> lines = split(assembly, '\n');
  const auto marker = [](const std::string& line, const std::string& kind) -> std::string {
    const std::string tag = "# LLVM-MCA-" + kind + " ";
    const size_t at = line.find(tag);
    return at == std::string::npos ? "" : trim(line.substr(at + tag.size()));
  };
  std::map<std::string, size_t> open;  // region -> line of its pending BEGIN
  std::vector<bool> drop(lines.size(), false);
  std::map<std::string, bool> paired;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (const std::string name = marker(lines[i], "BEGIN"); !name.empty()) {
      if (open.count(name)) drop[open[name]] = true;  // a second BEGIN before the END
      open[name] = i;
    } else if (const std::string end = marker(lines[i], "END"); !end.empty()) {
      if (!open.count(end)) {
        drop[i] = true;  // an END above its BEGIN
      } else {
        open.erase(end);
        paired[end] = true;
      }
    }
  }
  for (const auto& [name, line] : open) drop[line] = true;
  std::set<std::string> lost;
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (drop[i]) {
      const std::string name = marker(lines[i], "BEGIN").empty() ? marker(lines[i], "END") : marker(lines[i], "BEGIN");
      if (!paired.count(name)) lost.insert(name);
      continue;
    }
    out += split_writeback(lines[i]) + "\n";
  }
  untimed.assign(lost.begin(), lost.end());
  return out;
}

// Step 3 for one call (`dftgaze_tool mca-counts CALL`, "region <name> <passes>" lines), then
// step 4: a body inlined at several call sites is in the assembly once per site, each copy
// scheduled in its own context: its cycles per pass is the mean over the copies. A region the
// call passes through must have been timed; the compiler may drop a body it proves dead (its
// count is then 0).
CycleCount count_passes(const std::string& counter, const std::string& call, const std::vector<McaRegion>& timed) {
  const std::string counts = run_command("qemu-aarch64 " + quoted(counter) + " mca-counts " + call);
  std::map<std::string, uint64_t> passes;
  std::istringstream in(counts);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string word, name;
    unsigned long long n = 0;
    if (fields >> word >> name >> n && word == "region") passes[name] = n;
  }
  std::map<std::string, std::vector<const McaRegion*>> by_name;
  for (const McaRegion& r : timed) by_name[r.name].push_back(&r);
  CycleCount count;
  for (const auto& [name, n] : passes) {
    CycleRegion region{name, n, 0, 0};
    if (by_name.count(name)) {
      const auto& copies = by_name.at(name);
      region.copies = int64_t(copies.size());
      for (const McaRegion* r : copies) {
        region.cycles_per_pass += double(r->cycles) / double(r->iterations) / double(copies.size());
        region.instructions_per_pass += double(r->instructions) / double(r->iterations) / double(copies.size());
      }
    } else if (n > 0) {
      region.untimed = true;  // laid out around its loop's back edge, or not found
    }
    count.cycles += region.cycles();
    count.regions.push_back(region);
  }
  return count;
}

}  // namespace

std::vector<McaRegion> parse_mca_report(const std::string& text) {
  std::vector<McaRegion> regions;
  std::istringstream in(text);
  const std::string marker = "Code Region - ";
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find(marker);
    if (starts_with(line, "[") && at != std::string::npos) {
      regions.push_back({trim(line.substr(at + marker.size())), 0, 0, 0});
      continue;
    }
    if (regions.empty()) continue;
    for (const auto& [label, field] :
         {std::pair<const char*, int64_t McaRegion::*>{"Iterations:", &McaRegion::iterations},
          {"Instructions:", &McaRegion::instructions},
          {"Total Cycles:", &McaRegion::cycles}}) {
      if (starts_with(line, label)) regions.back().*field = summary_number(line, label);
    }
  }
  if (regions.empty()) throw Error("llvm-mca report: no code regions (were the GZ_MCA fences compiled in?)");
  for (const McaRegion& r : regions) {
    if (r.iterations <= 0 || r.cycles <= 0)
      throw Error("llvm-mca report: region " + r.name + " has no iteration or cycle count");
  }
  return regions;
}

CycleModel model_pi4_cycles(const std::string& kernel_dir, const std::string& work_dir) {
  for (const char* file : {"dftgaze.cpp", "dftgaze.h", "dftgaze_tool.cpp"}) {
    if (!fs::exists(fs::path(kernel_dir) / file)) throw Error(kernel_dir + ": no " + file + " (not a kernel folder)");
  }
  require_tool(kCompiler, "g++-aarch64-linux-gnu");
  require_tool("qemu-aarch64", "qemu-user");
  require_tool("llvm-mca", "llvm");
  fs::create_directories(work_dir);
  const std::string source = quoted((fs::path(kernel_dir) / "dftgaze.cpp").string());
  const std::string assembly = (fs::path(work_dir) / "dftgaze_mca.s").string();
  const std::string counter = (fs::path(work_dir) / "dftgaze_mca_count").string();
  CycleModel model;
  model.compiler = first_line(run_command(std::string(kCompiler) + " --version"));
  model.llvm_mca = first_line(run_command("llvm-mca --version | grep -i version"));

  // 1-2: cycles per pass of every fenced body.
  run_command(std::string(kCompiler) + " " + kFlags + " -DGZ_MCA_REGIONS -S " + source + " -o " + quoted(assembly));
  std::vector<std::string> untimed;
  const std::string regions = (fs::path(work_dir) / "dftgaze_mca_regions.s").string();
  write_text_atomically(regions, keep_well_formed_regions(read_text_file(assembly), untimed));
  const std::vector<McaRegion> timed = parse_mca_report(
      run_command("llvm-mca -mtriple=aarch64-linux-gnu -mcpu=cortex-a72 -iterations=200 " + quoted(regions)));
  // 3-4: passes per call, cycles per call.
  run_command(std::string(kCompiler) + " " + kFlags + " -static -DGZ_MCA_COUNT -I" + quoted(kernel_dir) + " " + source +
              " " + quoted((fs::path(kernel_dir) / "dftgaze_tool.cpp").string()) + " -o " + quoted(counter));
  model.predict = count_passes(counter, "predict", timed);
  model.personalize = count_passes(counter, "personalize", timed);
  if (model.predict.regions.empty()) throw Error("dftgaze_tool mca-counts predict printed no region counts");
  return model;
}

}  // namespace gaze
