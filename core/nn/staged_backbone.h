// A backbone that can be run stage by stage, for methods that wire into its
// intermediate activations (PNN's lateral connections). Running the stages in
// order, each on the previous stage's output (the images for stage 0), is exactly
// forward(images); the last stage's output is the feature vector.
//
//   mlp               one stage per hidden Linear + ReLU (the first flattens)
//   small_cnn         conv-BN-ReLU-pool, conv-BN-ReLU-pool, flatten-Linear-BN-ReLU
//   CIFAR ResNets     stem (conv-BN-ReLU), layer1, layer2, layer3, layer4 + pooling
//
// A backbone opts in by deriving from StagedBackbone beside Backbone; as_staged()
// finds the interface (null for backbones without stages).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "core/nn/backbone.h"

namespace sscl {

// The output of one stage: maps [N, channels, H, W] (spatial) or vectors [N, channels].
struct StageShape {
  int64_t channels = 0;
  bool spatial = false;
};

class StagedBackbone {
 public:
  virtual ~StagedBackbone() = default;
  virtual int64_t num_stages() const = 0;
  // Stage `stage` (0-based) applied to the previous stage's output (the images for 0).
  virtual at::Tensor forward_stage(int64_t stage, const at::Tensor& input) = 0;
  virtual StageShape stage_shape(int64_t stage) const = 0;
};

inline StagedBackbone* as_staged(Backbone& backbone) { return dynamic_cast<StagedBackbone*>(&backbone); }

}  // namespace sscl
