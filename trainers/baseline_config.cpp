#include "trainers/baseline_config.h"

#include "libgaze/models/baselines.h"

namespace gaze {

void complete_baseline_config(Config& c) {
  if (!is_baseline_arch(c.model.arch)) return;
  if (config_origin(c, "train.lr") == "default") {
    c.train.lr = baseline_input(c.model.arch).lr;
    c.origin["train.lr"] = c.model.arch + "'s published learning rate";
  }
  if (config_origin(c, "personalize.lr") == "default") c.personalize.lr = c.train.lr / 10;
}

void complete_stage_config(const std::string& stage, Config& c) {
  if (stage == "baseline") complete_baseline_config(c);
}

}  // namespace gaze
