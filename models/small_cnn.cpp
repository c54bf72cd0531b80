// A small CNN for 28x28 images on a CPU: two conv(3x3)-BN-ReLU-maxpool stages
// and one hidden linear-BN-ReLU layer. Options: model.width (channels of the first
// conv, doubled in the second; default 32), model.hidden (default 128).
// The BN before the last ReLU matters: without it the large gradients at a task
// switch (lr 0.03, momentum 0.9) can kill every hidden unit, after which the
// network only learns biases (seen as a loss stuck at ln 2 on a 2-class task).
// Stages (core/nn/staged_backbone.h): the two conv blocks and the hidden layer.
#include <torch/nn/functional/pooling.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <string>

#include "core/nn/backbone.h"
#include "core/nn/batch_norm.h"
#include "core/nn/staged_backbone.h"

namespace sscl {
namespace {

class SmallCnn : public Backbone, public StagedBackbone {
 public:
  SmallCnn(const InputShape& shape, int64_t width, int64_t hidden) : width_(width), hidden_(hidden) {
    namespace nn = torch::nn;
    conv1_ = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(shape.channels, width, 3).padding(1).bias(false)));
    bn1_ = register_module("bn1", BatchNorm2d(width));
    conv2_ = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(width, 2 * width, 3).padding(1).bias(false)));
    bn2_ = register_module("bn2", BatchNorm2d(2 * width));
    const int64_t pooled = (shape.height / 4) * (shape.width / 4);
    check<ConfigError>(pooled > 0, "small_cnn needs images of at least 4x4");
    fc_ = register_module("fc", nn::Linear(nn::LinearOptions(2 * width * pooled, hidden).bias(false)));
    bn3_ = register_module("bn3", BatchNorm1d(hidden));
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    auto x = images;
    for (int64_t s = 0; s < num_stages(); ++s) x = forward_stage(s, x);
    return x;
  }

  int64_t feature_dim() const override { return hidden_; }

  int64_t num_stages() const override { return 3; }

  torch::Tensor forward_stage(int64_t stage, const torch::Tensor& x) override {
    namespace F = torch::nn::functional;
    switch (stage) {
      case 0: return F::max_pool2d(torch::relu(bn1_(conv1_(x))), F::MaxPool2dFuncOptions(2));
      case 1: return F::max_pool2d(torch::relu(bn2_(conv2_(x))), F::MaxPool2dFuncOptions(2));
      case 2: return torch::relu(bn3_(fc_(x.flatten(1))));
      default: throw Error("small_cnn has no stage " + std::to_string(stage));
    }
  }

  StageShape stage_shape(int64_t stage) const override {
    switch (stage) {
      case 0: return {width_, true};
      case 1: return {2 * width_, true};
      case 2: return {hidden_, false};
      default: throw Error("small_cnn has no stage " + std::to_string(stage));
    }
  }

  // The forward stages: the first conv block is the stem.
  std::vector<std::vector<std::string>> stage_modules() const override {
    return {{"conv1", "bn1"}, {"conv2", "bn2"}, {"fc", "bn3"}};
  }

 private:
  int64_t width_, hidden_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  BatchNorm1d bn3_{nullptr};
  torch::nn::Linear fc_{nullptr};
};

struct SmallCnnOptions {
  int64_t width = 32;
  int64_t hidden = 128;
  static void declare(OptionSpec<SmallCnnOptions>& o) {
    o.key("width", &SmallCnnOptions::width, "channels of the first conv (doubled in the second)").above(0);
    o.key("hidden", &SmallCnnOptions::hidden, "units of the hidden linear layer (the features)").above(0);
  }
};

SSCL_REGISTER_OPTIONS(BackboneRegistry, "small_cnn",
                      "small CNN: two conv-BN-ReLU-maxpool stages and a linear-BN-ReLU hidden layer (28x28 on a CPU)",
                      SmallCnnOptions{}, [](const SmallCnnOptions& o, const InputShape& shape) {
                        return std::make_shared<SmallCnn>(shape, o.width, o.hidden);
                      });

}  // namespace
}  // namespace sscl
