// What a published baseline's run takes from the publication where its config is silent.
//
// complete_baseline_config() fills a baseline run's config (model.arch gazenet | rtgene |
// gazetr_hybrid): train.lr, left at its default, becomes the network's published learning rate
// (libgaze/models/baselines.h, docs/research/baselines.md), and personalize.lr, left at its
// default, a tenth of train.lr (personalisation fine-tunes every weight of a baseline on the k
// shots); the first records where it came from in the config's origins. `gaze run`'s baseline stage
// and `gaze train baseline` both call it, so a stage run alone trains as it does in the
// pipeline. A config whose model.arch is not a baseline is returned unchanged: the baseline
// stage refuses it with its own message.
//
// complete_stage_config() is the entry for a caller holding a stage's name (make_stage's): `gaze
// train` and libgaze.train call it before make_stage, so every stage that takes something from
// elsewhere takes it the same way wherever it is run; stages other than baseline take nothing.
#pragma once

#include <string>

#include "libgaze/config/config.h"

namespace gaze {

void complete_baseline_config(Config& config);
void complete_stage_config(const std::string& stage, Config& config);

}  // namespace gaze
