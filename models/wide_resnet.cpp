// WRN-28-2, the Wide ResNet of FixMatch (Sohn et al. 2020) and most SSL papers:
// a 3x3 conv to 16 channels, three stages of n = (depth - 4) / 6 pre-activation
// blocks of widths 16k, 32k, 64k (k = widen_factor; strides 1, 2, 2), a final
// BN + leaky ReLU and global average pooling: 64k features (128 for WRN-28-2).
// Block: BN, leaky ReLU(0.1), conv 3x3 (stride), BN, leaky ReLU(0.1), [dropout],
// conv 3x3, plus the shortcut (identity, or a 1x1 conv without BN where the width
// changes). BN momentum 0.001 in PyTorch's convention (TF's decay 0.999).
//
// Parameter count: 1,467,610 with a 10-class head, as FixMatch-pytorch (kekmodel)
// whose convs have no bias. The TF original (google-research/fixmatch) and
// TorchSSL give their convs a bias: +2,032 parameters (1,469,642) for WRN-28-2.
// Which input each part of a block sees follows the TF original: the residual
// branch always starts from BN + leaky ReLU of the input; the shortcut takes the
// raw input, except in the first block of the first stage
// (activate_before_residual), where it takes the activated one. (The PyTorch
// ports feed the raw input to conv1 in the first block of stages 2 and 3,
// leaving that block's first BN unused; the parameters are the same.)
// Convs are initialised as in those ports: Kaiming normal, fan-out. Dropout
// (model.dropout, default 0) sits between the two convs, as in the PyTorch ports
// and the WRN paper. BN eps is PyTorch's 1e-5 (kekmodel; TorchSSL uses TF's 1e-3).
#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <string>
#include <vector>

#include "core/nn/backbone.h"
#include "core/nn/batch_norm.h"

namespace sscl {
namespace {

namespace nn = torch::nn;

constexpr double kWrnBnMomentum = 0.001;
constexpr double kWrnLeakySlope = 0.1;

nn::Conv2d wrn_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  nn::Conv2d c(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
  nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kLeakyReLU);
  return c;
}

BatchNorm2d wrn_bn(int64_t channels) {
  return BatchNorm2d(torch::nn::BatchNormOptions(channels).momentum(kWrnBnMomentum));
}

torch::Tensor wrn_activate(const torch::Tensor& x) { return torch::leaky_relu(x, kWrnLeakySlope); }

class WideBlockImpl : public nn::Module {
 public:
  WideBlockImpl(int64_t in, int64_t out, int64_t stride, bool activate_before_residual, double dropout)
      : activate_before_residual_(activate_before_residual), dropout_(dropout) {
    bn1_ = register_module("bn1", wrn_bn(in));
    conv1_ = register_module("conv1", wrn_conv(in, out, 3, stride));
    bn2_ = register_module("bn2", wrn_bn(out));
    conv2_ = register_module("conv2", wrn_conv(out, out, 3, 1));
    if (in != out || stride != 1) shortcut_ = register_module("shortcut", wrn_conv(in, out, 1, stride));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    const auto activated = wrn_activate(bn1_(x));
    auto out = wrn_activate(bn2_(conv1_(activated)));
    if (dropout_ > 0) out = torch::dropout(out, dropout_, is_training());
    out = conv2_(out);
    const auto& residual = activate_before_residual_ ? activated : x;
    return out + (shortcut_ ? shortcut_(residual) : residual);
  }

 private:
  bool activate_before_residual_;
  double dropout_;
  BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, shortcut_{nullptr};
};
TORCH_MODULE(WideBlock);

class WideResNet : public Backbone {
 public:
  WideResNet(const InputShape& shape, int64_t depth, int64_t widen_factor, double dropout)
      : feature_dim_(64 * widen_factor) {
    const int64_t blocks = (depth - 4) / 6;
    conv1_ = register_module("conv1", wrn_conv(shape.channels, 16, 3, 1));
    int64_t in = 16;
    for (int64_t stage = 0; stage < 3; ++stage) {
      const int64_t out = (16 * widen_factor) << stage;
      nn::Sequential layer;
      for (int64_t b = 0; b < blocks; ++b) {
        const bool first = b == 0;
        layer->push_back(WideBlock(in, out, first && stage > 0 ? 2 : 1, first && stage == 0, dropout));
        in = out;
      }
      layers_.push_back(register_module("block" + std::to_string(stage + 1), layer));
    }
    bn_ = register_module("bn1", wrn_bn(in));
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    auto x = conv1_(images);
    for (auto& layer : layers_) x = layer->forward(x);
    return torch::adaptive_avg_pool2d(wrn_activate(bn_(x)), {1, 1}).flatten(1);
  }

  int64_t feature_dim() const override { return feature_dim_; }

  // The stem convolution, then block1..block3 (the last with the final BatchNorm).
  std::vector<std::vector<std::string>> stage_modules() const override {
    return {{"conv1"}, {"block1"}, {"block2"}, {"block3", "bn1"}};
  }

 private:
  int64_t feature_dim_;
  nn::Conv2d conv1_{nullptr};
  std::vector<nn::Sequential> layers_;
  BatchNorm2d bn_{nullptr};
};

struct WideResNetOptions {
  int64_t depth = 28;
  int64_t widen_factor = 2;
  double dropout = 0.0;
  static void declare(OptionSpec<WideResNetOptions>& o) {
    o.key("depth", &WideResNetOptions::depth, "layers: 6n + 4 for n blocks per stage")
        .check([](int64_t d) { return d >= 10 && (d - 4) % 6 == 0; },
               "must be 6n + 4 with n >= 1 (10, 16, 22, 28, ...)");
    o.key("widen_factor", &WideResNetOptions::widen_factor, "k: stage widths 16k, 32k, 64k (64k features)").above(0);
    o.key("dropout", &WideResNetOptions::dropout, "dropout between the two convs of each block")
        .check([](double p) { return p >= 0.0 && p < 1.0; }, "must be in [0, 1)");
  }
};

SSCL_REGISTER_OPTIONS(BackboneRegistry, "wrn28_2",
                      "WRN-28-2: FixMatch's pre-activation Wide ResNet (depth 28, widen factor 2), 128 features",
                      WideResNetOptions{}, [](const WideResNetOptions& o, const InputShape& shape) {
                        return std::make_shared<WideResNet>(shape, o.depth, o.widen_factor, o.dropout);
                      });

}  // namespace
}  // namespace sscl
