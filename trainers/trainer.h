// The training loop every stage shares, and the stages themselves (SPEC §2).
//
// A TrainingStage says what is trained (its model, auxiliary modules and trainable tensors),
// on which data (dataset + index plan) and how the loss is computed. run_training() owns the
// rest: the run directory (resolved config.yaml, log.txt, metrics.jsonl, TensorBoard events,
// checkpoints/), data parallelism over processes (distributed.h), AdamW with linear warm-up + cosine decay, gradient
// clipping, seeding, progress, metrics every train.log_every steps, optional weight averaging
// (train.ema, weight_average.h: model.h5 then holds the average), and an atomic resumable checkpoint every
// train.checkpoint_every steps and at the end (checkpoints/last.h5: model, auxiliary modules,
// optimiser moments, weight average, torch RNG, step). With `resume`, a run continues from last.h5 and ends
// with bit-identical weights to an uninterrupted run: batches and masks are pure functions of
// (seed, step), so the step is the whole data position. The final weights go to <run>/model.h5.
//
// Stages (make_stage):
//   teacher-mae  FCMAE pretraining of the teacher encoder (train.init: e.g. an imported
//                official checkpoint to continue from)
//   distill      MAE + KD: masked student, unmasked frozen teacher (train.teacher); pixel loss +
//                mae.kd_weight * feature loss at stages 3 and 4 through Psi projectors; stem and
//                stage 1 copied from the teacher and frozen
//   adapters     frozen backbone (train.init), all adapters + head, L1 or Laplace NLL, K-means
//                balanced batches
//   baseline     a published network (model.arch gazenet | rtgene | gazetr_hybrid), every
//                weight trained from scratch (or train.init) by L1 on the gaze direction,
//                K-means balanced batches (the paper's Table 1 protocol)
#pragma once

#include <torch/optim/adamw.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "datasets/dataset.h"
#include "libgaze/config/config.h"
#include "libgaze/io/model_io.h"
#include "libgaze/models/gaze_net.h"
#include "trainers/batches.h"
#include "trainers/distributed.h"

namespace gaze {

using MetricList = std::vector<std::pair<std::string, double>>;

class TrainingStage {
 public:
  virtual ~TrainingStage() = default;
  virtual std::string name() const = 0;
  // The model trained: checkpointed, broadcast to every rank, put in training mode.
  virtual torch::nn::Module& module() = 0;
  // What the run's config and checkpoints record as model (the architecture actually trained).
  virtual ModelConfig architecture() = 0;
  // Data parallelism: BatchNorm statistics over the global batch, where the model supports it.
  virtual void set_all_reduce(const AllReduceSum&) {}
  virtual std::vector<std::pair<std::string, torch::nn::Module*>> aux_modules() { return {}; }
  virtual TensorList trainable() = 0;
  virtual const Dataset& dataset() const = 0;
  virtual const IndexPlan& plan() const = 0;
  virtual at::Tensor loss(const Batch& batch, int64_t step, MetricList& metrics) = 0;
};

struct TrainResult {
  std::string run_dir, model_path;
  int64_t first_step = 0, steps = 0;
  double seconds = 0;
  MetricList last_metrics;
  SkipLog skipped;
};

std::unique_ptr<TrainingStage> make_stage(const std::string& name, const Config& config);
void check_stage_name(const std::string& name);  // throws Error listing the valid names

// One optimisation step as run_training takes it, for it and for callers that bring their own
// batches (the training benchmark): learning rate of the step (warm-up + cosine), zero_grad,
// stage.loss, backward, gradient average over ranks, clipping, AdamW. With an active `dist`, a
// failed collective becomes an Error naming the step and `checkpoint` (where to resume from).
class TrainingStep {
 public:
  TrainingStep(TrainingStage& stage, const TrainConfig& train, const Distributed& dist = Distributed(),
               std::string checkpoint = "");
  struct Outcome {
    double loss = 0, lr = 0, grad_norm = 0;  // loss: the global batch's (mean over ranks)
  };
  // `metrics` receives the stage's own values (averaged over ranks).
  Outcome run(const Batch& batch, int64_t step, MetricList& metrics);
  void barrier(int64_t step);  // waits for every rank (errors as above)
  const TensorList& params() const { return params_; }
  torch::optim::AdamW& optimizer() { return *optimizer_; }

 private:
  template <typename F>
  void across_ranks(int64_t step, const F& collective);
  TrainingStage& stage_;
  TrainConfig train_;
  Distributed dist_;  // a handle (shared group): copies are cheap
  std::string checkpoint_;
  TensorList params_;
  std::vector<at::Tensor> raw_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
};
// `stop_at` > 0 ends the run early after that step, with a checkpoint and without model.h5 —
// a pre-emptible slice of a longer run that --resume continues. With an active `dist`, this
// process trains its shard of every global batch (distributed.h); rank 0 alone writes the run
// directory, the others read its checkpoint to resume (so it must be on a filesystem they share).
TrainResult run_training(const Config& config, TrainingStage& stage, bool resume, int64_t stop_at = -1,
                         const Distributed& dist = Distributed());

}  // namespace gaze
