// gaze reproduce — the paper's tables and figures from one command:
//   table1, table2, table3  the pipeline of experiments/<table>.yaml (gaze run) on the datasets
//                           given, rendered stand-ins for the rest; the table beside the paper's
//   fig8                    latency of the teacher and DFT Gaze here, beside the paper's Pi 4
//   conditions              ours: the demo's recipe on held-out renderer conditions
//                           (experiments/conditions/*.yaml), one summary table; --merge joins
//                           summaries over other seeds, --compare sets two recipes side by side
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include "cli/commands.h"
#include "datasets/synth/synth_writer.h"
#include "export/fig8.h"
#include "libgaze/config/run_dir.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"
#include "trainers/charts.h"
#include "trainers/conditions_report.h"
#include "trainers/pipeline.h"

namespace gaze::cli {
namespace {

namespace fs = std::filesystem;

// experiments/<name> from the working directory, else from the source tree this binary was
// built from.
std::string experiment_file(const std::string& name) {
  const std::string path = "experiments/" + name;
  if (fs::exists(path)) return path;
  const std::string built = std::string(LIBGAZE_SOURCE_DIR) + "/" + path;
  if (fs::exists(built)) return built;
  throw Error(path + " not found (run from the libgaze checkout, or give the experiment's path)");
}

// The condition files of a folder, by name; "demo" (the recipe's own data) first.
std::vector<std::pair<std::string, std::string>> condition_files(const std::string& folder,
                                                                 const std::vector<std::string>& only) {
  std::map<std::string, std::string> found;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.path().extension() == ".yaml") found[entry.path().stem().string()] = entry.path().string();
  }
  for (const auto& name : only) {
    if (!found.count(name)) throw Error(folder + ": no condition '" + name + "' (--only)");
  }
  const auto wanted = [&](const std::string& name) {
    return only.empty() || std::find(only.begin(), only.end(), name) != only.end();
  };
  std::vector<std::pair<std::string, std::string>> out;
  if (found.count("demo") && wanted("demo")) out.push_back({"demo", found["demo"]});
  for (const auto& [name, path] : found) {
    if (name != "demo" && wanted(name)) out.push_back({name, path});
  }
  if (out.empty()) throw Error(folder + ": no condition files (*.yaml)");
  return out;
}

void register_conditions(CLI::App& reproduce) {
  auto* command = reproduce.add_subcommand(
      "conditions",
      "ours: the demo's recipe on held-out renderer conditions (camera pose, resolution, illumination, anatomy, "
      "people), each over its seeds, in one table");
  struct Options {
    std::string folder, output = "runs";
    std::string reference = "demo";
    std::string variant;
    std::vector<std::string> only, overrides, merge, compare;
    bool report_only = false;
  };
  auto o = std::make_shared<Options>();
  command->add_option("--conditions", o->folder, "folder of condition files (default: experiments/conditions)")
      ->check(CLI::ExistingDirectory);
  command->add_option("--only", o->only, "run only these conditions (file names without .yaml; comma-separated)")
      ->delimiter(',')
      ->allow_extra_args(false);  // one value per occurrence, so overrides can follow
  command->add_option("-o,--output", o->output, "run.out_dir: each condition runs in <output>/conditions_<name>");
  command->add_flag("--report-only", o->report_only, "summarise finished runs, train nothing");
  auto* variant = command->add_option("--variant", o->variant,
                                      "summarise this pipeline.variants entry's rows (student_<name> against "
                                      "teacher_<name>, or the paper's teacher if it trains no teacher) instead "
                                      "of the paper's student and teacher");
  auto* merge = command
                    ->add_option("--merge", o->merge,
                                 "merge summaries of runs over other seeds (their conditions.json) into one in "
                                 "--output, train nothing")
                    ->delimiter(',')
                    ->check(CLI::ExistingFile);
  auto* compare = command
                      ->add_option("--compare", o->compare,
                                   "two summaries (conditions.json) of the same conditions and seeds under two "
                                   "recipes, base then candidate: their paired differences over the held-out "
                                   "conditions, and per held-out person where both kept their people (summaries of "
                                   "other training data: their means shown, paired per person only), into --output "
                                   "(comparison.md / .json), train nothing")
                      ->delimiter(',')
                      ->expected(2)
                      ->check(CLI::ExistingFile);
  command
      ->add_option("--reference", o->reference,
                   "with --compare: the condition the recipe was tuned on, left out of the held-out means "
                   "(default demo)")
      ->needs(compare);
  command->add_option(
      "overrides", o->overrides,
      "key.sub=value overrides applied to every condition; the summary names them (all but pipeline.seeds and run.*) "
      "as its recipe");
  for (auto* reader : {merge, compare}) {
    reader->excludes("--report-only")
        ->excludes("--only")
        ->excludes("--conditions")
        ->excludes("overrides")
        ->excludes(variant);
  }
  merge->excludes(compare);
  command->callback([o] {
    if (!o->compare.empty()) {
      const RecipeComparison r = write_recipe_comparison(
          read_conditions_summary(o->compare[0]), read_conditions_summary(o->compare[1]), o->reference, o->output);
      std::printf("%s\nreport: %s (also %s)\n", r.markdown.c_str(), r.markdown_path.c_str(), r.json_path.c_str());
      return;
    }
    std::vector<ConditionResults> runs;
    if (!o->merge.empty()) {
      std::vector<std::vector<ConditionResults>> summaries;
      for (const auto& path : o->merge) summaries.push_back(read_conditions_summary(path));
      runs = merge_condition_results(summaries);
    } else {
      const std::string folder = o->folder.empty() ? experiment_file("conditions") : o->folder;
      for (const auto& [name, path] : condition_files(folder, o->only)) {
        std::vector<std::string> overrides = {"run.out_dir=" + o->output};
        overrides.insert(overrides.end(), o->overrides.begin(), o->overrides.end());
        overrides.push_back("run.name=conditions_" + name);  // last: each condition has its own run
        const Config config = load_config(path, overrides);
        const auto& variants = config.pipeline.variants;
        if (!o->variant.empty() && std::none_of(variants.begin(), variants.end(),
                                                [&](const PipelineVariant& v) { return v.name == o->variant; })) {
          throw Error("--variant " + o->variant + ": " + path + " with the overrides given has no pipeline.variants " +
                      "entry of that name");
        }
        std::string report = (fs::path(run_dir_path(config)) / "report.json").string();
        if (o->report_only) {
          require_run_made_with(config, path);  // the summary names the recipe it is given
        } else {
          std::printf("== condition %s (%s)\n", name.c_str(), path.c_str());
          std::fflush(stdout);
          report = run_pipeline(config).json_path;
        }
        runs.push_back(read_condition_run(
            {name, experiment_description(path), path, report, recipe_overrides(o->overrides), o->variant}));
      }
    }
    const ConditionsReport r = write_conditions_report(runs, o->output);
    std::printf("%s\nreport: %s (also %s)\n", r.markdown.c_str(), r.markdown_path.c_str(), r.json_path.c_str());
  });
}

void register_table(CLI::App& reproduce, const std::string& table, const std::string& what) {
  auto* command = reproduce.add_subcommand(table, what);
  struct Options {
    std::string config, output = "runs", openeds, aea, mpiigaze, mpiifacegaze;
    std::vector<std::string> overrides;
  };
  auto o = std::make_shared<Options>();
  command->add_option("-c,--config", o->config, "the experiment (default: experiments/" + table + ".yaml)")
      ->check(CLI::ExistingFile);
  command->add_option("-o,--output", o->output, "where the run folder goes (run.out_dir; default runs)");
  command->add_option("--openeds2020", o->openeds, "OpenEDS2020 root (default: a rendered stand-in)");
  command->add_option("--aea", o->aea, "AEA root, a folder of recordings (default: a rendered stand-in)");
  command->add_option("--mpiigaze", o->mpiigaze, "MPIIGaze root, holding Data/Normalized (default: a stand-in)");
  command->add_option("--mpiifacegaze", o->mpiifacegaze, "MPIIFaceGaze root, holding pXX/ (default: a stand-in)");
  command->add_option("overrides", o->overrides, "key.sub=value overrides, applied after the file");
  command->callback([o, table] {
    std::vector<std::string> overrides = {"run.out_dir=" + o->output};
    const std::pair<const char*, const std::string*> roots[] = {{"pipeline.openeds", &o->openeds},
                                                                {"pipeline.aea", &o->aea},
                                                                {"pipeline.mpiigaze", &o->mpiigaze},
                                                                {"pipeline.mpiifacegaze", &o->mpiifacegaze}};
    for (const auto& [key, root] : roots) {
      if (root->empty()) continue;
      if (!fs::exists(*root)) throw Error(*root + ": " + key + " not found");
      overrides.push_back(std::string(key) + "=" + fs::absolute(*root).string());
    }
    overrides.insert(overrides.end(), o->overrides.begin(), o->overrides.end());
    const Config config = load_config(o->config.empty() ? experiment_file(table + ".yaml") : o->config, overrides);
    const PipelineReport r = run_pipeline(config);
    if (table == "table3") {
      std::printf("%s\nreport: %s (also %s)\n", r.markdown.c_str(), r.markdown_path.c_str(), r.csv_path.c_str());
      return;
    }
    if (r.table_paths.empty()) {
      throw Error("the experiment has neither pipeline.baselines nor an MPII dataset, so it has no " + table +
                  "; its report is " + r.markdown_path);
    }
    const fs::path md = fs::path(r.markdown_path).parent_path() / (table + ".md");
    std::printf("%s\ntables: %s\n", read_text_file(md.string()).c_str(), join(r.table_paths, ", ").c_str());
  });
}

// Latency bars, one colour per device and runtime: the paper's Pi 4 beside this machine.
BarChart fig8_chart(const Fig8Report& r) {
  BarChart chart;
  chart.title = "Fig. 8: latency per frame, " + std::to_string(r.input_h) + "x" + std::to_string(r.input_w);
  chart.y_label = "ms per frame";
  for (const Fig8Row& row : r.rows) {
    chart.bars.push_back({row.model, "Raspberry Pi 4 (paper)", row.paper_pi4_ms});
    chart.bars.push_back({row.model, "LibTorch fp32, " + r.machine, row.torch_p50_ms});
    if (row.kernel_p50_ms >= 0) chart.bars.push_back({row.model, "our kernel, " + r.machine, row.kernel_p50_ms});
  }
  return chart;
}

}  // namespace

void register_reproduce(CLI::App& app) {
  auto* command = app.add_subcommand(
      "reproduce", "the paper's tables and figures (table1, table2, table3, fig8), and our held-out conditions");
  command->require_subcommand(1);
  register_table(*command, "table1",
                 "Table 1 (generalised): DFT Gaze, its teacher and three published baselines on four datasets");
  register_table(*command, "table2", "Table 2 (personalised, k = 5): the same run as table1, personalised");
  register_table(*command, "table3", "Table 3: teacher vs DFT Gaze, generalised and personalised (the demo's run)");
  register_conditions(*command);
  auto* fig8 = command->add_subcommand(
      "fig8", "latency of the teacher and DFT Gaze here (LibTorch fp32, our kernel) beside the paper's Pi 4 numbers");
  auto options = std::make_shared<ConfigOptions>();
  auto student = std::make_shared<std::string>();
  auto teacher = std::make_shared<std::string>();
  auto source = std::make_shared<std::string>();
  auto frames = std::make_shared<int64_t>(1000);
  auto output = std::make_shared<std::string>();
  fig8->add_option("--student", *student, "trained student (.h5); default: a fresh one (latency ignores weights)");
  fig8->add_option("--teacher", *teacher, "trained teacher (.h5); default: a fresh one");
  fig8->add_option("--frames", *frames, "timed frames per model and runtime (default 1000, as the paper)");
  fig8->add_option("-o,--output", *output, "folder for fig8.md and fig8.json");
  fig8->add_option("--data", *source, "eye frames to time on, any data.source (default: rendered AEA frames)");
  options->add_to(*fig8);
  fig8->callback([options, student, teacher, source, frames, output] {
    Config config = options->load(*source);
    if (config.export_.input_size.empty()) config.export_.input_size = {224, 224};
    // Without frames, render a few AEA-layout recordings (the paper timed AEA eye images).
    const TemporaryFolder rendered("gaze_fig8_frames");
    if (config.data.source.empty()) {
      SynthConfig synth = config.synth;
      synth.out_dir = rendered.path();
      synth.layouts = {"aea"};
      synth.participants = 3;
      synth.aea_frames = 30;
      write_synthetic_datasets(synth, uint64_t(config.run.seed), config.run.threads);
      config.data.source = "aea:" + rendered.path() + "/aea";
    }
    const Fig8Report r = reproduce_fig8(config, *student, *teacher, *frames);
    if (!output->empty()) {
      std::filesystem::create_directories(*output);
      write_text_atomically(*output + "/fig8.md", r.markdown());
      write_text_atomically(*output + "/fig8.json", r.json().dump(2) + "\n");
      write_chart_png(fig8_chart(r), *output + "/fig8.png");
    }
    std::printf("%s", r.markdown().c_str());
  });
}

}  // namespace gaze::cli
