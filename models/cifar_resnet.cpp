// ResNets in the CIFAR style: a 3x3 stride-1 stem without max-pool, four stages
// of widths w, 2w, 4w, 8w (times the block's expansion) whose first block strides
// by 2 from the second stage on, global average pooling. A 1x1 projection + BN
// shortcut wherever the shape changes. Options: model.base_width (w),
// model.zero_init_residual (zero-initialise the last BN of each residual branch,
// so that every block starts as the identity).
//
//   resnet18          BasicBlock [2, 2, 2, 2], w 64, features 512   (the reference's)
//   resnet34          BasicBlock [3, 4, 6, 3], w 64, features 512
//   resnet50          Bottleneck [3, 4, 6, 3], w 64, features 2048: torchvision's
//                     bottleneck (1x1, 3x3 with the stride, 1x1 to 4 planes)
//   reduced_resnet18  BasicBlock [2, 2, 2, 2], w 20, features 160: the reduced
//                     ResNet-18 of GEM (Lopez-Paz & Ranzato 2017) and DER (mammoth's
//                     "reduced-resnet18": the same network with nf = 20)
//
// The first three match kuangliu/pytorch-cifar's ResNet18/34/50 layer for layer
// (same parameter counts); they zero-init the residual BNs by default (this
// project's choice for the reference's ResNet-18; parameter counts do not change).
// reduced_resnet18 follows mammoth, which keeps PyTorch's default BN init (weight
// 1): zero_init_residual defaults to false for it. Mammoth pools with
// avg_pool2d(out, out.shape[2]), the global average for square maps; here the
// pooling is adaptive for any shape.
//
// Stages (core/nn/staged_backbone.h): the stem, layer1, layer2, layer3, and
// layer4 with the pooling (its output is the feature vector).
#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <string>
#include <vector>

#include "core/nn/backbone.h"
#include "core/nn/batch_norm.h"
#include "core/nn/staged_backbone.h"

namespace sscl {
namespace {

namespace nn = torch::nn;

nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}

nn::Conv2d conv1x1(int64_t in, int64_t out, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false));
}

// 1x1 projection + BN when the shape changes; null (identity) otherwise.
nn::Sequential projection(int64_t in, int64_t out, int64_t stride) {
  if (stride == 1 && in == out) return nullptr;
  return nn::Sequential(conv1x1(in, out, stride), BatchNorm2d(out));
}

class BasicBlockImpl : public nn::Module {
 public:
  static constexpr int64_t kExpansion = 1;

  BasicBlockImpl(int64_t in, int64_t planes, int64_t stride, bool zero_init_residual) {
    conv1_ = register_module("conv1", conv3x3(in, planes, stride));
    bn1_ = register_module("bn1", BatchNorm2d(planes));
    conv2_ = register_module("conv2", conv3x3(planes, planes, 1));
    bn2_ = register_module("bn2", BatchNorm2d(planes));
    if (zero_init_residual) nn::init::zeros_(bn2_->weight);
    if (auto shortcut = projection(in, planes, stride)) shortcut_ = register_module("shortcut", shortcut);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto out = torch::relu(bn1_(conv1_(x)));
    out = bn2_(conv2_(out));
    return torch::relu(out + (shortcut_ ? shortcut_->forward(x) : x));
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  nn::Sequential shortcut_{nullptr};
};
TORCH_MODULE(BasicBlock);

// torchvision's Bottleneck (ResNet v1.5: the stride on the 3x3 conv).
class BottleneckImpl : public nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;

  BottleneckImpl(int64_t in, int64_t planes, int64_t stride, bool zero_init_residual) {
    const int64_t out = kExpansion * planes;
    conv1_ = register_module("conv1", conv1x1(in, planes, 1));
    bn1_ = register_module("bn1", BatchNorm2d(planes));
    conv2_ = register_module("conv2", conv3x3(planes, planes, stride));
    bn2_ = register_module("bn2", BatchNorm2d(planes));
    conv3_ = register_module("conv3", conv1x1(planes, out, 1));
    bn3_ = register_module("bn3", BatchNorm2d(out));
    if (zero_init_residual) nn::init::zeros_(bn3_->weight);
    if (auto shortcut = projection(in, out, stride)) shortcut_ = register_module("shortcut", shortcut);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto out = torch::relu(bn1_(conv1_(x)));
    out = torch::relu(bn2_(conv2_(out)));
    out = bn3_(conv3_(out));
    return torch::relu(out + (shortcut_ ? shortcut_->forward(x) : x));
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  nn::Sequential shortcut_{nullptr};
};
TORCH_MODULE(Bottleneck);

class CifarResNet : public Backbone, public StagedBackbone {
 public:
  template <typename Block>
  static std::shared_ptr<CifarResNet> make(const InputShape& shape, const std::vector<int64_t>& blocks, int64_t width,
                                           bool zero_init_residual) {
    auto net = std::make_shared<CifarResNet>(shape, width);
    int64_t in = width;
    net->stage_shapes_.push_back({width, true});
    for (size_t stage = 0; stage < blocks.size(); ++stage) {
      const int64_t planes = width << stage;
      nn::Sequential layer;
      for (int64_t b = 0; b < blocks[stage]; ++b) {
        const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
        layer->push_back(Block(in, planes, stride, zero_init_residual));
        in = Block::Impl::kExpansion * planes;
      }
      net->layers_.push_back(net->register_module("layer" + std::to_string(stage + 1), layer));
      net->stage_shapes_.push_back({in, stage + 1 < blocks.size()});  // the last one is pooled
    }
    net->feature_dim_ = in;
    return net;
  }

  CifarResNet(const InputShape& shape, int64_t width) {
    stem_ = register_module("conv1", conv3x3(shape.channels, width, 1));
    bn_ = register_module("bn1", BatchNorm2d(width));
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    auto x = images;
    for (int64_t s = 0; s < num_stages(); ++s) x = forward_stage(s, x);
    return x;
  }

  int64_t feature_dim() const override { return feature_dim_; }

  int64_t num_stages() const override { return static_cast<int64_t>(stage_shapes_.size()); }

  torch::Tensor forward_stage(int64_t stage, const torch::Tensor& x) override {
    check<Error>(stage >= 0 && stage < num_stages(), "CIFAR ResNet has no stage " + std::to_string(stage));
    if (stage == 0) return torch::relu(bn_(stem_(x)));
    auto out = layers_[stage - 1]->forward(x);
    if (stage + 1 < num_stages()) return out;
    return torch::adaptive_avg_pool2d(out, {1, 1}).flatten(1);
  }

  StageShape stage_shape(int64_t stage) const override {
    check<Error>(stage >= 0 && stage < num_stages(), "CIFAR ResNet has no stage " + std::to_string(stage));
    return stage_shapes_[stage];
  }

  // mmcls's ResNet: the stem, then layer1..layer4.
  std::vector<std::vector<std::string>> stage_modules() const override {
    std::vector<std::vector<std::string>> stages{{"conv1", "bn1"}};
    for (size_t i = 0; i < layers_.size(); ++i) stages.push_back({"layer" + std::to_string(i + 1)});
    return stages;
  }

 private:
  int64_t feature_dim_ = 0;
  nn::Conv2d stem_{nullptr};
  BatchNorm2d bn_{nullptr};
  std::vector<nn::Sequential> layers_;
  std::vector<StageShape> stage_shapes_;  // the stem's, then each layer's
};

struct ResNetOptions {
  int64_t base_width = 64;
  bool zero_init_residual = true;
  static void declare(OptionSpec<ResNetOptions>& o) {
    o.key("base_width", &ResNetOptions::base_width, "channels of the stem and the first stage (w)").above(0);
    o.key("zero_init_residual", &ResNetOptions::zero_init_residual,
          "zero-initialise the last BN of each residual branch (every block starts as the identity)");
  }
};

// mammoth's reduced ResNet-18: nf = 20, PyTorch's default BN init.
ResNetOptions reduced_resnet18_defaults() {
  ResNetOptions o;
  o.base_width = 20;
  o.zero_init_residual = false;
  return o;
}

SSCL_REGISTER_OPTIONS(BackboneRegistry, "resnet18",
                      "ResNet-18, CIFAR style: BasicBlock [2, 2, 2, 2], 512 features (the reference's)",
                      ResNetOptions{}, [](const ResNetOptions& o, const InputShape& shape) {
                        return CifarResNet::make<BasicBlock>(shape, {2, 2, 2, 2}, o.base_width, o.zero_init_residual);
                      });
SSCL_REGISTER_OPTIONS(BackboneRegistry, "resnet34", "ResNet-34, CIFAR style: BasicBlock [3, 4, 6, 3], 512 features",
                      ResNetOptions{}, [](const ResNetOptions& o, const InputShape& shape) {
                        return CifarResNet::make<BasicBlock>(shape, {3, 4, 6, 3}, o.base_width, o.zero_init_residual);
                      });
SSCL_REGISTER_OPTIONS(BackboneRegistry, "resnet50",
                      "ResNet-50, CIFAR style: torchvision's Bottleneck [3, 4, 6, 3], 2048 features", ResNetOptions{},
                      [](const ResNetOptions& o, const InputShape& shape) {
                        return CifarResNet::make<Bottleneck>(shape, {3, 4, 6, 3}, o.base_width, o.zero_init_residual);
                      });
SSCL_REGISTER_OPTIONS(BackboneRegistry, "reduced_resnet18",
                      "reduced ResNet-18 of GEM and DER (mammoth's reduced-resnet18): width 20, 160 features",
                      reduced_resnet18_defaults(), [](const ResNetOptions& o, const InputShape& shape) {
                        return CifarResNet::make<BasicBlock>(shape, {2, 2, 2, 2}, o.base_width, o.zero_init_residual);
                      });

}  // namespace
}  // namespace sscl
