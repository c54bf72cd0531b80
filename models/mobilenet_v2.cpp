// MobileNetV2 for small images (CIFAR strides: stride-1 stem and second stage, so a
// 32x32 image ends as 4x4; ImageNet's 224 ends as 7x7):
//
//   stem    conv 3x3, 32, stride 1 (ImageNet: 2) + BN + ReLU
//   blocks  (expansion t, out c, blocks n, stride s) =
//           (1, 16, 1, 1) (6, 24, 2, 1 [ImageNet: 2]) (6, 32, 3, 2) (6, 64, 4, 2)
//           (6, 96, 3, 1) (6, 160, 3, 2) (6, 320, 1, 1)
//   last    conv 1x1 to 1280 + BN + ReLU, global average pooling: 1280 features
//
// Each block: expand 1x1 to t*in, depthwise 3x3 with the stride, project 1x1 (no
// activation after it), BN after each conv; ReLU (the reference's act_cfg), not
// the paper's ReLU6. Two variants (model.variant):
//   reference  the EdgeHML reference's MobileNetV2_CIFAR (mmcls's MobileNetV2 with
//              the strides above), the paper's and torchvision's block: no expansion
//              conv when t = 1, an identity shortcut only when the stride is 1 and
//              the widths match, none otherwise; 2,236,682 parameters with a
//              10-class head;
//   kuangliu   kuangliu/pytorch-cifar's: an expansion conv also when t = 1, and a
//              1x1 conv + BN projection shortcut on stride-1 blocks whose widths
//              differ; 2,296,922 parameters.
// model.width_mult (default 1.0) scales every width as torchvision does (rounded to
// a multiple of 8, never 10 % below; the last conv stays 1280 unless width_mult > 1).
#include <torch/nn/functional/pooling.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "core/nn/backbone.h"
#include "core/nn/batch_norm.h"

namespace sscl {
namespace {

namespace nn = torch::nn;

nn::Conv2d mbv2_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).groups(groups).bias(false));
}

// torchvision's _make_divisible(v, 8).
int64_t mbv2_make_divisible(double v, int64_t divisor = 8) {
  int64_t rounded = std::max(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (rounded < 0.9 * v) rounded += divisor;
  return rounded;
}

class InvertedResidualImpl : public nn::Module {
 public:
  InvertedResidualImpl(int64_t in, int64_t out, int64_t expansion, int64_t stride, bool kuangliu)
      : identity_(stride == 1 && in == out) {
    const int64_t hidden = expansion * in;
    if (kuangliu || expansion != 1) {
      conv1_ = register_module("conv1", mbv2_conv(in, hidden, 1, 1));
      bn1_ = register_module("bn1", BatchNorm2d(hidden));
    }
    conv2_ = register_module("conv2", mbv2_conv(hidden, hidden, 3, stride, hidden));
    bn2_ = register_module("bn2", BatchNorm2d(hidden));
    conv3_ = register_module("conv3", mbv2_conv(hidden, out, 1, 1));
    bn3_ = register_module("bn3", BatchNorm2d(out));
    if (kuangliu && stride == 1 && in != out)
      shortcut_ = register_module("shortcut", nn::Sequential(mbv2_conv(in, out, 1, 1), BatchNorm2d(out)));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto out = conv1_ ? torch::relu(bn1_(conv1_(x))) : x;
    out = torch::relu(bn2_(conv2_(out)));
    out = bn3_(conv3_(out));
    if (identity_) return out + x;
    return shortcut_ ? out + shortcut_->forward(x) : out;
  }

 private:
  bool identity_;
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  nn::Sequential shortcut_{nullptr};
};
TORCH_MODULE(InvertedResidual);

struct MobileNetStageSpec {
  int64_t expansion, out, blocks, stride;
};

constexpr MobileNetStageSpec kCifarStages[] = {{1, 16, 1, 1}, {6, 24, 2, 1},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                               {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};

class MobileNetV2 : public Backbone {
 public:
  MobileNetV2(const InputShape& shape, double width_mult, bool kuangliu) {
    int64_t in = mbv2_make_divisible(32 * width_mult);
    conv1_ = register_module("conv1", mbv2_conv(shape.channels, in, 3, 1));
    bn1_ = register_module("bn1", BatchNorm2d(in));
    nn::Sequential layers;
    for (const auto& stage : kCifarStages) {
      const int64_t out = mbv2_make_divisible(stage.out * width_mult);
      for (int64_t b = 0; b < stage.blocks; ++b) {
        layers->push_back(InvertedResidual(in, out, stage.expansion, b == 0 ? stage.stride : 1, kuangliu));
        in = out;
      }
    }
    layers_ = register_module("layers", layers);
    // mmcls's stages: the stem, the seven groups of blocks, the last 1x1 conv.
    stages_.push_back({"conv1", "bn1"});
    int64_t block = 0;
    for (const auto& stage : kCifarStages) {
      stages_.emplace_back();
      for (int64_t b = 0; b < stage.blocks; ++b) stages_.back().push_back("layers." + std::to_string(block++));
    }
    stages_.push_back({"conv2", "bn2"});
    feature_dim_ = mbv2_make_divisible(1280 * std::max(1.0, width_mult));
    conv2_ = register_module("conv2", mbv2_conv(in, feature_dim_, 1, 1));
    bn2_ = register_module("bn2", BatchNorm2d(feature_dim_));
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    auto x = torch::relu(bn1_(conv1_(images)));
    x = layers_->forward(x);
    x = torch::relu(bn2_(conv2_(x)));
    return torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  }

  int64_t feature_dim() const override { return feature_dim_; }

  std::vector<std::vector<std::string>> stage_modules() const override { return stages_; }

 private:
  int64_t feature_dim_;
  std::vector<std::vector<std::string>> stages_;
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  nn::Sequential layers_{nullptr};
};

struct MobileNetV2Options {
  double width_mult = 1.0;
  std::string variant = "reference";
  static void declare(OptionSpec<MobileNetV2Options>& o) {
    o.key("variant", &MobileNetV2Options::variant,
          "reference: the EdgeHML reference's (mmcls, torchvision's block, 2,236,682 parameters at 10 classes); "
          "kuangliu: kuangliu/pytorch-cifar's (projection shortcuts, 2,296,922)")
        .one_of({"reference", "kuangliu"});
    o.key("width_mult", &MobileNetV2Options::width_mult,
          "scales every width (rounded to a multiple of 8); the last conv stays 1280 unless > 1")
        .check([](double w) { return w > 0.0 && std::isfinite(w); }, "must be > 0");
  }
};

SSCL_REGISTER_OPTIONS(BackboneRegistry, "mobilenet_v2",
                      "MobileNetV2 with CIFAR strides (the reference's, or kuangliu/pytorch-cifar's), 1280 features",
                      MobileNetV2Options{}, [](const MobileNetV2Options& o, const InputShape& shape) {
                        return std::make_shared<MobileNetV2>(shape, o.width_mult, o.variant == "kuangliu");
                      });

}  // namespace
}  // namespace sscl
