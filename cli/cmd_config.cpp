// gaze config — print the resolved config (file + overrides, presets filled) or list keys.
#include <cstdio>

#include "cli/commands.h"

namespace gaze::cli {

void register_config(CLI::App& app) {
  auto* command = app.add_subcommand("config", "print the resolved config, or every valid key");
  auto options = std::make_shared<ConfigOptions>();
  auto keys = std::make_shared<bool>(false);
  options->add_to(*command);
  command->add_flag("--keys", *keys, "list every valid key with its default and origin");
  command->callback([options, keys] {
    const Config config = options->load();
    if (!*keys) {
      std::fputs(dump_config(config).c_str(), stdout);
      return;
    }
    for (const auto& key : config_keys()) {
      std::printf("%-28s %s\n", key.c_str(), config_origin(config, key).c_str());
    }
  });
}

}  // namespace gaze::cli
