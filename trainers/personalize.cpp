#include "trainers/personalize.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <filesystem>
#include <numeric>

#include "datasets/kmeans.h"
#include "datasets/open_dataset.h"
#include "datasets/splits.h"
#include "libgaze/core/crc32c.h"
#include "libgaze/core/error.h"
#include "libgaze/core/progress.h"
#include "libgaze/core/random.h"
#include "libgaze/io/checkpoint.h"
#include "libgaze/metrics/angular_error.h"
#include "libgaze/models/param_groups.h"
#include "trainers/batches.h"
#include "trainers/evaluate.h"
#include "trainers/losses.h"
#include "trainers/trainer.h"

namespace gaze {
namespace {

constexpr int kCalibrationViews = 4;  // augmented copies of each calibration image

// Stage-3 features (input of stage 4), gaze targets and blink flags of some items.
struct Cached {
  at::Tensor features, gaze, blink;
  int64_t size() const { return features.defined() ? features.size(0) : 0; }
};

Cached cache_features(GazeNet& model, const Dataset& data, const std::vector<int64_t>& items,
                      const PreprocessOptions& options, uint64_t seed) {
  Cached out;
  if (items.empty()) return out;
  std::vector<at::Tensor> f, g, b;
  at::NoGradGuard no_grad;
  for (size_t start = 0; start < items.size(); start += 64) {
    const std::vector<int64_t> chunk(items.begin() + start, items.begin() + std::min(items.size(), start + 64));
    const Batch batch = make_batch(data, chunk, options, seed_mix(seed, uint64_t(start)));
    f.push_back(model->forward_stages(batch.images, {}, 0, 2).back());
    g.push_back(batch.gaze);
    b.push_back(batch.blink);
  }
  return {at::cat(f), at::cat(g), at::cat(b)};
}

at::Tensor head_from_stage3(GazeNet& model, const at::Tensor& features) {
  return model->forward_head(model->forward_stages(features, {}, 3, 3).back(), features);
}

double mean_error(GazeNet& model, const Cached& eval) {
  at::NoGradGuard no_grad;
  model->eval();
  const at::Tensor out = head_from_stage3(model, eval.features);
  const at::Tensor d = gaze_directions(out).to(at::kDouble).contiguous();
  const at::Tensor t = eval.gaze.to(at::kDouble).contiguous();
  double sum = 0;
  int64_t n = 0;
  for (int64_t i = 0; i < d.size(0); ++i) {
    if (eval.blink[i].item<bool>()) continue;
    const double* p = d.data_ptr<double>() + 3 * i;
    const double* q = t.data_ptr<double>() + 3 * i;
    sum += angular_error_deg({p[0], p[1], p[2]}, {q[0], q[1], q[2]});
    ++n;
  }
  return n ? sum / n : 0.0;
}

std::vector<ParamGroup> user_groups(const Config& config) {
  if (config.personalize.train_head) return {ParamGroup::kLastStageAdapters, ParamGroup::kHead};
  return {ParamGroup::kLastStageAdapters};
}

// Tunes the user tensors of `model` on calibration views + replay; returns nothing, edits model.
void tune(GazeNet& model, const Cached& calibration, const Cached& replay, const Config& config, uint64_t seed) {
  const PersonalizeConfig& pc = config.personalize;
  const std::string& loss = config.train.gaze_loss;
  train_only(*model, user_groups(config));
  std::vector<at::Tensor> params;
  for (auto& p : model->parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(pc.lr).weight_decay(0.0));
  model->eval();  // frozen BatchNorm statistics; weights still learn
  const int64_t replay_count = replay.size() ? std::llround(pc.batch_size * pc.replay_fraction) : 0;
  const int64_t own_count = pc.batch_size - replay_count;
  SplitMix rng(seed);
  for (int64_t step = 0; step < pc.steps; ++step) {
    std::vector<int64_t> own(own_count), rep(replay_count);
    for (auto& i : own) i = int64_t(rng.next() % uint64_t(calibration.size()));
    for (auto& i : rep) i = int64_t(rng.next() % uint64_t(replay.size()));
    const at::Tensor own_index = at::tensor(own, at::kLong);
    at::Tensor features = calibration.features.index_select(0, own_index);
    at::Tensor gaze = calibration.gaze.index_select(0, own_index);
    if (replay_count) {
      const at::Tensor rep_index = at::tensor(rep, at::kLong);
      features = at::cat({features, replay.features.index_select(0, rep_index)});
      gaze = at::cat({gaze, replay.gaze.index_select(0, rep_index)});
    }
    optimizer.zero_grad();
    gaze_loss(head_from_stage3(model, features), gaze, loss, model->config().head.uncertainty).backward();
    optimizer.step();
  }
  train_only(*model, {});
}

// The tensors a user tunes, saved from the base model so that each calibration can tune the base
// in place and put them back: cheaper than a fresh copy of the model per user and k (the
// teacher holds 3.7M parameters, a baseline up to 90M). The destructor restores them and every
// parameter's requires_grad, so the caller's model comes back as it was, also when a
// calibration throws. Buffers are not saved: personalisation runs in eval mode, which leaves
// BatchNorm statistics alone.
class SavedTensors {
 public:
  SavedTensors(torch::nn::Module& model, const std::vector<at::Tensor>& tensors) : model_(model) {
    at::NoGradGuard no_grad;
    for (auto& p : model.parameters()) trainable_.push_back(p.requires_grad());
    for (const auto& t : tensors) saved_.emplace_back(t, t.clone());
  }
  SavedTensors(const SavedTensors&) = delete;
  SavedTensors& operator=(const SavedTensors&) = delete;
  ~SavedTensors() {
    restore();
    size_t i = 0;
    for (auto& p : model_.parameters()) p.requires_grad_(trainable_[i++]);
  }

  void restore() {
    at::NoGradGuard no_grad;
    for (auto& [live, copy] : saved_) live.copy_(copy);
  }

 private:
  torch::nn::Module& model_;
  std::vector<bool> trainable_;
  std::vector<std::pair<at::Tensor, at::Tensor>> saved_;  // (the model's tensor, its base value)
};

std::vector<at::Tensor> user_tensors(GazeNet& model, const Config& config) {
  std::vector<at::Tensor> out;
  for (const ParamGroup group : user_groups(config)) {
    for (auto& [name, p] : named_parameters_in(*model, group)) out.push_back(p);
  }
  return out;
}

// The means over users of what each user's result holds.
void average_over_users(PersonalizeResult& result) {
  const double n = double(result.users.size());
  for (const auto& u : result.users) {
    result.before_deg += u.before_deg / n;
    result.after_deg += u.after_deg / n;
    result.seconds_per_user += u.seconds / n;
    result.calibrate_seconds_per_user += u.calibrate_seconds / n;
    for (const auto& [k, e] : u.k_curve) result.k_curve[k] += e / n;
  }
}

}  // namespace

std::unique_ptr<Dataset> open_replay_dataset(const Config& config) {
  if (config.personalize.replay <= 0) return nullptr;
  DataConfig replay = config.data;
  replay.split = "train";
  if (!config.personalize.replay_source.empty()) replay.source = config.personalize.replay_source;
  return open_dataset(replay);
}

std::vector<int64_t> replay_items(const Dataset& replay, const Config& config, int64_t count) {
  std::vector<std::array<float, 3>> gaze(size_t(replay.size()));
  for (int64_t i = 0; i < replay.size(); ++i) gaze[size_t(i)] = replay.label(i).gaze;
  const int k = int(std::min<int64_t>(config.train.clusters, replay.size()));
  ClusterBalancedSampler sampler(kmeans(gaze, k, uint64_t(config.run.seed)).assignment,
                                 seed_mix(uint64_t(config.run.seed), stream::kReplay));
  std::vector<int64_t> items(size_t(std::max<int64_t>(count, 0)));
  for (auto& i : items) i = sampler.next();
  return items;
}

PersonalizeResult personalize(GazeNet& base, const Dataset& users, const Dataset* replay_data, const Config& config,
                              const std::string& out_dir) {
  const PersonalizeConfig& pc = config.personalize;
  std::filesystem::create_directories(out_dir);
  PersonalizeResult result;
  result.protocol = calibration_protocol(users, pc);
  const auto splits = personalisation_users(users, pc, uint64_t(config.run.seed));
  const PreprocessOptions plain = preprocess_options(config, false);
  PreprocessOptions augmented = plain;
  augmented.augment = true;
  base->eval();
  const bool with_head = pc.train_head;
  const uint32_t fingerprint = base_fingerprint(base, with_head);
  SavedTensors base_user(*base, user_tensors(base, config));

  // The replay subset: K-means-balanced draws from the generalised training set, cached once.
  Cached replay;
  if (replay_data && pc.replay > 0 && pc.replay_fraction > 0)
    replay = cache_features(base, *replay_data, replay_items(*replay_data, config, pc.replay), plain, 0);

  ProgressBar bar("personalize", int64_t(splits.size()));
  for (const auto& [participant, split] : splits) {
    const auto start = std::chrono::steady_clock::now();
    UserResult user;
    user.participant = participant;
    const Cached eval = cache_features(base, users, split.evaluation, plain, 0);
    user.eval_frames = eval.size();
    base_user.restore();  // the previous user's tuning is still in the base model
    user.before_deg = mean_error(base, eval);
    // Calibration pool in views: view 0 plain, the rest augmented. Timed as part of one
    // calibration (it holds the k_max >= k images, so the time is an upper bound for k). Each k
    // takes the first k rows of every view: calibration_shots(split, k), cached once.
    const auto views_start = std::chrono::steady_clock::now();
    std::vector<Cached> views;
    views.push_back(cache_features(base, users, split.calibration, plain, 0));
    for (int v = 1; v < kCalibrationViews; ++v) {
      views.push_back(cache_features(base, users, split.calibration, augmented, uint64_t(participant) * 100 + v));
    }
    const double views_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - views_start).count();
    std::vector<int64_t> ks = pc.k_curve;
    if (std::find(ks.begin(), ks.end(), pc.k) == ks.end()) ks.push_back(pc.k);
    for (int64_t k : ks) {
      base_user.restore();  // every k starts from the base model's user tensors
      const auto tune_start = std::chrono::steady_clock::now();
      if (k > 0) {
        Cached calibration;
        std::vector<at::Tensor> f, g, b;
        for (const Cached& view : views) {
          f.push_back(view.features.narrow(0, 0, k));
          g.push_back(view.gaze.narrow(0, 0, k));
          b.push_back(view.blink.narrow(0, 0, k));
        }
        calibration = {at::cat(f), at::cat(g), at::cat(b)};
        tune(base, calibration, replay, config,
             seed_mix(uint64_t(config.run.seed), stream::kPersonalize, uint64_t(participant), uint64_t(k)));
      }
      const double tune_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - tune_start).count();
      const double error = mean_error(base, eval);
      user.k_curve[k] = error;
      if (k == pc.k) {
        user.calibrate_seconds = views_seconds + tune_seconds;
        user.after_deg = error;
        user.calibration = calibration_shots(split, k);  // the views' first k rows
        user.adapter_file = out_dir + "/user_" + std::to_string(participant) + ".h5";
        save_user_adapter(user.adapter_file, base, with_head, participant, fingerprint, config);
      }
    }
    user.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.users.push_back(user);
    bar.tick();
  }
  bar.finish();
  average_over_users(result);
  return result;
}

PersonalizeResult personalize_baseline(Baseline& base, const Dataset& users, const Config& config) {
  const PersonalizeConfig& pc = config.personalize;
  PersonalizeResult result;
  result.protocol = calibration_protocol(users, pc);
  const auto splits = personalisation_users(users, pc, uint64_t(config.run.seed));
  PreprocessOptions augmented = preprocess_options(config, false);
  augmented.augment = true;
  SavedTensors base_weights(*base, base->parameters());
  const auto mean_of = [](const EvalResult& r) { return r.summary.all_frames.mean; };

  ProgressBar bar("personalize " + base->arch, int64_t(splits.size()));
  for (const auto& [participant, split] : splits) {
    const auto start = std::chrono::steady_clock::now();
    UserResult user;
    user.participant = participant;
    base_weights.restore();  // the previous user's fine-tuning is still in the base model
    const EvalResult before = evaluate(base, users, config, split.evaluation);
    user.eval_frames = int64_t(before.errors_deg.size());
    user.before_deg = mean_of(before);
    // DFT Gaze's k frames, so scored on the same frames as it.
    user.calibration = calibration_shots(split, pc.k);
    const std::vector<int64_t>& shots = user.calibration;
    const auto tune_start = std::chrono::steady_clock::now();
    for (auto& p : base->parameters()) p.requires_grad_(true);
    torch::optim::AdamW optimizer(base->parameters(), torch::optim::AdamWOptions(pc.lr).weight_decay(0.0));
    base->eval();  // frozen BatchNorm statistics and no dropout on k images; every weight learns
    const uint64_t seed = seed_mix(uint64_t(config.run.seed), stream::kPersonalize, uint64_t(participant));
    for (int64_t step = 0; step < pc.steps; ++step) {
      const Batch batch = make_batch(users, shots, augmented, seed_mix(seed, uint64_t(step)));
      optimizer.zero_grad();
      direction_l1_loss(base->forward(batch.images, batch.head), batch.gaze).backward();
      optimizer.step();
    }
    user.calibrate_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - tune_start).count();
    user.after_deg = mean_of(evaluate(base, users, config, split.evaluation));
    user.k_curve = {{0, user.before_deg}, {pc.k, user.after_deg}};
    user.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.users.push_back(user);
    bar.tick();
  }
  bar.finish();
  average_over_users(result);
  return result;
}

}  // namespace gaze
