// gaze bench-train — how fast one training step of a stage runs here, on one batch held in
// memory, through the same code `gaze train` runs (make_stage + TrainingStep: loss, backward,
// clipping, AdamW). scripts/bench-train runs it beside a Python PyTorch statement of the same
// steps and prints the ratios.
//
// The stage is built as a run would build it: a few synthetic people are rendered into a
// temporary folder at the input size, the teacher comes from the teacher-mae stage's own
// constructor, the student from distill's, and the batch from the real loader (make_batch).
// Output: one JSON object (stage, batch, input, params, median / min step ms, images/s, peak
// resident memory of this process).
#include <ATen/Parallel.h>
#include <sys/resource.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>

#include "cli/commands.h"
#include "datasets/preprocess.h"
#include "datasets/synth/synth_writer.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/parallel.h"
#include "libgaze/io/model_io.h"
#include "trainers/trainer.h"

namespace gaze::cli {
namespace {

using Clock = std::chrono::steady_clock;

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;  // KiB on Linux
}

int64_t count(const TensorList& params) {
  int64_t n = 0;
  for (const auto& [name, p] : params) n += p.numel();
  return n;
}

// The checkpoint a stage starts from, made by the stage that produces it in a real run.
std::string stage_model(const std::string& producer, const Config& config, const std::string& path) {
  auto stage = make_stage(producer, config);
  Config stored = config;
  stored.model = stage->architecture();
  save_module(path, stage->module(), stored, producer, 0);
  return path;
}

}  // namespace

void register_bench_train(CLI::App& app) {
  auto* command = app.add_subcommand("bench-train", "time one training step of a stage on a batch held in memory");
  auto options = std::make_shared<ConfigOptions>();
  auto stage_name = std::make_shared<std::string>();
  auto steps = std::make_shared<int64_t>(10);
  auto warmup = std::make_shared<int64_t>(2);
  auto trace = std::make_shared<std::string>();
  command->add_option("stage", *stage_name, "teacher-mae, distill, adapters (the student's) or teacher-adapters")
      ->required();
  command->add_option("--steps", *steps, "timed steps")->capture_default_str();
  command->add_option("--warmup", *warmup, "untimed steps first")->capture_default_str();
  command->add_option("--trace", *trace, "also write a Chrome trace of the timed steps (LibTorch's profiler) here");
  options->add_to(*command);
  command->callback([options, stage_name, steps, warmup, trace] {
    // teacher-adapters: the adapters stage from a teacher, as the pipeline's teacher_adapters runs it.
    const bool teacher_adapters = *stage_name == "teacher-adapters";
    const std::string stage_kind = teacher_adapters ? "adapters" : *stage_name;
    check_stage_name(stage_kind);
    if (*steps < 1) throw Error("--steps must be at least 1");
    Config config = options->load();
    const auto& size = config.data.input_size;
    TemporaryFolder work("bench-train");
    SynthConfig synth = config.synth;
    synth.out_dir = work.path() + "/data";
    synth.layouts = {"openeds"};
    synth.openeds_size = {size[0], size[1]};
    synth.participants = 3;  // one per split; the batch comes from the train person
    synth.train_participants = 0.34;
    synth.validation_participants = 0.33;
    synth.train_frames = config.train.batch_size + 8;
    synth.validation_frames = synth.test_frames = 1;
    write_synthetic_datasets(synth, 0, config.run.threads);
    config.data.source = "openeds:" + synth.out_dir + "/openeds";
    config.data.split = "train";
    config.data.openeds_size = synth.openeds_size;
    validate_config(config);

    const int threads = resolve_threads(config.run.threads);
    at::set_num_threads(threads);
    if (stage_kind != "teacher-mae") {
      config.train.teacher = stage_model("teacher-mae", config, work.path() + "/teacher.h5");
    }
    if (stage_kind == "adapters") {
      config.train.init =
          teacher_adapters ? config.train.teacher : stage_model("distill", config, work.path() + "/student.h5");
    }
    auto stage = make_stage(stage_kind, config);
    TrainingStep step(*stage, config.train);
    const Batch batch = make_batch(stage->dataset(), stage->plan().indices(0), preprocess_options(config, true), 1);
    stage->module().train();
    std::vector<double> ms;
    std::optional<torch::autograd::profiler::RecordProfile> profile;
    for (int64_t s = 0; s < *warmup + *steps; ++s) {
      if (s == *warmup && !trace->empty()) profile.emplace(*trace);
      MetricList metrics;
      const auto start = Clock::now();
      step.run(batch, s, metrics);
      if (s >= *warmup) ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
    profile.reset();
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    std::printf(
        "{\"impl\": \"libgaze\", \"stage\": \"%s\", \"batch\": %lld, \"input\": [%lld, %lld], \"threads\": %d, "
        "\"trainable_params\": %lld, \"median_ms\": %.2f, \"min_ms\": %.2f, \"images_per_s\": %.2f, "
        "\"peak_rss_mib\": %.1f}\n",
        stage_name->c_str(), (long long)batch.images.size(0), (long long)size[0], (long long)size[1], threads,
        (long long)count(step.params()), median, ms.front(), 1000.0 * double(batch.images.size(0)) / median,
        peak_rss_mib());
  });
}

}  // namespace gaze::cli
