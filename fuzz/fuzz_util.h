// What every libFuzzer target shares (fuzz/ only; built by the LIBGAZE_SANITIZE build).
//
// Contract of a target: feed the bytes to one parser the way a user's file reaches it, and
// accept exactly one outcome besides success: gaze::Error (the one-line message the CLI
// prints). Anything else — a signal, an ASan/UBSan report, another exception type (the CLI's
// "internal error"), a leak, more than -malloc_limit_mb / -rss_limit_mb (scripts/fuzz sets
// 1024) or a hang (-timeout) — is a finding.
#pragma once

#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "libgaze/core/error.h"

namespace gaze::fuzz {

// A fresh folder /tmp/<prefix>-XXXXXX for a target's tree of files (it lives as long as the
// process: libFuzzer runs end by exiting).
inline std::string make_temp_folder(const std::string& prefix) {
  std::string pattern = "/tmp/" + prefix + "-XXXXXX";
  if (!mkdtemp(pattern.data())) std::abort();
  return pattern;
}

// An input that carries two files: the bytes before its first NUL, and those after it (`second`
// null when there is no NUL, so a target can tell "absent" from "empty").
struct TwoParts {
  const uint8_t* first;
  size_t first_size;
  const uint8_t* second;
  size_t second_size;
};
inline TwoParts split_at_nul(const uint8_t* data, size_t size) {
  const auto* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  if (!nul) return {data, size, nullptr, 0};
  const size_t first = size_t(nul - data);
  return {data, first, nul + 1, size - first - 1};
}

// Writes `size` bytes to `path`, replacing it: how an input becomes a file a loader opens.
inline void write_file(const std::string& path, const void* data, size_t size) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(static_cast<const char*>(data), std::streamsize(size));
}

// The input as a file, without touching the disk: an anonymous memory file opened by path
// (/proc/self/fd/N), so readers that take paths run their real open/read/pread code.
class MemoryFile {
 public:
  MemoryFile(const uint8_t* data, size_t size) : fd_(memfd_create("fuzz-input", MFD_CLOEXEC)) {
    if (fd_ < 0) std::abort();
    for (size_t at = 0; at < size;) {
      const ssize_t n = ::write(fd_, data + at, size - at);
      if (n <= 0) std::abort();
      at += size_t(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemoryFile() { ::close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

// Runs `parse`; gaze::Error is the expected refusal, everything else escapes to libFuzzer.
template <class F>
void expect_success_or_error(F&& parse) {
  try {
    parse();
  } catch (const gaze::Error&) {
  }
}

// Once per process: loaders' warnings would drown libFuzzer's output.
inline int quiet_logs() {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

}  // namespace gaze::fuzz
