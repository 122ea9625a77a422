#include "libgaze/io/checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstring>
#include <sstream>

#include "libgaze/core/error.h"
#include "libgaze/io/checkpoint_file.h"

namespace gaze {
namespace {

h5::DType to_h5(at::ScalarType type, const std::string& name) {
  switch (type) {
    case at::kFloat:
      return h5::DType::kF32;
    case at::kDouble:
      return h5::DType::kF64;
    case at::kChar:
      return h5::DType::kI8;
    case at::kByte:
      return h5::DType::kU8;
    case at::kShort:
      return h5::DType::kI16;
    case at::kInt:
      return h5::DType::kI32;
    case at::kLong:
      return h5::DType::kI64;
    default:
      throw Error("checkpoint: tensor '" + name + "' has unsupported dtype " + std::string(c10::toString(type)));
  }
}

at::ScalarType to_torch(h5::DType type) {
  switch (type) {
    case h5::DType::kF32:
      return at::kFloat;
    case h5::DType::kF64:
      return at::kDouble;
    case h5::DType::kI8:
      return at::kChar;
    case h5::DType::kU8:
      return at::kByte;
    case h5::DType::kI16:
      return at::kShort;
    case h5::DType::kI32:
      return at::kInt;
    case h5::DType::kI64:
      return at::kLong;
  }
  return at::kFloat;
}

ArrayList to_arrays(const TensorList& tensors) {
  ArrayList arrays;
  for (const auto& [name, tensor] : tensors) {
    const at::Tensor t = tensor.detach().contiguous().cpu();
    h5::Array array;
    array.dtype = to_h5(t.scalar_type(), name);
    array.shape = t.sizes().vec();
    array.bytes.resize(t.nbytes());
    if (t.nbytes()) std::memcpy(array.bytes.data(), t.data_ptr(), t.nbytes());
    arrays.emplace_back(name, std::move(array));
  }
  return arrays;
}

TensorList to_tensors(const ArrayList& arrays) {
  TensorList tensors;
  for (const auto& [name, array] : arrays) {
    at::Tensor t = at::empty(array.shape, at::TensorOptions().dtype(to_torch(array.dtype)));
    if (t.nbytes()) std::memcpy(t.data_ptr(), array.bytes.data(), t.nbytes());
    tensors.emplace_back(name, t);
  }
  return tensors;
}

std::string shape_string(at::IntArrayRef sizes) {
  std::ostringstream s;
  s << sizes;
  return s.str();
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
  write_checkpoint_file(path, {checkpoint.stage, checkpoint.step, checkpoint.config_yaml, to_arrays(checkpoint.model),
                               to_arrays(checkpoint.optimizer), to_arrays(checkpoint.state)});
}

Checkpoint load_checkpoint(const std::string& path) {
  const CheckpointFile file = read_checkpoint_file(path);
  return {file.stage,
          file.step,
          file.config_yaml,
          to_tensors(file.model),
          to_tensors(file.optimizer),
          to_tensors(file.state)};
}

TensorList module_state(const torch::nn::Module& module) {
  TensorList out;
  for (const auto& item : module.named_parameters(true)) out.emplace_back(item.key(), item.value().detach());
  for (const auto& item : module.named_buffers(true)) out.emplace_back(item.key(), item.value().detach());
  return out;
}

std::string LoadReport::describe() const {
  std::ostringstream s;
  s << loaded << " tensors loaded";
  const auto list = [&](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return;
    s << "; " << names.size() << " " << what << ": ";
    for (size_t i = 0; i < names.size(); ++i) s << (i ? ", " : "") << names[i];
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("with wrong shape", mismatched);
  return s.str();
}

LoadReport load_module_state(torch::nn::Module& module, const TensorList& tensors, bool strict,
                             const std::string& source) {
  LoadReport report;
  TensorList targets = module_state(module);
  std::vector<std::pair<at::Tensor, at::Tensor>> copies;  // (destination, source)
  for (const auto& [name, target] : targets) {
    const at::Tensor src = find_tensor(tensors, name);
    if (!src.defined()) {
      report.missing.push_back(name);
    } else if (src.sizes() != target.sizes()) {
      report.mismatched.push_back(name + " (file " + shape_string(src.sizes()) + " vs model " +
                                  shape_string(target.sizes()) + ")");
    } else {
      copies.emplace_back(target, src);
    }
  }
  for (const auto& [name, tensor] : tensors) {
    if (!find_tensor(targets, name).defined()) report.unexpected.push_back(name);
  }
  if (strict && !report.complete()) {
    throw Error(source + ": checkpoint does not match the model: " + report.describe());
  }
  at::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src);
  report.loaded = static_cast<int64_t>(copies.size());
  return report;
}

at::Tensor cpu_rng_state() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_cpu_rng_state(const at::Tensor& state) {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

at::Tensor find_tensor(const TensorList& tensors, const std::string& name) {
  for (const auto& [n, t] : tensors) {
    if (n == name) return t;
  }
  return {};
}

uint32_t tensors_crc32c(const TensorList& tensors) { return arrays_crc32c(to_arrays(tensors)); }

}  // namespace gaze
