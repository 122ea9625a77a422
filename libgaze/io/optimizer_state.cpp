#include "libgaze/io/optimizer_state.h"

#include <ATen/ATen.h>

#include "libgaze/core/error.h"

namespace gaze {
namespace {

std::string state_key(const at::Tensor& param) { return c10::guts::to_string(param.unsafeGetTensorImpl()); }

}  // namespace

TensorList adamw_state_to_tensors(const torch::optim::AdamW& optimizer, const TensorList& params) {
  TensorList out;
  const auto& states = optimizer.state();
  for (const auto& [name, param] : params) {
    const auto it = states.find(state_key(param));
    if (it == states.end()) continue;  // never stepped (e.g. no gradient yet)
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    out.emplace_back(name + ":step", at::full({}, s.step(), at::kLong));
    out.emplace_back(name + ":exp_avg", s.exp_avg().detach().clone());
    out.emplace_back(name + ":exp_avg_sq", s.exp_avg_sq().detach().clone());
    if (s.max_exp_avg_sq().defined()) {
      out.emplace_back(name + ":max_exp_avg_sq", s.max_exp_avg_sq().detach().clone());
    }
  }
  return out;
}

void adamw_state_from_tensors(torch::optim::AdamW& optimizer, const TensorList& params, const TensorList& saved,
                              const std::string& source) {
  auto& states = optimizer.state();
  for (const auto& [name, param] : params) {
    const at::Tensor step = find_tensor(saved, name + ":step");
    if (!step.defined()) {
      states.erase(state_key(param));
      continue;
    }
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->step(step.item<int64_t>());
    const auto moment = [&](const char* field) {
      const at::Tensor t = find_tensor(saved, name + ":" + field);
      if (!t.defined() || t.sizes() != param.sizes()) {
        throw Error(source + ": optimizer state '" + name + ":" + field + "' is " +
                    (t.defined() ? "the wrong shape" : "missing"));
      }
      return t.clone();
    };
    s->exp_avg(moment("exp_avg"));
    s->exp_avg_sq(moment("exp_avg_sq"));
    if (find_tensor(saved, name + ":max_exp_avg_sq").defined()) {
      s->max_exp_avg_sq(moment("max_exp_avg_sq"));
    }
    states[state_key(param)] = std::move(s);
  }
}

}  // namespace gaze
