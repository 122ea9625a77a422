// Stand-ins for natural RGB images (ImageNet-style pretraining and distillation data) that the
// project renders itself, so the demo and tests exercise the colour path offline.
//
// They are not ImageNet: each image is a scene of a class-specific palette over a 1/f
// ("pink") noise background, the spectrum natural images share, with a lit ground/sky
// gradient and 4-12 occluding shapes (ellipses, rotated boxes, strokes) with shading, soft
// edges and texture, then mild blur and sensor noise. What they give a masked-image model is
// colour, edges, occlusion and texture at many scales: enough to learn low-level features and
// to exercise the pipeline, never a claim about ImageNet accuracy.
#pragma once

#include <cstdint>

#include "datasets/image.h"

namespace gaze {

// One RGB image of class `label` (palette and shape statistics per class), deterministic in
// (seed, label, index).
Image render_natural_image(int32_t height, int32_t width, int64_t label, int64_t index, uint64_t seed);

}  // namespace gaze
