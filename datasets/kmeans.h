// K-means over gaze vectors and the cluster-balanced sampler built on it (SPEC §2, stage 3).
//
// kmeans(): k-means++ seeding then Lloyd iterations (Eigen), seeded and deterministic; an
// emptied cluster is re-seeded at the point farthest from its centroid.
// ClusterBalancedSampler: draws a cluster uniformly, then an item uniformly within it, so rare
// gaze directions are seen as often as common ones. Its whole state is one 64-bit word, saved
// in checkpoints so a resumed run draws the same sequence.
#pragma once

#include <Eigen/Core>

#include <array>
#include <cstdint>
#include <vector>

namespace gaze {

struct KMeansResult {
  Eigen::MatrixXd centroids;  // k x 3
  std::vector<int32_t> assignment;
  double inertia = 0;  // sum of squared distances to the assigned centroid
  int iterations = 0;
};

KMeansResult kmeans(const std::vector<std::array<float, 3>>& points, int k, uint64_t seed, int max_iterations = 100);

class ClusterBalancedSampler {
 public:
  ClusterBalancedSampler(const std::vector<int32_t>& assignment, uint64_t seed);
  int64_t next();  // an item index
  int64_t clusters() const { return int64_t(members_.size()); }
  uint64_t state() const { return state_; }
  void set_state(uint64_t state) { state_ = state; }

 private:
  std::vector<std::vector<int64_t>> members_;  // non-empty clusters only
  uint64_t state_;
};

}  // namespace gaze
