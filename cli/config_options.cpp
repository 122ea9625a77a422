#include "cli/commands.h"

namespace gaze::cli {

void ConfigOptions::add_to(CLI::App& command) {
  command.add_option("-c,--config", path, "YAML config file (defaults when omitted)")->check(CLI::ExistingFile);
  command.add_option("overrides", overrides, "key.sub=value overrides, applied after the file");
  command.add_flag_callback(
      "--skip-bad", [this] { overrides.push_back("data.skip_bad=true"); },
      "skip, count and report bad items instead of stopping (data.skip_bad=true)");
}

Config ConfigOptions::load(const std::string& source) const {
  Config config = path.empty() ? default_config(overrides) : load_config(path, overrides);
  if (!source.empty()) config.data.source = source;
  return config;
}

}  // namespace gaze::cli
