#include "libgaze/io/official_import.h"

#include <ATen/ATen.h>

#include <cmath>
#include <set>
#include <sstream>

#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"
#include "libgaze/models/param_groups.h"

namespace gaze {
namespace {

std::vector<std::string> split_dots(const std::string& name) {
  std::vector<std::string> parts;
  std::stringstream in(name);
  for (std::string part; std::getline(in, part, '.');) parts.push_back(part);
  return parts;
}

std::string join_dots(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ".") + p;
  return out;
}

std::string shape_string(at::IntArrayRef sizes) {
  std::ostringstream s;
  s << sizes;
  return s.str();
}

// Minkowski kernel [K*K, ...] -> dense [..., K, K]; offset index kh + K*kw.
int64_t kernel_side(const std::string& name, int64_t volume) {
  const int64_t side = std::llround(std::sqrt(double(volume)));
  if (side * side != volume) throw Error(name + ": kernel volume " + std::to_string(volume) + " is not a square");
  return side;
}

}  // namespace

std::pair<std::string, at::Tensor> remap_official_tensor(const std::string& file_name, const at::Tensor& tensor) {
  std::string name = file_name;
  for (const char* prefix : {"module.", "encoder."}) {
    if (starts_with(name, prefix)) name = name.substr(std::string(prefix).size());
  }
  if (name == "mask_token" || starts_with(name, "decoder.") || starts_with(name, "proj.") ||
      starts_with(name, "pred.")) {
    return {"", tensor};
  }
  std::vector<std::string> parts = split_dots(name);
  at::Tensor value = tensor;
  if (parts.back() == "kernel") {
    parts.back() = "weight";
    if (value.dim() == 3) {  // [K*K, in, out] -> [out, in, K(h), K(w)]
      const int64_t side = kernel_side(file_name, value.size(0));
      value = value.permute({2, 1, 0}).reshape({value.size(2), value.size(1), side, side}).transpose(3, 2);
    } else if (value.dim() == 2) {  // depthwise [K*K, C] -> [C, 1, K(h), K(w)]
      const int64_t side = kernel_side(file_name, value.size(0));
      value = value.permute({1, 0}).reshape({value.size(1), 1, side, side}).transpose(3, 2);
    }
    return {join_dots(parts), value.contiguous()};
  }
  if (parts.size() >= 2 && (parts[parts.size() - 2] == "ln" || parts[parts.size() - 2] == "linear")) {
    parts.erase(parts.end() - 2);
  }
  name = join_dots(parts);
  if (ends_with(name, "bias") && value.dim() != 1 && name.find(".grn.") == std::string::npos) {
    value = value.reshape({-1});
  }
  return {name, value};
}

std::vector<std::string> ImportReport::lines() const {
  std::vector<std::string> out;
  out.push_back("imported " + std::to_string(imported) + " tensors; skipped " + std::to_string(skipped.size()) +
                "; kept fresh " + std::to_string(fresh.size()) +
                " (adapters, final norm, head: " + std::to_string(fresh.size() - fresh_encoder.size()) + ")");
  for (const auto& s : skipped) out.push_back("  skipped " + s);
  for (const auto& s : fresh_encoder) out.push_back("  fresh encoder tensor " + s);
  return out;
}

ImportReport import_official_weights(GazeNet& net, const TensorList& official, const std::string& source,
                                     bool allow_partial) {
  ImportReport report;
  TensorList targets = module_state(*net);
  std::set<std::string> filled;
  at::NoGradGuard no_grad;
  for (const auto& [file_name, tensor] : official) {
    auto [name, source] = remap_official_tensor(file_name, tensor);
    if (name.empty()) {
      report.skipped.push_back(file_name + " (FCMAE decoder, not part of the encoder)");
      continue;
    }
    at::Tensor target = find_tensor(targets, name);
    if (!target.defined()) {
      report.skipped.push_back(file_name + " (no such tensor in the model)");
      continue;
    }
    // GRN gamma/beta: [1,4d] (sparse) or [1,1,1,4d] (dense), same values.
    if (name.find(".grn.") != std::string::npos && source.numel() == target.numel()) {
      source = source.reshape(target.sizes());
    }
    if (source.sizes() != target.sizes()) {
      report.skipped.push_back(file_name + " (shape " + shape_string(tensor.sizes()) + " does not fit the model's " +
                               shape_string(target.sizes()) + ")");
      continue;
    }
    if (filled.count(name)) throw Error(file_name + ": a second tensor for " + name);
    target.copy_(source.to(target.dtype()));
    filled.insert(name);
    ++report.imported;
  }
  for (const auto& [name, tensor] : targets) {
    if (filled.count(name)) continue;
    report.fresh.push_back(name);
    const bool ours_or_head = in_param_group(name, ParamGroup::kAdapters) || starts_with(name, "norm.") ||
                              in_param_group(name, ParamGroup::kHead);
    if (!ours_or_head) report.fresh_encoder.push_back(name);
  }
  if (report.imported == 0) {
    throw Error(source + ": no tensor fits the " + net->config().arch + " model (" +
                std::to_string(report.skipped.size()) + " skipped, e.g. " +
                (report.skipped.empty() ? "none" : report.skipped.front()) + ")");
  }
  if (!report.fresh_encoder.empty() && !allow_partial) {
    throw Error(source + ": the import would leave " + std::to_string(report.fresh_encoder.size()) +
                " encoder tensors at random initialisation (e.g. " + report.fresh_encoder.front() + ", " +
                std::to_string(report.skipped.size()) + " file tensors skipped" +
                (report.skipped.empty() ? "" : ", e.g. " + report.skipped.front()) +
                "); pass --allow-partial (pipeline.import_allow_partial) to import it anyway");
  }
  return report;
}

}  // namespace gaze
