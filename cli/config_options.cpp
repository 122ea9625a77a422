#include "cli/commands.h"

#include <cctype>
#include <filesystem>

namespace gaze::cli {

void ConfigOptions::add_to(CLI::App& command) {
  command.add_option("-c,--config", path, "YAML config file (defaults when omitted)")->check(CLI::ExistingFile);
  command.add_option("overrides", overrides, "key.sub=value overrides, applied after the file");
  command.add_flag_callback(
      "--skip-bad", [this] { overrides.push_back("data.skip_bad=true"); },
      "skip, count and report bad items instead of stopping (data.skip_bad=true)");
}

namespace {

// "data.split=test": a dotted key, '=', a value; and no file of that name.
bool looks_like_override(const std::string& arg) {
  const size_t equals = arg.find('=');
  std::error_code ec;  // a name too long for the filesystem is no file either
  if (equals == std::string::npos || equals == 0 || std::filesystem::exists(arg, ec)) return false;
  for (size_t i = 0; i < equals; ++i) {
    const char c = arg[i];
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_' ||
          c == '.')) {
      return false;
    }
  }
  return true;
}

}  // namespace

Config ConfigOptions::load(const std::string& source) const {
  // The dataset positional is optional and comes first, so with the source in the config file
  // (`gaze eval --checkpoint m.h5 -c run/config.yaml data.split=validation`) the first override
  // lands in it; it is an override, not a dataset path.
  std::vector<std::string> all = overrides;
  std::string dataset = source;
  if (looks_like_override(dataset)) {
    all.insert(all.begin(), dataset);
    dataset.clear();
  }
  Config config = path.empty() ? default_config(all) : load_config(path, all);
  if (!dataset.empty()) config.data.source = dataset;
  return config;
}

}  // namespace gaze::cli
