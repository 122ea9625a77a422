// The auxiliary modules of masked-image modelling (SPEC §2), trained beside the encoder and
// saved in its checkpoints:
//   FcmaeDecoder  1x1 projection -> mask token at hidden positions -> one ConvNeXt V2 block ->
//                 1x1 prediction of a stride x stride single-channel patch per position
//   KdProjector   Psi_l of distillation: one ConvNeXt V2 block at the student's width, then a
//                 Linear to the teacher's width
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "libgaze/models/gaze_net.h"

namespace gaze {

class FcmaeDecoderImpl : public torch::nn::Module {
 public:
  FcmaeDecoderImpl(int64_t in_dim, int64_t dim, int64_t outputs_per_position);
  // features: [N, in_dim, h, w]; mask: [N, 1, h, w] (1 = hidden) or undefined.
  at::Tensor forward(const at::Tensor& features, const at::Tensor& mask);
  torch::nn::Conv2d proj{nullptr}, pred{nullptr};
  Block block{nullptr};
  at::Tensor mask_token;
};
TORCH_MODULE(FcmaeDecoder);

class KdProjectorImpl : public torch::nn::Module {
 public:
  KdProjectorImpl(int64_t student_dim, int64_t teacher_dim);
  at::Tensor forward(const at::Tensor& x);  // NCHW -> NCHW at the teacher's width
  Block block{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(KdProjector);

}  // namespace gaze
