#include "models/model_stats.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "core/error.h"
#include "core/nn/classifier.h"

namespace sscl {
namespace {

namespace nn = torch::nn;

// conv 3x3 stride 2 padding 1 (with bias) -> depthwise 3x3 -> grouped 1x1 -> BN ->
// global average pool -> linear 16 -> 6.
class TinyNet : public Backbone {
 public:
  TinyNet() {
    conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(3, 8, 3).stride(2).padding(1)));
    depthwise = register_module("depthwise", nn::Conv2d(nn::Conv2dOptions(8, 8, 3).padding(1).groups(8).bias(false)));
    grouped = register_module("grouped", nn::Conv2d(nn::Conv2dOptions(8, 16, 1).groups(2).bias(false)));
    bn = register_module("bn", nn::BatchNorm2d(16));
    fc = register_module("fc", nn::Linear(16, 6));
  }
  torch::Tensor forward(const torch::Tensor& images) override {
    auto x = torch::relu(conv(images));
    x = torch::relu(depthwise(x));
    x = torch::relu(bn(grouped(x)));
    return fc(torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
  }
  int64_t feature_dim() const override { return 6; }

  nn::Conv2d conv{nullptr}, depthwise{nullptr}, grouped{nullptr};
  nn::BatchNorm2d bn{nullptr};
  nn::Linear fc{nullptr};
};

// Parameters: conv 8*3*3*3 + 8 = 224, depthwise 8*1*3*3 = 72, grouped 16*(8/2)*1*1 = 64,
// bn 2*16 = 32, fc 16*6 + 6 = 102.
constexpr int64_t kTinyParameters = 224 + 72 + 64 + 32 + 102;  // 494
// BN buffers: running_mean and running_var 16 floats each, num_batches_tracked one int64.
constexpr int64_t kTinyBufferBytes = 2 * 16 * 4 + 8;  // 136

TEST(ModelStats, TinyBackboneByHand) {
  TinyNet model;
  const auto stats = model_stats(model, {3, 10, 10});
  // conv: (10 + 2*1 - 3) / 2 + 1 = 5 -> output 8x5x5 = 200 elements, each 3*3*3 = 27 MACs: 5400
  // depthwise: output 8x5x5 = 200, in_channels/groups = 1, 1*3*3 = 9 each: 1800
  // grouped 1x1: output 16x5x5 = 400, in_channels/groups = 8/2 = 4 each: 1600
  // BN, ReLU, average pool: not counted; fc: 6 outputs * 16 inputs = 96
  EXPECT_EQ(stats.macs, 5400 + 1800 + 1600 + 96);  // 8896
  EXPECT_EQ(stats.parameters, kTinyParameters);
  EXPECT_EQ(stats.trainable_parameters, kTinyParameters);
  EXPECT_EQ(stats.buffers_bytes, kTinyBufferBytes);
  EXPECT_DOUBLE_EQ(stats.float32_bytes, 4.0 * 494 + 136);  // 2112
  EXPECT_DOUBLE_EQ(stats.int8_bytes, 494.0 + 136);         // 630
}

TEST(ModelStats, MacsFollowTheInputShape) {
  TinyNet model;
  // 9x11: conv (9 + 2 - 3) / 2 + 1 = 5 rows, (11 + 2 - 3) / 2 + 1 = 6 columns: 30 positions.
  // conv 8*30*27 = 6480, depthwise 8*30*9 = 2160, grouped 16*30*4 = 1920, fc 96.
  EXPECT_EQ(model_stats(model, {3, 9, 11}).macs, 6480 + 2160 + 1920 + 96);  // 10656
}

TEST(ModelStats, ClassifierAddsItsHead) {
  Classifier model(std::make_shared<TinyNet>(), 4);
  const auto stats = model_stats(*model, {3, 10, 10});
  // Head: 4 outputs * 6 features = 24 MACs; 6*4 + 4 = 28 parameters.
  EXPECT_EQ(stats.macs, 8896 + 24);
  EXPECT_EQ(stats.parameters, kTinyParameters + 28);
}

// addmm, mm, matmul and bmm on raw parameters (no Linear module).
class MatrixNet : public Backbone {
 public:
  MatrixNet() {
    w1 = register_parameter("w1", torch::randn({16, 6}));
    b1 = register_parameter("b1", torch::randn({6}));
    w2 = register_parameter("w2", torch::randn({6, 3}));
    w3 = register_parameter("w3", torch::randn({3, 2}));
    w4 = register_parameter("w4", torch::randn({1, 2, 5}));
  }
  torch::Tensor forward(const torch::Tensor& images) override {
    auto x = torch::addmm(b1, images.flatten(1), w1);  // [1, 16] x [16, 6]
    x = torch::mm(x, w2);                              // [1, 6] x [6, 3]
    x = torch::matmul(x, w3);                          // [1, 3] x [3, 2]
    return torch::bmm(x.unsqueeze(0), w4).squeeze(0);  // [1, 1, 2] x [1, 2, 5]
  }
  int64_t feature_dim() const override { return 5; }
  torch::Tensor w1, b1, w2, w3, w4;
};

TEST(ModelStats, MatrixProductsCountOutputTimesInnerDimension) {
  MatrixNet model;
  const auto stats = model_stats(model, {1, 4, 4});
  // addmm 6*16 = 96, mm 3*6 = 18, matmul 2*3 = 6, bmm 5*2 = 10; the bias add of addmm is not counted.
  EXPECT_EQ(stats.macs, 96 + 18 + 6 + 10);
  EXPECT_EQ(stats.parameters, 96 + 6 + 18 + 6 + 10);
  EXPECT_EQ(stats.buffers_bytes, 0);
}

TEST(ModelStats, SequentialAndForwardFunction) {
  nn::Sequential sequential(nn::Conv2d(nn::Conv2dOptions(1, 2, 3)), nn::Flatten());
  // 5x5 -> 3x3 valid conv: 2*3*3 = 18 outputs * 1*3*3 = 162 MACs.
  EXPECT_EQ(model_stats(*sequential, {1, 5, 5}).macs, 162);

  nn::Linear linear(4, 3);  // not a Backbone: needs a forward function
  EXPECT_THROW(model_stats(*linear, {1, 2, 2}), Error);
  const auto stats = model_stats(*linear, {1, 2, 2}, [&](const torch::Tensor& x) { return linear(x.flatten(1)); });
  EXPECT_EQ(stats.macs, 3 * 4);
  EXPECT_EQ(stats.parameters, 4 * 3 + 3);
}

TEST(ModelStats, TracesInEvalModeAndRestoresModesAndFlags) {
  TinyNet model;
  model.train();
  model.fc->eval();
  model.conv->weight.set_requires_grad(false);
  const auto running_mean = model.bn->running_mean.clone();
  const auto stats = model_stats(model, {3, 10, 10});
  EXPECT_EQ(stats.trainable_parameters, kTinyParameters - 8 * 27);  // the frozen conv weight
  EXPECT_TRUE(model.is_training());
  EXPECT_TRUE(model.bn->is_training());
  EXPECT_TRUE(model.conv->is_training());
  EXPECT_FALSE(model.fc->is_training());
  EXPECT_FALSE(model.conv->weight.requires_grad());
  EXPECT_TRUE(model.conv->bias.requires_grad());
  EXPECT_TRUE(model.fc->weight.requires_grad());
  // Eval mode: BN neither updated its statistics nor counted a batch.
  EXPECT_TRUE(torch::equal(model.bn->running_mean, running_mean));
  EXPECT_EQ(model.bn->num_batches_tracked.item<int64_t>(), 0);
  for (const auto& p : model.parameters()) EXPECT_FALSE(p.grad().defined());
  EXPECT_TRUE(torch::GradMode::is_enabled());
}

// Flatten + Linear sized for 3x8x8 only.
class FixedSizeNet : public Backbone {
 public:
  FixedSizeNet() { fc = register_module("fc", nn::Linear(3 * 8 * 8, 4)); }
  torch::Tensor forward(const torch::Tensor& images) override { return fc(images.flatten(1)); }
  int64_t feature_dim() const override { return 4; }
  nn::Linear fc{nullptr};
};

TEST(ModelStats, AShapeTheModelCannotTakeIsAClearErrorAndRestoresTheModel) {
  FixedSizeNet model;
  model.train();
  EXPECT_EQ(model_stats(model, {3, 8, 8}).macs, 4 * 192);
  try {
    model_stats(model, {3, 10, 10});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 3, 10, 10]"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
  }
  EXPECT_TRUE(model.is_training());
  EXPECT_TRUE(model.fc->weight.requires_grad());
  EXPECT_THROW(model_stats(model, {0, 8, 8}), Error);
  // Tracing is not left on: a second call traces afresh.
  EXPECT_EQ(model_stats(model, {3, 8, 8}).macs, 4 * 192);
}

Classifier make_registered(const std::string& backbone, InputShape shape, int64_t classes) {
  auto config = Config::from_string("[model]\n", "model.toml");
  return Classifier(BackboneRegistry::get().at(backbone)(config.section("model"), shape), classes);
}

TEST(ModelStats, RegisteredSmallCnnOnCifarShape) {
  auto model = make_registered("small_cnn", {3, 32, 32}, 10);
  const auto stats = model_stats(*model, {3, 32, 32});
  // conv1 3->32 3x3 pad 1 at 32x32: 32*32*32 = 32768 outputs * 27 = 884,736
  // max-pool -> 16x16; conv2 32->64 3x3: 64*16*16 = 16384 outputs * 32*9 = 4,718,592
  // max-pool -> 8x8; fc 64*8*8 = 4096 -> 128: 524,288; head 128 -> 10: 1,280
  EXPECT_EQ(stats.macs, 884736 + 4718592 + 524288 + 1280);  // 6,128,896
  // conv1 864, bn1 64, conv2 18432, bn2 128, fc 524288, bn3 256, head 1290
  EXPECT_EQ(stats.parameters, 864 + 64 + 18432 + 128 + 524288 + 256 + 1290);  // 545,322
  // BN channels 32 + 64 + 128 = 224, two float buffers each, plus 3 int64 counters.
  EXPECT_EQ(stats.buffers_bytes, 224 * 2 * 4 + 3 * 8);
}

TEST(ModelStats, RegisteredResNet18OnCifarShape) {
  auto model = make_registered("resnet18", {3, 32, 32}, 10);
  const auto stats = model_stats(*model, {3, 32, 32});
  // A 3x3 conv from c_in to c_out at an s x s output: c_out*s*s * c_in*9 MACs.
  //   stem 3->64 at 32x32:                     65,536 * 27                 =   1,769,472
  //   layer1, 4 convs 64->64 at 32x32:   4 * 65,536 * 576                  = 150,994,944
  //   layer2 at 16x16 (32,768 outputs per conv):
  //     64->128 stride 2: 32,768 * 576 = 18,874,368; 3 x 128->128: 3 * 32,768 * 1,152
  //     = 113,246,208; 1x1 shortcut 64->128: 32,768 * 64 = 2,097,152  -> 134,217,728
  //   layer3 at 8x8 (16,384 outputs): 16,384 * (1,152 + 3 * 2,304 + 128)   = 134,217,728
  //   layer4 at 4x4 (8,192 outputs):   8,192 * (2,304 + 3 * 4,608 + 256)   = 134,217,728
  //   head 512 -> 10:                                                        =       5,120
  // Total 555,422,720: the "0.56 GMACs" of the CIFAR ResNet-18 tables.
  EXPECT_EQ(stats.macs, 1769472LL + 150994944LL + 3 * 134217728LL + 5120LL);
  EXPECT_EQ(stats.macs, 555422720LL);
  EXPECT_EQ(stats.parameters, 11173962);  // as in Backbones.CifarResNet18HasItsPublishedParameterCount
  // 20 BN layers over 64 + 4*64 + 5*128 + 5*256 + 5*512 = 4800 channels.
  EXPECT_EQ(stats.buffers_bytes, 4800 * 2 * 4 + 20 * 8);
  EXPECT_DOUBLE_EQ(stats.float32_bytes, 4.0 * 11173962 + 38560);
}

TEST(ModelStats, EveryRegisteredBackboneIsCounted) {
  for (const auto& name : BackboneRegistry::get().names()) {
    Classifier model{nullptr};
    try {
      model = make_registered(name, {3, 32, 32}, 10);
    } catch (const ConfigError&) {
      continue;  // a backbone that does not take 32x32 RGB images
    }
    const auto stats = model_stats(*model, {3, 32, 32});
    EXPECT_GT(stats.macs, 0) << name;
    int64_t parameters = 0;
    for (const auto& p : model->parameters()) parameters += p.numel();
    EXPECT_EQ(stats.parameters, parameters) << name;
  }
}

}  // namespace
}  // namespace sscl
