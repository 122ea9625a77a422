// gaze train <stage> — run one training stage; gaze eval — angular error of a checkpoint.
#include <cstdio>

#include "cli/commands.h"
#include "datasets/open_dataset.h"
#include "libgaze/core/atomic_file.h"
#include "trainers/evaluate.h"
#include "trainers/personalize.h"
#include "trainers/pipeline.h"
#include "trainers/trainer.h"

namespace gaze::cli {

void register_train(CLI::App& app) {
  auto* command = app.add_subcommand("train", "run a training stage: teacher-mae, distill or adapters");
  auto options = std::make_shared<ConfigOptions>();
  auto stage = std::make_shared<std::string>();
  auto resume = std::make_shared<bool>(false);
  auto stop_at = std::make_shared<int64_t>(-1);
  command->add_option("stage", *stage, "teacher-mae | distill | adapters")
      ->required()
      ->check(CLI::IsMember({"teacher-mae", "distill", "adapters"}));
  command->add_flag("--resume", *resume, "continue from <run>/checkpoints/last.h5 if it exists");
  command->add_option("--stop-at", *stop_at, "stop after this step with a checkpoint (a slice; --resume continues)");
  options->add_to(*command);
  command->callback([options, stage, resume, stop_at] {
    const Config config = options->load();
    auto s = make_stage(*stage, config);
    const TrainResult r = run_training(config, *s, *resume, *stop_at);
    std::printf("%s: steps %lld..%lld in %.1f s; %s\n", stage->c_str(), (long long)r.first_step, (long long)r.steps,
                r.seconds,
                r.model_path.empty() ? ("stopped; resume from " + r.run_dir + "/checkpoints/last.h5").c_str()
                                     : ("model " + r.model_path).c_str());
    for (const auto& [name, value] : r.last_metrics) std::printf("  %s %.6g\n", name.c_str(), value);
  });
}

void register_eval(CLI::App& app) {
  auto* command = app.add_subcommand("eval", "angular error (mean, median, p95, per participant) of a checkpoint");
  auto options = std::make_shared<ConfigOptions>();
  auto checkpoint = std::make_shared<std::string>();
  auto source = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto output = std::make_shared<std::string>();
  command->add_option("--checkpoint", *checkpoint, "model checkpoint (.h5)")->required();
  command->add_option("source", *source, "dataset to evaluate on (overrides data.source)");
  command->add_flag("--json", *json, "print one JSON object");
  command->add_option("-o,--output", *output, "also write the JSON here");
  options->add_to(*command);
  command->callback([options, checkpoint, source, json, output] {
    Config config = options->load(*source);
    GazeNet model = load_model(*checkpoint);
    const auto data = open_dataset(config.data);
    const EvalResult r = evaluate(model, *data, config);
    if (!output->empty()) write_text_atomically(*output, eval_json(r).dump(2) + "\n");
    std::printf("%s\n", *json ? eval_json(r).dump(2).c_str() : eval_markdown(r).c_str());
  });
}

}  // namespace gaze::cli

namespace gaze::cli {

void register_personalize(CLI::App& app) {
  auto* command = app.add_subcommand("personalize", "per-user last-stage adapters from k calibration images");
  auto options = std::make_shared<ConfigOptions>();
  auto checkpoint = std::make_shared<std::string>();
  auto source = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  command->add_option("--checkpoint", *checkpoint, "generalised base model (.h5)")->required();
  command->add_option("source", *source, "the users' images (overrides data.source; e.g. the test split)");
  command->add_option("-o,--output", *output, "folder for user_<id>.h5 files")->required();
  options->add_to(*command);
  command->callback([options, checkpoint, source, output] {
    Config config = options->load(*source);
    GazeNet base = load_model(*checkpoint);
    const auto users = open_dataset(config.data);
    const auto replay = open_replay_dataset(config);
    const PersonalizeResult r = personalize(base, *users, replay.get(), config, *output);
    std::printf("| participant | eval frames | before (deg) | after k=%lld (deg) | file |\n|---|---|---|---|---|\n",
                (long long)config.personalize.k);
    for (const auto& u : r.users) {
      std::printf("| %lld | %lld | %.3f | %.3f | %s |\n", (long long)u.participant, (long long)u.eval_frames,
                  u.before_deg, u.after_deg, u.adapter_file.c_str());
    }
    std::printf("| **mean** | | %.3f | %.3f | |\n\nerror vs k:", r.before_deg, r.after_deg);
    for (const auto& [k, e] : r.k_curve) std::printf(" k=%lld: %.3f", (long long)k, e);
    std::printf("\n%.2f s per user\n", r.seconds_per_user);
  });
}

}  // namespace gaze::cli

namespace gaze::cli {

void register_run(CLI::App& app) {
  auto* command = app.add_subcommand("run", "the end-to-end pipeline: data -> teacher -> student -> users -> report");
  auto pipeline = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  command->add_option("pipeline", *pipeline, "pipeline YAML (e.g. configs/pipeline/demo.yaml)")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("overrides", *overrides, "key.sub=value overrides");
  command->callback([pipeline, overrides] {
    const Config config = load_config(*pipeline, *overrides);
    const PipelineReport r = run_pipeline(config);
    std::printf("%s\nreport: %s (also %s, %s, %s)\n", r.markdown.c_str(), r.markdown_path.c_str(), r.csv_path.c_str(),
                r.json_path.c_str(), r.svg_path.c_str());
  });
}

}  // namespace gaze::cli
