// One directory per run: <run.out_dir>/<run.name>/ holding
//   config.yaml    the resolved config (every key, with help comments) — written at start
//   log.txt        the run's log lines (appended, so a resumed run keeps its history)
//   checkpoints/, metrics.jsonl, ... written by the stage itself.
// Starting a new run in a directory that already holds a different config is refused unless
// resuming, so results of two experiments never mix.
#pragma once

#include <string>

#include "libgaze/config/config.h"

namespace gaze {

struct RunDir {
  std::string path;
  std::string config_path() const { return path + "/config.yaml"; }
  std::string log_path() const { return path + "/log.txt"; }
  std::string checkpoint_dir() const { return path + "/checkpoints"; }
};

// Creates the directory, writes config.yaml atomically. With `resume`, an existing config.yaml
// must equal the resolved one (else gaze::Error says which file differs); without it, an
// existing different config.yaml is an error.
RunDir open_run_dir(const Config& config, bool resume);

}  // namespace gaze
