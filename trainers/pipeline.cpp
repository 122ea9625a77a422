#include "trainers/pipeline.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

#include "datasets/open_dataset.h"
#include "datasets/pack.h"
#include "datasets/synth/synth_writer.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/io/official_import.h"
#include "libgaze/io/torch_archive.h"
#include "trainers/evaluate.h"
#include "trainers/personalize.h"
#include "trainers/trainer.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;

// Paper Table 3 (mean angular error, degrees).
struct PaperRow {
  const char* model;
  const char* setting;
  double aea, openeds;
};
constexpr PaperRow kPaper[] = {
    {"teacher", "generalised", 1.94, 6.90},
    {"student", "generalised", 2.14, 7.82},
    {"teacher", "personalised", 2.32, 5.36},
    {"student", "personalised", 2.60, 5.80},
};

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

struct Scores {
  double generalised = 0, personalised = 0, before = 0, baseline = 0, blink_auc = -1;
  std::map<int64_t, double> k_curve;
  double seconds_per_user = 0;
};

std::string fmt(double v, int digits = 2) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// A small SVG line chart of error vs k, one line per (model, dataset).
std::string k_curve_svg(const std::map<std::string, std::map<int64_t, double>>& curves) {
  double y_max = 0;
  int64_t k_max = 1;
  for (const auto& [name, curve] : curves) {
    for (const auto& [k, e] : curve) y_max = std::max(y_max, e), k_max = std::max(k_max, k);
  }
  y_max = std::max(1.0, y_max * 1.1);
  const double w = 560, h = 320, left = 60, bottom = 40, top = 20, right = 150;
  const auto px = [&](double k) { return left + (w - left - right) * k / double(k_max); };
  const auto py = [&](double e) { return top + (h - top - bottom) * (1 - e / y_max); };
  std::string svg = "<svg xmlns='http://www.w3.org/2000/svg' width='560' height='320' font-family='sans-serif' font-size='12'>\n";
  svg += "<rect width='100%' height='100%' fill='white'/>\n";
  svg += "<line x1='" + fmt(left) + "' y1='" + fmt(py(0)) + "' x2='" + fmt(px(double(k_max))) + "' y2='" + fmt(py(0)) + "' stroke='black'/>\n";
  svg += "<line x1='" + fmt(left) + "' y1='" + fmt(top) + "' x2='" + fmt(left) + "' y2='" + fmt(py(0)) + "' stroke='black'/>\n";
  svg += "<text x='" + fmt((left + w - right) / 2) + "' y='" + fmt(h - 8) + "' text-anchor='middle'>calibration images k</text>\n";
  svg += "<text x='14' y='" + fmt(h / 2) + "' transform='rotate(-90 14 " + fmt(h / 2) + ")' text-anchor='middle'>mean error (deg)</text>\n";
  for (int t = 0; t <= 4; ++t) {
    const double e = y_max * t / 4;
    svg += "<text x='" + fmt(left - 6) + "' y='" + fmt(py(e) + 4) + "' text-anchor='end'>" + fmt(e, 1) + "</text>\n";
  }
  const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"};
  int line = 0;
  for (const auto& [name, curve] : curves) {
    std::string points;
    for (const auto& [k, e] : curve) {
      points += fmt(px(double(k))) + "," + fmt(py(e)) + " ";
      svg += "<text x='" + fmt(px(double(k))) + "' y='" + fmt(py(0) + 14) + "' text-anchor='middle'>" + std::to_string(k) + "</text>\n";
    }
    const char* colour = colours[line % 4];
    svg += "<polyline fill='none' stroke='" + std::string(colour) + "' stroke-width='2' points='" + points + "'/>\n";
    svg += "<text x='" + fmt(w - right + 10) + "' y='" + fmt(top + 16 * line + 10) + "' fill='" + colour + "'>" + name + "</text>\n";
    ++line;
  }
  return svg + "</svg>\n";
}

}  // namespace

PipelineReport run_pipeline(const Config& config) {
  const auto start = std::chrono::steady_clock::now();
  const PipelineConfig& p = config.pipeline;
  const fs::path root = fs::path(config.run.out_dir) / config.run.name;
  fs::create_directories(root / "packs");
  write_text_atomically((root / "pipeline.yaml").string(), dump_config(config));

  // 1. Data: render what is not given, pack everything.
  std::map<std::string, std::string> roots = {{"openeds", p.openeds}, {"aea", p.aea}};
  Config synth_config = config;
  synth_config.synth.out_dir = (root / "data").string();
  synth_config.synth.layouts.clear();
  for (const auto& d : p.datasets) {
    if (roots[d].empty()) synth_config.synth.layouts.push_back(d);
  }
  if (!synth_config.synth.layouts.empty()) {
    const fs::path stamp = root / "data" / "synth.done";
    const std::string what = dump_config(synth_config);
    if (!up_to_date(stamp, what)) {
      spdlog::info("pipeline: rendering synthetic {}", synth_config.synth.layouts.size() == 2 ? "OpenEDS2020 and AEA" : synth_config.synth.layouts[0]);
      const SynthReport r = write_synthetic_datasets(synth_config.synth, uint64_t(config.run.seed), config.run.threads);
      spdlog::info("pipeline: rendered {} frames in {:.1f} s", r.openeds_images + r.aea_frames, r.seconds);
      write_text_atomically(stamp.string(), what);
    }
    for (const auto& d : synth_config.synth.layouts) roots[d] = (root / "data" / d).string();
  }
  std::map<std::string, std::string> packs;
  std::string all_train;
  for (const auto& d : p.datasets) {
    packs[d] = pack_dataset(config, d, roots[d], root / "packs");
    all_train += (all_train.empty() ? "" : ",") + packs[d];
  }

  // Each stage: a config derived from the pipeline's, its own run directory, resumable.
  const auto stage_config = [&](const std::string& name, const std::string& source, int64_t steps, double lr) {
    Config c = config;
    c.run.out_dir = root.string();
    c.run.name = name;
    c.data.source = source;
    c.data.split = "train";
    c.train.steps = steps;
    c.train.lr = lr;
    c.train.min_lr = std::min(c.train.min_lr, lr);
    c.train.checkpoint_every = std::max<int64_t>(1, std::min<int64_t>(c.train.checkpoint_every, steps));
    return c;
  };
  const auto train = [&](const std::string& stage, Config c) {
    auto s = make_stage(stage, c);
    return run_training(c, *s, /*resume=*/true).model_path;
  };

  // 2. Teacher: FCMAE (from an imported official checkpoint if given), then adapters.
  Config mae = stage_config("teacher_mae", all_train, p.teacher_mae_steps, p.mae_lr);
  if (!p.import_teacher.empty()) {
    const std::string imported = (root / "teacher_imported.h5").string();
    if (!fs::exists(imported)) {
      GazeNet net = make_gaze_net(default_config({"model.arch=teacher"}).model, uint64_t(config.run.seed));
      import_official_weights(net, read_torch_state_dict(p.import_teacher));
      save_model(imported, net, default_config({"model.arch=teacher"}), "import", 0);
    }
    mae.train.init = imported;
  }
  const std::string teacher_mae = train("teacher-mae", mae);
  Config distill = stage_config("distill", all_train, p.distill_steps, p.mae_lr);
  distill.train.teacher = teacher_mae;
  const std::string student_mae = train("distill", distill);

  std::map<std::string, std::map<std::string, Scores>> scores;  // model -> dataset -> scores
  std::map<std::string, std::map<int64_t, double>> curves;
  for (const auto& d : p.datasets) {
    DataConfig train_data = config.data;
    train_data.source = packs[d];
    train_data.split = "train";
    const auto train_set = open_dataset(train_data);
    DataConfig val_data = train_data;
    val_data.split = "validation";
    const auto val_set = open_dataset(val_data);
    DataConfig test_data = train_data;
    test_data.split = "test";
    const auto test_set = open_dataset(test_data);
    for (const std::string model : {"teacher", "student"}) {
      Config c = stage_config(model + "_adapters_" + d, packs[d], model == "teacher" ? p.teacher_adapter_steps : p.student_adapter_steps,
                              p.adapter_lr);
      c.train.init = model == "teacher" ? teacher_mae : student_mae;
      const std::string path = train("adapters", c);
      GazeNet net = load_model(path);
      Scores& s = scores[model][d];
      const EvalResult val = evaluate(net, *val_set, c);
      write_text_atomically((root / (model + "_adapters_" + d) / "eval_validation.json").string(), eval_json(val) + "\n");
      s.generalised = val.summary.all_frames.mean;
      s.blink_auc = val.blink_auc;
      s.baseline = mean_gaze_baseline_deg(*train_set, *val_set);
      const PersonalizeResult pr = personalize(net, *test_set, train_set.get(), c, (root / "users" / (model + "_" + d)).string());
      s.before = pr.before_deg;
      s.personalised = pr.after_deg;
      s.k_curve = pr.k_curve;
      s.seconds_per_user = pr.seconds_per_user;
      curves[model + " " + d] = pr.k_curve;
    }
  }

  // 3. Report.
  PipelineReport report;
  std::string md = "# DFT Gaze — Table 3 reproduction\n\n";
  md += "Data: " + std::string(p.openeds.empty() && p.aea.empty() ? "synthetic (gaze synth)" : "as configured") +
        "; input " + std::to_string(config.data.input_size[0]) + "x" + std::to_string(config.data.input_size[1]) +
        "; mean angular error in degrees (ours | paper).\n\n";
  md += "| setting | model | params |";
  std::string csv = "setting,model,params";
  for (const auto& d : p.datasets) {
    md += " " + std::string(d == "aea" ? "AEA" : "OpenEDS2020") + " (ours) | paper |";
    csv += "," + d + "_ours," + d + "_paper";
  }
  md += "\n|---|---|---|" + std::string(p.datasets.size() * 2, ' ') + "\n";
  md.erase(md.size() - 1 - p.datasets.size() * 2);
  for (size_t i = 0; i < p.datasets.size() * 2; ++i) md += "---|";
  md += "\n";
  csv += "\n";
  for (const PaperRow& row : kPaper) {
    const bool personalised = std::string(row.setting) == "personalised";
    const std::string params = std::string(row.model) == "teacher" ? "3.6M" : "281K";
    md += std::string("| ") + row.setting + " | " + (std::string(row.model) == "teacher" ? "ConvNeXt V2-A (teacher)" : "DFT Gaze (student)") + " | " + params + " |";
    csv += std::string(row.setting) + "," + row.model + "," + params;
    for (const auto& d : p.datasets) {
      const Scores& s = scores[row.model][d];
      const double ours = personalised ? s.personalised : s.generalised;
      const double paper = d == "aea" ? row.aea : row.openeds;
      md += " " + fmt(ours) + " | " + fmt(paper) + " |";
      csv += "," + fmt(ours, 4) + "," + fmt(paper);
    }
    md += "\n";
    csv += "\n";
  }
  md += "\nGeneralised = validation split (people unseen in training), all open-eye frames. Personalised = test split, "
        "k = " + std::to_string(config.personalize.k) + " calibration images per person, mean over people of their "
        "remaining frames.\n\n## Checks\n\n| dataset | mean-gaze baseline | student / baseline | student / teacher | "
        "personalisation (student: before -> after) | blink AUC (student) | personalisation time per user |\n|---|---|---|---|---|---|---|\n";
  std::string json = "{\"datasets\": {";
  bool first = true;
  for (const auto& d : p.datasets) {
    const Scores& st = scores["student"][d];
    const Scores& te = scores["teacher"][d];
    md += "| " + d + " | " + fmt(st.baseline) + " | " + fmt(st.generalised / st.baseline, 3) + (st.generalised <= 0.5 * st.baseline ? " (<= 0.5 ok)" : " (> 0.5)") +
          " | " + fmt(st.generalised / te.generalised, 3) + (st.generalised <= 1.25 * te.generalised ? " (<= 1.25 ok)" : " (> 1.25)") +
          " | " + fmt(st.before) + " -> " + fmt(st.personalised) + (st.personalised < st.before ? " (lower ok)" : " (not lower)") +
          " | " + (st.blink_auc < 0 ? "n/a" : fmt(st.blink_auc, 3)) + " | " + fmt(st.seconds_per_user) + " s |\n";
    json += std::string(first ? "" : ", ") + "\"" + d + "\": {";
    bool first_model = true;
    for (const std::string model : {"teacher", "student"}) {
      const Scores& s = scores[model][d];
      json += std::string(first_model ? "" : ", ") + "\"" + model + "\": {\"generalised_deg\": " + fmt(s.generalised, 6) +
              ", \"personalised_deg\": " + fmt(s.personalised, 6) + ", \"before_personalisation_deg\": " + fmt(s.before, 6) +
              ", \"mean_gaze_baseline_deg\": " + fmt(s.baseline, 6) + ", \"blink_auc\": " + fmt(s.blink_auc, 6) + ", \"k_curve\": {";
      bool first_k = true;
      for (const auto& [k, e] : s.k_curve) {
        json += std::string(first_k ? "" : ", ") + "\"" + std::to_string(k) + "\": " + fmt(e, 6);
        first_k = false;
      }
      json += "}}";
      first_model = false;
    }
    json += "}";
    first = false;
  }
  md += "\n## Error vs number of calibration images k\n\n| model / dataset |";
  for (int64_t k : config.personalize.k_curve) md += " k=" + std::to_string(k) + " |";
  md += "\n|---|" ;
  for (size_t i = 0; i < config.personalize.k_curve.size(); ++i) md += "---|";
  md += "\n";
  for (const auto& [name, curve] : curves) {
    md += "| " + name + " |";
    for (int64_t k : config.personalize.k_curve) md += " " + (curve.count(k) ? fmt(curve.at(k)) : std::string("-")) + " |";
    md += "\n";
  }
  md += "\n![error vs k](k_curve.svg)\n";
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  md += "\nPipeline time: " + fmt(report.seconds, 0) + " s.\n";
  json += "}, \"seconds\": " + fmt(report.seconds, 1) + "}\n";
  report.markdown = md;
  report.markdown_path = (root / "report.md").string();
  report.csv_path = (root / "table3.csv").string();
  report.json_path = (root / "report.json").string();
  report.svg_path = (root / "k_curve.svg").string();
  write_text_atomically(report.markdown_path, md);
  write_text_atomically(report.csv_path, csv);
  write_text_atomically(report.json_path, json);
  write_text_atomically(report.svg_path, k_curve_svg(curves));
  return report;
}

}  // namespace gaze
