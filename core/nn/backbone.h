// A backbone maps images to a feature vector; the Classifier puts a linear head on
// it. Methods that need features (DER, iCaRL, core-set queries) call features().
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/registry.h"

namespace sscl {

// The shape of one input image, taken from the dataset.
struct InputShape {
  int64_t channels = 1;
  int64_t height = 28;
  int64_t width = 28;
};

class Backbone : public torch::nn::Module {
 public:
  // [N, C, H, W] float images -> [N, feature_dim()] features.
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;
  virtual int64_t feature_dim() const = 0;
  // model.frozen_stages: the module names (under this backbone) of each stage as
  // mmcls counts them, the stem first (frozen_stages = 0), then each stage in
  // order (frozen_stages = N freezes the stem and the first N). Empty: the
  // backbone has no stages to freeze.
  virtual std::vector<std::vector<std::string>> stage_modules() const { return {}; }
};

// Factory: the `model` config section (backbone-specific keys) and the input shape.
SSCL_DECLARE_REGISTRY(BackboneRegistry,
                      std::function<std::shared_ptr<Backbone>(const ConfigSection&, const InputShape&)>);

}  // namespace sscl
