// ResNet-18 in the CIFAR style the reference uses: a 3x3 stride-1 stem without
// max-pool, BasicBlocks [2, 2, 2, 2] of widths w, 2w, 4w, 8w (w = model.base_width,
// 64 by default), global average pooling. The last BN of each residual branch is
// zero-initialised (model.zero_init_residual, default true) so that every block
// starts as the identity.
#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <string>

#include "core/nn/backbone.h"

namespace sscl {
namespace {

namespace nn = torch::nn;

nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

class BasicBlockImpl : public nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride, bool zero_init_residual) {
    conv1_ = register_module("conv1", conv3x3(in, out, stride));
    bn1_ = register_module("bn1", nn::BatchNorm2d(out));
    conv2_ = register_module("conv2", conv3x3(out, out, 1));
    bn2_ = register_module("bn2", nn::BatchNorm2d(out));
    if (zero_init_residual) nn::init::zeros_(bn2_->weight);
    if (stride != 1 || in != out) {
      shortcut_ = register_module(
          "shortcut", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)),
                                     nn::BatchNorm2d(out)));
    }
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto out = torch::relu(bn1_(conv1_(x)));
    out = bn2_(conv2_(out));
    return torch::relu(out + (shortcut_ ? shortcut_->forward(x) : x));
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  nn::Sequential shortcut_{nullptr};
};
TORCH_MODULE(BasicBlock);

class CifarResNet : public Backbone {
 public:
  CifarResNet(const InputShape& shape, std::vector<int64_t> blocks, int64_t width, bool zero_init_residual)
      : feature_dim_(8 * width) {
    stem_ = register_module("conv1", conv3x3(shape.channels, width, 1));
    bn_ = register_module("bn1", nn::BatchNorm2d(width));
    int64_t in = width;
    for (size_t stage = 0; stage < blocks.size(); ++stage) {
      const int64_t out = width << stage;
      nn::Sequential layer;
      for (int64_t b = 0; b < blocks[stage]; ++b) {
        const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
        layer->push_back(BasicBlock(in, out, stride, zero_init_residual));
        in = out;
      }
      layers_.push_back(register_module("layer" + std::to_string(stage + 1), layer));
    }
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    auto x = torch::relu(bn_(stem_(images)));
    for (auto& layer : layers_) x = layer->forward(x);
    return torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  }

  int64_t feature_dim() const override { return feature_dim_; }

 private:
  int64_t feature_dim_;
  nn::Conv2d stem_{nullptr};
  nn::BatchNorm2d bn_{nullptr};
  std::vector<nn::Sequential> layers_;
};

std::shared_ptr<Backbone> make_resnet18(const ConfigSection& options, const InputShape& shape) {
  const int64_t width = options.get_or<int64_t>("base_width", 64);
  if (width <= 0) options.fail("base_width", "must be > 0");
  const bool zero_init = options.get_or<bool>("zero_init_residual", true);
  return std::make_shared<CifarResNet>(shape, std::vector<int64_t>{2, 2, 2, 2}, width, zero_init);
}

SSCL_REGISTER(BackboneRegistry, "resnet18", make_resnet18);

}  // namespace
}  // namespace sscl
