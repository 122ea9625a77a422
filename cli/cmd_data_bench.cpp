// gaze data bench — can the loaders feed training? Frames/s of each loading stage beside the
// student's training-step consumption, measured in the same run on this machine.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "cli/commands.h"
#include "datasets/open_dataset.h"
#include "datasets/prefetcher.h"
#include "datasets/preprocess.h"
#include "libgaze/core/parallel.h"
#include "libgaze/core/strings.h"
#include "libgaze/models/gaze_net.h"

namespace gaze::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (starts_with(line, "model name")) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

// Frames/s of decoding (and optionally pre-processing) `frames` items with `workers` threads.
double loader_rate(const Dataset& data, int64_t frames, int64_t workers, const PreprocessOptions* pre) {
  const auto start = Clock::now();
  const size_t floats = pre ? size_t(3) * pre->height * pre->width : 0;
  Prefetcher<int64_t> loader(
      frames,
      [&](int64_t i) {
        const Sample s = data.get(i % data.size());
        if (pre) {
          std::vector<float> buffer(floats);
          preprocess_sample(s, *pre, uint64_t(i), buffer.data());
        }
        return i;
      },
      workers, 4 * workers, false);
  while (loader.next()) {
  }
  return frames / seconds_since(start);
}

// Images/s the student consumes in a full training step (forward, backward, AdamW).
double training_rate(const ModelConfig& model, int64_t batch, int32_t height, int32_t width, int steps) {
  GazeNet net = make_gaze_net(model, 0);
  net->train();
  torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(1e-3));
  const at::Tensor x = at::randn({batch, 3, height, width});
  const at::Tensor target = at::randn({batch, 3});
  const auto step = [&] {
    optimizer.zero_grad();
    (gaze_directions(net->forward(x)) - target).abs().mean().backward();
    optimizer.step();
  };
  step();  // warm-up
  const auto start = Clock::now();
  for (int i = 0; i < steps; ++i) step();
  return steps * batch / seconds_since(start);
}

}  // namespace

void register_data_bench(CLI::App& data) {
  auto* command = data.add_subcommand("bench", "loader frames/s next to the student's training consumption");
  auto options = std::make_shared<ConfigOptions>();
  auto source = std::make_shared<std::string>();
  auto frames = std::make_shared<int64_t>(400);
  auto batch = std::make_shared<int64_t>(32);
  command->add_option("source", *source, "kind:path or a dataset folder (overrides data.source)");
  command->add_option("--frames", *frames, "frames per loader measurement")->capture_default_str();
  command->add_option("--batch", *batch, "training batch size")->capture_default_str();
  options->add_to(*command);
  command->callback([options, source, frames, batch] {
    Config config = options->load(*source);
    const auto dataset = open_dataset(config.data);
    if (dataset->size() == 0) throw Error(dataset->describe() + ": no items to benchmark");
    const int threads = resolve_threads(config.run.threads);
    at::set_num_threads(threads);
    PreprocessOptions pre;
    pre.height = int32_t(config.data.input_size[0]);
    pre.width = int32_t(config.data.input_size[1]);
    pre.augment = true;
    const Sample first = dataset->get(0);
    std::printf("machine   %s, %u hardware threads; LibTorch on %d threads\n", cpu_name().c_str(),
                std::thread::hardware_concurrency(), threads);
    std::printf("source    %s: %lld items, %dx%d; network input %dx%d\n", dataset->describe().c_str(),
                (long long)dataset->size(), first.image.height, first.image.width, pre.height, pre.width);
    const double decode_1 = loader_rate(*dataset, *frames, 1, nullptr);
    const double decode_n = loader_rate(*dataset, *frames, config.data.workers, nullptr);
    const double full_n = loader_rate(*dataset, *frames, config.data.workers, &pre);
    const double train = training_rate(config.model, *batch, pre.height, pre.width, 5);
    std::printf("%-46s %12s\n", "stage", "frames/s");
    std::printf("%-46s %12.1f\n", "decode, 1 worker", decode_1);
    std::printf("%-46s %12.1f\n", ("decode, " + std::to_string(config.data.workers) + " workers").c_str(), decode_n);
    std::printf("%-46s %12.1f\n",
                ("decode + augment + normalise, " + std::to_string(config.data.workers) + " workers").c_str(), full_n);
    std::printf("%-46s %12.1f\n",
                ("student training step (batch " + std::to_string(*batch) + ", " + config.model.arch + ")").c_str(),
                train);
    std::printf("loader / training = %.1fx (%s)\n", full_n / train,
                full_n >= train ? "the loader keeps up" : "the loader is the bottleneck");
  });
}

}  // namespace gaze::cli
