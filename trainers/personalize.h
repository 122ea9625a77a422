// Personalisation (SPEC §2 stage 4): per participant, tune the last-stage adapters (head
// optional) on k labelled calibration images mixed with a K-means-balanced replay subset of
// the generalised training set, and evaluate on that participant's other images.
//
// Speed: everything up to stage 3 is frozen, so each image's stage-3 features are computed
// once (calibration images in a few augmented views, replay and evaluation images plainly)
// and every optimisation step runs stage 4 and the head only. BatchNorm statistics stay those
// of the base model (eval mode); only weights adapt.
//
// For each participant the k_max = max(k, k_curve) calibration pool is drawn once (seeded) and
// the evaluation set is everything else, so the error-vs-k curve compares like with like.
// When the data has no person ids (a "participant" is a sequence or a recording), the pool is
// the first k_max frames in time (or, with personalize.calibration_window_ms, the k_max of the
// window's frames whose gaze labels lie farthest apart) and evaluation starts personalize.gap_ms
// after them (datasets/splits.h).
//
// Each user's result is a user adapter file (libgaze/io/model_io.h). The user tensors are tuned
// inside `base` itself (no copy of the model per user and k) and restored afterwards: the
// caller's model comes back bit for bit as it was, requires_grad flags included.
//
// Baselines (Table 2) are personalised by fine-tuning every weight: personalize_baseline().
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "datasets/splits.h"
#include "libgaze/config/config.h"
#include "libgaze/io/model_io.h"

namespace gaze {

struct UserResult {
  int64_t participant = 0;
  int64_t eval_frames = 0;
  double before_deg = 0, after_deg = 0;  // mean error on the evaluation frames
  std::map<int64_t, double> k_curve;     // k -> mean error
  std::vector<int64_t> calibration;      // the k shots at personalize.k (dataset indices): calibration_shots()
  std::string adapter_file;
  double seconds = 0;            // everything for this user: evaluation features, every k of the curve
  double calibrate_seconds = 0;  // one calibration at k: its images' stage-3 features (all views) + tuning
};

struct PersonalizeResult {
  std::vector<UserResult> users;
  std::map<int64_t, double> k_curve;  // mean over users
  double before_deg = 0, after_deg = 0;
  double seconds_per_user = 0;
  double calibrate_seconds_per_user = 0;  // mean of UserResult::calibrate_seconds
  CalibrationProtocol protocol = {};      // what a user is, where its calibration frames came from
};

// `replay` may be null (no replay). Writes out_dir/user_<participant>.h5 for personalize.k.
PersonalizeResult personalize(GazeNet& base, const Dataset& users, const Dataset* replay, const Config& config,
                              const std::string& out_dir);

// A baseline's personalisation (Table 2): per participant, every weight fine-tuned on the k
// calibration images alone (augmented anew each step), personalize.steps AdamW steps at
// personalize.lr, then evaluated; the k images and the evaluation frames are personalize()'s
// (calibration_shots() of personalisation_users' draw, and the frames that draw leaves), so the two are
// compared on the same frames. `base` is fine-tuned in place and restored, as above. No user files: a
// fine-tuned baseline is a whole new model. The curve holds k = 0 and k.
PersonalizeResult personalize_baseline(Baseline& base, const Dataset& users, const Config& config);

// The generalised set replayed during personalisation: personalize.replay_source (default
// data.source) at its train split; null when personalize.replay is 0.
std::unique_ptr<Dataset> open_replay_dataset(const Config& config);

// The replay subset: `count` K-means-balanced draws (K = train.clusters over the gaze labels,
// seeded by run.seed) from `replay`. Personalisation here and the exporter's replay pack for
// on-device personalisation draw the same items.
std::vector<int64_t> replay_items(const Dataset& replay, const Config& config, int64_t count);

}  // namespace gaze
