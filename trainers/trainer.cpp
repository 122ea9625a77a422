#include "trainers/trainer.h"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>

#include "libgaze/config/run_dir.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/log.h"
#include "libgaze/core/parallel.h"
#include "libgaze/core/progress.h"
#include "libgaze/core/strings.h"
#include "libgaze/io/checkpoint_file.h"
#include "libgaze/io/optimizer_state.h"
#include "trainers/metrics_log.h"
#include "trainers/schedule.h"
#include "trainers/weight_average.h"

namespace gaze {
namespace {

constexpr const char* kAuxPrefix = "aux.";

TensorList aux_state(TrainingStage& stage) {
  TensorList out;
  for (auto& [prefix, module] : stage.aux_modules()) {
    for (auto& [name, t] : module_state(*module)) out.emplace_back(kAuxPrefix + prefix + "." + name, t);
  }
  return out;
}

void restore_aux(TrainingStage& stage, const TensorList& state, const std::string& source) {
  for (auto& [prefix, module] : stage.aux_modules()) {
    const std::string p = kAuxPrefix + prefix + ".";
    TensorList mine;
    for (const auto& [name, t] : state) {
      if (starts_with(name, p)) mine.emplace_back(name.substr(p.size()), t);
    }
    load_module_state(*module, mine, true, source + " (" + prefix + ")");
  }
}

// The model's and the auxiliary modules' parameters and buffers, for broadcasts.
std::vector<at::Tensor> all_state(TrainingStage& stage) {
  std::vector<at::Tensor> out;
  for (auto& [name, t] : module_state(stage.module())) out.push_back(t);
  for (auto& [name, t] : aux_state(stage)) out.push_back(t);
  return out;
}

// The checkpoints a stage starts from (train.init, train.teacher), each with the CRC-32C of its
// weights (names and values; not of the file, which a reused stage saves again), as recorded
// beside a run's config (inputs.txt): a run is resumed, or a finished one reused, only from the
// weights it was trained from. A pipeline reuses every stage whose config is unchanged, and a
// config names its inputs by path only: without this, retraining the distillation would leave
// the adapters trained on the old one in place.
std::string stage_inputs(const TrainConfig& t) {
  std::string out;
  for (const auto& [key, path] :
       {std::pair<const char*, std::string>{"train.init", t.init}, {"train.teacher", t.teacher}}) {
    if (path.empty()) continue;
    const uint32_t crc = arrays_crc32c(read_checkpoint_file(path).model);
    out += std::string(key) + " " + path + ": weights crc32c " + std::to_string(crc) + "\n";
  }
  return out;
}

// Refuses to resume `run` when what it started from has changed since; records it otherwise.
void check_stage_inputs(const RunDir& run, const TrainConfig& t, bool resuming) {
  const std::string path = run.path + "/inputs.txt", inputs = stage_inputs(t);
  if (resuming && std::filesystem::exists(path)) {
    const std::string recorded = read_text_file(path);
    if (recorded != inputs) {
      throw Error(path + ": this run was trained from\n" + recorded + "which has changed since:\n" + inputs +
                  "remove " + run.path + " to train it again from them");
    }
  }
  write_text_atomically(path, inputs);
}

}  // namespace

TrainingStep::TrainingStep(TrainingStage& stage, const TrainConfig& train, const Distributed& dist,
                           std::string checkpoint)
    : stage_(stage), train_(train), dist_(dist), checkpoint_(std::move(checkpoint)), params_(stage.trainable()) {
  if (params_.empty()) throw Error(stage.name() + ": nothing to train");
  for (auto& [name, p] : params_) raw_.push_back(p);
  optimizer_ = std::make_unique<torch::optim::AdamW>(
      raw_, torch::optim::AdamWOptions(train.lr).weight_decay(train.weight_decay));
}

// A collective that fails names the step and the checkpoint to resume from.
template <typename F>
void TrainingStep::across_ranks(int64_t step, const F& collective) {
  try {
    collective();
  } catch (const std::exception& e) {  // also LibTorch's autograd engine rethrowing ours
    if (!dist_.active()) throw;
    std::string reason = e.what();
    reason = reason.substr(0, reason.find('\n'));
    throw Error(stage_.name() + ": step " + std::to_string(step) + ": " + reason + "; the last checkpoint is " +
                checkpoint_);
  }
}

void TrainingStep::barrier(int64_t step) {
  across_ranks(step, [&] { dist_.barrier(); });
}

TrainingStep::Outcome TrainingStep::run(const Batch& batch, int64_t step, MetricList& values) {
  Outcome out;
  out.lr = cosine_lr(step, train_.steps, train_.warmup_steps, train_.lr, train_.min_lr);
  for (auto& group : optimizer_->param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(out.lr);
  }
  optimizer_->zero_grad();
  at::Tensor loss;
  across_ranks(step, [&] { loss = stage_.loss(batch, step, values); });  // synchronised BatchNorm
  out.loss = loss.item<double>();
  if (dist_.active()) {  // the global batch's loss and metrics: the mean of the equal shards'
    at::Tensor reported = at::empty({int64_t(values.size()) + 1}, at::kDouble);
    reported[0] = out.loss;
    for (size_t i = 0; i < values.size(); ++i) reported[int64_t(i) + 1] = values[i].second;
    across_ranks(step, [&] { dist_.average({reported}); });
    out.loss = reported[0].item<double>();
    for (size_t i = 0; i < values.size(); ++i) values[i].second = reported[int64_t(i) + 1].item<double>();
  }
  if (!std::isfinite(out.loss)) {
    throw Error(stage_.name() + ": loss is " + std::to_string(out.loss) + " at step " + std::to_string(step) +
                " (lower train.lr?); the last good checkpoint is " + checkpoint_);
  }
  across_ranks(step, [&] {
    loss.backward();  // synchronised BatchNorm's backward all-reduces too
    average_gradients(dist_, raw_);
  });
  if (train_.clip_grad > 0) out.grad_norm = torch::nn::utils::clip_grad_norm_(raw_, train_.clip_grad);
  optimizer_->step();
  return out;
}

TrainResult run_training(const Config& requested, TrainingStage& stage, bool resume, int64_t stop_at,
                         const Distributed& dist) {
  // What the run directory and checkpoints record is the architecture actually trained.
  Config config = requested;
  config.model = stage.architecture();
  const TrainConfig& t = config.train;
  // Rank 0 owns the run directory (lock, config.yaml, logs, metrics, checkpoints); the others
  // wait until it is open, then read the same checkpoint.
  RunDir run;
  if (dist.is_root()) {
    run = open_run_dir(config, resume);
    log_add_file(run.log_path());
  } else {
    run.path = run_dir_path(config);
  }
  dist.barrier();
  const int threads = resolve_threads(config.run.threads);
  if (config.run.threads > threads) {
    spdlog::warn("run.threads={} but this machine has {} cores: using {}", config.run.threads, threads, threads);
  }
  at::set_num_threads(threads);
  at::manual_seed(uint64_t(config.run.seed));

  TrainResult result;
  result.run_dir = run.path;
  const std::string last = run.checkpoint_dir() + "/last.h5";
  if (dist.is_root()) check_stage_inputs(run, t, resume && std::filesystem::exists(last));
  TrainingStep training_step(stage, t, dist, last);
  const TensorList& params = training_step.params();
  torch::optim::AdamW& optimizer = training_step.optimizer();
  TensorList resumed_state;  // the checkpoint's, for the weight average once every rank has the weights
  if (resume && std::filesystem::exists(last)) {
    Checkpoint c = load_checkpoint(last);
    if (c.stage != stage.name()) throw Error(last + ": holds stage '" + c.stage + "', not '" + stage.name() + "'");
    load_module_state(stage.module(), c.model, true, last);
    restore_aux(stage, c.state, last);
    adamw_state_from_tensors(optimizer, params, c.optimizer, last);
    const at::Tensor rng = find_tensor(c.state, "rng.torch_cpu");
    if (!rng.defined()) throw Error(last + ": no RNG state to resume from");
    set_cpu_rng_state(rng);
    result.first_step = c.step;
    resumed_state = std::move(c.state);
    spdlog::info("{}: resuming {} at step {}", run.path, stage.name(), c.step);
  } else if (resume) {
    spdlog::info("{}: nothing to resume, starting {} from step 0", run.path, stage.name());
  }

  if (dist.active()) {  // every rank starts from rank 0's weights, however it got them
    at::NoGradGuard no_grad;
    dist.broadcast(all_state(stage));
    stage.set_all_reduce(dist.differentiable_sum());  // adapters' BatchNorm: global batch
  }
  WeightAverage average(stage.module(), t.ema);
  if (!resumed_state.empty()) average.restore(resumed_state, last);

  const auto save = [&](int64_t step) {
    if (!dist.is_root()) return;
    Checkpoint c;
    c.stage = stage.name();
    c.step = step;
    c.config_yaml = dump_config(config);
    c.model = module_state(stage.module());
    c.optimizer = adamw_state_to_tensors(optimizer, params);
    c.state = aux_state(stage);
    for (auto& item : average.state()) c.state.push_back(std::move(item));
    c.state.emplace_back("rng.torch_cpu", cpu_rng_state());
    save_checkpoint(last, c);
  };

  const auto start = std::chrono::steady_clock::now();
  const int64_t end_step = stop_at > 0 ? std::min(stop_at, t.steps) : t.steps;
  BatchStream stream(stage.dataset(), stage.plan(), result.first_step, end_step, preprocess_options(config, true),
                     uint64_t(config.run.seed), config.data.workers,
                     std::max<int64_t>(2, config.data.prefetch / t.batch_size), config.data.skip_bad,
                     Shard{dist.rank(), dist.world_size()});
  std::optional<MetricsLog> metrics;
  if (dist.is_root()) metrics.emplace(run.path, result.first_step);
  ProgressBar bar(stage.name(), std::max<int64_t>(0, end_step - result.first_step),
                  dist.is_root() ? ProgressBar::Mode::kAuto : ProgressBar::Mode::kSilent);
  stage.module().train();
  double loss_sum = 0;
  int64_t loss_count = 0;
  for (int64_t step = result.first_step; step < end_step; ++step) {
    std::optional<Batch> batch = stream.next();
    if (!batch || batch->images.size(0) == 0)
      throw Error(stage.name() + ": step " + std::to_string(step) + ": empty batch");
    MetricList values;
    const TrainingStep::Outcome outcome = training_step.run(*batch, step, values);
    average.update(step);
    loss_sum += outcome.loss;
    ++loss_count;
    char status[64];
    std::snprintf(status, sizeof status, "loss %.4f", outcome.loss);
    bar.tick(1, status);
    if ((step + 1) % t.log_every == 0 || step + 1 == t.steps) {
      values.insert(values.begin(), {"loss", loss_sum / loss_count});
      values.emplace_back("lr", outcome.lr);
      if (t.clip_grad > 0) values.emplace_back("grad_norm", outcome.grad_norm);
      if (metrics) metrics->write(step + 1, values);
      result.last_metrics = values;
      loss_sum = 0;
      loss_count = 0;
    }
    if ((step + 1) % t.checkpoint_every == 0 || step + 1 == end_step) save(step + 1);
  }
  bar.finish();
  training_step.barrier(end_step);
  stage.set_all_reduce(nullptr);
  result.steps = std::max(end_step, result.first_step);
  result.skipped = stream.skipped();
  if (result.steps == t.steps && dist.is_root()) {
    result.model_path = run.path + "/model.h5";
    average.copy_into_model();
    save_module(result.model_path, stage.module(), config, stage.name(), t.steps);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (result.skipped.count) spdlog::warn("{}", result.skipped.summary());
  return result;
}

}  // namespace gaze
