// End-to-end tests of the training stages on a tiny rendered dataset.
#include "trainers/trainer.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <sstream>
#include <thread>

#include "datasets/open_dataset.h"
#include "datasets/pack.h"
#include "datasets/preprocess.h"
#include "datasets/splits.h"
#include "datasets/synth/synth_writer.h"
#include "libgaze/core/json.h"
#include "libgaze/core/strings.h"
#include "libgaze/models/param_groups.h"
#include "tests/test_util.h"
#include "trainers/batches.h"
#include "trainers/evaluate.h"
#include "trainers/personalize.h"
#include "trainers/probe.h"

using namespace gaze;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

// A tiny OpenEDS-layout pack rendered once per test binary.
const std::string& tiny_pack() {
  static testing::TempDir dir("libgaze-trainer");
  static const std::string pack = [] {
    Config c = default_config({"synth.out_dir=" + dir.path(), "synth.layouts=[openeds]", "synth.participants=4",
                               "synth.train_frames=24", "synth.validation_frames=8", "synth.test_frames=16",
                               "synth.openeds_size=[64,96]"});
    write_synthetic_datasets(c.synth, 3, 2);
    DataConfig data = c.data;
    data.source = dir.path() + "/openeds";
    data.split = "all";
    data.openeds_size = {64, 96};
    const auto all = open_dataset(data);
    PackOptions options;
    options.split_of = protocol_split_of(*all, data, 0);
    write_pack(*all, dir.path() + "/tiny.h5", options);
    return dir.path() + "/tiny.h5";
  }();
  return pack;
}

Config tiny_config(const std::string& out, const std::string& name, std::vector<std::string> extra = {}) {
  std::vector<std::string> o = {"data.source=" + tiny_pack(),
                                "data.split=train",
                                "data.input_size=[32,64]",
                                "train.batch_size=4",
                                "train.steps=6",
                                "train.warmup_steps=2",
                                "train.log_every=2",
                                "train.checkpoint_every=3",
                                "mae.decoder_dim=16",
                                "run.out_dir=" + out,
                                "run.name=" + name,
                                "run.threads=1",
                                "data.workers=2"};
  o.insert(o.end(), extra.begin(), extra.end());
  return default_config(o);
}

TensorList weights(const std::string& path) { return load_checkpoint(path).model; }

bool same_weights(const TensorList& a, const TensorList& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].first != b[i].first || !at::equal(a[i].second, b[i].second)) return false;
  }
  return true;
}

// A briefly pretrained teacher, made once per test binary (the argument is unused but keeps
// call sites honest about needing an output folder).
std::string teacher_checkpoint(const std::string&) {
  static testing::TempDir dir("libgaze-teacher");
  static const std::string path = [] {
    const Config c = tiny_config(dir.path(), "teacher");
    auto stage = make_stage("teacher-mae", c);
    return run_training(c, *stage, false).model_path;
  }();
  return path;
}

}  // namespace

TEST_CASE("a run directory holds config, log, metrics, events and checkpoints", "[trainer]") {
  testing::TempDir out;
  const Config c = tiny_config(out.path(), "mae");
  auto stage = make_stage("teacher-mae", c);
  const TrainResult r = run_training(c, *stage, false);
  CHECK(r.steps == 6);
  for (const char* f : {"config.yaml", "log.txt", "metrics.jsonl", "checkpoints/last.h5", "model.h5"}) {
    INFO(f);
    CHECK(fs::exists(r.run_dir + "/" + f));
  }
  // The stored config is the one asked for, with the architecture actually trained (the teacher).
  Config recorded = c;
  recorded.model = stage->architecture();
  CHECK(recorded.model.arch == "teacher");
  CHECK(testing::read_file(r.run_dir + "/config.yaml") == dump_config(recorded));
  // A model.arch that contradicts the stage is refused, naming where it was set.
  CHECK_THROWS_WITH(make_stage("teacher-mae", tiny_config(out.path(), "x", {"model.arch=student"})),
                    Contains("model.arch=student, but teacher-mae trains the teacher"));
  const std::string metrics = testing::read_file(r.run_dir + "/metrics.jsonl");
  CHECK(std::count(metrics.begin(), metrics.end(), '\n') == 3);
  CHECK_THAT(metrics, Contains("\"pixel_mse\""));
  const Checkpoint last = load_checkpoint(r.run_dir + "/checkpoints/last.h5");
  CHECK(last.stage == "teacher-mae");
  CHECK(last.step == 6);
  CHECK_FALSE(last.optimizer.empty());
  CHECK(find_tensor(last.state, "aux.decoder.mask_token").defined());
}

TEST_CASE("resumed training ends bit-identical to an uninterrupted run", "[trainer][resume]") {
  testing::TempDir out;
  const std::string teacher = teacher_checkpoint(out.path());
  for (const std::string stage : {"adapters", "distill", "teacher-mae"}) {
    INFO(stage);
    const std::vector<std::string> extra = {"train.init=" + (stage == "adapters" ? teacher : std::string()),
                                            "train.teacher=" + teacher};
    const Config full = tiny_config(out.path(), stage + "_full", extra);
    auto a = make_stage(stage, full);
    const TrainResult straight = run_training(full, *a, false);
    // Same seed, same weights.
    const Config again = tiny_config(out.path(), stage + "_again", extra);
    auto b = make_stage(stage, again);
    CHECK(same_weights(weights(straight.model_path), weights(run_training(again, *b, false).model_path)));
    // Stop after step 4 (checkpoint there), then resume in a fresh stage object to step 6.
    const Config sliced = tiny_config(out.path(), stage + "_sliced", extra);
    auto c = make_stage(stage, sliced);
    const TrainResult first = run_training(sliced, *c, false, 4);
    CHECK(first.model_path.empty());
    CHECK(load_checkpoint(first.run_dir + "/checkpoints/last.h5").step == 4);
    auto d = make_stage(stage, sliced);
    const TrainResult resumed = run_training(sliced, *d, true);
    CHECK(resumed.first_step == 4);
    CHECK(same_weights(weights(straight.model_path), weights(resumed.model_path)));
    // The resumed run's metrics equal the uninterrupted run's steps: none logged twice.
    const auto steps_logged = [](const std::string& run_dir) {
      std::vector<int64_t> steps;
      std::istringstream in(testing::read_file(run_dir + "/metrics.jsonl"));
      for (std::string line; std::getline(in, line);) steps.push_back(Json::parse(line).at("step").get<int64_t>());
      return steps;
    };
    CHECK(steps_logged(resumed.run_dir) == steps_logged(straight.run_dir));
    // A different seed trains differently.
    const Config other = tiny_config(out.path(), stage + "_seed", [&] {
      auto e = extra;
      e.push_back("run.seed=5");
      return e;
    }());
    auto f = make_stage(stage, other);
    CHECK_FALSE(same_weights(weights(straight.model_path), weights(run_training(other, *f, false).model_path)));
  }
}

TEST_CASE("weight averaging (train.ema): model.h5 holds the average of every step's weights and resumes exactly",
          "[trainer][resume]") {
  testing::TempDir out;
  const std::vector<std::string> extra = {"train.init=" + teacher_checkpoint(out.path()), "train.ema=0.2",
                                          "train.checkpoint_every=1"};
  const Config full = tiny_config(out.path(), "ema_full", extra);
  auto straight_stage = make_stage("adapters", full);
  const TrainResult straight = run_training(full, *straight_stage, false);
  const TensorList averaged = weights(straight.model_path);
  const Checkpoint last = load_checkpoint(straight.run_dir + "/checkpoints/last.h5");

  // The weights after every step: six one-step slices, each resumed from the one before. They
  // end where the uninterrupted run did, average included.
  const Config sliced = tiny_config(out.path(), "ema_sliced", extra);
  auto start = make_stage("adapters", sliced);
  start->trainable();  // marks what trains, as run_training does
  std::vector<TensorList> steps = {module_state(start->module())};
  for (int64_t k = 1; k <= 6; ++k) {
    auto s = make_stage("adapters", sliced);
    run_training(sliced, *s, k > 1, k);
    steps.push_back(load_checkpoint(out.path() + "/ema_sliced/checkpoints/last.h5").model);
  }
  CHECK(same_weights(averaged, weights(out.path() + "/ema_sliced/model.h5")));
  CHECK(same_weights(last.model, steps.back()));

  // The average, recomputed from them: d = min(0.2, (1 + k) / (10 + k)) after step k (0-based).
  int64_t compared = 0;
  for (const auto& [name, saved] : last.state) {
    if (!starts_with(name, "ema.")) continue;
    const std::string tensor = name.substr(4);
    INFO(tensor);
    at::Tensor expected = find_tensor(steps[0], tensor).clone();
    for (int64_t k = 0; k < 6; ++k) {
      const double d = std::min(0.2, double(1 + k) / double(10 + k));
      expected = d * expected + (1 - d) * find_tensor(steps[size_t(k) + 1], tensor);
    }
    CHECK(at::allclose(find_tensor(averaged, tensor), expected, 1e-5, 1e-6));
    CHECK(at::equal(find_tensor(averaged, tensor), saved));
    ++compared;
  }
  // Adapters, head and the adapters' BatchNorm statistics are averaged; the frozen backbone is
  // not (it never moves), and the average differs from the last step's weights.
  const GazeNet net = load_model(straight.model_path);
  int64_t statistics = 0;
  for (const auto& b : net->named_buffers(true)) statistics += b.value().is_floating_point();
  CHECK(statistics > 0);
  CHECK(compared == int64_t(named_parameters_in(*net, ParamGroup::kAdapters).size() +
                            named_parameters_in(*net, ParamGroup::kHead).size()) +
                        statistics);
  CHECK_FALSE(find_tensor(last.state, "ema.stages.0.0.dwconv.weight").defined());
  CHECK_FALSE(at::equal(find_tensor(averaged, "head.weight"), find_tensor(last.model, "head.weight")));
  CHECK(
      at::equal(find_tensor(averaged, "stages.0.0.dwconv.weight"), find_tensor(steps[0], "stages.0.0.dwconv.weight")));
}

TEST_CASE("a run whose starting checkpoint changed since is not resumed or reused", "[trainer][resume]") {
  testing::TempDir out;
  namespace fs = std::filesystem;
  const std::string init = out.file("init.h5");
  fs::copy_file(teacher_checkpoint(out.path()), init);
  const Config c = tiny_config(out.path(), "a", {"train.init=" + init, "train.steps=2"});
  std::string model;
  {
    auto stage = make_stage("adapters", c);
    model = run_training(c, *stage, true).model_path;
  }
  CHECK_THAT(testing::read_file(out.file("a/inputs.txt")), Contains("train.init " + init + ": weights crc32c "));
  {  // The same inputs: the finished run is reused.
    auto stage = make_stage("adapters", c);
    CHECK_NOTHROW(run_training(c, *stage, true));
  }
  // The init retrained since (here: replaced by the adapted model): refused, nothing touched.
  fs::copy_file(model, init, fs::copy_options::overwrite_existing);
  const std::string last = testing::read_file(out.file("a/checkpoints/last.h5"));
  auto stage = make_stage("adapters", c);
  CHECK_THROWS_WITH(run_training(c, *stage, true), Contains(out.file("a/inputs.txt")) && Contains("changed since") &&
                                                       Contains("remove " + out.file("a")));
  CHECK(testing::read_file(out.file("a/checkpoints/last.h5")) == last);
  // Trained anew (not resumed), it records its new inputs.
  CHECK_NOTHROW(run_training(c, *stage, false));
}

TEST_CASE("a run killed with SIGKILL resumes to the same weights", "[trainer][resume]") {
  testing::TempDir out;
  const std::string teacher = teacher_checkpoint(out.path());
  const std::string args = " --log-level off train adapters data.source=" + tiny_pack() +
                           " data.split=train data.input_size=[32,64] train.batch_size=4 train.steps=40"
                           " train.checkpoint_every=1 train.log_every=1 run.threads=1 train.init=" +
                           teacher + " run.out_dir=" + out.path();
  REQUIRE(testing::run_gaze(args + " run.name=straight").exit_code == 0);
  // Start the same run in the background and kill it once a mid-run checkpoint exists.
  const std::string last = out.path() + "/killed/checkpoints/last.h5";
  const auto launched =
      testing::run_command(std::string(LIBGAZE_GAZE_EXE) + args + " run.name=killed > /dev/null 2>&1 & echo $!");
  const std::string pid = launched.output.substr(0, launched.output.find('\n'));
  bool killed_mid_run = false;
  for (int i = 0; i < 600 && !killed_mid_run; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (fs::exists(last)) {
      try {
        const int64_t step = load_checkpoint(last).step;
        if (step >= 3 && step < 40) {
          testing::run_command("kill -9 " + pid);
          killed_mid_run = true;
        }
      } catch (const Error&) {  // never: the checkpoint is written atomically
        FAIL("a checkpoint was seen half-written");
      }
    }
  }
  REQUIRE(killed_mid_run);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(fs::exists(out.path() + "/killed/model.h5"));
  const int64_t at = load_checkpoint(last).step;
  CHECK(at < 40);
  const auto resumed = testing::run_gaze(args + " run.name=killed --resume");
  REQUIRE(resumed.exit_code == 0);
  CHECK(same_weights(weights(out.path() + "/straight/model.h5"), weights(out.path() + "/killed/model.h5")));
}

TEST_CASE("distillation keeps the teacher's stem and stage 1 frozen", "[trainer]") {
  testing::TempDir out;
  const std::string teacher = teacher_checkpoint(out.path());
  const Config c = tiny_config(out.path(), "kd", {"train.teacher=" + teacher});
  auto stage = make_stage("distill", c);
  const TrainResult r = run_training(c, *stage, false);
  GazeNet student = load_model(r.model_path);
  GazeNet t = load_model(teacher);
  CHECK(count_parameters(*student) == 281174);
  auto tp = t->named_parameters(true);
  bool stem_same = true, stage3_moved = false;
  GazeNet fresh = make_gaze_net(student->config(), 0);
  auto fp = fresh->named_parameters(true);
  for (const auto& p : student->named_parameters(true)) {
    if (in_param_group(p.key(), ParamGroup::kStemStage1)) stem_same = stem_same && at::equal(p.value(), tp[p.key()]);
    if (p.key() == "stages.2.0.pwconv1.weight") stage3_moved = !at::equal(p.value(), fp[p.key()]);
  }
  CHECK(stem_same);
  CHECK(stage3_moved);
  const std::string metrics = testing::read_file(r.run_dir + "/metrics.jsonl");
  CHECK_THAT(metrics, Contains("kd_stage3") && Contains("kd_stage4") && Contains("pixel_mse"));
}

TEST_CASE("adapter training leaves the backbone bit-identical and lowers the error", "[trainer]") {
  testing::TempDir out;
  const std::string teacher = teacher_checkpoint(out.path());
  const Config c = tiny_config(out.path(), "frozen", {"train.init=" + teacher, "train.steps=40", "train.lr=3e-3"});
  auto stage = make_stage("adapters", c);
  GazeNet before = load_model(teacher);
  GazeNet after = load_model(run_training(c, *stage, false).model_path);
  const TensorList a = module_state(*before), b = module_state(*after);
  REQUIRE(a.size() == b.size());
  int64_t adapters_moved = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string& name = a[i].first;
    const bool trainable = in_param_group(name, ParamGroup::kAdapters) || in_param_group(name, ParamGroup::kHead);
    if (!trainable) {
      INFO(name);
      CHECK(at::equal(a[i].second, b[i].second));
    } else if (name.find("adapter.up.weight") != std::string::npos) {
      adapters_moved += !at::equal(a[i].second, b[i].second);
    }
  }
  CHECK(adapters_moved == 12);  // every block's adapter learned
  // The stage lowers the error on people it never saw.
  DataConfig validation = c.data;
  validation.split = "validation";
  const auto unseen = open_dataset(validation);
  const double error_before = evaluate(before, *unseen, c).summary.all_frames.mean;
  const double error_after = evaluate(after, *unseen, c).summary.all_frames.mean;
  INFO(error_before << " -> " << error_after);
  CHECK(error_after < 0.7 * error_before);
}

TEST_CASE("train.tune=all fine-tunes every weight of the adapters stage", "[trainer]") {
  testing::TempDir out;
  const std::string teacher = teacher_checkpoint(out.path());
  const Config c = tiny_config(out.path(), "full", {"train.init=" + teacher, "train.steps=2", "train.tune=all"});
  auto stage = make_stage("adapters", c);
  TrainingStep step(*stage, c.train);
  GazeNet before = load_model(teacher);
  CHECK(int64_t(step.params().size()) == int64_t(before->parameters().size()));
  GazeNet after = load_model(run_training(c, *stage, false).model_path);
  int64_t moved = 0, total = 0;
  const auto a = before->named_parameters(true), b = after->named_parameters(true);
  // Backbone, adapters and head all learned, but for the adapters' pre-BatchNorm biases: training
  // mode's BatchNorm subtracts the batch mean, so their gradient is exactly zero (and they start
  // at zero, leaving weight decay nothing to shrink).
  int64_t pre_norm_biases = 0;
  std::string unchanged;
  for (const auto& p : a) {
    ++total;
    const bool pre_norm_bias = p.key().find("adapter.down.bias") != std::string::npos;
    pre_norm_biases += pre_norm_bias;
    const bool changed = !at::equal(p.value(), b[p.key()]);
    moved += changed;
    if (!changed && !pre_norm_bias) unchanged += p.key() + " ";
  }
  INFO("unchanged: " << unchanged);
  CHECK(pre_norm_biases == 12);  // one per block
  CHECK(moved == total - pre_norm_biases);
  CHECK_THROWS_WITH(tiny_config(out.path(), "x", {"train.tune=everything"}),
                    Contains("train.tune") && Contains("adapters") && Contains("all"));
}

TEST_CASE("adapters turn an untrained head that faces away from the data round, and keep a trained one", "[trainer]") {
  testing::TempDir out;
  const std::string teacher = teacher_checkpoint(out.path());
  const Config base = tiny_config(out.path(), "x");
  const auto data = open_dataset(base.data);
  at::Tensor mean = at::zeros({3}, at::kDouble);
  for (int64_t i = 0; i < data->size(); ++i)
    for (int64_t k = 0; k < 3; ++k) mean[k] += data->label(i).gaze[size_t(k)];
  mean = (mean / mean.norm()).to(at::kFloat);
  std::vector<int64_t> items;
  for (int64_t i = 0; i < data->size(); i += 2) items.push_back(i);
  const at::Tensor images = make_batch(*data, items, preprocess_options(base, false), 0).images;
  const auto predict = [&](const std::string& init, const std::string& head_init) {
    auto stage =
        make_stage("adapters", tiny_config(out.path(), "x", {"train.init=" + init, "train.head_init=" + head_init}));
    auto& net = dynamic_cast<GazeNetImpl&>(stage->module());
    net.eval();
    at::NoGradGuard no_grad;
    return gaze_directions(net.forward(images));
  };
  // The same untrained head saved as it is and turned round (every prediction negated): one of
  // the two faces away from the training gaze, and face_data turns that one, so both agree.
  GazeNet turned = load_model(teacher);
  {
    at::NoGradGuard no_grad;
    turned->head->weight.narrow(0, 0, 3).neg_();
    turned->head->bias.narrow(0, 0, 3).neg_();
  }
  save_model(out.file("turned.h5"), turned, base, "distill", 0);
  const at::Tensor as_built = predict(teacher, "random");
  CHECK(at::allclose(predict(out.file("turned.h5"), "random"), -as_built, 1e-5, 1e-6));
  const at::Tensor faced = predict(teacher, "face_data");
  CHECK(at::allclose(predict(out.file("turned.h5"), "face_data"), faced, 1e-5, 1e-6));
  CHECK((faced.mean(0) * mean).sum().item<float>() > 0);
  CHECK((at::allclose(faced, as_built) || at::allclose(faced, -as_built)));
  // mean_gaze: every first prediction near the mean training gaze.
  const at::Tensor biased = predict(teacher, "mean_gaze");
  CHECK((biased * mean).sum(1).min().item<float>() > std::cos(50 * M_PI / 180));
  // A head trained on gaze (an adapters checkpoint) is kept as it is.
  save_model(out.file("adapters.h5"), turned, base, "adapters", 0);
  CHECK(at::allclose(predict(out.file("adapters.h5"), "face_data"), -as_built, 1e-5, 1e-6));
  CHECK_THROWS_WITH(tiny_config(out.path(), "x", {"train.head_init=mean"}),
                    Contains("train.head_init") && Contains("mean_gaze"));
}

TEST_CASE("adapters build a grid head on a head that never saw gaze and keep a trained one's grid", "[trainer]") {
  testing::TempDir out;
  const std::string teacher = teacher_checkpoint(out.path());
  // The tiny 32x64 input leaves a 1x2 map: a [1, 2] grid reads each half on its own.
  const Config c = tiny_config(out.path(), "grid", {"train.init=" + teacher, "train.steps=2", "model.head.grid=[1,2]"});
  auto stage = make_stage("adapters", c);
  CHECK(dynamic_cast<GazeNetImpl&>(stage->module()).head->weight.sizes() == at::IntArrayRef({4, 640}));
  const std::string trained = run_training(c, *stage, false).model_path;
  GazeNet net = load_model(trained);
  CHECK(net->config().head.grid == std::vector<int64_t>({1, 2}));
  CHECK(net->head->weight.sizes() == at::IntArrayRef({4, 640}));
  DataConfig validation = c.data;
  validation.split = "validation";
  CHECK(std::isfinite(evaluate(net, *open_dataset(validation), c).summary.all_frames.mean));
  // Continuing from the trained head keeps its grid; asking for another one is refused.
  auto again = make_stage("adapters", tiny_config(out.path(), "again", {"train.init=" + trained}));
  CHECK(dynamic_cast<GazeNetImpl&>(again->module()).config().head.grid == std::vector<int64_t>({1, 2}));
  CHECK_THROWS_WITH(
      make_stage("adapters", tiny_config(out.path(), "other", {"train.init=" + trained, "model.head.grid=[1,1]"})),
      Contains("model.head.grid asks for a head with grid [1, 1] and 0 key points, but " + trained +
               " holds a head trained on gaze with grid [1, 2] and 0 key points"));
}

TEST_CASE("adapters build key points on a head that never saw gaze, save them, and keep a trained head's",
          "[trainer]") {
  testing::TempDir out;
  const std::string teacher = teacher_checkpoint(out.path());
  const Config c = tiny_config(
      out.path(), "kp", {"train.init=" + teacher, "train.steps=3", "model.head.keypoints=4", "train.weight_decay=0"});
  auto stage = make_stage("adapters", c);
  auto& built = dynamic_cast<GazeNetImpl&>(stage->module());
  REQUIRE(built.keypoints);
  const at::Tensor before = built.keypoints->weight.clone();
  CHECK(built.head->weight.sizes() == at::IntArrayRef({4, 320 + 8}));
  const std::string trained = run_training(c, *stage, false).model_path;
  GazeNet net = load_model(trained);
  CHECK(net->config().head.keypoints == 4);
  REQUIRE(net->keypoints);
  CHECK_FALSE(at::equal(net->keypoints->weight, before));  // trained with the head (no weight decay to move it)
  DataConfig validation = c.data;
  validation.split = "validation";
  CHECK(std::isfinite(evaluate(net, *open_dataset(validation), c).summary.all_frames.mean));
  auto again = make_stage("adapters", tiny_config(out.path(), "again", {"train.init=" + trained}));
  CHECK(dynamic_cast<GazeNetImpl&>(again->module()).config().head.keypoints == 4);
  CHECK_THROWS_WITH(
      make_stage("adapters", tiny_config(out.path(), "other", {"train.init=" + trained, "model.head.keypoints=2"})),
      Contains("model.head.keypoints asks for a head with grid [1, 1] and 2 key points"));
  CHECK_THROWS_WITH(tiny_config(out.path(), "bad", {"model.head.keypoints=-1"}), Contains("model.head.keypoints"));
  CHECK_THROWS_WITH(tiny_config(out.path(), "one", {"model.head.keypoints=1"}), Contains("2..64"));
}

TEST_CASE("train.person_offsets: a turn per training person, learned, resumed, and left out of model.h5", "[trainer]") {
  testing::TempDir out;
  const std::string teacher = teacher_checkpoint(out.path());
  const std::vector<std::string> with = {"train.init=" + teacher, "train.person_offsets=true"};
  const Config c = tiny_config(out.path(), "offsets", with);
  auto stage = make_stage("adapters", c);
  const TrainResult straight = run_training(c, *stage, false);
  // The turns are the stage's own: learned (two training people here), checkpointed, not saved
  // with the model, which holds exactly what a run without them holds.
  const Checkpoint last = load_checkpoint(straight.run_dir + "/checkpoints/last.h5");
  at::Tensor angles;
  for (const auto& [name, t] : last.state)
    if (name == "aux.person_offsets.angles") angles = t;
  REQUIRE(angles.defined());
  CHECK(angles.sizes() == at::IntArrayRef({2, 2}));
  CHECK(angles.abs().max().item<float>() > 0);
  const Config plain_config = tiny_config(out.path(), "plain", {"train.init=" + teacher});
  auto plain = make_stage("adapters", plain_config);
  const TensorList model = weights(straight.model_path);
  const TensorList without = weights(run_training(plain_config, *plain, false).model_path);
  REQUIRE(model.size() == without.size());
  for (size_t i = 0; i < model.size(); ++i) CHECK(model[i].first == without[i].first);
  CHECK_FALSE(same_weights(model, without));  // the turns changed what the model learned
  CHECK_THAT(testing::read_file(straight.run_dir + "/metrics.jsonl"), Contains("\"person_offset_deg\""));
  // Resumed from step 4 in a fresh stage: the same weights, turns included.
  const Config sliced = tiny_config(out.path(), "offsets_sliced", with);
  auto first = make_stage("adapters", sliced);
  run_training(sliced, *first, false, 4);
  auto second = make_stage("adapters", sliced);
  const TrainResult resumed = run_training(sliced, *second, true);
  CHECK(same_weights(model, weights(resumed.model_path)));
  CHECK(same_weights(last.state, load_checkpoint(resumed.run_dir + "/checkpoints/last.h5").state));
  // One training participant leaves nothing to tell apart: refused, naming the data.
  CHECK_THROWS_WITH(make_stage("adapters", tiny_config(out.path(), "one",
                                                       [&] {
                                                         auto o = with;
                                                         o.push_back("data.split=validation");
                                                         return o;
                                                       }())),
                    Contains("has only 1 participant") && Contains("unset train.person_offsets"));
  // A mirrored item would need its offset mirrored too: refused.
  CHECK_THROWS_WITH(make_stage("adapters", tiny_config(out.path(), "flip",
                                                       [&] {
                                                         auto o = with;
                                                         o.push_back("train.flip=true");
                                                         return o;
                                                       }())),
                    Contains("train.flip mirrors an item but not its participant's offset"));
}

TEST_CASE("stage errors are clear", "[trainer]") {
  testing::TempDir out;
  CHECK_THROWS_WITH(make_stage("distill", tiny_config(out.path(), "x")), Contains("set train.teacher"));
  CHECK_THROWS_WITH(make_stage("adapters", tiny_config(out.path(), "x")), Contains("set train.init"));
  CHECK_THROWS_WITH(make_stage("finetune", tiny_config(out.path(), "x")), Contains("unknown training stage"));
  CHECK_THROWS_WITH(make_stage("adapters", tiny_config(out.path(), "x", {"train.init=" + out.file("none.h5")})),
                    Contains("none.h5"));
}

TEST_CASE("evaluation and personalisation produce user files bound to their base", "[trainer][personalize]") {
  testing::TempDir out;
  const std::string teacher = teacher_checkpoint(out.path());
  const Config c = tiny_config(out.path(), "ad",
                               {"train.init=" + teacher, "personalize.steps=5", "personalize.k_curve=[0,2]",
                                "personalize.k=2", "personalize.replay=8"});
  auto stage = make_stage("adapters", c);
  GazeNet base = load_model(run_training(c, *stage, false).model_path);
  DataConfig test = c.data;
  test.split = "test";
  const auto users = open_dataset(test);
  const EvalResult e = evaluate(base, *users, c);
  CHECK(e.summary.all_frames.count + e.blink_frames == users->size());
  const Json j = eval_json(e);
  CHECK(j.at("frames").get<int64_t>() == e.summary.all_frames.count);
  CHECK(j.at("mean_deg").get<double>() == e.summary.all_frames.mean);
  CHECK(j.at("participants").size() == e.summary.per_participant.size());
  // The per-person offset split (metrics/person_offsets.h), over the same frames, overall and
  // per participant in the JSON.
  CHECK(e.offsets.residual.all_frames.count == e.summary.all_frames.count);
  CHECK(e.offsets.offset_deg.size() == e.summary.per_participant.size());
  CHECK((std::isfinite(e.offsets.mean_offset_deg) && e.offsets.mean_offset_deg >= 0));
  CHECK(j.at("offset_removed_deg").get<double>() == e.offsets.residual.all_frames.mean);
  CHECK(j.at("person_offset_deg").get<double>() == e.offsets.mean_offset_deg);
  for (const auto& [id, o] : e.offsets.offset_deg)
    CHECK(j.at("participants").at(std::to_string(id)).at("offset_deg") == o);
  CHECK_THAT(eval_markdown(e), Contains("| offset (deg) | offset removed (deg) |"));
  const auto replay = open_dataset(c.data);
  TensorList before_state;
  for (const auto& [name, t] : module_state(*base)) before_state.emplace_back(name, t.clone());
  std::vector<bool> trainable;
  for (const auto& p : base->parameters()) trainable.push_back(p.requires_grad());
  const PersonalizeResult r = personalize(base, *users, replay.get(), c, out.file("users"));
  // Every user and k is tuned inside the base model, which comes back bit for bit as it was.
  CHECK(same_weights(module_state(*base), before_state));
  std::vector<bool> trainable_after;
  for (const auto& p : base->parameters()) trainable_after.push_back(p.requires_grad());
  CHECK(trainable_after == trainable);
  // Several users in a row: each starts from the base, not from the previous user's tuning.
  const PersonalizeResult many = personalize(base, *replay, nullptr, c, out.file("users_train"));
  REQUIRE(many.users.size() > 1);
  const auto train_splits = personalisation_users(*replay, c.personalize, uint64_t(c.run.seed));
  for (const UserResult& user : many.users) {
    INFO("participant " << user.participant);
    CHECK(evaluate(base, *replay, c, train_splits.at(user.participant).evaluation).summary.all_frames.mean ==
          Approx(user.before_deg).epsilon(1e-4));
  }
  REQUIRE(r.users.size() == 1);
  const UserResult& u = r.users[0];
  CHECK(u.k_curve.at(0) == Approx(u.before_deg));
  CHECK(fs::exists(u.adapter_file));
  const Checkpoint file = load_checkpoint(u.adapter_file);
  int64_t bytes = 0;
  for (const auto& [name, t] : file.model) bytes += t.nbytes();
  CHECK(bytes < 4 * 104000 + 1000);  // the teacher's last-stage adapters (+ BN buffers), nothing else
  CHECK(fs::file_size(u.adapter_file) < uint64_t(bytes) + 32 * 1024);
  for (const auto& [name, t] : file.model) CHECK(in_param_group(name, ParamGroup::kLastStageAdapters));
  // Applying the file to the base changes the last-stage adapters and nothing else ...
  GazeNet other_base = load_model(teacher);
  GazeNet copy = load_model(out.path() + "/ad/model.h5");
  apply_user_adapter(copy, u.adapter_file);
  const TensorList base_state = module_state(*base), user_state = module_state(*copy);
  REQUIRE(base_state.size() == user_state.size());
  int64_t changed = 0;
  for (size_t i = 0; i < base_state.size(); ++i) {
    const bool same = at::equal(base_state[i].second, user_state[i].second);
    if (!in_param_group(base_state[i].first, ParamGroup::kLastStageAdapters)) {
      INFO(base_state[i].first);
      CHECK(same);
    }
    changed += !same;
  }
  CHECK(changed > 0);
  // ... and reproduces the personalised error on that user's evaluation frames.
  const auto split = personalisation_users(*users, c.personalize, uint64_t(c.run.seed)).at(u.participant);
  CHECK(u.calibration == calibration_shots(split, c.personalize.k));
  CHECK(evaluate(copy, *users, c, split.evaluation).summary.all_frames.mean == Approx(u.after_deg).epsilon(1e-4));
  CHECK(evaluate(base, *users, c, split.evaluation).summary.all_frames.mean == Approx(u.before_deg).epsilon(1e-4));
  // A different base is refused.
  CHECK_THROWS_WITH(apply_user_adapter(other_base, u.adapter_file), Contains("trained on another base model"));
}

TEST_CASE("a baseline trains every weight, resumes bit-identically, evaluates and is fine-tuned per person",
          "[trainer][baselines]") {
  testing::TempDir out;
  const std::vector<std::string> extra = {
      "model.arch=gazetr_hybrid", "data.input_size=[224,224]", "train.steps=4",           "train.lr=5e-4",
      "personalize.k=2",          "personalize.steps=2",       "train.checkpoint_every=2"};
  const Config c = tiny_config(out.path(), "whole", extra);
  auto stage = make_stage("baseline", c);
  const TrainResult whole = run_training(c, *stage, false);
  at::manual_seed(uint64_t(c.run.seed));
  Baseline initial("gazetr_hybrid");
  Baseline trained = load_baseline(whole.model_path);
  // Near-eye gaze points away from the camera: the stage turned the output frame for it.
  CHECK_FALSE(trained->facing_camera());
  int64_t moved = 0, total = 0;
  for (const auto& p : trained->named_parameters(true)) {
    ++total;
    moved += !at::equal(p.value(), initial->named_parameters(true)[p.key()]);
  }
  CHECK(moved == total);  // full training: every tensor learned
  // Two slices (stop at step 2, resume) end where the uninterrupted run did.
  const Config sliced = tiny_config(out.path(), "sliced", extra);
  auto first = make_stage("baseline", sliced);
  run_training(sliced, *first, false, 2);
  auto second = make_stage("baseline", sliced);
  CHECK(same_weights(weights(run_training(sliced, *second, true).model_path), weights(whole.model_path)));
  // Evaluation and per-person fine-tuning of every weight on the k shots.
  DataConfig test = c.data;
  test.split = "test";
  const auto users = open_dataset(test);
  const EvalResult e = evaluate(trained, *users, c);
  CHECK(e.summary.all_frames.count + e.blink_frames == users->size());
  CHECK(e.blink_auc == -1);  // a baseline has no uncertainty output to score
  TensorList before_state;
  for (const auto& [name, t] : module_state(*trained)) before_state.emplace_back(name, t.clone());
  const PersonalizeResult r = personalize_baseline(trained, *users, c);
  CHECK(same_weights(module_state(*trained), before_state));  // fine-tuned in place, then restored
  REQUIRE(r.users.size() == 1);
  CHECK(r.users[0].k_curve.size() == 2);
  CHECK(r.users[0].k_curve.at(0) == r.users[0].before_deg);
  CHECK(r.users[0].after_deg != r.users[0].before_deg);
  // Scored on the frames DFT Gaze's personalisation scores (the k-curve's pool left out).
  const auto split = personalisation_users(*users, c.personalize, uint64_t(c.run.seed)).at(r.users[0].participant);
  CHECK(evaluate(trained, *users, c, split.evaluation).summary.all_frames.mean == Approx(r.users[0].before_deg));
  // ... and calibrated on DFT Gaze's k shots: the first k of that pool.
  CHECK(r.users[0].calibration == calibration_shots(split, c.personalize.k));
  CHECK(r.users[0].calibration.size() == size_t(c.personalize.k));
}

TEST_CASE("baseline stage errors name the key", "[trainer][baselines]") {
  testing::TempDir out;
  CHECK_THROWS_WITH(make_stage("baseline", tiny_config(out.path(), "x", {"model.arch=gazenet"})),
                    Contains("data.input_size must be [36, 60] for gazenet"));
  CHECK_THROWS_WITH(
      make_stage("baseline", tiny_config(out.path(), "x", {"model.arch=rtgene", "data.input_size=[36,90]"})),
      Contains("data.input_size must be [36, 60] (one eye) or [36, 120] (eye pairs) for rtgene"));
  CHECK_THROWS_WITH(make_stage("baseline", tiny_config(out.path(), "x")),
                    Contains("model.arch=student, but the baseline stage trains one of gazenet, rtgene"));
}

TEST_CASE("linear probes read gaze from every stage's pooled features, fitted on train, scored held out", "[probe]") {
  // Enough people for a probe to generalise: 6 to fit on, 2 held out.
  testing::TempDir dir;
  Config c = default_config({"synth.out_dir=" + dir.path(), "synth.layouts=[openeds]", "synth.participants=10",
                             "synth.train_frames=40", "synth.validation_frames=20", "synth.test_frames=6",
                             "synth.openeds_size=[96,160]", "data.openeds_size=[96,160]", "data.input_size=[64,96]",
                             "data.split=train", "data.source=" + dir.path() + "/openeds"});
  write_synthetic_datasets(c.synth, 5, 2);
  Config held = c;
  held.data.split = "validation";
  const auto train = open_dataset(c.data), heldout = open_dataset(held.data);
  GazeNet model = make_gaze_net(c.model, 1);
  const ProbeReport r = linear_probe(model, *train, *heldout, c, 4);
  INFO(r.markdown());
  REQUIRE(r.rows.size() == 8);  // 4 stages x (global, grid)
  const std::vector<int64_t>& dims = c.model.dims;
  for (int64_t s = 0; s < 4; ++s) {
    CHECK(r.rows[size_t(2 * s)].stage == s + 1);
    CHECK(r.rows[size_t(2 * s)].dims == dims[size_t(s)]);
    CHECK(r.rows[size_t(2 * s + 1)].dims == dims[size_t(s)] * 16);
    CHECK(r.rows[size_t(2 * s + 1)].pooling == "grid 4x4");
  }
  CHECK(r.train_frames > 200);
  CHECK(r.heldout_frames > 30);
  CHECK(r.mean_gaze_deg > 5);
  // Even a random network's early features keep where the pupil is: the best probe reads gaze
  // far better than the mean-gaze baseline on people it never saw.
  double best = 1e9;
  for (const ProbeRow& row : r.rows) best = std::min(best, row.heldout_deg);
  CHECK(best < 0.8 * r.mean_gaze_deg);
  CHECK_THAT(r.markdown(), Contains("| 1 | grid 4x4 | " + std::to_string(dims[0] * 16) + " |"));
  CHECK(r.json().at("probes").size() == 8);
}
