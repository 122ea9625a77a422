// What a published baseline's run takes from the publication where its config is silent.
//
// complete_baseline_config() fills a baseline run's config (model.arch gazenet | rtgene |
// gazetr_hybrid): train.lr, left at its default, becomes the network's published learning rate
// (libgaze/models/baselines.h, docs/research/baselines.md), and personalize.lr, left at its
// default, a tenth of train.lr (personalisation fine-tunes every weight of a baseline on the k
// shots); the first records where it came from in the config's origins. A config whose
// model.arch is not a baseline is returned unchanged: the baseline stage refuses it with its own
// message.
//
// complete_stage_config() is the one entry: `gaze run`'s stages, `gaze train <stage>` and
// libgaze.train all call it with the stage's name (make_stage's) before the stage is made, so a
// stage run alone trains as it does in the pipeline; stages other than baseline take nothing.
#pragma once

#include <string>

#include "libgaze/config/config.h"

namespace gaze {

void complete_baseline_config(Config& config);
void complete_stage_config(const std::string& stage, Config& config);

}  // namespace gaze
