#include "libgaze/models/param_groups.h"

#include <catch2/catch.hpp>

#include "libgaze/core/error.h"
#include "libgaze/models/gaze_net.h"

using namespace gaze;
using Catch::Contains;

TEST_CASE("groups select the documented parameters", "[param_groups]") {
  CHECK(in_param_group("downsample_layers.0.0.weight", ParamGroup::kStemStage1));
  CHECK(in_param_group("stages.0.1.pwconv1.weight", ParamGroup::kStemStage1));
  CHECK_FALSE(in_param_group("stages.0.1.adapter.up.weight", ParamGroup::kStemStage1));
  CHECK_FALSE(in_param_group("downsample_layers.1.0.weight", ParamGroup::kStemStage1));
  CHECK(in_param_group("norm.weight", ParamGroup::kBackbone));
  CHECK_FALSE(in_param_group("head.weight", ParamGroup::kBackbone));
  CHECK(in_param_group("stages.3.1.adapter.bn.bias", ParamGroup::kLastStageAdapters));
  CHECK_FALSE(in_param_group("stages.2.1.adapter.bn.bias", ParamGroup::kLastStageAdapters));
  CHECK(parse_param_group("last_stage_adapters") == ParamGroup::kLastStageAdapters);
  CHECK_THROWS_WITH(parse_param_group("adaptors"), Contains("did you mean 'adapters'"));
}

TEST_CASE("train_only freezes everything but the named groups", "[param_groups]") {
  GazeNet net = make_gaze_net(default_config().model);
  train_only(*net, {ParamGroup::kAdapters, ParamGroup::kHead});
  int64_t trainable = 0;
  for (const auto& p : net->parameters()) trainable += p.requires_grad() ? p.numel() : 0;
  CHECK(trainable == 14434);
  train_only(*net, {ParamGroup::kLastStageAdapters});
  trainable = 0;
  for (const auto& p : net->parameters()) trainable += p.requires_grad() ? p.numel() : 0;
  CHECK(trainable == 6680);
  // Backbone + head = everything but adapters.
  CHECK(count_parameters(*net, ParamGroup::kBackbone) + count_parameters(*net, ParamGroup::kHead) +
            count_parameters(*net, ParamGroup::kAdapters) ==
        count_parameters(*net));
}

TEST_CASE("the student receives the teacher's stem and stage 1", "[param_groups]") {
  GazeNet teacher = make_gaze_net(default_config({"model.arch=teacher"}).model, 1);
  GazeNet student = make_gaze_net(default_config().model, 2);
  copy_stem_stage1(*teacher, *student);
  auto t = teacher->named_parameters(true);
  for (const auto& p : student->named_parameters(true)) {
    if (in_param_group(p.key(), ParamGroup::kStemStage1)) {
      INFO(p.key());
      CHECK(at::equal(p.value(), t[p.key()]));
    }
  }
  // Stage 2 is narrower in the student and must stay its own.
  CHECK(student->named_parameters(true)["stages.1.0.dwconv.weight"].size(0) == 20);
  // Stem+stage1 of the student and the teacher now compute the same stage-1 features.
  teacher->eval();
  student->eval();
  const auto x = at::randn({1, 3, 64, 64});
  CHECK(at::allclose(teacher->forward_stages(x, {}, 0, 0)[0], student->forward_stages(x, {}, 0, 0)[0]));
  GazeNet wide =
      make_gaze_net(default_config({"model.arch=custom", "model.depths=[2,2,6,2]", "model.dims=[48,24,48,96]"}).model);
  CHECK_THROWS_WITH(copy_stem_stage1(*teacher, *wide),
                    Contains("downsample_layers.0.0.weight") && Contains("in the teacher"));
}
