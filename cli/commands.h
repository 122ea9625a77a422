// The `gaze` command-line tool: each subcommand lives in its own cli/cmd_*.cpp and registers
// itself here. Contract for every command: results on stdout, logs on stderr, gaze::Error
// becomes one "gaze: error: ..." line and exit code 1; usage errors exit 2.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "libgaze/config/config.h"

namespace gaze::cli {

// Options every config-driven command shares: -c/--config FILE and trailing key=value overrides.
struct ConfigOptions {
  std::string path;
  std::vector<std::string> overrides;
  void add_to(CLI::App& command);
  // The file (or defaults) + overrides, validated; a non-empty `source` (a command's
  // positional dataset argument) replaces data.source, unless it is a key=value naming no
  // file: then it is the first override.
  Config load(const std::string& source = "") const;
};

// The process's own command line, kept by main() so a command can start copies of itself
// (gaze train --nproc).
void set_command_line(int argc, char** argv);
const std::vector<std::string>& command_line();

void register_info(CLI::App& app);
void register_import_checkpoint(CLI::App& app);
void register_config(CLI::App& app);
void register_synth(CLI::App& app);
void register_data(CLI::App& app);
void register_pack(CLI::App& app);
void register_train(CLI::App& app);
void register_eval(CLI::App& app);
void register_probe(CLI::App& app);
void register_personalize(CLI::App& app);
void register_run(CLI::App& app);
void register_export(CLI::App& app);
void register_bench(CLI::App& app);
void register_bench_train(CLI::App& app);
void register_reproduce(CLI::App& app);
// `gaze data bench`, attached under the `data` command.
void register_data_bench(CLI::App& data);

}  // namespace gaze::cli
