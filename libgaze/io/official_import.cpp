#include "libgaze/io/official_import.h"

#include <ATen/ATen.h>

#include <set>
#include <sstream>

namespace gaze {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string strip_prefixes(std::string name) {
  for (const char* prefix : {"module.", "encoder."}) {
    if (starts_with(name, prefix)) name = name.substr(std::string(prefix).size());
  }
  return name;
}

std::string shape_string(at::IntArrayRef sizes) {
  std::ostringstream s;
  s << sizes;
  return s.str();
}

}  // namespace

ImportReport import_official_weights(GazeNet& net, const TensorList& official) {
  ImportReport report;
  TensorList targets = module_state(*net);
  std::set<std::string> filled;
  at::NoGradGuard no_grad;
  for (const auto& [file_name, tensor] : official) {
    const std::string name = strip_prefixes(file_name);
    if (starts_with(name, "decoder") || starts_with(name, "proj.") || starts_with(name, "pred.") ||
        name == "mask_token") {
      report.skipped.push_back(file_name + " (FCMAE decoder, not part of the encoder)");
      continue;
    }
    at::Tensor target = find_tensor(targets, name);
    if (!target.defined()) {
      report.skipped.push_back(file_name + " (no such tensor in the model)");
      continue;
    }
    at::Tensor source = tensor;
    const bool is_grn = name.find(".grn.") != std::string::npos;
    if (is_grn && source.sizes() != target.sizes() && source.numel() == target.numel()) {
      source = source.reshape(target.sizes());
    }
    if (source.sizes() != target.sizes()) {
      report.skipped.push_back(file_name + " (shape " + shape_string(tensor.sizes()) + " does not fit the model's " +
                               shape_string(target.sizes()) + ")");
      continue;
    }
    target.copy_(source.to(target.dtype()));
    filled.insert(name);
    ++report.imported;
  }
  for (const auto& [name, tensor] : targets) {
    if (!filled.count(name)) report.fresh.push_back(name);
  }
  return report;
}

}  // namespace gaze
