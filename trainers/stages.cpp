// The training stages of SPEC §2, and the baselines' (Tables 1 and 2), as TrainingStage implementations.
#include <spdlog/spdlog.h>

#include <array>
#include <cmath>

#include "datasets/cached.h"
#include "datasets/kmeans.h"
#include "datasets/open_dataset.h"
#include "datasets/preprocess.h"
#include "libgaze/core/error.h"
#include "libgaze/core/random.h"
#include "libgaze/core/strings.h"
#include "libgaze/models/param_groups.h"
#include "trainers/batches.h"
#include "trainers/losses.h"
#include "trainers/mae_heads.h"
#include "trainers/participant_offsets.h"
#include "trainers/trainer.h"

namespace gaze {
namespace {

// teacher-mae always trains the teacher and distill the student: a model.arch saying otherwise
// is a mistake to report, not to override silently.
void refuse_other_arch(const Config& config, const std::string& arch, const std::string& stage) {
  if (config_origin(config, "model.arch") != "default" && config.model.arch != arch) {
    throw Error(config_origin(config, "model.arch") + ": model.arch=" + config.model.arch + ", but " + stage +
                " trains the " + arch);
  }
}

constexpr int64_t kStride = 32;  // stage-4 stride: the decoder predicts one 32x32 patch per position

uint64_t mask_seed(const Config& config, int64_t step) {
  return seed_mix(uint64_t(config.run.seed), stream::kMask, uint64_t(step));
}

// Hidden-patch mask for a batch, on the mae.patch grid: the global batch's masks, this shard's
// rows of them (so data-parallel shards hide exactly what one process would).
at::Tensor batch_mask(const Config& config, const Batch& batch, int64_t step) {
  const int64_t p = config.mae.patch, rows = batch.images.size(0);
  const int64_t global = std::max(batch.global_size, batch.offset + rows);
  return random_patch_mask(global, batch.images.size(2) / p, batch.images.size(3) / p, config.mae.mask_ratio,
                           mask_seed(config, step))
      .narrow(0, batch.offset, rows);
}

// The single-channel pixel target (the three input channels are one grey image).
at::Tensor pixel_target(const at::Tensor& images) { return images.narrow(1, 0, 1); }

TensorList backbone_params(GazeNet& net, ParamGroup excluded = ParamGroup::kHead) {
  TensorList out;
  for (auto& [name, p] : named_parameters_in(*net, ParamGroup::kBackbone)) {
    // The head LayerNorm is not part of the FCMAE encoder.
    if (starts_with(name, "norm.") || in_param_group(name, excluded)) continue;
    out.emplace_back(name, p);
  }
  return out;
}

void append_params(TensorList& out, const std::string& prefix, torch::nn::Module& module) {
  for (auto& item : module.named_parameters(true)) out.emplace_back(prefix + "." + item.key(), item.value());
}

class DataStage : public TrainingStage {
 public:
  explicit DataStage(const Config& config)
      : config_(config), data_(cache_decoded(open_dataset(config.data), config.data.cache_mib)) {
    if (data_->size() == 0) throw Error(data_->describe() + ": no training items");
    spdlog::info("training on {}: {} items", data_->describe(), data_->size());
    plan_ = shuffled_plan(data_->size(), config.train.batch_size, uint64_t(config.run.seed));
  }
  const Dataset& dataset() const override { return *data_; }
  const IndexPlan& plan() const override { return *plan_; }

 protected:
  // K-means-balanced batches over the gaze labels (SPEC §2 stage 3) instead of shuffled ones.
  void balance_by_gaze(const std::string& stage) {
    std::vector<std::array<float, 3>> gaze(size_t(data_->size()));
    for (int64_t i = 0; i < data_->size(); ++i) gaze[size_t(i)] = data_->label(i).gaze;
    const int k = int(std::min<int64_t>(config_.train.clusters, data_->size()));
    const KMeansResult clusters = kmeans(gaze, k, uint64_t(config_.run.seed));
    spdlog::info("{}: K-means balancing over {} gaze clusters (inertia {:.4f})", stage, k, clusters.inertia);
    plan_ = balanced_plan(clusters.assignment, config_.train.batch_size, uint64_t(config_.run.seed));
  }

  Config config_;
  std::unique_ptr<Dataset> data_;
  std::unique_ptr<IndexPlan> plan_;
};

// A stage that trains a GazeNet (teacher or student).
class GazeNetStage : public DataStage {
 public:
  using DataStage::DataStage;
  torch::nn::Module& module() override { return *net(); }
  ModelConfig architecture() override { return net()->config(); }
  void set_all_reduce(const AllReduceSum& sum) override { net()->set_all_reduce(sum); }

 protected:
  virtual GazeNet& net() = 0;
};

class TeacherMaeStage : public GazeNetStage {
 public:
  explicit TeacherMaeStage(const Config& config) : GazeNetStage(config) {
    refuse_other_arch(config, "teacher", "teacher-mae");
    if (config.train.init.empty()) {
      Config teacher = config;
      teacher.model.arch = "teacher";
      teacher.model.dims.clear();
      teacher.model.depths.clear();
      validate_config(teacher);
      net_ = make_gaze_net(teacher.model, uint64_t(config.run.seed));
    } else {
      net_ = load_model(config.train.init);
    }
    decoder_ = FcmaeDecoder(net_->config().dims[3], config.mae.decoder_dim, kStride * kStride);
  }
  std::string name() const override { return "teacher-mae"; }
  GazeNet& net() override { return net_; }
  std::vector<std::pair<std::string, torch::nn::Module*>> aux_modules() override {
    return {{"decoder", decoder_.get()}};
  }
  TensorList trainable() override {
    train_only(*net_, {});
    TensorList params = backbone_params(net_);
    for (auto& [n, p] : params) p.requires_grad_(true);
    append_params(params, "decoder", *decoder_);
    return params;
  }
  at::Tensor loss(const Batch& batch, int64_t step, MetricList& metrics) override {
    const at::Tensor mask = batch_mask(config_, batch, step);
    const at::Tensor features = net_->forward_stages(batch.images, mask).back();
    const at::Tensor feature_mask = resize_mask(mask, features.size(2), features.size(3));
    const at::Tensor pred = decoder_->forward(features, feature_mask);
    const at::Tensor loss =
        masked_patch_mse(pred, pixel_target(batch.images), feature_mask, kStride, config_.mae.norm_pix_loss);
    metrics.emplace_back("pixel_mse", loss.item<double>());
    return loss;
  }

 private:
  GazeNet net_{nullptr};
  FcmaeDecoder decoder_{nullptr};
};

class DistillStage : public GazeNetStage {
 public:
  explicit DistillStage(const Config& config) : GazeNetStage(config) {
    if (config.train.teacher.empty()) throw Error("distill: set train.teacher to the trained teacher checkpoint");
    teacher_ = load_model(config.train.teacher);
    teacher_->eval();
    train_only(*teacher_, {});
    refuse_other_arch(config, "student", "distill");
    Config student = config;
    student.model.arch = "student";
    student.model.dims.clear();
    student.model.depths.clear();
    validate_config(student);
    student_ = config.train.init.empty() ? make_gaze_net(student.model, uint64_t(config.run.seed))
                                         : load_model(config.train.init);
    copy_stem_stage1(*teacher_, *student_);
    const auto& s = student_->config().dims;
    const auto& t = teacher_->config().dims;
    decoder_ = FcmaeDecoder(s[3], config.mae.decoder_dim, kStride * kStride);
    psi3_ = KdProjector(s[2], t[2]);
    psi4_ = KdProjector(s[3], t[3]);
  }
  std::string name() const override { return "distill"; }
  GazeNet& net() override { return student_; }
  std::vector<std::pair<std::string, torch::nn::Module*>> aux_modules() override {
    return {{"decoder", decoder_.get()}, {"psi3", psi3_.get()}, {"psi4", psi4_.get()}};
  }
  TensorList trainable() override {
    train_only(*student_, {});
    TensorList params;
    for (auto& [name, p] : backbone_params(student_)) {
      if (in_param_group(name, ParamGroup::kStemStage1)) continue;  // copied from the teacher, frozen
      p.requires_grad_(true);
      params.emplace_back(name, p);
    }
    append_params(params, "decoder", *decoder_);
    append_params(params, "psi3", *psi3_);
    append_params(params, "psi4", *psi4_);
    return params;
  }
  at::Tensor loss(const Batch& batch, int64_t step, MetricList& metrics) override {
    const at::Tensor mask = batch_mask(config_, batch, step);
    std::vector<at::Tensor> teacher;
    {
      at::NoGradGuard no_grad;
      teacher = teacher_->forward_stages(batch.images);  // the teacher sees the whole image
    }
    const std::vector<at::Tensor> student = student_->forward_stages(batch.images, mask);
    const at::Tensor feature_mask = resize_mask(mask, student[3].size(2), student[3].size(3));
    const at::Tensor pixel = masked_patch_mse(decoder_->forward(student[3], feature_mask), pixel_target(batch.images),
                                              feature_mask, kStride, config_.mae.norm_pix_loss);
    const at::Tensor kd3 = masked_feature_mse(teacher[2], psi3_->forward(student[2]), mask);
    const at::Tensor kd4 = masked_feature_mse(teacher[3], psi4_->forward(student[3]), mask);
    metrics.emplace_back("pixel_mse", pixel.item<double>());
    metrics.emplace_back("kd_stage3", kd3.item<double>());
    metrics.emplace_back("kd_stage4", kd4.item<double>());
    return pixel + config_.mae.kd_weight * (kd3 + kd4);
  }

 private:
  GazeNet teacher_{nullptr}, student_{nullptr};
  FcmaeDecoder decoder_{nullptr};
  KdProjector psi3_{nullptr}, psi4_{nullptr};
};

class AdaptersStage : public GazeNetStage {
 public:
  explicit AdaptersStage(const Config& config) : GazeNetStage(config), gaze_loss_(config.train.gaze_loss) {
    if (config.train.init.empty())
      throw Error("adapters: set train.init to a pretrained teacher or student checkpoint");
    Checkpoint loaded;
    net_ = load_model(config.train.init, &loaded);
    net_->set_head_uncertainty(config.model.head.uncertainty);
    if (config.train.balanced) balance_by_gaze("adapters");
    // Stages that never train the head on gaze (Python's Model.save and user files may hold a
    // trained one, so they are not in this list).
    const bool fresh_head = loaded.stage == "teacher-mae" || loaded.stage == "distill" || loaded.stage == "import";
    build_head(config, fresh_head);
    if (fresh_head) start_head(config.train.head_init);
    if (config.train.person_offsets) start_offsets();
  }
  std::string name() const override { return "adapters"; }
  GazeNet& net() override { return net_; }
  std::vector<std::pair<std::string, torch::nn::Module*>> aux_modules() override {
    if (!offsets_) return {};
    return {{"person_offsets", offsets_.get()}};
  }
  TensorList trainable() override {
    TensorList params;
    if (config_.train.tune == "all") {  // the full fine-tuning ceiling: every weight learns
      train_only(*net_, {ParamGroup::kAll});
      params = named_parameters_in(*net_, ParamGroup::kAll);
    } else {
      train_only(*net_, {ParamGroup::kAdapters, ParamGroup::kHead});
      params = named_parameters_in(*net_, ParamGroup::kAdapters);
      for (auto& item : named_parameters_in(*net_, ParamGroup::kHead)) params.push_back(item);
    }
    if (offsets_) append_params(params, "person_offsets", *offsets_);
    return params;
  }
  at::Tensor loss(const Batch& batch, int64_t, MetricList& metrics) override {
    const at::Tensor out = net_->forward(batch.images);
    {
      at::NoGradGuard no_grad;
      metrics.emplace_back("train_error_deg", mean_angular_error_deg(out, batch.gaze).item<double>());
      if (offsets_) metrics.emplace_back("person_offset_deg", offsets_->mean_offset_deg());
    }
    at::Tensor fitted = out;  // the training error above is the model's own, before the turns
    if (offsets_) {
      std::vector<OffsetGroup> groups;
      for (const int64_t i : batch.indices) groups.push_back(group_of_item_[size_t(i)]);
      fitted = offsets_->forward(out, groups);
    }
    return gaze_loss(fitted, batch.gaze, gaze_loss_, net_->config().head.uncertainty);
  }

 private:
  // train.person_offsets: one turn per participant's eye of the training set.
  void start_offsets() {
    if (config_.train.flip) {
      throw Error(config_origin(config_, "train.flip") +
                  ": train.flip mirrors an item but not its participant's offset; unset it or train.person_offsets");
    }
    for (int64_t i = 0; i < data_->size(); ++i) group_of_item_.push_back(offset_group_of(data_->label(i)));
    offsets_ = ParticipantOffsets(group_of_item_);
    const int64_t groups = offsets_->angles.size(0);  // one row per distinct group
    if (groups < 2) {
      throw Error(config_origin(config_, "train.person_offsets") + ": " + data_->describe() + " has only " +
                  std::to_string(groups) + " " + data_->participant_unit() +
                  ", so there is no offset of its own to learn; unset train.person_offsets or train on several");
    }
    spdlog::info("adapters: a learned gaze offset per training {} and eye, {} of them (train.person_offsets)",
                 data_->participant_unit(), groups);
  }

  // A head that never saw gaze predicts an arbitrary direction, possibly the antipode of the
  // data's (near-eye gaze points away from the camera, MPII's towards it), where a unit-vector
  // loss has almost no gradient: from such a start the student stalled near 140 degrees on
  // MPIIGaze. Two cures, measured on the demo's and the MPIIGaze stand-in's student (validation
  // error, random -> cure): face_data 139.0 -> 16.0 on MPIIGaze and unchanged on OpenEDS (7.47)
  // and AEA (14.44), where the random head already faced the data; mean_gaze 139.0 -> 16.1, but
  // OpenEDS 7.47 -> 8.09 and AEA 14.44 -> 16.91: a head pinned to one direction learns slower
  // than a random one.
  //
  // face_data: if the head's mean prediction over training images points away from the mean
  // training gaze, negate its gaze rows (every prediction p becomes -p; nothing else changes).
  void face_head_to_data(const std::array<double, 3>& mean) {
    const int64_t n = std::min<int64_t>(data_->size(), 64);
    std::vector<int64_t> items;
    for (int64_t i = 0; i < n; ++i) items.push_back(i * data_->size() / n);
    const Batch batch = make_batch(*data_, items, preprocess_options(config_, false), 0);
    at::NoGradGuard no_grad;
    const bool training = net_->is_training();
    net_->eval();  // the probe must not move the adapters' BatchNorm statistics
    const at::Tensor predicted = gaze_directions(net_->forward(batch.images)).mean(0).to(at::kDouble);
    net_->train(training);
    const double dot = predicted[0].item<double>() * mean[0] + predicted[1].item<double>() * mean[1] +
                       predicted[2].item<double>() * mean[2];
    if (dot >= 0) return;
    net_->head->weight.narrow(0, 0, 3).neg_();
    net_->head->bias.narrow(0, 0, 3).neg_();
    spdlog::info("adapters: the untrained head faced away from the training gaze (cosine {:+.3f}): turned round", dot);
  }

  // mean_gaze: bias the head towards the mean training gaze. The head reads LayerNorm'd
  // features (unit variance per channel), so its random term W f has a typical length |W|_F;
  // a bias three times that keeps every first prediction near the mean while W still passes
  // gradient to the adapters.
  void bias_head_to_mean(const std::array<double, 3>& mean) {
    at::NoGradGuard no_grad;
    const double scale = 3 * std::max(net_->head->weight.narrow(0, 0, 3).norm().item<double>(), 1e-3);
    for (int64_t k = 0; k < 3; ++k) net_->head->bias[k].fill_(scale * mean[size_t(k)]);
    spdlog::info("adapters: the head starts biased to the mean training gaze ({:+.3f}, {:+.3f}, {:+.3f})", mean[0],
                 mean[1], mean[2]);
  }

  // model.head.grid or model.head.keypoints set for this stage: a head that never saw gaze is
  // rebuilt to them; a trained one is kept, and a different head is refused rather than thrown
  // away.
  void build_head(const Config& config, bool fresh_head) {
    const HeadConfig have = net_->config().head;
    const auto chosen = [&](const char* key, const auto& value, const auto& kept) {
      return config_origin(config, key) == "default" ? kept : value;
    };
    const std::vector<int64_t> grid = chosen("model.head.grid", config.model.head.grid, have.grid);
    const int64_t keypoints = chosen("model.head.keypoints", config.model.head.keypoints, have.keypoints);
    if (grid == have.grid && keypoints == have.keypoints) return;
    const auto text = [](const std::vector<int64_t>& g, int64_t k) {
      return "grid [" + std::to_string(g[0]) + ", " + std::to_string(g[1]) + "] and " + std::to_string(k) +
             " key points";
    };
    if (!fresh_head) {
      const char* key = grid != have.grid ? "model.head.grid" : "model.head.keypoints";
      throw Error(config_origin(config, key) + ": " + key + " asks for a head with " + text(grid, keypoints) +
                  ", but " + config.train.init + " holds a head trained on gaze with " +
                  text(have.grid, have.keypoints) +
                  "; start from a teacher-mae or distill checkpoint to train another head");
    }
    net_->reset_head(grid, keypoints, uint64_t(config.run.seed));
    spdlog::info("adapters: a fresh head on a {}x{} grid of the last stage's map, {} key points", grid[0], grid[1],
                 keypoints);
  }

  void start_head(const std::string& how) {
    if (how == "random") return;
    std::array<double, 3> mean = gaze_label_sum(*data_);
    const double norm = std::hypot(mean[0], mean[1], mean[2]);
    if (!(norm > 0)) return;  // gaze spread evenly over the sphere: no direction to face
    for (double& v : mean) v /= norm;
    if (how == "face_data") face_head_to_data(mean);
    if (how == "mean_gaze") bias_head_to_mean(mean);
  }

  GazeNet net_{nullptr};
  std::string gaze_loss_;
  ParticipantOffsets offsets_{nullptr};
  std::vector<OffsetGroup> group_of_item_;  // per training item
};

// A published baseline, every weight trained (Table 1: "tunable = #param"), by L1 on the gaze
// direction its (yaw, pitch) output stands for. GazeHub's L1 is on the angles; on the direction
// it is the same fit without the wrap at yaw = +-pi, which near-eye data (gaze pointing away
// from the camera) sits on.
class BaselineStage : public DataStage {
 public:
  explicit BaselineStage(const Config& config) : DataStage(config) {
    if (!is_baseline_arch(config.model.arch)) {
      throw Error(config_origin(config, "model.arch") + ": model.arch=" + config.model.arch +
                  ", but the baseline stage trains one of " + join(baseline_archs(), ", "));
    }
    const BaselineInput& input = baseline_input(config.model.arch);
    const std::vector<int64_t>& size = config.data.input_size;
    if (size != baseline_input_size(input, false) && size != baseline_input_size(input, true)) {
      const auto text = [](const std::vector<int64_t>& v) {
        return "[" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + "]";
      };
      throw Error(config_origin(config, "data.input_size") + ": data.input_size must be " +
                  text(baseline_input_size(input, false)) +
                  (input.eye_pair ? " (one eye) or " + text(baseline_input_size(input, true)) + " (eye pairs)" : "") +
                  " for " + input.arch + " (" + input.input + ")");
    }
    at::manual_seed(uint64_t(config.run.seed));  // LibTorch's own initialisers draw from it
    net_ = config.train.init.empty() ? Baseline(config.model.arch) : load_baseline(config.train.init);
    if (net_->arch != config.model.arch) {
      throw Error(config.train.init + ": holds " + net_->arch + ", but model.arch=" + config.model.arch);
    }
    if (config.train.balanced) balance_by_gaze("baseline");
    if (config.train.init.empty()) {
      const double z = gaze_label_sum(*data_)[2];
      net_->set_facing_camera(z <= 0);
      spdlog::info("baseline: the training gaze points {} the camera (mean z {:+.3f}): angles in that frame",
                   z <= 0 ? "towards" : "away from", z / double(data_->size()));
    }
  }
  std::string name() const override { return "baseline"; }
  torch::nn::Module& module() override { return *net_; }
  ModelConfig architecture() override {
    ModelConfig m;
    m.arch = net_->arch;
    return m;
  }
  TensorList trainable() override {
    TensorList params;
    for (auto& item : net_->named_parameters(true)) {
      item.value().requires_grad_(true);
      params.emplace_back(item.key(), item.value());
    }
    return params;
  }
  at::Tensor loss(const Batch& batch, int64_t, MetricList& metrics) override {
    const at::Tensor out = net_->forward(batch.images, batch.head);
    {
      at::NoGradGuard no_grad;
      metrics.emplace_back("train_error_deg", mean_angular_error_deg(out, batch.gaze).item<double>());
    }
    return direction_l1_loss(out, batch.gaze);
  }

 private:
  Baseline net_{nullptr};
};

}  // namespace

void check_stage_name(const std::string& name) {
  if (name != "teacher-mae" && name != "distill" && name != "adapters" && name != "baseline")
    throw Error("unknown training stage '" + name + "'; valid: teacher-mae, distill, adapters, baseline");
}

std::unique_ptr<TrainingStage> make_stage(const std::string& name, const Config& config) {
  check_stage_name(name);
  if (name == "teacher-mae") return std::make_unique<TeacherMaeStage>(config);
  if (name == "distill") return std::make_unique<DistillStage>(config);
  if (name == "baseline") return std::make_unique<BaselineStage>(config);
  return std::make_unique<AdaptersStage>(config);
}

}  // namespace gaze
