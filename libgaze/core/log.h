// Logging: spdlog's default logger, writing to stderr, configured once by the CLI.
//
// Use spdlog::info/debug/warn directly after gaze::log_init(). Levels: trace, debug, info,
// warn, error, off. stdout stays free for results (tables, JSON), logs go to stderr.
#pragma once

#include <string>

namespace gaze {

// Sets the global level; throws gaze::Error naming the valid levels on an unknown one.
void log_init(const std::string& level);

// Also append every log line to `path` (the run directory's log file).
void log_add_file(const std::string& path);

}  // namespace gaze
