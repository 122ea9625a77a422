// Precompiled header for the LibTorch-facing targets. It lists only the torch headers the
// library actually uses (never <torch/torch.h>): every TU compiled with it saves ~25 s.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/normalization.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/optim/adamw.h>
