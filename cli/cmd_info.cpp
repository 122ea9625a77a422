// gaze info — parameter counts (from the built model, cross-checked against the analytic
// count), MACs and per-stage output shapes for a model config and input size; with
// --checkpoint, for the model a checkpoint holds, headed by its stage, step and the CRC-32C of
// its weights (two checkpoints hold the same weights exactly when these agree; the files
// themselves also hold each run's config and paths).
#include <cstdio>
#include <optional>

#include "cli/commands.h"
#include "libgaze/core/error.h"
#include "libgaze/core/json.h"
#include "libgaze/core/strings.h"
#include "libgaze/io/checkpoint_file.h"
#include "libgaze/models/gaze_net.h"
#include "libgaze/models/model_stats.h"
#include "libgaze/models/param_groups.h"

namespace gaze::cli {
namespace {

std::pair<int64_t, int64_t> parse_size(const std::string& text) {
  const auto parts = split(text, 'x');
  try {
    if (parts.size() == 2) return {std::stoll(parts[0]), std::stoll(parts[1])};
  } catch (const std::exception&) {
  }
  throw Error("--input: expected HxW (e.g. 224x224), got '" + text + "'");
}

// What --checkpoint adds: where the weights came from and their fingerprint.
struct CheckpointSummary {
  std::string path, stage;
  int64_t step = 0, weights = 0;
  uint32_t crc = 0;
};

void print_info(const Config& config, const std::string& input, bool json,
                const std::optional<CheckpointSummary>& checkpoint) {
  const auto [height, width] = parse_size(input);
  const ModelStats stats = compute_model_stats(config.model, height, width);
  GazeNet net = make_gaze_net(config.model, config.run.seed);
  const int64_t total = count_parameters(*net);
  const int64_t tunable = count_tunable_parameters(*net);
  const int64_t last = count_parameters(*net, ParamGroup::kLastStageAdapters);
  if (total != stats.params || tunable != stats.tunable || last != stats.last_stage_adapters) {
    throw Error("internal: analytic parameter count disagrees with the built model");
  }
  const auto& m = config.model;
  if (json) {
    Json out = {{"arch", m.arch},
                {"input", {height, width}},
                {"params", total},
                {"tunable", tunable},
                {"adapters", count_parameters(*net, ParamGroup::kAdapters)},
                {"head", count_parameters(*net, ParamGroup::kHead)},
                {"last_stage_adapters", last},
                {"macs", stats.macs},
                {"layers", Json::array()}};
    if (checkpoint) {
      out["checkpoint"] = {{"path", checkpoint->path},
                           {"stage", checkpoint->stage},
                           {"step", checkpoint->step},
                           {"weights", checkpoint->weights},
                           {"weights_crc32c", checkpoint->crc}};
    }
    for (const auto& l : stats.layers) {
      out["layers"].push_back(
          {{"name", l.name}, {"shape", {l.channels, l.height, l.width}}, {"params", l.params}, {"macs", l.macs}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  if (checkpoint) {
    std::printf("checkpoint %s  stage %s  step %lld  %lld weights  crc32c %08x\n", checkpoint->path.c_str(),
                checkpoint->stage.c_str(), (long long)checkpoint->step, (long long)checkpoint->weights,
                checkpoint->crc);
  }
  std::vector<std::string> depths, dims;
  for (auto d : m.depths) depths.push_back(std::to_string(d));
  for (auto d : m.dims) dims.push_back(std::to_string(d));
  std::printf("model   %s  depths [%s]  dims [%s]  input 1x%lldx%lldx%lld\n", m.arch.c_str(), join(depths, ",").c_str(),
              join(dims, ",").c_str(), (long long)m.in_chans, (long long)height, (long long)width);
  std::printf("%-12s %-14s %12s %10s %14s\n", "layer", "output CxHxW", "params", "tunable", "MACs");
  for (const auto& l : stats.layers) {
    const std::string shape =
        std::to_string(l.channels) + "x" + std::to_string(l.height) + "x" + std::to_string(l.width);
    std::printf("%-12s %-14s %12s %10s %14s\n", l.name.c_str(), shape.c_str(), group_thousands(l.params).c_str(),
                group_thousands(l.tunable).c_str(), group_thousands(l.macs).c_str());
  }
  std::printf("total        %-14s %12s %10s %14s\n", "", group_thousands(total).c_str(),
              group_thousands(tunable).c_str(), group_thousands(stats.macs).c_str());
  std::printf("tunable = adapters %s + head %s; last-stage adapters %s; %.1f MMACs per frame\n",
              group_thousands(count_parameters(*net, ParamGroup::kAdapters)).c_str(),
              group_thousands(count_parameters(*net, ParamGroup::kHead)).c_str(), group_thousands(last).c_str(),
              stats.macs / 1e6);
}

}  // namespace

void register_info(CLI::App& app) {
  auto* command = app.add_subcommand("info", "parameter counts, MACs and per-stage shapes");
  auto options = std::make_shared<ConfigOptions>();
  auto input = std::make_shared<std::string>("224x224");
  auto json = std::make_shared<bool>(false);
  auto checkpoint = std::make_shared<std::string>();
  options->add_to(*command);
  CLI::Option* input_option =
      command->add_option("--input", *input, "input size HxW (with --checkpoint: its data.input_size)")
          ->capture_default_str();
  command->add_flag("--json", *json, "print one JSON object instead of a table");
  command->add_option("--checkpoint", *checkpoint,
                      "describe the model this checkpoint holds (its own config), with its weights' CRC-32C");
  command->callback([options, input, input_option, json, checkpoint] {
    if (checkpoint->empty()) return print_info(options->load(), *input, *json, std::nullopt);
    if (!options->path.empty() || !options->overrides.empty()) {
      throw CLI::ValidationError("--checkpoint",
                                 "describes the checkpoint's own model: drop -c and key=value overrides");
    }
    const CheckpointFile file = read_checkpoint_file(*checkpoint);
    const CheckpointSummary summary{*checkpoint, file.stage, file.step, int64_t(file.model.size()),
                                    arrays_crc32c(file.model)};
    const Config config = parse_config(file.config_yaml, *checkpoint + ": /config");
    const std::string size =
        std::to_string(config.data.input_size[0]) + "x" + std::to_string(config.data.input_size[1]);
    print_info(config, input_option->count() > 0 ? *input : size, *json, summary);
  });
}

}  // namespace gaze::cli
