// Named parameter groups of a GazeNet, for freezing, counting and adapter-only files.
//
//   stem_stage1          downsample_layers.0.* and stages.0.* except adapters (what the student
//                        copies from the teacher and freezes during distillation)
//   backbone             everything except adapters and the head (includes the head LayerNorm
//                        `norm.*`, which the paper does not count as tunable)
//   adapters             every stages.*.*.adapter.*
//   last_stage_adapters  stages.3.*.adapter.*
//   head                 head.* (the Linear) and keypoints.* (model.head.keypoints' maps)
// Tunable parameters in the paper's sense = adapters + head.
#pragma once

#include <torch/nn/module.h>

#include <string>
#include <utility>
#include <vector>

namespace gaze {

enum class ParamGroup { kStemStage1, kBackbone, kAdapters, kLastStageAdapters, kHead, kAll };

// "stem_stage1", "backbone", ... ; throws gaze::Error with the valid names otherwise.
ParamGroup parse_param_group(const std::string& name);
const char* param_group_name(ParamGroup group);
bool in_param_group(const std::string& param_name, ParamGroup group);

std::vector<std::pair<std::string, at::Tensor>> named_parameters_in(const torch::nn::Module& module, ParamGroup group);
int64_t count_parameters(const torch::nn::Module& module, ParamGroup group = ParamGroup::kAll);
// Paper's "tunable": adapters + head.
int64_t count_tunable_parameters(const torch::nn::Module& module);

// requires_grad for every parameter of the group (others untouched).
void set_trainable(torch::nn::Module& module, ParamGroup group, bool trainable);
// Only `groups` train; everything else is frozen.
void train_only(torch::nn::Module& module, const std::vector<ParamGroup>& groups);

// Copies the teacher's stem and stage 1 (parameters and buffers) into the student. Throws
// gaze::Error naming the first tensor whose shape differs (e.g. different dims[0]).
void copy_stem_stage1(const torch::nn::Module& teacher, torch::nn::Module& student);

}  // namespace gaze
