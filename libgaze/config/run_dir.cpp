#include "libgaze/config/run_dir.h"

#include <filesystem>

#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"

namespace gaze {

RunDir open_run_dir(const Config& config, bool resume) {
  namespace fs = std::filesystem;
  RunDir run{(fs::path(config.run.out_dir) / config.run.name).string()};
  std::error_code ec;
  fs::create_directories(run.checkpoint_dir(), ec);
  if (ec) throw Error(run.path + ": cannot create run directory: " + ec.message());
  const std::string resolved = dump_config(config);
  if (fs::exists(run.config_path())) {
    const std::string existing = read_text_file(run.config_path());
    if (existing != resolved) {
      throw Error(run.config_path() + ": this run directory holds a different config; " +
                  (resume ? "resume with the same config" : "choose another run.name") + " (or delete the folder)");
    }
  }
  write_text_atomically(run.config_path(), resolved);
  return run;
}

}  // namespace gaze
