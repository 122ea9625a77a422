// Atomic file replacement: write to a temporary file beside the target, fsync it, rename it
// over the target, fsync the directory. A crash or error at any point leaves either the old
// file or the new one, never a torn mix — checkpoints, packs and exports all go through here.
// StagedFolder does the same for a whole folder (rendered datasets, exported kernels).
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace gaze {

// Calls write(tmp_path); on success makes tmp_path durable and renames it to `path`.
// If write throws, the temporary is removed and the exception propagates; `path` is untouched.
void write_atomically(const std::string& path, const std::function<void(const std::string&)>& write);

void write_text_atomically(const std::string& path, const std::string& text);

// Reads a whole file; throws gaze::Error naming it when it cannot.
std::string read_text_file(const std::string& path);

// Scratch space for one job: <system temp>/<tag>_<pid>, created, and removed with everything in
// it when this goes out of scope (also on error).
class TemporaryFolder {
 public:
  explicit TemporaryFolder(const std::string& tag);
  ~TemporaryFolder();
  TemporaryFolder(const TemporaryFolder&) = delete;
  TemporaryFolder& operator=(const TemporaryFolder&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A folder built beside its final place (<final>.tmp-<pid>) and swapped in by commit(): readers
// see the old folder or the new one, never a mix (renameat2 RENAME_EXCHANGE where the file
// system has it, else two renames). Destroyed without commit(), the staging folder is removed
// and the old folder is untouched. commit(keep_others): entries of the old folder the new one
// does not hold (a user's build/, notes) are moved across first.
class StagedFolder {
 public:
  explicit StagedFolder(const std::string& final_path);
  ~StagedFolder();
  StagedFolder(const StagedFolder&) = delete;
  StagedFolder& operator=(const StagedFolder&) = delete;
  const std::string& path() const { return tmp_; }
  void commit(bool keep_others = false);

 private:
  std::string final_, tmp_;
  bool committed_ = false;
};

}  // namespace gaze
