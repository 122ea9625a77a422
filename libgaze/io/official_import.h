// Import of official ConvNeXt V2 weights (facebookresearch/ConvNeXt-V2 `.pt` files) into a
// GazeNet. Names map 1:1 after stripping a "module." (DDP) or "encoder." (FCMAE) prefix. What
// does not fit is reported, never silently dropped:
//   skipped  file tensors not imported, with the reason (the 1000-class head's shape, FCMAE
//            decoder tensors, names the model lacks)
//   fresh    model tensors the file did not provide (adapters, the 4-output head): they keep
//            their initialisation.
// GRN gamma/beta stored as [1,4d] (sparse FCMAE encoders) are reshaped to our [1,1,1,4d].
#pragma once

#include <string>
#include <vector>

#include "libgaze/io/checkpoint.h"
#include "libgaze/models/gaze_net.h"

namespace gaze {

struct ImportReport {
  int64_t imported = 0;
  std::vector<std::string> skipped;
  std::vector<std::string> fresh;
};

ImportReport import_official_weights(GazeNet& net, const TensorList& official);

}  // namespace gaze
