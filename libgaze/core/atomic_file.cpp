#include "libgaze/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "libgaze/core/error.h"

namespace gaze {
namespace {

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) throw Error(path + ": cannot open for fsync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw Error(path + ": fsync failed: " + std::strerror(errno));
}

}  // namespace

void write_atomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::is_directory(dir)) throw Error(path + ": folder " + dir.string() + " does not exist");
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  try {
    write(tmp);
    fsync_path(tmp, false);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      throw Error(path + ": cannot rename temporary file into place: " + std::strerror(errno));
    }
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
  fsync_path(dir.string(), true);
}

void write_text_atomically(const std::string& path, const std::string& text) {
  write_atomically(path, [&](const std::string& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw Error(tmp + ": cannot create: " + std::strerror(errno));
    const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0;
    const int error = errno;
    if (std::fclose(f) != 0 || !written) {
      throw Error(tmp + ": write failed: " + std::strerror(written ? errno : error));
    }
  });
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TemporaryFolder::TemporaryFolder(const std::string& tag)
    : path_((std::filesystem::temp_directory_path() / (tag + "_" + std::to_string(::getpid()))).string()) {
  std::error_code ec;
  std::filesystem::create_directories(path_, ec);
  if (ec) throw Error(path_ + ": cannot create folder: " + ec.message());
}

TemporaryFolder::~TemporaryFolder() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

StagedFolder::StagedFolder(const std::string& final_path)
    : final_(final_path), tmp_(final_path + ".tmp-" + std::to_string(::getpid())) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::remove_all(tmp_, ec);
  fs::create_directories(tmp_, ec);
  if (ec) throw Error(tmp_ + ": cannot create folder: " + ec.message());
}

StagedFolder::~StagedFolder() {
  std::error_code ignored;
  if (!committed_) std::filesystem::remove_all(tmp_, ignored);
}

void StagedFolder::commit(bool keep_others) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(final_)) {
    if (std::rename(tmp_.c_str(), final_.c_str()) != 0) {
      throw Error(final_ + ": cannot move the new folder into place: " + std::strerror(errno));
    }
    committed_ = true;
    return;
  }
  // Carry the old folder's other entries across (undone if any move fails).
  std::vector<std::string> moved;
  if (keep_others) {
    try {
      for (const auto& entry : fs::directory_iterator(final_)) {
        const fs::path target = fs::path(tmp_) / entry.path().filename();
        if (fs::exists(target)) continue;
        fs::rename(entry.path(), target);
        moved.push_back(entry.path().filename().string());
      }
    } catch (const fs::filesystem_error& e) {
      for (const auto& name : moved) fs::rename(fs::path(tmp_) / name, fs::path(final_) / name, ec);
      throw Error(final_ + ": cannot carry entries into the new folder: " + e.code().message());
    }
  }
  // One atomic exchange where supported: tmp_ then holds the old folder.
  if (::renameat2(AT_FDCWD, tmp_.c_str(), AT_FDCWD, final_.c_str(), RENAME_EXCHANGE) != 0) {
    const std::string old = final_ + ".old-" + std::to_string(::getpid());
    if (std::rename(final_.c_str(), old.c_str()) != 0) {
      const std::string reason = std::strerror(errno);
      for (const auto& name : moved) fs::rename(fs::path(tmp_) / name, fs::path(final_) / name, ec);
      throw Error(final_ + ": cannot swap the new folder into place: " + reason);
    }
    if (std::rename(tmp_.c_str(), final_.c_str()) != 0) {
      const std::string reason = std::strerror(errno);
      std::rename(old.c_str(), final_.c_str());  // put the old folder back
      for (const auto& name : moved) fs::rename(fs::path(tmp_) / name, fs::path(final_) / name, ec);
      throw Error(final_ + ": cannot swap the new folder into place: " + reason);
    }
    fs::remove_all(old, ec);
  } else {
    fs::remove_all(tmp_, ec);
  }
  committed_ = true;
}

}  // namespace gaze
