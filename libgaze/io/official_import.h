// Import of official ConvNeXt V2 weights (facebookresearch/ConvNeXt-V2 `.pt` files) into a
// GazeNet. Three layouts are understood, each as the official code writes it:
//   dense, fine-tuned  (`*_ema.pt`, models/convnextv2.py): our names 1:1, GRN [1,1,1,4d],
//                      a 1000-class head (skipped: ours has 4 outputs)
//   dense, FCMAE       (the released `*_fcmae.pt`): the encoder only, no final norm or head
//   sparse, FCMAE      (what main_pretrain.py saves: fcmae.py around convnextv2_sparse.py on
//                      MinkowskiEngine): "encoder." prefix, depthwise `*.dwconv.kernel`
//                      [49,C], downsample `*.kernel` [4,Cin,Cout], `*.ln.*`, `*.linear.*`,
//                      [1,C] biases and GRN, plus decoder tensors (skipped)
// The mapping is the official one (utils.remap_checkpoint_keys in ConvNeXt-V2, used by
// main_finetune.py): strip "encoder."/"module.", turn a kernel into a dense weight (Minkowski
// orders kernel offsets with the first spatial axis fastest, so offset kh + K*kw), drop the
// "ln"/"linear" name part, flatten [1,C] biases, reshape GRN to [1,1,1,4d].
//
// What does not fit is reported, never silently dropped:
//   skipped  file tensors not imported, with the reason
//   fresh    model tensors the file did not provide
// Adapters (ours), the final norm and the head may stay fresh: official fine-tuning starts
// them fresh too. Anything else left fresh throws gaze::Error naming it, unless allow_partial.
// Nothing is written to disk here; a failed import leaves no file behind.
#pragma once

#include <string>
#include <vector>

#include "libgaze/io/checkpoint.h"
#include "libgaze/models/gaze_net.h"

namespace gaze {

struct ImportReport {
  int64_t imported = 0;
  std::vector<std::string> skipped;
  std::vector<std::string> fresh;          // every model tensor the file did not provide
  std::vector<std::string> fresh_encoder;  // of those, the ones outside adapters, norm and head

  // A few lines for a log: counts, skipped tensors, what stays fresh.
  std::vector<std::string> lines() const;
};

// The official remap for one file tensor: the dense name and value, or an empty name for
// FCMAE decoder tensors (mask_token, proj, decoder, pred).
std::pair<std::string, at::Tensor> remap_official_tensor(const std::string& name, const at::Tensor& tensor);

// Imports `official` (read from `source`, named in errors) into `net`. Throws when no tensor
// fits, and when encoder tensors stay fresh unless allow_partial.
ImportReport import_official_weights(GazeNet& net, const TensorList& official, const std::string& source,
                                     bool allow_partial = false);

}  // namespace gaze
