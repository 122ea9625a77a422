#include "libgaze/config/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"

namespace gaze {

std::shared_ptr<void> lock_directory(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create directory: " + ec.message());
  const std::string path = dir + "/.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot open lock file: " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    char holder[256] = {0};
    const ssize_t n = ::pread(fd, holder, sizeof holder - 1, 0);
    ::close(fd);
    if (error == EWOULDBLOCK) {
      throw Error(dir + ": in use by another gaze process (" + std::string(holder, size_t(std::max<ssize_t>(n, 0))) +
                  "); wait for it or choose another run.name");
    }
    throw Error(path + ": cannot lock: " + std::strerror(error));
  }
  char host[128] = "host";
  ::gethostname(host, sizeof host - 1);
  const std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  const std::string holder = "pid " + std::to_string(::getpid()) + " on " + host + " since " + when;
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, holder.data(), holder.size(), 0) != ssize_t(holder.size())) {
    // The lock holds regardless; only the description of the holder is missing.
  }
  return std::shared_ptr<void>(nullptr, [fd](void*) { ::close(fd); });
}

std::string run_dir_path(const Config& config) {
  return (std::filesystem::path(config.run.out_dir) / config.run.name).string();
}

RunDir open_run_dir(const Config& config, bool resume) {
  namespace fs = std::filesystem;
  RunDir run;
  run.path = run_dir_path(config);
  run.lock = lock_directory(run.path);
  std::error_code ec;
  fs::create_directories(run.checkpoint_dir(), ec);
  if (ec) throw Error(run.path + ": cannot create run directory: " + ec.message());
  // Leftovers of a killed writer (atomic files are written as <name>.tmp-<pid>, then renamed).
  for (const fs::path& folder : {fs::path(run.path), fs::path(run.checkpoint_dir())}) {
    for (const auto& entry : fs::directory_iterator(folder, ec)) {
      if (entry.path().filename().string().find(".tmp-") != std::string::npos) fs::remove_all(entry.path(), ec);
    }
  }
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
