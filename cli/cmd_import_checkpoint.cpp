// gaze import-checkpoint — official ConvNeXt V2 `.pt` -> libgaze HDF5 checkpoint.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "cli/commands.h"
#include "libgaze/core/error.h"
#include "libgaze/io/checkpoint.h"
#include "libgaze/io/official_import.h"
#include "libgaze/io/torch_archive.h"

namespace gaze::cli {

void register_import_checkpoint(CLI::App& app) {
  auto* command =
      app.add_subcommand("import-checkpoint", "import an official ConvNeXt V2 .pt checkpoint as a libgaze checkpoint");
  auto options = std::make_shared<ConfigOptions>();
  auto input = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto allow_partial = std::make_shared<bool>(false);
  command->add_option("input", *input, "official checkpoint (.pt, torch.save zip)")->required();
  command->add_option("-o,--output", *output, "libgaze checkpoint to write (.h5)")->required();
  command->add_flag("--allow-partial", *allow_partial,
                    "import even when encoder tensors (not only adapters, final norm and head) stay random");
  options->add_to(*command);
  command->callback([options, input, output, allow_partial] {
    // Without a config file the model is the teacher: the official Atto weights fit it.
    std::vector<std::string> overrides = {"model.arch=teacher"};
    overrides.insert(overrides.end(), options->overrides.begin(), options->overrides.end());
    const Config config = options->path.empty() ? default_config(overrides) : options->load();
    const TensorList official = read_torch_state_dict(*input);
    GazeNet net = make_gaze_net(config.model, config.run.seed);
    const ImportReport report = import_official_weights(net, official, *input, *allow_partial);
    Checkpoint checkpoint;
    checkpoint.stage = "import";
    checkpoint.config_yaml = dump_config(config);
    checkpoint.model = module_state(*net);
    save_checkpoint(*output, checkpoint);
    std::printf("wrote %s from %s\n", output->c_str(), input->c_str());
    for (const auto& line : report.lines()) std::printf("%s\n", line.c_str());
  });
}

}  // namespace gaze::cli
