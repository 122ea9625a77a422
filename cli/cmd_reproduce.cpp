// gaze reproduce — the paper's tables and figures from one command. Today: fig8 (latency of
// the teacher and DFT Gaze here, beside the paper's Raspberry Pi 4 numbers).
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "datasets/synth/synth_writer.h"
#include "export/fig8.h"
#include "libgaze/core/atomic_file.h"

namespace gaze::cli {

void register_reproduce(CLI::App& app) {
  auto* command = app.add_subcommand("reproduce", "the paper's tables and figures: fig8");
  command->require_subcommand(1);
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
    }
    std::printf("%s", r.markdown().c_str());
  });
}

}  // namespace gaze::cli
