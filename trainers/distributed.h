// Data-parallel training across processes and machines with LibTorch's c10d: a TCPStore
// rendezvous and a Gloo process group, configured by the variables torchrun and cluster
// launchers set (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).
//
// Contract: N processes with global batch B (train.batch_size) each read their B/N slice of
// the same global batch order (batches.h, Shard), average gradients with all-reduce, and step
// identical optimisers, so their weights equal one process with batch B (up to float summation
// order). Rank 0 alone writes the run directory (checkpoints, logs, metrics). A worker that dies
// or stops answering for run.dist_timeout_s seconds ends the others with gaze::Error naming the
// rank and the step. Without WORLD_SIZE (or with 1) everything is a no-op.
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "libgaze/models/gaze_net.h"

namespace gaze {

class Distributed {
 public:
  // A world of one: every operation returns at once.
  Distributed() = default;
  // Joins the world the environment describes (TCPStore at MASTER_ADDR:MASTER_PORT, then Gloo);
  // a world of one when WORLD_SIZE is unset or 1. Throws gaze::Error naming the variable that is
  // missing or wrong, or the rendezvous that timed out.
  static Distributed from_environment(std::chrono::milliseconds timeout);

  int64_t rank() const { return rank_; }
  int64_t world_size() const { return world_size_; }
  bool active() const { return world_size_ > 1; }
  bool is_root() const { return rank_ == 0; }

  // Sums each tensor over the ranks and divides by the world size, in place; tensors are packed
  // into flat buckets of about `bucket_bytes` so each bucket is one collective.
  void average(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes = int64_t(16) << 20) const;
  // Sums each tensor over the ranks, in place (one collective per tensor).
  void sum(const std::vector<at::Tensor>& tensors) const;
  // The same sum as an autograd operation whose backward sums the gradients too (what
  // synchronised BatchNorm needs, gaze_net.h AllReduceSum). This object must outlive its use.
  AllReduceSum differentiable_sum() const;
  // Copies rank 0's tensors to every rank, in place.
  void broadcast(const std::vector<at::Tensor>& tensors) const;
  void barrier() const;

 private:
  struct Group;  // the TCPStore and the Gloo process group (distributed.cpp)
  int64_t rank_ = 0, world_size_ = 1;
  std::shared_ptr<Group> group_;
};

// The gradients of `params` averaged over the ranks (parameters without one are left alone).
void average_gradients(const Distributed& dist, const std::vector<at::Tensor>& params);

}  // namespace gaze
