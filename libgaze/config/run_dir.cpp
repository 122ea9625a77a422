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
#include "libgaze/core/strings.h"

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

namespace {

size_t indent_of(const std::string& line) { return line.find_first_not_of(' '); }

// The dotted key of line `i` of a YAML dump (its own key and those of the lines it nests in), and
// the line's value without its help comment: "pipeline.stages.student_adapters.set: [...]".
std::string dump_line_key(const std::vector<std::string>& lines, size_t i) {
  if (i >= lines.size()) return "(end of file)";
  const auto key = [](const std::string& line) { return trim(line.substr(0, line.find(':'))); };
  std::string path = key(lines[i]);
  size_t indent = indent_of(lines[i]);
  for (size_t j = i; j-- > 0 && indent > 0;) {
    if (indent_of(lines[j]) < indent && lines[j].find(':') != std::string::npos) {
      path = key(lines[j]) + "." + path;
      indent = indent_of(lines[j]);
    }
  }
  const std::string value = lines[i].substr(lines[i].find(':') + 1);
  return path + ": " + trim(value.substr(0, value.find("  #")));
}

}  // namespace

ConfigDifference config_difference(const std::string& stored, const std::string& path, const Config& config) {
  const std::string dumped = dump_config(config);
  if (stored == dumped) return {};
  // Both read as a config file is today (defaults for missing keys, presets filled, today's
  // help comments); text that is no config today (a key since removed) is compared as written.
  std::string unreadable;  // why the stored text is no config today, if it is not
  const auto resolved = [&](const std::string& text, std::string* why) {
    try {
      return dump_config(parse_config(text, path));
    } catch (const Error& e) {
      if (why) *why = e.what();
      return text;
    }
  };
  const std::string theirs = resolved(stored, &unreadable), ours = resolved(dumped, nullptr);
  if (theirs == ours) return {};
  // Lines are numbered in the file as written; the key and values come from the resolved texts.
  const std::vector<std::string> a = split(theirs, '\n'), b = split(ours, '\n'), written = split(stored, '\n');
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  ConfigDifference d;
  d.stored = dump_line_key(a, i) + (unreadable.empty() ? "" : " (not a config today: " + unreadable + ")");
  d.ours = dump_line_key(b, i);
  const std::string key = d.stored.substr(0, d.stored.find(':'));
  d.line = int64_t(std::min(i, written.size())) + 1;
  for (size_t j = 0; j < written.size(); ++j) {
    if (dump_line_key(written, j).rfind(key + ":", 0) == 0) {
      d.line = int64_t(j) + 1;
      break;
    }
  }
  return d;
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
    const ConfigDifference d = config_difference(read_text_file(run.config_path()), run.config_path(), config);
    if (d.line > 0) {
      throw Error(run.config_path() + ":" + std::to_string(d.line) +
                  ": this run directory holds a different config ('" + d.stored + "', now '" + d.ours + "'); " +
                  (resume ? "resume with the same config" : "choose another run.name") + " (or delete the folder)");
    }
  }
  write_text_atomically(run.config_path(), resolved);
  return run;
}

}  // namespace gaze
