#include "trainers/pipeline.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string_view>

#include "datasets/open_dataset.h"
#include "datasets/pack.h"
#include "datasets/splits.h"
#include "datasets/synth/eye_renderer.h"
#include "datasets/synth/renderer_version.h"
#include "datasets/synth/synth_writer.h"
#include "libgaze/config/run_dir.h"
#include "libgaze/config/stage_set.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"
#include "libgaze/core/version.h"
#include "libgaze/io/model_io.h"
#include "libgaze/io/official_import.h"
#include "libgaze/io/torch_archive.h"
#include "libgaze/models/param_groups.h"
#include "trainers/baseline_config.h"
#include "trainers/evaluate.h"
#include "trainers/personalize.h"
#include "trainers/score_cache.h"
#include "trainers/trainer.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;

// A pack's stamp: what it was made from (pack_dataset), beside it as <name>.done.
fs::path pack_stamp(const fs::path& pack) { return fs::path(pack).replace_extension(".done"); }

// Skips work already done: `stamp` holds what produced it.
bool up_to_date(const fs::path& stamp, const std::string& what) {
  return fs::exists(stamp) && read_text_file(stamp.string()) == what;
}

// The same for work made from a config (rendered data, packs): `stamp` holds a header line and
// the config that matters, compared as configs (config_difference), so keys a newer libgaze
// added, at their defaults, do not redo the work. The rule this relies on: a new synth.* or
// data.* key's default reproduces what was made before it existed.
// `stamped`: the stamp's text, "" where there is none.
bool made_from(const std::string& stamped, const fs::path& stamp, const std::string& header, const Config& inputs) {
  return starts_with(stamped, header) &&
         config_difference(stamped.substr(header.size()), stamp.string(), dump_config(inputs)).line == 0;
}

std::string read_stamp(const fs::path& stamp) { return fs::exists(stamp) ? read_text_file(stamp.string()) : ""; }

// Packs dataset `kind` at `root` into `out` (all splits), unless that was already done;
// `eye_pairs`: a frame's two eyes side by side per sample (data.eye = pair, RT-Gene's input).
void pack_dataset(const Config& base, const std::string& kind, const std::string& root, const fs::path& out,
                  bool eye_pairs = false) {
  Config c = base;
  c.data.source = kind + ":" + root;
  c.data.split = "all";
  c.data.train_people = -1;  // a pack holds everyone; the stages reading it keep their first N
  if (eye_pairs) c.data.eye = "pair";
  const fs::path stamp = pack_stamp(out);
  // What the pack depends on: the data settings and the seed of its split, not the recipe.
  Config inputs;
  inputs.data = c.data;
  inputs.run.seed = c.run.seed;
  const std::string header = kind + ":" + root + "\n";
  if (made_from(read_stamp(stamp), stamp, header, inputs) && fs::exists(out)) return;
  const auto data = open_dataset(c.data);
  PackOptions options;
  options.threads = c.run.threads;
  options.skip_bad = c.data.skip_bad;
  options.split_of = protocol_split_of(*data, c.data, uint64_t(c.run.seed));
  const PackReport r = write_pack(*data, out.string(), options);
  spdlog::info("packed {} items of {} into {}", r.written, data->describe(), out.string());
  write_text_atomically(stamp.string(), header + dump_config(inputs));
}

bool uses_images(const PipelineConfig& p) {
  return (p.import_teacher.empty() && p.teacher_source == "images") || p.distill_source == "images";
}

// The natural-image folder: given, or where dataset_roots() renders the stand-ins.
std::string images_root(const PipelineConfig& p, const fs::path& root) {
  return p.images.empty() ? (root / "data" / "images").string() : p.images;
}

// The root pipeline.<dataset> gives for a dataset ("" = render a stand-in).
const std::string& given_root(const PipelineConfig& p, const std::string& dataset) {
  if (dataset == "openeds") return p.openeds;
  if (dataset == "aea") return p.aea;
  if (dataset == "mpiigaze") return p.mpiigaze;
  if (dataset == "mpiifacegaze") return p.mpiifacegaze;
  return p.images;
}

// Where each dataset's pack goes under the run folder.
struct PackPaths {
  std::map<std::string, std::string> packs, pair_packs;  // pair packs: RT-Gene's eye pairs, where the data has them
};

PackPaths pack_paths(const PipelineConfig& p, const fs::path& root) {
  PackPaths out;
  const bool pairs_wanted = std::any_of(p.baselines.begin(), p.baselines.end(),
                                        [](const std::string& arch) { return baseline_input(arch).eye_pair; });
  for (const auto& d : p.datasets) {
    out.packs[d] = (root / "packs" / (d + ".h5")).string();
    if (pairs_wanted && has_eye_pairs(d)) out.pair_packs[d] = (root / "packs" / (d + "_pairs.h5")).string();
  }
  return out;
}

// Renders the synthetic datasets the pipeline was not given a root for; returns every root.
std::map<std::string, std::string> dataset_roots(const Config& config, const fs::path& root, const PackPaths& paths) {
  const PipelineConfig& p = config.pipeline;
  std::map<std::string, std::string> roots;
  for (const char* d : {"openeds", "aea", "mpiigaze", "mpiifacegaze", "images"}) roots[d] = given_root(p, d);
  Config synth_config = config;
  synth_config.synth.out_dir = (root / "data").string();
  synth_config.synth.layouts.clear();
  for (const auto& d : p.datasets) {
    if (roots[d].empty()) synth_config.synth.layouts.push_back(d);
  }
  if (uses_images(p) && p.images.empty()) synth_config.synth.layouts.push_back("images");
  if (synth_config.synth.layouts.empty()) return roots;
  const fs::path stamp = root / "data" / "synth.done";
  // What the renderer depends on: which renderer it is, its settings and the seed, not the
  // recipe trained on it.
  const std::string renderer = synth_renderer_stamp_line();
  const std::string stamped = read_stamp(stamp);
  // A finished render by another renderer: rendering it again would leave the stages trained on
  // the old eyes to be reused beside the new ones (a stage is reused by its config, which is the
  // same), so the folder is refused instead, whole.
  if (fs::exists(stamp) && !starts_with(stamped, renderer)) {
    const size_t from = std::string_view(kSynthRendererStampPrefix).size();
    const std::string was = starts_with(stamped, kSynthRendererStampPrefix)
                                ? "renderer version " + stamped.substr(from, stamped.find('\n') - from)
                                : "a libgaze whose stamp named no renderer version";
    throw Error(stamp.string() + ": this run folder's data was rendered by " + was + ", this libgaze renders with " +
                std::to_string(kSynthRendererVersion) + ", and its stages were trained on those eyes; delete " +
                root.string() + " or choose another run.name");
  }
  Config inputs;
  inputs.synth = synth_config.synth;
  inputs.run.seed = config.run.seed;
  if (!made_from(stamped, stamp, renderer, inputs)) {
    // Packs of an earlier render would pass their own stamps (the data settings are the same):
    // drop them, and the render's own, first, so that a render cut short is rendered again and
    // its frames are packed anew, whatever settings the next run comes back with.
    fs::remove(stamp);
    for (const auto* packs : {&paths.packs, &paths.pair_packs}) {
      for (const auto& [d, pack] : *packs) {
        if (given_root(p, d).empty()) fs::remove(pack_stamp(pack));
      }
    }
    spdlog::info("pipeline: rendering synthetic {}", join(synth_config.synth.layouts, " and "));
    const SynthReport r = write_synthetic_datasets(synth_config.synth, uint64_t(config.run.seed), config.run.threads);
    spdlog::info("pipeline: rendered {} frames in {:.1f} s", r.openeds_images + r.aea_frames, r.seconds);
    write_text_atomically(stamp.string(), renderer + dump_config(inputs));
  }
  for (const auto& d : synth_config.synth.layouts) roots[d] = (root / "data" / d).string();
  return roots;
}

// Applies a stage's `set` to its run on `dataset` ("" for a stage every dataset shares): plain
// entries to every run, "openeds:key=value" to that dataset's run only (libgaze/config/stage_set.h;
// validate_config has refused dataset entries on shared stages).
void apply_stage_set(Config& c, const StageRef& stage, const std::string& dataset) {
  for (const std::string& entry : stage.set) {
    const StageSetEntry e = parse_stage_set_entry(entry);
    if (e.dataset.empty() || e.dataset == dataset) apply_override(c, e.assignment);
  }
}

// train.augmentation.focal=-1 (auto): the renderer's focal length where this pipeline renders
// the data (one camera model for the OpenEDS and AEA layouts); 0 where it was given the data (its
// camera unknown: the labels stay, and the camera turns warp and roll are off with them), where
// labels are not in an eye camera's frame (MPII) and where a stage reads eye pairs (two cameras
// side by side). An explicit focal length on those last two is refused: it would turn labels,
// or warp images, it does not describe. On rendered data the label turns in the renderer's
// camera frame (its tilt) unless train.augmentation.tilt is given. Shared stages (dataset "")
// are left alone: their labels are not what they train on.
void resolve_camera(Config& c, const Config& pipeline, const std::string& dataset, bool eye_pair) {
  AugmentConfig& a = c.train.augmentation;
  const bool pairs = eye_pair || c.data.eye == "pair";  // the stage reads pairs, or its config says so
  const bool eye_camera = (dataset == "openeds" || dataset == "aea") && !pairs;
  const bool rendered = eye_camera && given_root(pipeline.pipeline, dataset).empty();
  if (a.focal == -1) {
    a.focal = rendered ? synth_focal_px(1.0) : 0;
    if (!rendered && (a.warp || a.roll > 0)) {
      a.warp = false;
      a.roll = 0;
      c.origin["train.augmentation.warp"] = c.origin["train.augmentation.roll"] =
          "train.augmentation.focal=-1 (off: the camera is not known)";
    }
  }
  if (a.focal > 0 && !eye_camera && !dataset.empty()) {
    throw Error("train.augmentation.focal: turns labels in one eye camera's frame: not on " +
                std::string(pairs ? "eye pairs" : dataset) + " (set from " +
                config_origin(c, "train.augmentation.focal") +
                "; -1 picks the renderer's where it renders and 0 elsewhere, or give it per dataset as "
                "openeds:train.augmentation.focal=...)");
  }
  const std::vector<double>& tilt = pipeline.synth.camera_tilt_deg;
  if (rendered && a.focal > 0 && config_origin(c, "train.augmentation.tilt") == "default" && tilt != a.tilt) {
    // AEA's right eyes are rendered mirrored; unmirrored they see the camera's yaw the other way.
    if (dataset == "aea" && !c.data.mirror_right && tilt[0] != 0) {
      throw Error(
          "train.augmentation.tilt: the renderer's camera is yawed, and data.mirror_right=false leaves "
          "AEA's right eyes seeing it the other way: give the tilt, or mirror the right eyes");
    }
    a.tilt = tilt;
    c.origin["train.augmentation.tilt"] = "synth.camera_tilt_deg (the renderer's camera)";
  }
}

// A stage's config: its file, the pipeline's shared settings, its overrides (those for
// `dataset`, "" for a shared stage), then the wiring (what it reads, where it writes). Errors
// name the stage.
Config stage_config(const Config& pipeline, const std::string& stage_key, const StageRef& stage,
                    const std::string& dataset, const std::string& run_name, const std::string& source,
                    const fs::path& root, bool colour = false, bool eye_pair = false) {
  if (dataset.empty() == stage_runs_per_dataset(stage_key)) {
    throw Error("pipeline.stages." + stage_key + ": composed " + (dataset.empty() ? "once" : "per dataset") +
                ", but stage_runs_per_dataset says otherwise");
  }
  Config c;
  try {
    c = stage.config.empty() ? default_config() : load_config(stage.config);
    copy_explicit_keys(pipeline, c, {"pipeline."});
    apply_stage_set(c, stage, dataset);
    resolve_camera(c, pipeline, dataset, eye_pair);
    c.run.out_dir = root.string();
    c.run.name = run_name;
    c.data.source = source;
    c.data.split = "train";
    c.data.colour = colour;
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

// The teacher when pipeline.import_teacher names an official checkpoint; the import report is
// logged and kept beside it (teacher_imported.txt).
std::string import_teacher(const Config& config, const fs::path& root) {
  const std::string imported = (root / "teacher_imported.h5").string();
  const fs::path source = config.pipeline.import_teacher;
  if (!fs::exists(source)) throw Error(source.string() + ": pipeline.import_teacher not found");
  const std::string what = fs::absolute(source).string() + " " + std::to_string(fs::file_size(source)) + " " +
                           (config.pipeline.import_allow_partial ? "partial" : "complete") + "\n";
  if (!up_to_date(root / "teacher_imported.done", what) || !fs::exists(imported)) {
    const Config teacher = default_config({"model.arch=teacher"});
    GazeNet net = make_gaze_net(teacher.model, uint64_t(config.run.seed));
    const ImportReport report =
        import_official_weights(net, read_torch_state_dict(config.pipeline.import_teacher),
                                config.pipeline.import_teacher, config.pipeline.import_allow_partial);
    spdlog::info("teacher from {}:", config.pipeline.import_teacher);
    for (const auto& line : report.lines()) spdlog::info("{}", line);
    save_model(imported, net, teacher, "import", 0);
    write_text_atomically((root / "teacher_imported.txt").string(), join(report.lines(), "\n") + "\n");
    write_text_atomically((root / "teacher_imported.done").string(), what);
  }
  return imported;
}

// Generalised evaluation (validation split) and personalisation (test split) of one trained
// model (`checkpoint`, trained in `run_dir`) on one dataset; `evaluate_on` and `personalise`
// run the model's kind of each. Scores already computed from the same checkpoint, config, pack
// and libgaze code are read from the run's scores.json (trainers/score_cache.h) while what scoring
// wrote (eval_validation.json, and `users` when personalisation writes there) is still on disk.
DatasetScores score(const Config& c, const std::string& pack, const fs::path& run_dir, const std::string& checkpoint,
                    const std::string& users, const std::function<EvalResult(const Dataset& data)>& evaluate_on,
                    const std::function<PersonalizeResult(const Dataset& test, const Dataset& train)>& personalise) {
  const fs::path eval_json_path = run_dir / "eval_validation.json", cache = run_dir / "scores.json";
  const std::string key = score_key(c, checkpoint, pack);
  if (fs::exists(eval_json_path) && (users.empty() || fs::exists(users))) {
    try {
      if (auto cached = read_cached_scores(cache.string(), key)) {
        spdlog::info("{}: scores from {} (the same checkpoint, config, pack and libgaze code)", c.run.name,
                     cache.string());
        return *cached;
      }
    } catch (const Error& e) {  // a cache, not an input: scored again and written anew
      spdlog::warn("{}; scoring again", e.what());
    }
  }
  // Gone before scoring writes anything, so a run stopped partway never leaves old scores beside
  // new files.
  fs::remove(cache);
  DataConfig split = c.data;
  split.source = pack;
  split.split = "train";
  const auto train_set = open_dataset(split);
  split.split = "validation";
  const auto val_set = open_dataset(split);
  split.split = "test";
  const auto test_set = open_dataset(split);
  DatasetScores s;
  const EvalResult val = evaluate_on(*val_set);
  write_text_atomically(eval_json_path.string(), eval_json(val).dump(2) + "\n");
  s.generalised = val.summary.all_frames.mean;
  for (const auto& [person, stats] : val.summary.per_participant) s.people[person] = stats.mean;
  s.blink_auc = val.blink_auc;
  for (size_t i = 0; i < val.errors_deg.size(); ++i) {
    if (!val.blinks[i]) s.errors.push_back(val.errors_deg[i]);
  }
  const BaselineErrors baseline = mean_gaze_baseline(*train_set, *val_set);
  s.baseline = baseline.mean_deg;
  s.baseline_people = baseline.per_participant;
  const PersonalizeResult pr = personalise(*test_set, *train_set);
  s.before = pr.before_deg;
  s.personalised = pr.after_deg;
  s.k_curve = pr.k_curve;
  s.seconds_per_user = pr.seconds_per_user;
  s.calibrate_seconds_per_user = pr.calibrate_seconds_per_user;
  s.protocol = pr.protocol;
  write_cached_scores(cache.string(), key, s);
  return s;
}

bool is_mpii(const std::string& dataset) { return dataset == "mpiigaze" || dataset == "mpiifacegaze"; }

// The folds a dataset is scored over: {-1} (the pack's own 8:1:1 split) or, for the MPII
// datasets under pipeline.mpii_protocol=leave_one_out, every participant of its pack.
std::vector<int64_t> folds_of(const PipelineConfig& p, const std::string& dataset, const std::string& pack) {
  if (p.mpii_protocol != "leave_one_out" || !is_mpii(dataset)) return {-1};
  const PackDataset all(pack);
  std::set<int64_t> people;
  for (int64_t i = 0; i < all.size(); ++i) people.insert(all.label(i).participant);
  if (people.size() < 2)
    throw Error(pack + ": leave_one_out needs at least two people, found " + std::to_string(people.size()));
  return {people.begin(), people.end()};
}

// "_p07" for the fold holding out participant 7; "" for the pack's own split.
std::string fold_suffix(int64_t person) {
  if (person < 0) return "";
  char text[32];
  std::snprintf(text, sizeof text, "_p%02lld", static_cast<long long>(person));
  return text;
}

// A stage's config for one fold: the person held out (data.hold_out on the pack), the run
// named after them.
Config for_fold(Config c, int64_t person) {
  if (person < 0) return c;
  c.data.hold_out = person;
  c.run.name += fold_suffix(person);
  return c;
}

// "_s3" for training seed 3 (pipeline.seeds); "" for run.seed, whose runs keep their plain
// names, so a single-seed run and the run.seed part of a multi-seed run share their folders.
std::string seed_suffix(int64_t seed, int64_t run_seed) { return seed == run_seed ? "" : "_s" + std::to_string(seed); }

// One dataset's scores over several runs as one: over leave-one-person-out folds (each fold's
// person-level means averaged, the paper's mean over people) or over training seeds. Every
// frame's error is kept for the CDFs.
DatasetScores mean_scores(const std::vector<DatasetScores>& runs) {
  if (runs.size() == 1) return runs.front();
  DatasetScores m = runs.front();  // its calibration protocol is the same in every run
  m.generalised = m.personalised = m.before = m.baseline = 0;
  m.seconds_per_user = m.calibrate_seconds_per_user = 0;
  m.k_curve.clear();
  m.errors.clear();
  const auto per_person = [&](std::map<int64_t, double> DatasetScores::*field) {
    std::vector<const std::map<int64_t, double>*> maps;
    for (const DatasetScores& f : runs) maps.push_back(&(f.*field));
    return mean_per_person(maps);
  };
  m.people = per_person(&DatasetScores::people);
  m.baseline_people = per_person(&DatasetScores::baseline_people);
  std::map<int64_t, int64_t> k_runs;  // a person with too few frames for some k has no point there
  const double n = double(runs.size());
  double auc = 0;
  int64_t aucs = 0;
  for (const DatasetScores& f : runs) {
    m.generalised += f.generalised / n;
    m.personalised += f.personalised / n;
    m.before += f.before / n;
    m.baseline += f.baseline / n;
    m.seconds_per_user += f.seconds_per_user / n;
    m.calibrate_seconds_per_user += f.calibrate_seconds_per_user / n;
    for (const auto& [k, error] : f.k_curve) {
      m.k_curve[k] += error;
      ++k_runs[k];
    }
    m.errors.insert(m.errors.end(), f.errors.begin(), f.errors.end());
    if (f.blink_auc >= 0) {
      auc += f.blink_auc;
      ++aucs;
    }
  }
  for (auto& [k, error] : m.k_curve) error /= double(k_runs[k]);
  m.blink_auc = aucs ? auc / double(aucs) : -1;
  return m;
}

// Why a baseline does not run on a dataset ("" when it does).
std::string baseline_not_run(const std::string& arch, const std::string& dataset) {
  if (arch == "gazetr_hybrid" && dataset == "mpiigaze") {
    return "GazeTR-Hybrid takes a face; MPIIGaze's normalised data holds eye patches only (the paper's cell is empty "
           "too)";
  }
  return "";
}

// A model the adapters stage trains, scores and personalises: one row of the report.
struct GazeRowStages {
  std::string name;             // "teacher", "student", "student_full", "teacher_grid", ...
  std::string title;            // what the tables call it
  bool from_student = false;    // starts from the distilled student (else from the pretrained teacher)
  std::string checked_against;  // ours, a student: the row its checks compare with; "" = not checked
  std::map<std::string, Config> adapters, personalize;  // per dataset
  // The index in StageConfigs::rows of an earlier row whose stages these are, run names apart (a
  // variant that trains a model again with nothing changed for it): trained once, its scores
  // shared, no run or user folders of its own; -1 = trained here.
  int64_t same_as = -1;
};

// Whether two rows train and personalise alike on every dataset: equal configs but for their
// runs' names (each stage's checkpoint and folder).
bool same_stages(const GazeRowStages& a, const GazeRowStages& b) {
  const auto unnamed = [](Config c) {
    c.run.name.clear();
    return dump_config(c);
  };
  if (a.from_student != b.from_student) return false;
  for (const auto& [d, c] : a.adapters) {
    if (unnamed(c) != unnamed(b.adapters.at(d)) || unnamed(a.personalize.at(d)) != unnamed(b.personalize.at(d)))
      return false;
  }
  return true;
}

// Every stage's config, composed before any work starts, so that a bad stage file or override
// stops the run at once rather than after hours of training.
struct StageConfigs {
  Config teacher_mae, distill;
  // The paper's teacher and student, then ours: pipeline.full_finetune's row, pipeline.variants'.
  std::vector<GazeRowStages> rows;
  std::map<std::string, std::map<std::string, Config>> baselines;  // dataset -> arch -> config

  const GazeRowStages& student() const { return rows.at(1); }
};

// The report's rows of models trained by the adapters stage, without their configs yet: the
// paper's pair, then ours, each with the stage it is composed from (its key for messages and the
// StageRef: file and set) and its runs' folder names, <run>_<dataset>.
struct RowPlan {
  GazeRowStages row;
  std::string stage_key, run;
  StageRef adapters;
};

std::vector<RowPlan> plan_rows(const PipelineConfig& p) {
  const PipelineStages& s = p.stages;
  const auto plan = [](const std::string& name, const std::string& title, bool student, const std::string& key,
                       const std::string& run, const StageRef& ref) {
    return RowPlan{{name, title, student, "", {}, {}, -1}, key, run, ref};
  };
  std::vector<RowPlan> rows = {
      plan("teacher", "ConvNeXt V2-A (teacher)", false, "teacher_adapters", "teacher_adapters", s.teacher_adapters),
      plan("student", "DFT Gaze (student)", true, "student_adapters", "student_adapters", s.student_adapters)};
  if (p.full_finetune) {
    // student_full: student_adapters' file and set unless it names its own file, then its set.
    StageRef full{s.student_full.config, {}};
    if (full.config.empty()) full = s.student_adapters;
    full.set.push_back("train.tune=all");
    full.set.insert(full.set.end(), s.student_full.set.begin(), s.student_full.set.end());
    rows.push_back(
        plan("student_full", "DFT Gaze, every weight fine-tuned (ours)", true, "student_full", "student_full", full));
    rows.back().row.checked_against = "teacher";
  }
  for (size_t i = 0; i < p.variants.size(); ++i) {
    const PipelineVariant& v = p.variants[i];
    for (const std::string& model : {std::string("teacher"), std::string("student")}) {
      if (!v.trains(model)) continue;
      const RowPlan& paper = rows[model == "student" ? 1 : 0];
      StageRef ref = paper.adapters;
      ref.set.insert(ref.set.end(), v.set.begin(), v.set.end());
      const std::vector<std::string>& own = v.own_set(model);
      ref.set.insert(ref.set.end(), own.begin(), own.end());
      const std::string name = model + "_" + v.name;
      rows.push_back(plan(name, paper.row.title + ", " + (v.title.empty() ? v.name : v.title), model == "student",
                          paper.stage_key + " (pipeline.variants[" + std::to_string(i) + "] " + v.name + ")", name,
                          ref));
      if (model == "student") rows.back().row.checked_against = v.trains("teacher") ? "teacher_" + v.name : "teacher";
    }
  }
  return rows;
}

StageConfigs compose_stages(const Config& config, const PackPaths& paths, const fs::path& root) {
  const PipelineStages& s = config.pipeline.stages;
  const PipelineConfig& p = config.pipeline;
  std::vector<std::string> every_pack;  // the label-free stages' eye source: every dataset, in pipeline.datasets' order
  for (const auto& d : p.datasets) every_pack.push_back(paths.packs.at(d));
  const std::string all_train = join(every_pack, ",");
  const std::string images = "folder:" + images_root(p, root);
  StageConfigs out;
  const bool teacher_images = p.teacher_source == "images", distill_images = p.distill_source == "images";
  out.teacher_mae = stage_config(config, "teacher_mae", s.teacher_mae, "", "teacher_mae",
                                 teacher_images ? images : all_train, root, teacher_images);
  out.distill = stage_config(config, "distill", s.distill, "", "distill", distill_images ? images : all_train, root,
                             distill_images);
  const std::vector<RowPlan> plans = plan_rows(p);
  for (const RowPlan& plan : plans) out.rows.push_back(plan.row);
  for (const auto& [d, pack] : paths.packs) {
    for (size_t i = 0; i < plans.size(); ++i) {
      const std::string run = plans[i].run + "_" + d;
      out.rows[i].adapters[d] = stage_config(config, plans[i].stage_key, plans[i].adapters, d, run, pack, root);
      out.rows[i].personalize[d] = stage_config(config, "personalize", s.personalize, d, run, pack, root);
    }
    for (const auto& arch : p.baselines) {
      if (!baseline_not_run(arch, d).empty()) continue;
      const BaselineInput& input = baseline_input(arch);
      const bool pairs = input.eye_pair && paths.pair_packs.count(d);
      Config c = stage_config(config, "baseline", s.baseline, d, "baseline_" + arch + "_" + d,
                              pairs ? paths.pair_packs.at(d) : pack, root, false, pairs);
      c.model.arch = arch;  // the published network at its published input size and learning rate
      c.data.input_size = baseline_input_size(input, pairs);
      c.origin["model.arch"] = c.origin["data.input_size"] = "pipeline.baselines";
      complete_stage_config("baseline", c);
      validate_config(c);
      out.baselines[d][arch] = c;
    }
  }
  for (size_t i = 0; i < out.rows.size(); ++i) {
    for (size_t j = 0; j < i && out.rows[i].same_as < 0; ++j) {
      if (out.rows[j].same_as < 0 && same_stages(out.rows[j], out.rows[i])) out.rows[i].same_as = int64_t(j);
    }
  }
  return out;
}

// Every stage's config under training seed `seed`: run.seed set, runs named with its suffix.
StageConfigs for_seed(StageConfigs s, int64_t seed, const std::string& suffix) {
  const auto apply = [&](Config& c) {
    c.run.seed = seed;
    c.run.name += suffix;
  };
  apply(s.teacher_mae);
  apply(s.distill);
  for (GazeRowStages& row : s.rows) {
    for (auto* per_dataset : {&row.adapters, &row.personalize}) {
      for (auto& [d, c] : *per_dataset) apply(c);
    }
  }
  for (auto& [d, archs] : s.baselines) {
    for (auto& [arch, c] : archs) apply(c);
  }
  return s;
}

// What one training seed's stages 2-4 scored.
struct SeedResults {
  std::vector<ModelScores> rows;       // StageConfigs::rows, in their order
  std::vector<ModelScores> baselines;  // pipeline.baselines, in their order
};

// Several seeds' scores of one model as one: every number averaged (mean_scores), and with more
// than one seed each seed's headline numbers kept for the spread and the per-seed checks.
ModelScores mean_over_seeds(const std::vector<const ModelScores*>& runs, const std::vector<int64_t>& seeds) {
  ModelScores m = *runs.front();
  for (auto& [d, scores] : m.datasets) {
    std::vector<DatasetScores> per_seed;
    for (const ModelScores* run : runs) per_seed.push_back(run->datasets.at(d));
    scores = mean_scores(per_seed);
    if (seeds.size() < 2) continue;
    for (size_t i = 0; i < per_seed.size(); ++i) {
      const DatasetScores& s = per_seed[i];
      scores.seeds.push_back({seeds[i], s.generalised, s.personalised, s.before, s.baseline, s.people});
    }
  }
  return m;
}

std::string fmt_double(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Where the run departs from the paper (SPEC §2, §5), and the values the paper leaves open.
void describe_protocol(const Config& config, const StageConfigs& s, PipelineResults& r) {
  const PipelineConfig& p = config.pipeline;
  auto& dev = r.deviations;
  const std::string images = p.images.empty() ? "rendered natural-image stand-ins (gaze synth), not ImageNet-1K"
                                              : "natural images from " + p.images;
  if (p.import_teacher.empty()) {
    dev.push_back("teacher: pretrained here by FCMAE on " +
                  (p.teacher_source == "images" ? images : std::string("eye images")) +
                  " (paper: the official ImageNet-1K ConvNeXt V2-Atto checkpoint; set pipeline.import_teacher)");
  }
  if (p.distill_source == "eyes") {
    dev.push_back("distillation data: eye images (paper: masked ImageNet-1K; set pipeline.distill_source=images)");
  } else if (p.images.empty()) {
    dev.push_back("distillation data: " + images + " (paper: ImageNet-1K; set pipeline.images)");
  }
  std::vector<std::string> rendered;
  for (const auto& d : p.datasets) {
    if (given_root(p, d).empty()) rendered.push_back(dataset_title(d));
  }
  if (!rendered.empty()) {
    dev.push_back("datasets: rendered stand-ins in the " + join(rendered, ", ") +
                  " layouts (gaze synth), not the releases");
  }
  const bool self_supervised_on_eyes =
      (p.import_teacher.empty() && p.teacher_source == "eyes") || p.distill_source == "eyes";
  const auto rendered_here = [&](const std::string& d) {
    return std::find(p.datasets.begin(), p.datasets.end(), d) != p.datasets.end() && given_root(p, d).empty();
  };
  if (self_supervised_on_eyes && rendered_here("openeds") && rendered_here("aea")) {
    dev.push_back(
        "OpenEDS2020 and AEA: the renderer draws one population for both (person i in each), and AEA's "
        "recordings are split apart from OpenEDS's people, so the label-free stages, which read both "
        "datasets' training people, see a few of one dataset's held-out people in the other's images "
        "(no labels)");
  }
  for (const auto& d : p.datasets) {
    if (is_mpii(d) && p.mpii_protocol == "fold") {
      dev.push_back(dataset_title(d) +
                    ": one leave-people-out fold (people split 8:1:1, seeded; validation people for generalised, test "
                    "people for personalised), not the paper's leave-one-person-out mean (pipeline.mpii_protocol="
                    "leave_one_out)");
    }
    if (is_mpii(d) && p.mpii_protocol == "leave_one_out" && self_supervised_on_eyes) {
      dev.push_back(dataset_title(d) +
                    ": leave-one-person-out as the paper, but the label-free pretraining (teacher_mae, distill on "
                    "eyes) saw the pack's train-split people, some of whom a fold holds out");
    }
  }
  for (const auto& arch : p.baselines) {
    const BaselineInput& input = baseline_input(arch);
    if (arch == "rtgene" && std::find(p.datasets.begin(), p.datasets.end(), "openeds") != p.datasets.end()) {
      dev.push_back("RT-Gene on OpenEDS2020: the one eye the dataset shows, in both eye trunks");
    }
    if (arch == "rtgene" && std::find(p.datasets.begin(), p.datasets.end(), "mpiigaze") != p.datasets.end()) {
      dev.push_back(
          "RT-Gene on MPIIGaze: one sample per listed frame, both normalised patches side by side, labelled with "
          "the mean of the two eyes' gaze (the standard protocol scores single eyes)");
    }
    dev.push_back(input.title + ": AdamW, L1 on the gaze direction, from random weights (published: " + input.recipe +
                  ")");
    for (const auto& d : p.datasets) {
      if (!s.baselines.count(d) || !s.baselines.at(d).count(arch)) continue;
      const Config& b = s.baselines.at(d).at(arch);
      dev.push_back(input.title + ": " + std::to_string(b.train.steps) + " steps of batch " +
                    std::to_string(b.train.batch_size) + " at lr " + fmt_double(b.train.lr) +
                    " per dataset, personalised by " + std::to_string(b.personalize.steps) +
                    " fine-tuning steps on the k shots at lr " + fmt_double(b.personalize.lr));
      break;
    }
  }
  for (const auto& d : p.datasets) {
    const Config& a = s.student().adapters.at(d);
    const Config& pz = s.student().personalize.at(d);
    const std::string where = " (" + d + ")";
    if (a.train.gaze_loss != "l1") dev.push_back("gaze loss: " + a.train.gaze_loss + " (paper: L1)" + where);
    if (!a.train.balanced) dev.push_back("no K-means balancing (paper: K = 15)" + where);
    if (a.train.person_offsets)
      dev.push_back("adapters trained with a learned gaze offset per training participant (train.person_offsets)" +
                    where);
    if (a.train.balanced && a.train.clusters != 15) {
      dev.push_back("K-means K = " + std::to_string(a.train.clusters) + " (paper: 15)" + where);
    }
    if (pz.personalize.k != 5) dev.push_back("k = " + std::to_string(pz.personalize.k) + " (paper: 5)" + where);
    if (pz.personalize.train_head)
      dev.push_back("personalisation also tunes the head (paper: last-stage adapters)" + where);
  }
  if (s.distill.mae.kd_weight != 0.5)
    dev.push_back("distillation gamma = " + fmt_double(s.distill.mae.kd_weight) + " (paper: 0.5)");
  const Config& a = s.student().adapters.at(p.datasets.front());
  const Config& pz = s.student().personalize.at(p.datasets.front());
  auto& ours = r.ours;
  ours.push_back(std::string("the 4th head output (log Laplace scale, blink / glare rejection): ") +
                 (a.model.head.uncertainty ? (a.train.gaze_loss == "l1"
                                                  ? "trained by its own NLL on the detached gaze residual, so it never "
                                                    "re-weights the L1 gaze loss"
                                                  : "trained jointly by the Laplace NLL")
                                           : "off (untrained, not scored)"));
  ours.push_back("input " + std::to_string(a.data.input_size[0]) + "x" + std::to_string(a.data.input_size[1]) +
                 ", grey replicated to RGB with ImageNet normalisation");
  ours.push_back("steps: teacher_mae " + std::to_string(s.teacher_mae.train.steps) + ", distill " +
                 std::to_string(s.distill.train.steps) + ", adapters " + std::to_string(a.train.steps) +
                 ", personalisation " + std::to_string(pz.personalize.steps) + " per user; batch " +
                 std::to_string(a.train.batch_size) + "; AdamW, cosine schedule");
  ours.push_back("FCMAE: mask ratio " + fmt_double(s.distill.mae.mask_ratio) + ", patch " +
                 std::to_string(s.distill.mae.patch) + " px, decoder width " +
                 std::to_string(s.distill.mae.decoder_dim));
  ours.push_back("personalisation replay: " + std::to_string(pz.personalize.replay) +
                 " K-means-balanced generalised images, fraction " + fmt_double(pz.personalize.replay_fraction) +
                 " of each batch");
  if (std::find(p.datasets.begin(), p.datasets.end(), "aea") != p.datasets.end()) {
    ours.push_back("AEA split 8:1:1 by recording (seeded); the wearer is not recorded");
  }
  for (const GazeRowStages& row : s.rows) {
    if (row.name != "student_full") continue;
    const Config& f = row.adapters.at(p.datasets.front());
    ours.push_back(
        "our row \"DFT Gaze, every weight fine-tuned\" (not in the paper): the distilled student with "
        "backbone, adapters and head trained, " +
        std::to_string(f.train.steps) + " steps at lr " + fmt_double(f.train.lr) +
        ", personalised like DFT Gaze (last-stage adapters): the ceiling the frozen backbone leaves");
  }
  for (const PipelineVariant& v : p.variants) {
    std::string with;
    if (!v.set.empty()) with += " with [" + join(v.set, ", ") + "]";
    for (const std::string model : {"teacher", "student"}) {
      const std::vector<std::string>& own = v.own_set(model);
      if (!own.empty()) with += ", the " + model + "'s with [" + join(own, ", ") + "]";
    }
    ours.push_back("our variant \"" + v.name + "\" (not in the paper): the " + join(v.models, " and ") +
                   " adapters trained again" + with +
                   (v.models.size() == 2 ? "; its student is checked against its teacher" : ""));
  }
  for (const GazeRowStages& row : s.rows) {
    if (row.same_as < 0) continue;
    const std::string& earlier = s.rows[size_t(row.same_as)].name;
    ours.push_back("row " + row.name + ": " + earlier + "'s stage unchanged, so trained once; its scores and runs (" +
                   earlier + "_<dataset>) are " + earlier + "'s");
  }
}

// Stages 2-4 under one training seed (`stages` already for_seed'ed; `suffix`, its seed_suffix,
// names its user folders): the teacher's FCMAE (or the imported teacher), the student's MAE + KD
// distillation, then per dataset and model the adapters or the baseline's training, generalised
// evaluation and personalisation, over the dataset's folds.
SeedResults train_and_score(const PipelineConfig& p, StageConfigs stages, const std::string& imported_teacher,
                            const std::map<std::string, std::string>& packs,
                            const std::map<std::string, std::vector<int64_t>>& folds, const fs::path& root,
                            const std::string& suffix) {
  // 2. Teacher FCMAE (from an imported official checkpoint if given), then the student's
  //    MAE + KD distillation from it; both on every dataset's train split.
  std::string teacher_mae = imported_teacher;
  if (!teacher_mae.empty()) {
    spdlog::info("pipeline: the teacher is the imported checkpoint; teacher_mae skipped");
  } else {
    teacher_mae = train("teacher-mae", stages.teacher_mae);
  }
  stages.distill.train.teacher = teacher_mae;
  const std::string student_mae = train("distill", stages.distill);

  // 3. Per dataset and model: adapters, generalised evaluation, personalisation.
  SeedResults results;
  for (const GazeRowStages& row : stages.rows) {
    results.rows.emplace_back();
    results.rows.back().name = row.name;
    results.rows.back().title = row.title;
    results.rows.back().checked_against = row.checked_against;
  }
  for (const auto& d : p.datasets) {
    for (size_t i = 0; i < stages.rows.size(); ++i) {
      const GazeRowStages& row = stages.rows[i];
      ModelScores* m = &results.rows[i];
      if (row.same_as >= 0) {
        const ModelScores& earlier = results.rows[size_t(row.same_as)];  // scored above: rows run in order
        spdlog::info("pipeline: {} on {} is {}'s stage unchanged: its runs {}_{}{} serve both", row.name, d,
                     earlier.name, earlier.name, d, suffix);
        m->params = earlier.params;
        m->tunable = earlier.tunable;
        m->note = earlier.note + "; " + earlier.name + "'s runs (the same stage)";
        m->datasets[d] = earlier.datasets.at(d);
        continue;
      }
      std::vector<DatasetScores> scores;
      for (const int64_t person : folds.at(d)) {
        Config c = for_fold(row.adapters.at(d), person);
        c.train.init = row.from_student ? student_mae : teacher_mae;
        const std::string checkpoint = train("adapters", c);
        GazeNet net = load_model(checkpoint);
        m->params = count_parameters(*net);
        const bool everything = c.train.tune == "all";
        m->tunable = everything ? m->params : count_tunable_parameters(*net);
        m->note = everything ? std::string("every weight fine-tuned from the ") +
                                   (row.from_student ? "distilled student" : "pretrained teacher") + " (train.tune=all)"
                             : "frozen backbone; adapters + head";
        const Config pc = for_fold(row.personalize.at(d), person);
        const std::string users = (root / "users" / (m->name + "_" + d + suffix + fold_suffix(person))).string();
        scores.push_back(score(
            pc, packs.at(d), root / c.run.name, checkpoint, users,
            [&](const Dataset& data) { return evaluate(net, data, pc); },
            [&](const Dataset& test, const Dataset& train) { return personalize(net, test, &train, pc, users); }));
      }
      m->datasets[d] = mean_scores(scores);
    }
  }

  // 4. The published baselines (Tables 1 and 2): per dataset, every weight trained, then
  //    evaluated and fine-tuned per test person like the models above.
  for (const auto& arch : p.baselines) {
    ModelScores m;
    m.name = arch;
    m.title = baseline_input(arch).title;
    for (const auto& d : p.datasets) {
      const std::string why = baseline_not_run(arch, d);
      if (!why.empty()) {
        m.not_run[d] = why;
        continue;
      }
      std::vector<DatasetScores> scores;
      for (const int64_t person : folds.at(d)) {
        const Config c = for_fold(stages.baselines.at(d).at(arch), person);
        const std::string checkpoint = train("baseline", c);
        Baseline net = load_baseline(checkpoint);
        m.params = m.tunable = count_parameters(*net);
        m.note = baseline_input(arch).input + "; " + std::to_string(c.train.steps) + " steps x " +
                 std::to_string(c.train.batch_size) + " at lr " + fmt_double(c.train.lr) +
                 (c.train.init.empty() ? ", random init" : ", from " + c.train.init);
        scores.push_back(score(
            c, c.data.source, root / c.run.name, checkpoint, "",
            [&](const Dataset& data) { return evaluate(net, data, c); },
            [&](const Dataset& test, const Dataset&) { return personalize_baseline(net, test, c); }));
      }
      m.datasets[d] = mean_scores(scores);
    }
    results.baselines.push_back(m);
  }
  return results;
}

// What a run is before anything runs: its folder, where its packs go, every stage's config.
struct RunPlan {
  fs::path root;
  PackPaths paths;
  StageConfigs stages;
};

RunPlan compose_run(const Config& config) {
  RunPlan run;
  run.root = run_dir_path(config);
  run.paths = pack_paths(config.pipeline, run.root);
  run.stages = compose_stages(config, run.paths, run.root);
  return run;
}

}  // namespace

PipelineProtocol describe_pipeline(const Config& config) {
  PipelineResults results;
  describe_protocol(config, compose_run(config).stages, results);
  return {results.deviations, results.ours};
}

PipelineReport run_pipeline(const Config& config) {
  const auto start = std::chrono::steady_clock::now();
  const PipelineConfig& p = config.pipeline;
  const RunPlan run = compose_run(config);
  const fs::path& root = run.root;
  const PackPaths& paths = run.paths;
  const StageConfigs& stages = run.stages;
  const auto lock = lock_directory(root.string());  // one `gaze run` per folder
  fs::create_directories(root / "packs");
  write_text_atomically((root / "pipeline.yaml").string(), dump_config(config));

  // 1. Data: render what is not given, pack everything.
  const std::map<std::string, std::string> roots = dataset_roots(config, root, paths);
  for (const auto& d : p.datasets) pack_dataset(config, d, roots.at(d), paths.packs.at(d));
  for (const auto& [d, pack] : paths.pair_packs) pack_dataset(config, d, roots.at(d), pack, /*eye_pairs=*/true);

  // 2-4 per training seed (pipeline.seeds; run.seed alone by default), then averaged.
  const std::string imported_teacher = p.import_teacher.empty() ? "" : import_teacher(config, root);
  std::map<std::string, std::vector<int64_t>> folds;
  for (const auto& d : p.datasets) folds[d] = folds_of(p, d, paths.packs.at(d));
  const std::vector<int64_t> seeds = p.seeds.empty() ? std::vector<int64_t>{config.run.seed} : p.seeds;
  std::vector<SeedResults> per_seed;
  for (const int64_t seed : seeds) {
    const std::string suffix = seed_suffix(seed, config.run.seed);
    if (seeds.size() > 1)
      spdlog::info("pipeline: training seed {} ({} of {})", seed, per_seed.size() + 1, seeds.size());
    per_seed.push_back(
        train_and_score(p, for_seed(stages, seed, suffix), imported_teacher, paths.packs, folds, root, suffix));
  }
  PipelineResults results;
  results.datasets = p.datasets;
  results.seeds = seeds;
  const auto over_seeds = [&](const std::function<const ModelScores&(const SeedResults&)>& model) {
    std::vector<const ModelScores*> runs;
    for (const SeedResults& r : per_seed) runs.push_back(&model(r));
    return mean_over_seeds(runs, seeds);
  };
  for (size_t i = 0; i < stages.rows.size(); ++i) {
    ModelScores m = over_seeds([i](const SeedResults& r) -> const ModelScores& { return r.rows[i]; });
    if (i == 0) results.teacher = m;
    if (i == 1) results.student = m;
    if (i >= 2) results.our_rows.push_back(m);
  }
  for (size_t i = 0; i < p.baselines.size(); ++i) {
    results.baselines.push_back(over_seeds([i](const SeedResults& r) -> const ModelScores& { return r.baselines[i]; }));
  }

  // 5. Report (what it states of the protocol comes from the personalisation stage's config).
  const Config& pc = stages.student().personalize.at(p.datasets.front());
  results.k = pc.personalize.k;
  results.k_curve = pc.personalize.k_curve;
  results.input_h = pc.data.input_size[0];
  results.input_w = pc.data.input_size[1];
  std::vector<std::string> described;
  for (const auto& d : p.datasets) {
    results.stand_in[d] = given_root(p, d).empty();
    described.push_back(dataset_title(d) + (results.stand_in[d] ? " rendered by gaze synth" : " from " + roots.at(d)));
  }
  const bool rendered =
      std::all_of(p.datasets.begin(), p.datasets.end(), [&](const auto& d) { return results.stand_in[d]; });
  results.data_description = rendered ? "synthetic (gaze synth)" : join(described, "; ");
  results.commit = libgaze_commit();
  results.config_hash = config_hash(config);
  describe_protocol(config, stages, results);
  for (const auto& line : results.deviations) spdlog::info("pipeline: deviation from the paper: {}", line);
  results.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return write_pipeline_report(results, root.string());
}

}  // namespace gaze
