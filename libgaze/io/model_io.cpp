#include "libgaze/io/model_io.h"

#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"
#include "libgaze/models/param_groups.h"

namespace gaze {

namespace {

Config stored_config(const Checkpoint& checkpoint, const std::string& path) {
  try {
    return parse_config(checkpoint.config_yaml, path + ":/config");
  } catch (const Error& e) {
    throw Error(path + ": the config stored in the checkpoint does not parse: " + e.what());
  }
}

}  // namespace

GazeNet load_model(const std::string& path, Checkpoint* loaded) {
  Checkpoint checkpoint = load_checkpoint(path);
  const Config stored = stored_config(checkpoint, path);
  if (is_baseline_arch(stored.model.arch)) {
    throw Error(path + ": holds the " + stored.model.arch + " baseline, not a DFT Gaze or ConvNeXt V2 gaze network");
  }
  GazeNet net = make_gaze_net(stored.model, 0);
  load_module_state(*net, checkpoint.model, true, path);
  if (loaded) *loaded = std::move(checkpoint);
  return net;
}

Baseline load_baseline(const std::string& path) {
  const Checkpoint checkpoint = load_checkpoint(path);
  const Config stored = stored_config(checkpoint, path);
  if (!is_baseline_arch(stored.model.arch)) {
    throw Error(path + ": holds model.arch " + stored.model.arch + ", not a baseline (" + join(baseline_archs(), ", ") +
                ")");
  }
  Baseline net(stored.model.arch);
  load_module_state(*net, checkpoint.model, true, path);
  return net;
}

void save_module(const std::string& path, torch::nn::Module& model, const Config& config, const std::string& stage,
                 int64_t step) {
  Checkpoint c;
  c.stage = stage;
  c.step = step;
  c.config_yaml = dump_config(config);
  c.model = module_state(model);
  save_checkpoint(path, c);
}

void save_model(const std::string& path, GazeNet& model, const Config& config, const std::string& stage, int64_t step) {
  Config stored = config;
  stored.model = model->config();  // the architecture actually trained
  save_module(path, *model, stored, stage, step);
}

TensorList user_tensors(GazeNet& model, bool with_head) {
  TensorList out;
  for (auto& [name, t] : module_state(*model)) {
    if (in_param_group(name, ParamGroup::kLastStageAdapters) ||
        (with_head && in_param_group(name, ParamGroup::kHead))) {
      out.emplace_back(name, t);
    }
  }
  return out;
}

uint32_t base_fingerprint(GazeNet& model, bool user_has_head) {
  TensorList base;
  for (auto& [name, t] : module_state(*model)) {
    const bool users = in_param_group(name, ParamGroup::kLastStageAdapters) ||
                       (user_has_head && in_param_group(name, ParamGroup::kHead));
    if (!users) base.emplace_back(name, t);
  }
  return tensors_crc32c(base);
}

void save_user_adapter(const std::string& path, GazeNet& model, bool with_head, int64_t participant,
                       uint32_t fingerprint, const Config& config) {
  Checkpoint c;
  c.stage = "user-adapter";
  c.step = participant;
  Config stored = config;
  stored.model = model->config();
  c.config_yaml = dump_config(stored);
  c.model = user_tensors(model, with_head);
  c.state = {{"base_fingerprint", at::full({}, int64_t(fingerprint), at::kLong)},
             {"participant", at::full({}, participant, at::kLong)},
             {"with_head", at::full({}, int64_t(with_head), at::kLong)}};
  save_checkpoint(path, c);
}

void apply_user_adapter(GazeNet& model, const std::string& path) {
  const Checkpoint c = load_checkpoint(path);
  if (c.stage != "user-adapter") throw Error(path + ": not a user adapter file (stage '" + c.stage + "')");
  const at::Tensor fp = find_tensor(c.state, "base_fingerprint");
  const at::Tensor with_head = find_tensor(c.state, "with_head");
  if (!fp.defined() || !with_head.defined()) throw Error(path + ": user adapter file lacks its base fingerprint");
  const uint32_t expected = uint32_t(fp.item<int64_t>());
  if (base_fingerprint(model, with_head.item<int64_t>() != 0) != expected) {
    throw Error(path + ": this user adapter was trained on another base model (fingerprint mismatch)");
  }
  TensorList targets = user_tensors(model, with_head.item<int64_t>() != 0);
  for (auto& [name, t] : targets) {  // every tensor checked before any is copied
    const at::Tensor src = find_tensor(c.model, name);
    if (!src.defined() || src.sizes() != t.sizes()) throw Error(path + ": tensor '" + name + "' missing or misshapen");
  }
  at::NoGradGuard no_grad;
  for (auto& [name, t] : targets) t.copy_(find_tensor(c.model, name));
}

}  // namespace gaze
