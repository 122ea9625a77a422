#include "libgaze/models/param_groups.h"

#include <ATen/ATen.h>

#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"

namespace gaze {
namespace {

bool is_adapter(const std::string& name) { return name.find(".adapter.") != std::string::npos; }
// The head Linear and its key point maps (model.head.keypoints); not its LayerNorm, which the
// official checkpoints hold as part of the backbone.
bool is_head(const std::string& name) { return starts_with(name, "head.") || starts_with(name, "keypoints."); }

const std::vector<std::pair<ParamGroup, const char*>> kNames = {
    {ParamGroup::kStemStage1, "stem_stage1"},
    {ParamGroup::kBackbone, "backbone"},
    {ParamGroup::kAdapters, "adapters"},
    {ParamGroup::kLastStageAdapters, "last_stage_adapters"},
    {ParamGroup::kHead, "head"},
    {ParamGroup::kAll, "all"},
};

}  // namespace

ParamGroup parse_param_group(const std::string& name) {
  std::vector<std::string> valid;
  for (const auto& [group, group_name] : kNames) {
    if (name == group_name) return group;
    valid.emplace_back(group_name);
  }
  throw Error("unknown parameter group '" + name + "'" + suggest_suffix(name, valid));
}

const char* param_group_name(ParamGroup group) {
  for (const auto& [g, name] : kNames) {
    if (g == group) return name;
  }
  return "?";
}

bool in_param_group(const std::string& name, ParamGroup group) {
  switch (group) {
    case ParamGroup::kStemStage1:
      return (starts_with(name, "downsample_layers.0.") || starts_with(name, "stages.0.")) && !is_adapter(name);
    case ParamGroup::kBackbone:
      return !is_adapter(name) && !is_head(name);
    case ParamGroup::kAdapters:
      return is_adapter(name);
    case ParamGroup::kLastStageAdapters:
      return starts_with(name, "stages.3.") && is_adapter(name);
    case ParamGroup::kHead:
      return is_head(name);
    case ParamGroup::kAll:
      return true;
  }
  return false;
}

std::vector<std::pair<std::string, at::Tensor>> named_parameters_in(const torch::nn::Module& module, ParamGroup group) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (in_param_group(item.key(), group)) out.emplace_back(item.key(), item.value());
  }
  return out;
}

int64_t count_parameters(const torch::nn::Module& module, ParamGroup group) {
  int64_t n = 0;
  for (const auto& [name, tensor] : named_parameters_in(module, group)) n += tensor.numel();
  return n;
}

int64_t count_tunable_parameters(const torch::nn::Module& module) {
  return count_parameters(module, ParamGroup::kAdapters) + count_parameters(module, ParamGroup::kHead);
}

void set_trainable(torch::nn::Module& module, ParamGroup group, bool trainable) {
  for (auto& [name, tensor] : named_parameters_in(module, group)) tensor.requires_grad_(trainable);
}

void train_only(torch::nn::Module& module, const std::vector<ParamGroup>& groups) {
  set_trainable(module, ParamGroup::kAll, false);
  for (ParamGroup g : groups) set_trainable(module, g, true);
}

void copy_stem_stage1(const torch::nn::Module& teacher, torch::nn::Module& student) {
  at::NoGradGuard no_grad;
  auto source = teacher.named_parameters(true);
  auto source_buffers = teacher.named_buffers(true);
  const auto copy_matching = [&](torch::OrderedDict<std::string, at::Tensor> targets,
                                 const torch::OrderedDict<std::string, at::Tensor>& from) {
    for (auto& item : targets) {
      if (!in_param_group(item.key(), ParamGroup::kStemStage1)) continue;
      const at::Tensor* src = from.find(item.key());
      if (!src) throw Error("copy stem+stage1: teacher has no tensor '" + item.key() + "'");
      if (src->sizes() != item.value().sizes()) {
        std::ostringstream msg;
        msg << "copy stem+stage1: '" << item.key() << "' is " << src->sizes() << " in the teacher but "
            << item.value().sizes() << " in the student";
        throw Error(msg.str());
      }
      item.value().copy_(*src);
    }
  };
  copy_matching(student.named_parameters(true), source);
  copy_matching(student.named_buffers(true), source_buffers);
}

}  // namespace gaze
