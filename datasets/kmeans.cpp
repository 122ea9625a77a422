#include "datasets/kmeans.h"

#include <limits>

#include "libgaze/core/error.h"
#include "libgaze/core/random.h"

namespace gaze {

KMeansResult kmeans(const std::vector<std::array<float, 3>>& points, int k, uint64_t seed, int max_iterations) {
  const int64_t n = int64_t(points.size());
  if (k < 1) throw Error("kmeans: k must be >= 1");
  if (n < k) throw Error("kmeans: " + std::to_string(n) + " points cannot form " + std::to_string(k) + " clusters");
  Eigen::MatrixXd x(n, 3);
  for (int64_t i = 0; i < n; ++i) x.row(i) << points[i][0], points[i][1], points[i][2];

  SplitMix rng(seed_mix(seed, stream::kKMeans));
  KMeansResult r;
  r.centroids.resize(k, 3);
  // k-means++: each next centre drawn with probability proportional to squared distance.
  Eigen::VectorXd nearest = Eigen::VectorXd::Constant(n, std::numeric_limits<double>::infinity());
  r.centroids.row(0) = x.row(int64_t(rng.uniform() * n) % n);
  for (int c = 1; c < k; ++c) {
    nearest = nearest.cwiseMin((x.rowwise() - r.centroids.row(c - 1)).rowwise().squaredNorm());
    const double total = nearest.sum();
    double target = rng.uniform() * total;
    int64_t pick = n - 1;
    for (int64_t i = 0; i < n; ++i) {
      if ((target -= nearest[i]) <= 0) {
        pick = i;
        break;
      }
    }
    r.centroids.row(c) = x.row(pick);
  }
  r.assignment.assign(n, -1);
  for (r.iterations = 1; r.iterations <= max_iterations; ++r.iterations) {
    bool changed = false;
    r.inertia = 0;
    std::vector<double> distance(n);
    for (int64_t i = 0; i < n; ++i) {
      int best = 0;
      (r.centroids.rowwise() - x.row(i)).rowwise().squaredNorm().minCoeff(&best);
      distance[i] = (r.centroids.row(best) - x.row(i)).squaredNorm();
      r.inertia += distance[i];
      if (best != r.assignment[i]) changed = true;
      r.assignment[i] = best;
    }
    Eigen::MatrixXd sums = Eigen::MatrixXd::Zero(k, 3);
    std::vector<int64_t> counts(k, 0);
    for (int64_t i = 0; i < n; ++i) {
      sums.row(r.assignment[i]) += x.row(i);
      ++counts[r.assignment[i]];
    }
    for (int c = 0; c < k; ++c) {
      if (counts[c] > 0) {
        r.centroids.row(c) = sums.row(c) / double(counts[c]);
      } else {  // re-seed an empty cluster at the worst-fitted point
        const int64_t far = int64_t(std::max_element(distance.begin(), distance.end()) - distance.begin());
        r.centroids.row(c) = x.row(far);
        distance[far] = 0;
        changed = true;
      }
    }
    if (!changed) break;
  }
  return r;
}

ClusterBalancedSampler::ClusterBalancedSampler(const std::vector<int32_t>& assignment, uint64_t seed) : state_(seed) {
  int32_t k = 0;
  for (int32_t a : assignment) k = std::max(k, a + 1);
  std::vector<std::vector<int64_t>> all(k);
  for (size_t i = 0; i < assignment.size(); ++i) all[assignment[i]].push_back(int64_t(i));
  for (auto& m : all) {
    if (!m.empty()) members_.push_back(std::move(m));
  }
  if (members_.empty()) throw Error("balanced sampler: no items");
}

int64_t ClusterBalancedSampler::next() {
  SplitMix rng(state_);
  const auto& cluster = members_[rng.next() % members_.size()];
  const int64_t item = cluster[rng.next() % cluster.size()];
  state_ = rng.state;
  return item;
}

}  // namespace gaze
