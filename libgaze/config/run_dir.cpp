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

// The dotted key of every line of a YAML dump, in one pass (its own key and those of the lines it
// nests in: "pipeline.stages.student_adapters.set"; an entry of a list of sections adds "[]":
// "pipeline.variants[].set"); "" for a line that holds no key.
std::vector<std::string> dump_keys(const std::vector<std::string>& lines) {
  std::vector<std::pair<size_t, std::string>> enclosing;  // (indent, dotted key) of the open parents
  std::vector<std::string> keys;
  keys.reserve(lines.size());
  for (const std::string& line : lines) {
    const size_t indent = line.find_first_not_of(' '), colon = line.find(':');
    if (indent == std::string::npos || colon == std::string::npos || line[indent] == '#') {
      keys.emplace_back();
      continue;
    }
    size_t at = indent;                        // where the line's key starts
    if (line.compare(indent, 2, "- ") == 0) {  // a list entry's first key: the entry encloses its keys
      while (!enclosing.empty() && enclosing.back().first >= indent) enclosing.pop_back();
      enclosing.emplace_back(indent, (enclosing.empty() ? "" : enclosing.back().second) + "[]");
      at = indent + 2;
    }
    while (!enclosing.empty() && enclosing.back().first >= at) enclosing.pop_back();
    const std::string key = trim(line.substr(at, colon - at));
    keys.push_back(enclosing.empty() ? key : enclosing.back().second + "." + key);
    enclosing.emplace_back(at, keys.back());
  }
  return keys;
}

// "key: value" for line `i` of a dump whose keys are `keys`, the value without its help comment.
std::string dump_line_key(const std::vector<std::string>& lines, const std::vector<std::string>& keys, size_t i) {
  if (i >= lines.size()) return "(end of file)";
  if (keys[i].empty()) return trim(lines[i]);
  const std::string value = lines[i].substr(lines[i].find(':') + 1);
  return keys[i] + ": " + trim(value.substr(0, value.find("  #")));
}

}  // namespace

ConfigDifference config_difference(const std::string& stored, const std::string& path, const std::string& ours) {
  if (stored == ours) return {};
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
  const std::string theirs = resolved(stored, &unreadable), today = resolved(ours, nullptr);
  if (theirs == today) return {};
  // Lines are numbered in the file as written; the key and values come from the resolved texts.
  const std::vector<std::string> a = split(theirs, '\n'), b = split(today, '\n'), written = split(stored, '\n');
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  const std::vector<std::string> a_keys = dump_keys(a), written_keys = dump_keys(written);
  ConfigDifference d;
  d.stored = dump_line_key(a, a_keys, i) + (unreadable.empty() ? "" : " (not a config today: " + unreadable + ")");
  d.ours = dump_line_key(b, dump_keys(b), i);
  const bool keyed = i < a_keys.size() && !a_keys[i].empty();
  const auto at = keyed ? std::find(written_keys.begin(), written_keys.end(), a_keys[i]) : written_keys.end();
  d.line = at != written_keys.end() ? int64_t(at - written_keys.begin()) + 1 : int64_t(std::min(i, written.size())) + 1;
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
    const ConfigDifference d = config_difference(read_text_file(run.config_path()), run.config_path(), resolved);
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
