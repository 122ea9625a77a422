#include "trainers/pipeline.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <map>

#include "datasets/open_dataset.h"
#include "datasets/pack.h"
#include "datasets/splits.h"
#include "datasets/synth/synth_writer.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"
#include "libgaze/io/model_io.h"
#include "libgaze/io/official_import.h"
#include "libgaze/io/torch_archive.h"
#include "libgaze/models/param_groups.h"
#include "trainers/evaluate.h"
#include "trainers/personalize.h"
#include "trainers/trainer.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;

// Skips work already done: `stamp` holds what produced it.
bool up_to_date(const fs::path& stamp, const std::string& what) {
  return fs::exists(stamp) && read_text_file(stamp.string()) == what;
}

std::string pack_dataset(const Config& base, const std::string& kind, const std::string& root, const fs::path& packs) {
  const fs::path out = packs / (kind + ".h5");
  const fs::path stamp = packs / (kind + ".done");
  const std::string what = kind + ":" + root + "\n" + dump_config(base);
  if (up_to_date(stamp, what) && fs::exists(out)) return out.string();
  Config c = base;
  c.data.source = kind + ":" + root;
  c.data.split = "all";
  const auto data = open_dataset(c.data);
  PackOptions options;
  options.threads = c.run.threads;
  options.skip_bad = c.data.skip_bad;
  options.split_of = protocol_split_of(*data, c.data, uint64_t(c.run.seed));
  const PackReport r = write_pack(*data, out.string(), options);
  spdlog::info("packed {} items of {} into {}", r.written, data->describe(), out.string());
  write_text_atomically(stamp.string(), what);
  return out.string();
}

// Renders the synthetic datasets the pipeline was not given a root for; returns every root.
std::map<std::string, std::string> dataset_roots(const Config& config, const fs::path& root) {
  const PipelineConfig& p = config.pipeline;
  std::map<std::string, std::string> roots = {{"openeds", p.openeds}, {"aea", p.aea}};
  Config synth_config = config;
  synth_config.synth.out_dir = (root / "data").string();
  synth_config.synth.layouts.clear();
  for (const auto& d : p.datasets) {
    if (roots[d].empty()) synth_config.synth.layouts.push_back(d);
  }
  if (synth_config.synth.layouts.empty()) return roots;
  const fs::path stamp = root / "data" / "synth.done";
  const std::string what = dump_config(synth_config);
  if (!up_to_date(stamp, what)) {
    spdlog::info("pipeline: rendering synthetic {}", join(synth_config.synth.layouts, " and "));
    const SynthReport r = write_synthetic_datasets(synth_config.synth, uint64_t(config.run.seed), config.run.threads);
    spdlog::info("pipeline: rendered {} frames in {:.1f} s", r.openeds_images + r.aea_frames, r.seconds);
    write_text_atomically(stamp.string(), what);
  }
  for (const auto& d : synth_config.synth.layouts) roots[d] = (root / "data" / d).string();
  return roots;
}

// A stage's config: its file, the pipeline's shared settings, its overrides, then the wiring
// (what it reads, where it writes). Errors name the stage.
Config stage_config(const Config& pipeline, const std::string& stage_key, const StageRef& stage,
                    const std::string& run_name, const std::string& source, const fs::path& root) {
  Config c;
  try {
    c = stage.config.empty() ? default_config() : load_config(stage.config);
    copy_explicit_keys(pipeline, c, {"pipeline."});
    for (const auto& assignment : stage.set) apply_override(c, assignment);
    c.run.out_dir = root.string();
    c.run.name = run_name;
    c.data.source = source;
    c.data.split = "train";
    validate_config(c);
  } catch (const Error& e) {
    throw Error("pipeline.stages." + stage_key + ": " + e.what());
  }
  return c;
}

std::string train(const std::string& stage, const Config& c) {
  auto s = make_stage(stage, c);
  return run_training(c, *s, /*resume=*/true).model_path;
}

// The teacher's starting point when pipeline.import_teacher names an official checkpoint.
std::string import_teacher(const Config& config, const fs::path& root) {
  const std::string imported = (root / "teacher_imported.h5").string();
  if (!fs::exists(imported)) {
    const Config teacher = default_config({"model.arch=teacher"});
    GazeNet net = make_gaze_net(teacher.model, uint64_t(config.run.seed));
    import_official_weights(net, read_torch_state_dict(config.pipeline.import_teacher));
    save_model(imported, net, teacher, "import", 0);
  }
  return imported;
}

// Generalised evaluation and personalisation of one trained model on one dataset.
DatasetScores score(const std::string& model_path, const Config& c, const std::string& pack,
                    const fs::path& eval_json_path, const fs::path& users_dir) {
  DataConfig split = c.data;
  split.source = pack;
  split.split = "train";
  const auto train_set = open_dataset(split);
  split.split = "validation";
  const auto val_set = open_dataset(split);
  split.split = "test";
  const auto test_set = open_dataset(split);
  GazeNet net = load_model(model_path);
  DatasetScores s;
  const EvalResult val = evaluate(net, *val_set, c);
  write_text_atomically(eval_json_path.string(), eval_json(val).dump(2) + "\n");
  s.generalised = val.summary.all_frames.mean;
  s.blink_auc = val.blink_auc;
  s.baseline = mean_gaze_baseline_deg(*train_set, *val_set);
  const PersonalizeResult pr = personalize(net, *test_set, train_set.get(), c, users_dir.string());
  s.before = pr.before_deg;
  s.personalised = pr.after_deg;
  s.k_curve = pr.k_curve;
  s.seconds_per_user = pr.seconds_per_user;
  return s;
}

}  // namespace

PipelineReport run_pipeline(const Config& config) {
  const auto start = std::chrono::steady_clock::now();
  const PipelineConfig& p = config.pipeline;
  const PipelineStages& stages = p.stages;
  const fs::path root = fs::path(config.run.out_dir) / config.run.name;
  fs::create_directories(root / "packs");
  write_text_atomically((root / "pipeline.yaml").string(), dump_config(config));

  // 1. Data: render what is not given, pack everything.
  const std::map<std::string, std::string> roots = dataset_roots(config, root);
  std::map<std::string, std::string> packs;
  std::vector<std::string> all_packs;
  for (const auto& d : p.datasets) {
    packs[d] = pack_dataset(config, d, roots.at(d), root / "packs");
    all_packs.push_back(packs[d]);
  }
  const std::string all_train = join(all_packs, ",");

  // 2. Teacher FCMAE (from an imported official checkpoint if given), then the student's
  //    MAE + KD distillation from it; both on every dataset's train split.
  Config mae = stage_config(config, "teacher_mae", stages.teacher_mae, "teacher_mae", all_train, root);
  if (!p.import_teacher.empty()) mae.train.init = import_teacher(config, root);
  const std::string teacher_mae = train("teacher-mae", mae);
  Config distill = stage_config(config, "distill", stages.distill, "distill", all_train, root);
  distill.train.teacher = teacher_mae;
  const std::string student_mae = train("distill", distill);

  // 3. Per dataset and model: adapters, generalised evaluation, personalisation.
  PipelineResults results;
  results.datasets = p.datasets;
  results.teacher.name = "teacher";
  results.student.name = "student";
  for (const auto& d : p.datasets) {
    for (ModelScores* m : {&results.teacher, &results.student}) {
      const bool teacher = m == &results.teacher;
      const std::string run = m->name + "_adapters_" + d;
      Config c = stage_config(config, teacher ? "teacher_adapters" : "student_adapters",
                              teacher ? stages.teacher_adapters : stages.student_adapters, run, packs[d], root);
      c.train.init = teacher ? teacher_mae : student_mae;
      const std::string model = train("adapters", c);
      const Config pc = stage_config(config, "personalize", stages.personalize, run, packs[d], root);
      m->datasets[d] =
          score(model, pc, packs[d], root / run / "eval_validation.json", root / "users" / (m->name + "_" + d));
      GazeNet net = load_model(model);
      m->params = count_parameters(*net);
      if (results.k == 0) {
        results.k = pc.personalize.k;
        results.k_curve = pc.personalize.k_curve;
        results.input_h = pc.data.input_size[0];
        results.input_w = pc.data.input_size[1];
      }
    }
  }

  // 4. Report.
  results.data_description = p.openeds.empty() && p.aea.empty() ? "synthetic (gaze synth)" : "as configured";
  results.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return write_pipeline_report(results, root.string());
}

}  // namespace gaze
