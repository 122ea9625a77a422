// Evaluation: angular error of a model on a dataset, overall and per participant, and how well
// the uncertainty output flags blinks (SPEC §3 "Angular error"; issue: eval), and how much of
// the error is a constant offset per person (metrics/person_offsets.h).
//
// Errors are computed in double on normalised vectors (atan2 form). The blink score is the
// ROC AUC of the predicted log-scale as a detector of labelled blinks (0.5 = chance), reported
// when the data has both blinks and open eyes.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "libgaze/config/config.h"
#include "libgaze/core/json.h"
#include "libgaze/metrics/angular_error.h"
#include "libgaze/metrics/person_offsets.h"
#include "libgaze/models/baselines.h"
#include "libgaze/models/gaze_net.h"
#include "trainers/batches.h"

namespace gaze {

struct EvalResult {
  std::vector<double> errors_deg, log_scales;
  std::vector<Vec3> predictions, labels;  // unit directions, per frame
  std::vector<int64_t> participants, indices;
  std::vector<bool> blinks;
  ParticipantErrors summary;  // over open-eye frames
  PersonOffsets offsets;      // the same frames: how much of the error is a per-person offset
  double blink_auc = -1;      // -1 when not measurable
  int64_t blink_frames = 0;
  std::string dataset;
};

// What evaluation runs on each batch: unit gaze directions [B, 3], or a gaze head's output
// [B, 4] whose 4th column is the log-scale scored as a blink detector when `score_blinks`.
using GazePredictor = std::function<at::Tensor(const Batch&)>;

// Runs `visit` on the batches of `indices` (all when empty) in order, pre-processed as
// config.data says without augmentation, 64 images each, under no_grad.
void for_each_eval_batch(const Dataset& data, const Config& config, const std::vector<int64_t>& indices,
                         const std::function<void(const Batch&)>& visit);

// Predictions for `indices` (all when empty), batches as config.data prepares them; blinks are
// excluded from the error statistics.
EvalResult evaluate_predictor(const GazePredictor& predict, bool score_blinks, const Dataset& data,
                              const Config& config, const std::vector<int64_t>& indices = {});
// The same for a model, in eval mode.
EvalResult evaluate(GazeNet& model, const Dataset& data, const Config& config,
                    const std::vector<int64_t>& indices = {});
EvalResult evaluate(Baseline& model, const Dataset& data, const Config& config,
                    const std::vector<int64_t>& indices = {});

// The error of always predicting the mean training gaze (the baseline the model must beat) on
// `test`'s open-eye frames: over all of them, and per participant (the mean over theirs).
struct BaselineErrors {
  double mean_deg = 0;
  std::map<int64_t, double> per_participant;
};
BaselineErrors mean_gaze_baseline(const Dataset& train, const Dataset& test,
                                  const std::vector<int64_t>& test_indices = {});

Json eval_json(const EvalResult& r);
std::string eval_markdown(const EvalResult& r);

// ROC AUC of `scores` for the positive labels (ties count half).
double roc_auc(const std::vector<double>& scores, const std::vector<bool>& positive);

}  // namespace gaze
