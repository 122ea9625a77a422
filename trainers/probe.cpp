#include "trainers/probe.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <set>

#include "libgaze/core/error.h"
#include "libgaze/metrics/angular_error.h"
#include "libgaze/metrics/gaze_vector.h"
#include "trainers/evaluate.h"
#include "trainers/tables.h"

namespace gaze {
namespace {

// Every open-eye frame's pooled features per stage and pooling, and its (yaw, pitch).
struct Features {
  std::vector<at::Tensor> pooled;  // [stage * 2 + (0 global, 1 grid)] -> [N, D] double
  at::Tensor angles;               // [N, 2] double
  std::vector<int64_t> participants;
};

Features extract(GazeNet& model, const Dataset& data, const Config& config, int64_t grid) {
  std::vector<std::vector<at::Tensor>> parts(8);
  std::vector<at::Tensor> angles;
  Features f;
  model->eval();
  for_each_eval_batch(data, config, {}, [&](const Batch& b) {
    const at::Tensor open = b.blink.logical_not();
    if (!open.any().item<bool>()) return;
    const at::Tensor keep = open.nonzero().squeeze(1);
    const std::vector<at::Tensor> stages = model->forward_stages(b.images.index_select(0, keep));
    for (size_t s = 0; s < stages.size(); ++s) {
      parts[2 * s].push_back(stages[s].mean({2, 3}).to(at::kDouble));
      parts[2 * s + 1].push_back(at::adaptive_avg_pool2d(stages[s], {grid, grid}).flatten(1).to(at::kDouble));
    }
    const at::Tensor g = b.gaze.index_select(0, keep).to(at::kDouble).contiguous();
    at::Tensor a = at::empty({g.size(0), 2}, at::kDouble);
    for (int64_t i = 0; i < g.size(0); ++i) {
      const double* v = g.data_ptr<double>() + 3 * i;
      const YawPitch yp = aria_angles({v[0], v[1], v[2]});
      a[i][0] = yp.yaw;
      a[i][1] = yp.pitch;
    }
    angles.push_back(a);
    const auto* k = keep.data_ptr<int64_t>();
    for (int64_t i = 0; i < keep.size(0); ++i) f.participants.push_back(b.participants[size_t(k[i])]);
  });
  if (angles.empty()) throw Error(data.describe() + ": no open-eye frames to probe");
  for (auto& p : parts) f.pooled.push_back(at::cat(p));
  f.angles = at::cat(angles);
  return f;
}

// Ridge regression on standardised features: y ~ ((x - mean) / sd) w + b. Solved in whichever
// of the primal (D x D) or dual (N x N) forms is smaller.
struct Ridge {
  at::Tensor mean, sd, w, b;
  at::Tensor predict(const at::Tensor& x) const { return ((x - mean) / sd).matmul(w) + b; }
};

Ridge fit_ridge(const at::Tensor& x, const at::Tensor& y, double lambda) {
  Ridge r;
  r.mean = x.mean(0);
  r.sd = x.std(0, /*unbiased=*/false).clamp_min(1e-8);
  r.b = y.mean(0);
  const at::Tensor z = (x - r.mean) / r.sd, t = y - r.b;
  const int64_t n = z.size(0), d = z.size(1);
  const double penalty = lambda * double(n);
  if (d <= n) {
    r.w = at::linalg_solve(z.t().matmul(z) + penalty * at::eye(d, at::kDouble), z.t().matmul(t));
  } else {
    r.w = z.t().matmul(at::linalg_solve(z.matmul(z.t()) + penalty * at::eye(n, at::kDouble), t));
  }
  return r;
}

double mean_error_deg(const at::Tensor& predicted, const at::Tensor& angles) {
  const at::Tensor p = predicted.contiguous(), a = angles.contiguous();
  double sum = 0;
  for (int64_t i = 0; i < p.size(0); ++i) {
    const double* q = p.data_ptr<double>() + 2 * i;
    const double* t = a.data_ptr<double>() + 2 * i;
    sum += angular_error_deg(aria_direction({q[0], q[1]}), aria_direction({t[0], t[1]}));
  }
  return sum / double(p.size(0));
}

// Rows of the training frames whose participant is (or is not) in the last quarter of people.
at::Tensor rows_where(const std::vector<int64_t>& participants, const std::set<int64_t>& held, bool in_held) {
  std::vector<int64_t> rows;
  for (size_t i = 0; i < participants.size(); ++i) {
    if (held.count(participants[i]) == (in_held ? 1u : 0u)) rows.push_back(int64_t(i));
  }
  return at::tensor(rows, at::kLong);
}

}  // namespace

ProbeReport linear_probe(GazeNet& model, const Dataset& train, const Dataset& heldout, const Config& config,
                         int64_t grid) {
  if (grid < 1) throw Error("probe: the grid must be at least 1x1");
  ProbeReport report;
  report.train = train.describe();
  report.heldout = heldout.describe();
  const Features a = extract(model, train, config, grid), h = extract(model, heldout, config, grid);
  report.train_frames = a.angles.size(0);
  report.heldout_frames = h.angles.size(0);
  report.mean_gaze_deg = mean_error_deg(a.angles.mean(0, true).expand_as(h.angles), h.angles);

  // The ridge strength is chosen on the last quarter of the training people (by id), fitted on
  // the rest; a single training person is split by frames instead.
  std::set<int64_t> people(a.participants.begin(), a.participants.end());
  std::set<int64_t> held;
  const size_t quarter = std::max<size_t>(1, people.size() / 4);
  for (auto it = people.rbegin(); it != people.rend() && held.size() < quarter; ++it) held.insert(*it);
  at::Tensor fit_rows = rows_where(a.participants, held, false), pick_rows = rows_where(a.participants, held, true);
  if (fit_rows.numel() == 0) {
    const int64_t n = a.angles.size(0);
    fit_rows = at::arange(0, n - n / 4, at::kLong);
    pick_rows = at::arange(n - n / 4, n, at::kLong);
  }
  const double lambdas[] = {1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1000};
  for (size_t k = 0; k < a.pooled.size(); ++k) {
    const at::Tensor& x = a.pooled[k];
    ProbeRow row;
    row.stage = int64_t(k / 2) + 1;
    row.pooling = k % 2 ? "grid " + std::to_string(grid) + "x" + std::to_string(grid) : "global";
    row.dims = x.size(1);
    double best = std::numeric_limits<double>::infinity();
    for (double lambda : lambdas) {
      const Ridge r = fit_ridge(x.index_select(0, fit_rows), a.angles.index_select(0, fit_rows), lambda);
      const double e = mean_error_deg(r.predict(x.index_select(0, pick_rows)), a.angles.index_select(0, pick_rows));
      if (e < best) best = e, row.lambda = lambda;
    }
    const Ridge r = fit_ridge(x, a.angles, row.lambda);
    row.train_deg = mean_error_deg(r.predict(x), a.angles);
    row.heldout_deg = mean_error_deg(r.predict(h.pooled[k]), h.angles);
    report.rows.push_back(row);
  }
  return report;
}

Json ProbeReport::json() const {
  Json rows_json = Json::array();
  for (const ProbeRow& r : rows) {
    rows_json.push_back({{"stage", r.stage},
                         {"pooling", r.pooling},
                         {"dims", r.dims},
                         {"lambda", r.lambda},
                         {"train_deg", json_number(r.train_deg)},
                         {"heldout_deg", json_number(r.heldout_deg)}});
  }
  return {{"checkpoint", checkpoint},
          {"train", train},
          {"heldout", heldout},
          {"train_frames", train_frames},
          {"heldout_frames", heldout_frames},
          {"mean_gaze_deg", json_number(mean_gaze_deg)},
          {"probes", rows_json}};
}

std::string ProbeReport::markdown() const {
  std::vector<std::vector<std::string>> cells;
  for (const ProbeRow& r : rows) {
    cells.push_back({std::to_string(r.stage), r.pooling, std::to_string(r.dims), fmt(r.lambda, 4), fmt(r.train_deg),
                     fmt(r.heldout_deg), fmt(r.heldout_deg / mean_gaze_deg, 3)});
  }
  return "Linear probes of " + (checkpoint.empty() ? std::string("the model") : checkpoint) + ": ridge from pooled " +
         "stage outputs to (yaw, pitch), fitted on " + std::to_string(train_frames) + " open-eye frames of " + train +
         ", scored on " + std::to_string(heldout_frames) + " of " + heldout + " (mean-gaze baseline " +
         fmt(mean_gaze_deg) + " deg).\n\n" +
         markdown_table({"stage", "pooling", "features", "ridge", "train (deg)", "held-out (deg)", "/ baseline"},
                        cells);
}

}  // namespace gaze
