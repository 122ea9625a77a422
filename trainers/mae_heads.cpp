#include "trainers/mae_heads.h"

#include <ATen/ATen.h>

namespace gaze {

FcmaeDecoderImpl::FcmaeDecoderImpl(int64_t in_dim, int64_t dim, int64_t outputs_per_position) {
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_dim, dim, 1)));
  AdapterConfig no_adapter;
  no_adapter.enabled = false;
  block = register_module("block", Block(dim, 0.0, 1e-6, no_adapter));
  pred = register_module("pred", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, outputs_per_position, 1)));
  mask_token = register_parameter("mask_token", at::randn({1, dim, 1, 1}) * 0.02);
}

at::Tensor FcmaeDecoderImpl::forward(const at::Tensor& features, const at::Tensor& mask) {
  at::Tensor x = proj->forward(features);
  if (mask.defined()) x = x * (1 - mask) + mask_token * mask;
  return pred->forward(block->forward(x));
}

KdProjectorImpl::KdProjectorImpl(int64_t student_dim, int64_t teacher_dim) {
  AdapterConfig no_adapter;
  no_adapter.enabled = false;
  block = register_module("block", Block(student_dim, 0.0, 1e-6, no_adapter));
  fc = register_module("fc", torch::nn::Linear(student_dim, teacher_dim));
}

at::Tensor KdProjectorImpl::forward(const at::Tensor& x) {
  return fc->forward(block->forward(x).permute({0, 2, 3, 1})).permute({0, 3, 1, 2});
}

}  // namespace gaze
