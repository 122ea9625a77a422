// gaze import-checkpoint — official ConvNeXt V2 `.pt` -> libgaze HDF5 checkpoint.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "cli/commands.h"
#include "libgaze/core/error.h"
#include "libgaze/io/checkpoint.h"
#include "libgaze/io/official_import.h"
#include "libgaze/io/torch_archive.h"
#include "libgaze/models/param_groups.h"

namespace gaze::cli {

void register_import_checkpoint(CLI::App& app) {
  auto* command =
      app.add_subcommand("import-checkpoint", "import an official ConvNeXt V2 .pt checkpoint as a libgaze checkpoint");
  auto options = std::make_shared<ConfigOptions>();
  auto input = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  command->add_option("input", *input, "official checkpoint (.pt, torch.save zip)")->required();
  command->add_option("-o,--output", *output, "libgaze checkpoint to write (.h5)")->required();
  options->add_to(*command);
  command->callback([options, input, output] {
    // Without a config file the model is the teacher: the official Atto weights fit it.
    std::vector<std::string> overrides = {"model.arch=teacher"};
    overrides.insert(overrides.end(), options->overrides.begin(), options->overrides.end());
    const Config config = options->path.empty() ? default_config(overrides) : options->load();
    const TensorList official = read_torch_state_dict(*input);
    GazeNet net = make_gaze_net(config.model, config.run.seed);
    const ImportReport report = import_official_weights(net, official);
    if (report.imported == 0) {
      throw Error(*input + ": no tensor fits the " + config.model.arch + " model (" +
                  std::to_string(report.skipped.size()) + " skipped, e.g. " +
                  (report.skipped.empty() ? "none" : report.skipped.front()) + ")");
    }
    Checkpoint checkpoint;
    checkpoint.stage = "import";
    checkpoint.config_yaml = dump_config(config);
    checkpoint.model = module_state(*net);
    save_checkpoint(*output, checkpoint);
    std::printf("imported %lld tensors from %s into %s\n", (long long)report.imported, input->c_str(), output->c_str());
    std::printf("skipped %zu:\n", report.skipped.size());
    for (const auto& s : report.skipped) std::printf("  %s\n", s.c_str());
    // Adapters are ours (the official model has none): count them, list anything else.
    size_t adapter_tensors = 0;
    std::vector<std::string> other;
    for (const auto& name : report.fresh) {
      if (in_param_group(name, ParamGroup::kAdapters)) {
        ++adapter_tensors;
      } else {
        other.push_back(name);
      }
    }
    std::printf("kept fresh initialisation for %zu tensors: %zu adapter tensors (identity at init)%s\n",
                report.fresh.size(), adapter_tensors, other.empty() ? "" : " and:");
    for (const auto& s : other) std::printf("  %s\n", s.c_str());
  });
}

}  // namespace gaze::cli
