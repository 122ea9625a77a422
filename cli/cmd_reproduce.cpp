// gaze reproduce — the paper's tables and figures from one command:
//   table1, table2, table3  the pipeline of experiments/<table>.yaml (gaze run) on the datasets
//                           given, rendered stand-ins for the rest; the table beside the paper's
//   fig8                    latency of the teacher and DFT Gaze here, beside the paper's Pi 4
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "datasets/synth/synth_writer.h"
#include "export/fig8.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"
#include "trainers/charts.h"
#include "trainers/pipeline.h"

namespace gaze::cli {
namespace {

namespace fs = std::filesystem;

// experiments/<table>.yaml from the working directory, else from the source tree this binary
// was built from.
std::string experiment_file(const std::string& table) {
  const std::string name = "experiments/" + table + ".yaml";
  if (fs::exists(name)) return name;
  const std::string built = std::string(LIBGAZE_SOURCE_DIR) + "/" + name;
  if (fs::exists(built)) return built;
  throw Error(name + " not found (run from the libgaze checkout, or pass -c with the experiment file)");
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
    const Config config = load_config(o->config.empty() ? experiment_file(table) : o->config, overrides);
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
  auto* command = app.add_subcommand("reproduce", "the paper's tables and figures: table1, table2, table3, fig8");
  command->require_subcommand(1);
  register_table(*command, "table1",
                 "Table 1 (generalised): DFT Gaze, its teacher and three published baselines on four datasets");
  register_table(*command, "table2", "Table 2 (personalised, k = 5): the same run as table1, personalised");
  register_table(*command, "table3", "Table 3: teacher vs DFT Gaze, generalised and personalised (the demo's run)");
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
