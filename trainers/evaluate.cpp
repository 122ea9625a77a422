#include "trainers/evaluate.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <type_traits>

#include "libgaze/core/error.h"
#include "trainers/batches.h"
#include "trainers/trainer.h"

namespace gaze {

double roc_auc(const std::vector<double>& scores, const std::vector<bool>& positive) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Mann-Whitney U with average ranks for ties.
  double rank_sum = 0;
  int64_t pos = 0, neg = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double rank = 0.5 * double(i + 1 + j);
    for (size_t k = i; k < j; ++k) {
      if (positive[order[k]])
        rank_sum += rank, ++pos;
      else
        ++neg;
    }
    i = j;
  }
  if (pos == 0 || neg == 0) return -1;
  return (rank_sum - double(pos) * (pos + 1) / 2) / (double(pos) * neg);
}

void for_each_eval_batch(const Dataset& data, const Config& config, const std::vector<int64_t>& indices,
                         const std::function<void(const Batch&)>& visit) {
  std::vector<int64_t> items = indices;
  if (items.empty()) {
    items.resize(size_t(data.size()));
    std::iota(items.begin(), items.end(), 0);
  }
  const int64_t batch = 64;
  const auto plan = sequential_plan(items, batch);
  const int64_t steps = (int64_t(items.size()) + batch - 1) / batch;
  BatchStream stream(data, *plan, 0, steps, preprocess_options(config, false), 0, config.data.workers, 2,
                     config.data.skip_bad);
  at::NoGradGuard no_grad;
  while (auto b = stream.next()) visit(*b);
}

EvalResult evaluate_predictor(const GazePredictor& predict, bool score_blinks, const Dataset& data,
                              const Config& config, const std::vector<int64_t>& indices) {
  EvalResult r;
  r.dataset = data.describe();
  for_each_eval_batch(data, config, indices, [&](const Batch& b) {
    const at::Tensor out = predict(b);
    const at::Tensor d = gaze_directions(out).to(at::kDouble).contiguous();
    const at::Tensor s =
        (out.size(1) > 3 ? gaze_log_scales(out) : at::zeros({out.size(0)})).to(at::kDouble).contiguous();
    const at::Tensor g = b.gaze.to(at::kDouble).contiguous();
    for (int64_t i = 0; i < d.size(0); ++i) {
      const double* p = d.data_ptr<double>() + 3 * i;
      const double* t = g.data_ptr<double>() + 3 * i;
      r.predictions.push_back({p[0], p[1], p[2]});
      r.labels.push_back({t[0], t[1], t[2]});
      r.errors_deg.push_back(angular_error_deg(r.predictions.back(), r.labels.back()));
      r.log_scales.push_back(s.data_ptr<double>()[i]);
      r.blinks.push_back(b.blink[i].item<bool>());
      r.participants.push_back(b.participants[size_t(i)]);
      r.indices.push_back(b.indices[size_t(i)]);
    }
  });
  r.blink_frames = int64_t(std::count(r.blinks.begin(), r.blinks.end(), true));
  const auto open = [&](const auto& per_frame) {  // the entries of open-eye frames
    std::decay_t<decltype(per_frame)> kept;
    for (size_t i = 0; i < per_frame.size(); ++i) {
      if (!r.blinks[i]) kept.push_back(per_frame[i]);
    }
    return kept;
  };
  const std::vector<int64_t> open_participants = open(r.participants);
  if (open_participants.empty()) throw Error(data.describe() + ": no open-eye frames to evaluate");
  r.summary = summarize_by_participant(open(r.errors_deg), open_participants);
  r.offsets = split_person_offsets(open(r.predictions), open(r.labels), open_participants);
  // An untrained 4th output (model.head.uncertainty: false) is not scored as a blink detector.
  if (score_blinks) r.blink_auc = roc_auc(r.log_scales, r.blinks);
  return r;
}

EvalResult evaluate(GazeNet& model, const Dataset& data, const Config& config, const std::vector<int64_t>& indices) {
  model->eval();
  return evaluate_predictor([&](const Batch& b) { return model->forward(b.images); }, model->config().head.uncertainty,
                            data, config, indices);
}

EvalResult evaluate(Baseline& model, const Dataset& data, const Config& config, const std::vector<int64_t>& indices) {
  model->eval();
  return evaluate_predictor([&](const Batch& b) { return model->forward(b.images, b.head); }, false, data, config,
                            indices);
}

BaselineErrors mean_gaze_baseline(const Dataset& train, const Dataset& test, const std::vector<int64_t>& test_indices) {
  const std::array<double, 3> total = gaze_label_sum(train);
  const Vec3 mean{total[0], total[1], total[2]};
  double sum = 0;
  int64_t n = 0;
  std::map<int64_t, std::pair<double, int64_t>> people;  // participant -> sum, frames
  const auto add = [&](int64_t i) {
    const SampleLabel& l = test.label(i);
    if (l.blink) return;
    const double error = angular_error_deg(mean, {l.gaze[0], l.gaze[1], l.gaze[2]});
    sum += error;
    ++n;
    people[l.participant].first += error;
    ++people[l.participant].second;
  };
  if (test_indices.empty()) {
    for (int64_t i = 0; i < test.size(); ++i) add(i);
  } else {
    for (int64_t i : test_indices) add(i);
  }
  BaselineErrors out;
  out.mean_deg = n ? sum / double(n) : 0.0;
  for (const auto& [person, total_frames] : people)
    out.per_participant[person] = total_frames.first / double(total_frames.second);
  return out;
}

Json eval_json(const EvalResult& r) {
  const ErrorStats& a = r.summary.all_frames;
  Json out = {{"dataset", r.dataset},
              {"frames", a.count},
              {"blink_frames", r.blink_frames},
              {"mean_deg", a.mean},
              {"median_deg", a.median},
              {"p95_deg", a.p95},
              {"mean_over_participants_deg", r.summary.mean_over_participants},
              {"person_offset_deg", r.offsets.mean_offset_deg},
              {"offset_removed_deg", r.offsets.residual.all_frames.mean},
              {"offset_removed_mean_over_participants_deg", r.offsets.residual.mean_over_participants},
              {"blink_auc", r.blink_auc < 0 ? Json(nullptr) : Json(r.blink_auc)},
              {"participants", Json::object()}};
  for (const auto& [id, s] : r.summary.per_participant) {
    out["participants"][std::to_string(id)] = {{"frames", s.count},
                                               {"mean_deg", s.mean},
                                               {"median_deg", s.median},
                                               {"p95_deg", s.p95},
                                               {"offset_deg", r.offsets.offset_deg.at(id)},
                                               {"offset_removed_deg", r.offsets.residual.per_participant.at(id).mean}};
  }
  return out;
}

std::string eval_markdown(const EvalResult& r) {
  const ErrorStats& a = r.summary.all_frames;
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "Evaluation on %s: %lld open-eye frames (%lld blinks excluded)\n\n"
                "| participant | frames | mean (deg) | median (deg) | p95 (deg) | offset (deg) | offset removed (deg) "
                "|\n|---|---|---|---|---|---|---|\n",
                r.dataset.c_str(), (long long)a.count, (long long)r.blink_frames);
  std::string out = buf;
  for (const auto& [id, s] : r.summary.per_participant) {
    std::snprintf(buf, sizeof buf, "| %lld | %lld | %.3f | %.3f | %.3f | %.3f | %.3f |\n", (long long)id,
                  (long long)s.count, s.mean, s.median, s.p95, r.offsets.offset_deg.at(id),
                  r.offsets.residual.per_participant.at(id).mean);
    out += buf;
  }
  std::snprintf(buf, sizeof buf,
                "| **all** | %lld | %.3f | %.3f | %.3f | %.3f | %.3f |\n\n"
                "offset: the rotation taking a person's mean prediction onto their mean label; offset removed: "
                "the error left after each person's offset is undone (roughly what an offset calibration reaches).\n\n"
                "mean over participants: %.3f deg",
                (long long)a.count, a.mean, a.median, a.p95, r.offsets.mean_offset_deg,
                r.offsets.residual.all_frames.mean, r.summary.mean_over_participants);
  out += buf;
  if (r.blink_auc >= 0) {
    std::snprintf(buf, sizeof buf, "; blink detection from the uncertainty output: ROC AUC %.3f", r.blink_auc);
    out += buf;
  }
  return out + "\n";
}

}  // namespace gaze
