#include "libgaze/core/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"

namespace gaze {

void log_init(const std::string& level) {
  const std::vector<std::string> names = {"trace", "debug", "info", "warn", "error", "off"};
  const auto parsed = spdlog::level::from_str(level);
  // from_str maps anything unknown to "off": only accept the spelled-out names.
  if (std::find(names.begin(), names.end(), level) == names.end()) {
    throw Error("unknown log level '" + level + "'" + suggest_suffix(level, names));
  }
  auto logger = spdlog::stderr_color_mt("gaze");
  logger->set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(parsed);
}

void log_add_file(const std::string& path) {
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path);
  sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  spdlog::default_logger()->sinks().push_back(sink);
}

}  // namespace gaze
