#include "trainers/weight_average.h"

#include <algorithm>

#include "libgaze/core/error.h"

namespace gaze {

namespace {
constexpr const char* kPrefix = "ema.";
}

WeightAverage::WeightAverage(torch::nn::Module& module, double decay) : decay_(decay) {
  if (!active()) return;
  for (const auto& item : module.named_parameters(true)) {
    if (item.value().requires_grad()) live_.emplace_back(item.key(), item.value());
  }
  for (const auto& item : module.named_buffers(true)) {
    if (item.value().is_floating_point()) live_.emplace_back(item.key(), item.value());
  }
  at::NoGradGuard no_grad;
  for (const auto& [name, t] : live_) average_.emplace_back(name, t.detach().clone());
}

void WeightAverage::update(int64_t step) {
  if (!active()) return;
  const double d = std::min(decay_, double(1 + step) / double(10 + step));
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < live_.size(); ++i) average_[i].second.lerp_(live_[i].second, 1.0 - d);
}

TensorList WeightAverage::state() const {
  TensorList out;
  for (const auto& [name, t] : average_) out.emplace_back(kPrefix + name, t);
  return out;
}

void WeightAverage::restore(const TensorList& checkpoint_state, const std::string& source) {
  if (!active()) return;
  for (const auto& [name, t] : average_) {
    const at::Tensor saved = find_tensor(checkpoint_state, kPrefix + name);
    if (!saved.defined() || saved.sizes() != t.sizes()) {
      throw Error(source + ": no weight average '" + kPrefix + name +
                  "' to resume train.ema from (was the run started without it?)");
    }
  }
  at::NoGradGuard no_grad;
  for (auto& [name, t] : average_) t.copy_(find_tensor(checkpoint_state, kPrefix + name));
}

void WeightAverage::copy_into_model() {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < live_.size(); ++i) live_[i].second.copy_(average_[i].second);
}

}  // namespace gaze
