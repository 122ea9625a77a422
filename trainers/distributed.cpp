#include "trainers/distributed.h"

#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>

#include "libgaze/core/error.h"

namespace gaze {

struct Distributed::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
};

namespace {

int64_t env_int(const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const char* text = std::getenv(name);
  if (!text || !*text) return fallback;
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (*end != '\0' || v < lo || v > hi) {
    throw Error("distributed: " + std::string(name) + "='" + text + "' must be an integer in " + std::to_string(lo) +
                ".." + std::to_string(hi));
  }
  return v;
}

std::string env_text(const char* name) {
  const char* text = std::getenv(name);
  if (!text || !*text) throw Error(std::string("distributed: WORLD_SIZE is set but ") + name + " is not");
  return text;
}

// Runs one collective; Gloo's errors (a peer that closed its connection, a timeout) become one
// line naming this rank.
template <class F>
void collective(const Distributed& dist, const char* what, F&& run) {
  try {
    run();
  } catch (const std::exception& e) {
    std::string reason = e.what();
    reason = reason.substr(0, reason.find('\n'));
    throw Error("distributed: rank " + std::to_string(dist.rank()) + " of " + std::to_string(dist.world_size()) + ": " +
                what + " failed (another worker died or stopped answering): " + reason);
  }
}

}  // namespace

Distributed Distributed::from_environment(std::chrono::milliseconds timeout) {
  Distributed d;
  d.world_size_ = env_int("WORLD_SIZE", 1, 1, 65536);
  if (d.world_size_ == 1) return d;
  d.rank_ = env_int("RANK", -1, 0, d.world_size_ - 1);
  if (d.rank_ < 0) throw Error("distributed: WORLD_SIZE is set but RANK is not");
  const std::string address = env_text("MASTER_ADDR");
  const int64_t port = env_int("MASTER_PORT", -1, 1, 65535);
  if (port < 0) throw Error("distributed: WORLD_SIZE is set but MASTER_PORT is not");
  d.group_ = std::make_shared<Group>();
  try {
    c10d::TCPStoreOptions options;
    options.port = uint16_t(port);
    options.isServer = d.rank_ == 0;
    options.numWorkers = size_t(d.world_size_);
    options.waitWorkers = true;
    options.timeout = timeout;
    d.group_->store = c10::make_intrusive<c10d::TCPStore>(address, options);
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
    // This rank's address for its peers: the interface that routes to the master.
    gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(address));
    d.group_->gloo =
        c10::make_intrusive<c10d::ProcessGroupGloo>(d.group_->store, int(d.rank_), int(d.world_size_), gloo_options);
  } catch (const std::exception& e) {
    std::string reason = e.what();
    throw Error("distributed: rank " + std::to_string(d.rank_) + " could not join " + std::to_string(d.world_size_) +
                " workers at " + address + ":" + std::to_string(port) + ": " + reason.substr(0, reason.find('\n')));
  }
  return d;
}

void Distributed::average(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes) const {
  if (!active() || tensors.empty()) return;
  // Buckets of whole tensors of one dtype, one flat buffer each.
  size_t begin = 0;
  while (begin < tensors.size()) {
    size_t end = begin;
    int64_t bytes = 0;
    while (end < tensors.size() && (end == begin || (bytes + int64_t(tensors[end].nbytes()) <= bucket_bytes &&
                                                     tensors[end].scalar_type() == tensors[begin].scalar_type()))) {
      bytes += int64_t(tensors[end].nbytes());
      ++end;
    }
    std::vector<at::Tensor> flat_parts;
    for (size_t i = begin; i < end; ++i) flat_parts.push_back(tensors[i].reshape({-1}));
    std::vector<at::Tensor> bucket = {at::cat(flat_parts)};
    collective(*this, "all-reduce", [&] { group_->gloo->allreduce(bucket)->wait(); });
    bucket[0].div_(double(world_size_));
    int64_t at = 0;
    for (size_t i = begin; i < end; ++i) {
      const int64_t n = tensors[i].numel();
      tensors[i].copy_(bucket[0].slice(0, at, at + n).view(tensors[i].sizes()));
      at += n;
    }
    begin = end;
  }
}

void Distributed::sum(const std::vector<at::Tensor>& tensors) const {
  if (!active()) return;
  for (const at::Tensor& t : tensors) {
    std::vector<at::Tensor> one = {t};
    collective(*this, "all-reduce", [&] { group_->gloo->allreduce(one)->wait(); });
  }
}

namespace {

// y = the sum of x over the ranks; dy/dx sums the incoming gradients over the ranks as well
// (every rank's loss depends on every rank's x through y).
struct AllReduceSumFunction : torch::autograd::Function<AllReduceSumFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t dist) {
    ctx->saved_data["dist"] = dist;
    at::Tensor y = x.detach().clone();
    reinterpret_cast<const Distributed*>(dist)->sum({y});
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    at::Tensor g = grads[0].contiguous().clone();
    reinterpret_cast<const Distributed*>(ctx->saved_data["dist"].toInt())->sum({g});
    return {g, at::Tensor()};
  }
};

}  // namespace

AllReduceSum Distributed::differentiable_sum() const {
  const int64_t self = reinterpret_cast<int64_t>(this);
  return [self](const at::Tensor& x) { return AllReduceSumFunction::apply(x, self); };
}

void Distributed::broadcast(const std::vector<at::Tensor>& tensors) const {
  if (!active()) return;
  for (const at::Tensor& t : tensors) {
    std::vector<at::Tensor> one = {t.is_contiguous() ? t : t.contiguous()};
    collective(*this, "broadcast", [&] { group_->gloo->broadcast(one)->wait(); });
    if (!one[0].is_same(t)) t.copy_(one[0]);
  }
}

void Distributed::barrier() const {
  if (!active()) return;
  collective(*this, "barrier", [&] { group_->gloo->barrier()->wait(); });
}

void average_gradients(const Distributed& dist, const std::vector<at::Tensor>& params) {
  if (!dist.active()) return;
  // Every rank runs the same graph, so the same parameters have gradients everywhere; the
  // others (a bias BatchNorm cancels) stay without one, as in a single process, and AdamW
  // skips them alike.
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  dist.average(grads);
}

}  // namespace gaze
