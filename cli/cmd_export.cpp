// gaze export — lower a trained student to the fixed-point C++ kernel; gaze bench — time it
// against LibTorch fp32 on the same frames (SPEC §4).
#include <cstdio>

#include "cli/commands.h"
#include "export/export_job.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"

namespace gaze::cli {

void register_export(CLI::App& app) {
  auto* command = app.add_subcommand(
      "export", "quantise a student and write the fixed-point C++ kernel folder (or the float model as ONNX)");
  auto options = std::make_shared<ConfigOptions>();
  auto request = std::make_shared<ExportRequest>();
  auto source = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto format = std::make_shared<std::string>("kernel");
  command->add_option("--checkpoint", request->checkpoint, "trained student (.h5)")->required();
  command->add_option("-o,--output", request->out_dir, "kernel folder to write (the .onnx file with --format onnx)")
      ->required();
  command
      ->add_option("--format", *format,
                   "kernel: the fixed-point C++ kernel (default); onnx: the float model as ONNX (opset 17), any "
                   "checkpoint, teacher too")
      ->check(CLI::IsMember({"kernel", "onnx"}));
  command->add_option("--merge-user", request->merge_user, "a user adapter file merged into the weights");
  command
      ->add_option("--users", request->users,
                   "user adapter files exported as dftgaze_set_user blobs (comma-separated or repeated)")
      ->delimiter(',')
      ->allow_extra_args(false);  // one value per occurrence, so a positional source can follow
  command->add_option("source", *source, "calibration data (overrides data.source)");
  command->add_flag("--json", *json, "print one JSON object");
  options->add_to(*command);
  command->callback([options, request, source, json, format] {
    if (*format == "onnx") {
      if (!request->users.empty()) throw Error("--users makes kernel blobs; with --format onnx use --merge-user");
      export_onnx_model(*request);
      std::printf("wrote %s\n", request->out_dir.c_str());
      return;
    }
    const Config config = options->load(*source);
    const ExportReport r = export_kernel(config, *request);
    std::printf("%s\n", *json ? r.json().dump(2).c_str() : (r.markdown() + "\nwrote " + request->out_dir).c_str());
  });
}

void register_bench(CLI::App& app) {
  auto* command = app.add_subcommand("bench", "latency of the fixed-point kernel beside LibTorch fp32, same frames");
  auto options = std::make_shared<ConfigOptions>();
  auto checkpoint = std::make_shared<std::string>();
  auto kernel = std::make_shared<std::string>();
  auto source = std::make_shared<std::string>();
  auto frames = std::make_shared<int64_t>(1000);
  auto threads = std::make_shared<int64_t>(1);
  auto json = std::make_shared<bool>(false);
  auto output = std::make_shared<std::string>();
  auto model = std::make_shared<std::string>();
  auto personalize = std::make_shared<int64_t>(0);
  command->add_option("--checkpoint", *checkpoint, "trained student (.h5); also the LibTorch baseline")->required();
  command->add_option("--model", *model,
                      "pi4: also the Raspberry Pi 4 cycle model (llvm-mca over the kernel's NEON loops x passes)");
  command->add_option("--kernel", *kernel, "an exported kernel folder (default: export one to a temp folder)");
  command->add_option("--personalize", *personalize,
                      "also time one wearer's calibration, gaze personalize (LibTorch) against dftgaze_personalize "
                      "(the kernel), on the test split's people: this many rounds, alternated");
  command->add_option("--frames", *frames, "timed frames per side, after warm-up (default 1000)");
  command->add_option("--threads", *threads, "LibTorch threads (the kernel runs on one; default 1)");
  command->add_option("source", *source, "frames to time on (overrides data.source)");
  command->add_flag("--json", *json, "print one JSON object");
  command->add_option("-o,--output", *output, "also write the JSON here");
  options->add_to(*command);
  command->callback([options, checkpoint, kernel, source, frames, threads, json, output, model, personalize] {
    const Config config = options->load(*source);
    const BenchReport r = bench_kernel(config, *checkpoint, *kernel, *frames, *threads, *model, *personalize);
    if (!output->empty()) write_text_atomically(*output, r.json.dump(2) + "\n");
    std::printf("%s\n", *json ? r.json.dump(2).c_str() : r.markdown.c_str());
  });
}

}  // namespace gaze::cli
