// One directory per run: <run.out_dir>/<run.name>/ holding
//   config.yaml    the resolved config (every key, with help comments) — written at start
//   log.txt        the run's log lines (appended, so a resumed run keeps its history)
//   checkpoints/, metrics.jsonl, ... written by the stage itself.
// Starting a new run in a directory that already holds a different config is refused unless
// resuming, so results of two experiments never mix. The directory is locked (flock on
// <dir>/.lock) for as long as the RunDir lives: a second process on the same folder is refused
// with the holder's pid, host and start time; the kernel drops the lock when the holder dies.
// Temporary files a killed run left behind (*.tmp-<pid>) are removed once the lock is held.
#pragma once

#include <memory>
#include <string>

#include "libgaze/config/config.h"

namespace gaze {

struct RunDir {
  std::string path;
  std::shared_ptr<void> lock;  // released when the last copy goes away
  std::string config_path() const { return path + "/config.yaml"; }
  std::string log_path() const { return path + "/log.txt"; }
  std::string checkpoint_dir() const { return path + "/checkpoints"; }
};

// <run.out_dir>/<run.name>
std::string run_dir_path(const Config& config);

// Creates the directory, writes config.yaml atomically. With `resume`, an existing config.yaml
// must hold the same config (else gaze::Error names the file, line and key that differ);
// without it, an existing different config.yaml is an error.
RunDir open_run_dir(const Config& config, bool resume);

// Where a resolved config written earlier (`stored`, the text of `path`) and today's one
// (`ours`, dump_config of the config to compare with) first differ: the line of `stored` (0 = the
// same config) and that line's dotted key and value in each ("train.lr: 0.003"). Both texts are
// resolved again first, so a file written before a key existed (which then takes its default) or
// with older help comments still matches.
struct ConfigDifference {
  int64_t line = 0;
  std::string stored, ours;
};
ConfigDifference config_difference(const std::string& stored, const std::string& path, const std::string& ours);

// Locks `dir` (created if needed) for this process; throws gaze::Error naming the holder.
std::shared_ptr<void> lock_directory(const std::string& dir);

}  // namespace gaze
