#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "core/nn/classifier.h"

namespace sscl {
namespace {

int64_t count_parameters(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

Classifier make(const std::string& backbone, InputShape shape, int64_t classes, const std::string& options = "") {
  auto config = Config::from_string("[model]\n" + options, "model.toml");
  return Classifier(BackboneRegistry::get().at(backbone)(config.section("model"), shape), classes);
}

// Parameter arithmetic for the counts below (BN: weight + bias per channel).
constexpr int64_t conv(int64_t in, int64_t out, int64_t k) { return in * out * k * k; }
constexpr int64_t bn(int64_t c) { return 2 * c; }
constexpr int64_t linear(int64_t in, int64_t out) { return in * out + out; }

// CIFAR ResNet BasicBlock: conv3x3-BN-conv3x3-BN [+ 1x1 conv + BN shortcut].
constexpr int64_t basic_block(int64_t in, int64_t out) {
  return conv(in, out, 3) + bn(out) + conv(out, out, 3) + bn(out) + (in != out ? conv(in, out, 1) + bn(out) : 0);
}
// b blocks, the first from `in` (with the projection if in != out).
constexpr int64_t basic_stage(int64_t in, int64_t out, int64_t b) {
  return basic_block(in, out) + (b - 1) * basic_block(out, out);
}
// Bottleneck: 1x1 to p, 3x3, 1x1 to 4p, BN after each [+ 1x1 conv + BN shortcut].
constexpr int64_t bottleneck(int64_t in, int64_t p) {
  return conv(in, p, 1) + bn(p) + conv(p, p, 3) + bn(p) + conv(p, 4 * p, 1) + bn(4 * p) +
         (in != 4 * p ? conv(in, 4 * p, 1) + bn(4 * p) : 0);
}
constexpr int64_t bottleneck_stage(int64_t in, int64_t p, int64_t b) {
  return bottleneck(in, p) + (b - 1) * bottleneck(4 * p, p);
}

TEST(Backbones, CifarResNet18HasItsPublishedParameterCount) {
  // Stem 3*64*9 + BN 128; 8 BasicBlocks; 3 projection shortcuts; head 512*10 + 10:
  // the CIFAR ResNet-18 everyone cites, 11,173,962 parameters.
  static_assert(conv(3, 64, 3) + bn(64) + basic_stage(64, 64, 2) + basic_stage(64, 128, 2) + basic_stage(128, 256, 2) +
                    basic_stage(256, 512, 2) + linear(512, 10) ==
                11173962);
  auto model = make("resnet18", {3, 32, 32}, 10);
  EXPECT_EQ(count_parameters(*model), 11173962);
  const auto logits = model->forward(torch::randn({2, 3, 32, 32}));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_EQ(model->features(torch::randn({2, 3, 32, 32})).size(1), 512);
}

TEST(Backbones, CifarResNet34HasItsPublishedParameterCount) {
  // kuangliu/pytorch-cifar's ResNet34, the figure cited for CIFAR: 21,282,122.
  //   stem   3*64*9 + 128                                            =      1,856
  //   layer1 3 x (2*64*64*9 + 2*128)                                 =    221,952
  //   layer2 (64*128*9 + 128*128*9 + 512 + 64*128 + 256)
  //          + 3 x (2*128*128*9 + 512)                               =  1,116,416
  //   layer3 (128*256*9 + 256*256*9 + 1024 + 128*256 + 512)
  //          + 5 x (2*256*256*9 + 1024)                              =  6,822,400
  //   layer4 (256*512*9 + 512*512*9 + 2048 + 256*512 + 1024)
  //          + 2 x (2*512*512*9 + 2048)                              = 13,114,368
  //   head   512*10 + 10                                             =      5,130
  static_assert(conv(3, 64, 3) + bn(64) == 1856 && basic_stage(64, 64, 3) == 221952 &&
                basic_stage(64, 128, 4) == 1116416 && basic_stage(128, 256, 6) == 6822400 &&
                basic_stage(256, 512, 3) == 13114368);
  static_assert(1856 + 221952 + 1116416 + 6822400 + 13114368 + 5130 == 21282122);
  auto model = make("resnet34", {3, 32, 32}, 10);
  EXPECT_EQ(count_parameters(*model), 21282122);
  EXPECT_EQ(model->backbone().feature_dim(), 512);
}

TEST(Backbones, CifarResNet50HasItsPublishedParameterCount) {
  // kuangliu/pytorch-cifar's ResNet50 (torchvision's bottleneck, 1x1-3x3-1x1,
  // expansion 4), the figure cited for CIFAR: 23,520,842.
  //   stem   3*64*9 + 128                                                  =      1,856
  //   layer1 (64*64 + 128 + 64*64*9 + 128 + 64*256 + 512 + 64*256 + 512)
  //          + 2 x (256*64 + 128 + 64*64*9 + 128 + 64*256 + 512)           =    215,808
  //   layer2 (256*128 + ... + 256*512 + 1024) + 3 x 280,064               =  1,219,584
  //   layer3 (512*256 + ... + 512*1024 + 2048) + 5 x 1,117,184            =  7,098,368
  //   layer4 (1024*512 + ... + 1024*2048 + 4096) + 2 x 4,462,592          = 14,964,736
  //   head   2048*10 + 10                                                  =     20,490
  static_assert(bottleneck_stage(64, 64, 3) == 215808 && bottleneck(512, 128) == 280064 &&
                bottleneck_stage(256, 128, 4) == 1219584 && bottleneck(1024, 256) == 1117184 &&
                bottleneck_stage(512, 256, 6) == 7098368 && bottleneck(2048, 512) == 4462592 &&
                bottleneck_stage(1024, 512, 3) == 14964736);
  static_assert(1856 + 215808 + 1219584 + 7098368 + 14964736 + 20490 == 23520842);
  auto model = make("resnet50", {3, 32, 32}, 10);
  EXPECT_EQ(count_parameters(*model), 23520842);
  EXPECT_EQ(model->backbone().feature_dim(), 2048);
}

TEST(Backbones, ReducedResNet18ParameterCountByHand) {
  // The GEM / DER reduced ResNet-18 (mammoth's reduced-resnet18, nf = 20), widths
  // 20, 40, 80, 160:
  //   stem   3*20*9 + 40                                             =     580
  //   layer1 2 x (2*20*20*9 + 2*40)                                  =  14,560
  //   layer2 (20*40*9 + 40*40*9 + 160 + 20*40 + 80) + (2*40*40*9 + 160)   =  51,600
  //   layer3 (40*80*9 + 80*80*9 + 320 + 40*80 + 160) + (2*80*80*9 + 320) = 205,600
  //   layer4 (80*160*9 + 160*160*9 + 640 + 80*160 + 320)
  //          + (2*160*160*9 + 640)                                   = 820,800
  //   head   160*10 + 10                                             =   1,610
  // 1,094,750 in all: 9.8 % of ResNet-18's (widths / 3.2, parameters / ~10;
  // mammoth's docstring says "a third of the parameters", which it is not).
  static_assert(conv(3, 20, 3) + bn(20) == 580 && basic_stage(20, 20, 2) == 14560 && basic_stage(20, 40, 2) == 51600 &&
                basic_stage(40, 80, 2) == 205600 && basic_stage(80, 160, 2) == 820800 && linear(160, 10) == 1610);
  static_assert(580 + 14560 + 51600 + 205600 + 820800 + 1610 == 1094750);
  auto model = make("reduced_resnet18", {3, 32, 32}, 10);
  EXPECT_EQ(count_parameters(*model), 1094750);
  EXPECT_EQ(model->backbone().feature_dim(), 160);
  // base_width is honoured: at 64 it is ResNet-18.
  EXPECT_EQ(count_parameters(*make("reduced_resnet18", {3, 32, 32}, 10, "base_width = 64\n")), 11173962);
}

// kuangliu's inverted residual: expand 1x1 to t*in, depthwise 3x3, project 1x1,
// BN after each; a 1x1 conv + BN shortcut when stride 1 and in != out.
constexpr int64_t inverted_residual(int64_t in, int64_t out, int64_t t, int64_t stride) {
  const int64_t h = t * in;
  return conv(in, h, 1) + bn(h) + h * 9 + bn(h) + conv(h, out, 1) + bn(out) +
         (stride == 1 && in != out ? conv(in, out, 1) + bn(out) : 0);
}

// The reference's (mmcls's, torchvision's) inverted residual: expand 1x1 only when
// t != 1, depthwise 3x3, project 1x1, BN after each; no projection shortcut.
constexpr int64_t reference_inverted_residual(int64_t in, int64_t out, int64_t t) {
  const int64_t h = t * in;
  return (t != 1 ? conv(in, h, 1) + bn(h) : 0) + h * 9 + bn(h) + conv(h, out, 1) + bn(out);
}

TEST(Backbones, MobileNetV2ReferenceHasTorchvisionsParameterCount) {
  // The EdgeHML reference's MobileNetV2_CIFAR (the default): torchvision's
  // mobilenet_v2 with a 10-class head has 2,236,682 parameters.
  //   stem  3*32*9 + 64                                       =     928
  //   (1, 16, 1, 1)  32->16, no expansion conv                =     896
  //   (6, 24, 2, 1)  16->24, 24->24                           =  13,968
  //   (6, 32, 3, 2)  as kuangliu's (no shortcut differs)      =  39,696
  //   (6, 64, 4, 2)                                           = 183,872
  //   (6, 96, 3, 1)  64->96 without shortcut, 2 x 96->96      = 303,168
  //   (6, 160, 3, 2)                                          = 795,264
  //   (6, 320, 1, 1) 160->320 without shortcut                = 473,920
  //   conv 320*1280 + BN 2560                                  = 412,160
  //   head 1280*10 + 10                                        =  12,810
  static_assert(reference_inverted_residual(32, 16, 1) == 896);
  static_assert(reference_inverted_residual(16, 24, 6) + reference_inverted_residual(24, 24, 6) == 13968);
  static_assert(reference_inverted_residual(24, 32, 6) + 2 * reference_inverted_residual(32, 32, 6) == 39696);
  static_assert(reference_inverted_residual(64, 96, 6) + 2 * reference_inverted_residual(96, 96, 6) == 303168);
  static_assert(reference_inverted_residual(160, 320, 6) == 473920);
  static_assert(928 + 896 + 13968 + 39696 + 183872 + 303168 + 795264 + 473920 + 412160 + 12810 == 2236682);
  auto model = make("mobilenet_v2", {3, 32, 32}, 10);
  EXPECT_EQ(count_parameters(*model), 2236682);
  EXPECT_EQ(count_parameters(*make("mobilenet_v2", {3, 32, 32}, 10, "variant = \"reference\"\n")), 2236682);
  EXPECT_EQ(model->backbone().feature_dim(), 1280);
  EXPECT_EQ(model->forward(torch::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 10}));
}

TEST(Backbones, MobileNetV2KuangliuHasItsPublishedCifarParameterCount) {
  // kuangliu/pytorch-cifar's MobileNetV2 (model.variant = "kuangliu"): 2,296,922.
  //   stem  3*32*9 + 64                                       =     928
  //   (1, 16, 1, 1)  32->16 with shortcut 32*16 + 32          =   2,528
  //   (6, 24, 2, 1)  16->24 with shortcut, 24->24             =  14,400
  //   (6, 32, 3, 2)  24->32 stride 2, 2 x 32->32              =  39,696
  //   (6, 64, 4, 2)  32->64 stride 2, 3 x 64->64              = 183,872
  //   (6, 96, 3, 1)  64->96 with shortcut, 2 x 96->96         = 309,504
  //   (6, 160, 3, 2) 96->160 stride 2, 2 x 160->160           = 795,264
  //   (6, 320, 1, 1) 160->320 with shortcut                   = 525,760
  //   conv 320*1280 + BN 2560                                  = 412,160
  //   head 1280*10 + 10                                        =  12,810
  static_assert(inverted_residual(32, 16, 1, 1) == 2528);
  static_assert(inverted_residual(16, 24, 6, 1) + inverted_residual(24, 24, 6, 1) == 14400);
  static_assert(inverted_residual(24, 32, 6, 2) + 2 * inverted_residual(32, 32, 6, 1) == 39696);
  static_assert(inverted_residual(32, 64, 6, 2) + 3 * inverted_residual(64, 64, 6, 1) == 183872);
  static_assert(inverted_residual(64, 96, 6, 1) + 2 * inverted_residual(96, 96, 6, 1) == 309504);
  static_assert(inverted_residual(96, 160, 6, 2) + 2 * inverted_residual(160, 160, 6, 1) == 795264);
  static_assert(inverted_residual(160, 320, 6, 1) == 525760);
  static_assert(928 + 2528 + 14400 + 39696 + 183872 + 309504 + 795264 + 525760 + 412160 + 12810 == 2296922);
  auto model = make("mobilenet_v2", {3, 32, 32}, 10, "variant = \"kuangliu\"\n");
  EXPECT_EQ(count_parameters(*model), 2296922);
  EXPECT_EQ(model->backbone().feature_dim(), 1280);
  // width_mult scales the blocks (to multiples of 8) but keeps the last conv at 1280.
  auto half = make("mobilenet_v2", {3, 32, 32}, 10, "variant = \"kuangliu\"\nwidth_mult = 0.5\n");
  EXPECT_LT(count_parameters(*half), 2296922);
  EXPECT_EQ(half->backbone().feature_dim(), 1280);
  EXPECT_EQ(half->forward(torch::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 10}));
}

// Pre-activation wide block: BN(in), conv3x3, BN(out), conv3x3 [+ 1x1 conv
// shortcut without bias or BN].
constexpr int64_t wide_block(int64_t in, int64_t out) {
  return bn(in) + conv(in, out, 3) + bn(out) + conv(out, out, 3) + (in != out ? conv(in, out, 1) : 0);
}
constexpr int64_t wide_stage(int64_t in, int64_t out, int64_t n) {
  return wide_block(in, out) + (n - 1) * wide_block(out, out);
}

TEST(Backbones, WideResNet28x2HasFixMatchsParameterCount) {
  // FixMatch-pytorch's WRN-28-2 (convs without bias), 1,467,610:
  //   stem   3*16*9                                                   =       432
  //   block1 (32 + 16*32*9 + 64 + 32*32*9 + 16*32) + 3 x (64 + 2*32*32*9 + 64)    =    70,112
  //   block2 (64 + 32*64*9 + 128 + 64*64*9 + 32*64) + 3 x (128 + 2*64*64*9 + 128) =   279,488
  //   block3 (128 + 64*128*9 + 256 + 128*128*9 + 64*128)
  //          + 3 x (256 + 2*128*128*9 + 256)                          = 1,116,032
  //   final BN 256; head 128*10 + 10 = 1,290
  // TorchSSL and the TF original give every conv a bias: 16 + (4*2*32 + 32) +
  // (4*2*64 + 64) + (4*2*128 + 128) = 2,032 more, 1,469,642.
  static_assert(wide_stage(16, 32, 4) == 70112 && wide_stage(32, 64, 4) == 279488 && wide_stage(64, 128, 4) == 1116032);
  static_assert(432 + 70112 + 279488 + 1116032 + 256 + 1290 == 1467610);
  auto model = make("wrn28_2", {3, 32, 32}, 10);
  EXPECT_EQ(count_parameters(*model), 1467610);
  EXPECT_EQ(model->backbone().feature_dim(), 128);
}

TEST(Backbones, WideResNetDepthAndWidthAreOptions) {
  // WRN-28-8 with 100 classes, FixMatch's CIFAR-100 model ("23.4 M"): 23,401,012.
  static_assert(conv(3, 16, 3) + wide_stage(16, 128, 4) + wide_stage(128, 256, 4) + wide_stage(256, 512, 4) + bn(512) +
                    linear(512, 100) ==
                23401012);
  auto wide = make("wrn28_2", {3, 32, 32}, 100, "widen_factor = 8\n");
  EXPECT_EQ(count_parameters(*wide), 23401012);
  EXPECT_EQ(wide->backbone().feature_dim(), 512);
  // WRN-16-4: 2 blocks per stage.
  auto shallow = make("wrn28_2", {3, 32, 32}, 10, "depth = 16\nwiden_factor = 4\ndropout = 0.3\n");
  EXPECT_EQ(count_parameters(*shallow), conv(3, 16, 3) + wide_stage(16, 64, 2) + wide_stage(64, 128, 2) +
                                            wide_stage(128, 256, 2) + bn(256) + linear(256, 10));
  EXPECT_EQ(shallow->forward(torch::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 10}));
}

TEST(Backbones, MlpParameterCountByHand) {
  // 784*100 + 100 + 100*100 + 100 + head 100*10 + 10 = 89,610 on 28x28x1 (the
  // MNIST MLP of GEM / DER); on 32x32x3 the first layer takes 3072 inputs.
  auto model = make("mlp", {1, 28, 28}, 10);
  EXPECT_EQ(count_parameters(*model), 784 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10);
  EXPECT_EQ(count_parameters(*model), 89610);
  EXPECT_EQ(count_parameters(*make("mlp", {3, 32, 32}, 10)), 3072 * 100 + 100 + 100 * 100 + 100 + 1010);
  auto deeper = make("mlp", {1, 28, 28}, 10, "hidden_layers = 3\nhidden = 256\n");
  EXPECT_EQ(count_parameters(*deeper), linear(784, 256) + 2 * linear(256, 256) + linear(256, 10));
  EXPECT_EQ(deeper->backbone().feature_dim(), 256);
}

TEST(Backbones, SmallCnnParameterCountByHand) {
  // conv1 1*32*9 = 288, bn1 64, conv2 32*64*9 = 18432, bn2 128,
  // fc 64*7*7*128 = 401408 (no bias), bn3 256, head 128*10 + 10 = 1290.
  auto model = make("small_cnn", {1, 28, 28}, 10);
  EXPECT_EQ(count_parameters(*model), 288 + 64 + 18432 + 128 + 401408 + 256 + 1290);
  EXPECT_EQ(model->forward(torch::randn({5, 1, 28, 28})).sizes(), (std::vector<int64_t>{5, 10}));
}

struct Expected {
  std::string name;
  int64_t feature_dim;
};

const std::vector<Expected> kBackbones = {
    {"mlp", 100},      {"mobilenet_v2", 1280}, {"reduced_resnet18", 160}, {"resnet18", 512},
    {"resnet34", 512}, {"resnet50", 2048},     {"small_cnn", 128},        {"wrn28_2", 128},
};

TEST(Backbones, EveryBackboneIsCoveredHere) {
  std::vector<std::string> names;
  for (const auto& b : kBackbones) names.push_back(b.name);
  EXPECT_EQ(BackboneRegistry::get().names(), names);
}

TEST(Backbones, EveryBackboneTakesFashionMnistCifarAndTinyImageNetShapes) {
  torch::NoGradGuard no_grad;
  const std::vector<InputShape> shapes = {{1, 28, 28}, {3, 32, 32}, {3, 64, 64}};
  for (const auto& b : kBackbones)
    for (const auto& shape : shapes) {
      SCOPED_TRACE(b.name + " on " + std::to_string(shape.channels) + "x" + std::to_string(shape.height) + "x" +
                   std::to_string(shape.width));
      auto model = make(b.name, shape, 7);
      const auto images = torch::randn({2, shape.channels, shape.height, shape.width});
      EXPECT_EQ(model->backbone().feature_dim(), b.feature_dim);
      // One pass per shape (in training mode: BN on batch statistics), then the head.
      const auto features = model->features(images);
      EXPECT_EQ(features.sizes(), (std::vector<int64_t>{2, b.feature_dim}));
      EXPECT_EQ(model->head(features).sizes(), (std::vector<int64_t>{2, 7}));
      if (shape.height == 28) {
        model->eval();
        EXPECT_EQ(model->forward(images).sizes(), (std::vector<int64_t>{2, 7}));
      }
    }
}

TEST(Backbones, ShippedModelConfigsBuildTheirBackboneWithEveryKeyRead) {
  for (const auto& b : kBackbones) {
    SCOPED_TRACE(b.name);
    const auto config = Config::load(std::string(SSCL_SOURCE_DIR) + "/configs/_base_/models/" + b.name + ".toml");
    const auto options = config.section("model");
    ASSERT_EQ(options.get<std::string>("backbone"), b.name);
    auto backbone = BackboneRegistry::get().at(b.name)(options, InputShape{3, 32, 32});
    EXPECT_NO_THROW(config.ensure_all_used());
    // The file lists the defaults: the same network as an empty [model].
    EXPECT_EQ(count_parameters(*backbone), count_parameters(make(b.name, {3, 32, 32}, 10)->backbone()));
  }
}

TEST(Backbones, ResNetResidualBranchesStartAsIdentity) {
  auto model = make("resnet18", {3, 32, 32}, 10);
  int zeroed = 0;
  for (const auto& item : model->named_parameters())
    if (item.key().find("bn2.weight") != std::string::npos) {
      EXPECT_EQ(item.value().abs().sum().item<float>(), 0.0f) << item.key();
      ++zeroed;
    }
  EXPECT_EQ(zeroed, 8);
}

// Counts the last-BN weights of the residual branches and how many are all zero.
std::pair<int, int> residual_bn(Classifier& model, const std::string& last_bn) {
  int total = 0, zero = 0;
  for (const auto& item : model->named_parameters())
    if (item.key().find("layer") != std::string::npos && item.key().find(last_bn + ".weight") != std::string::npos) {
      ++total;
      zero += item.value().abs().sum().item<float>() == 0.0f;
    }
  return {total, zero};
}

TEST(Backbones, ZeroInitResidualIsAnOptionOfEveryResNet) {
  auto r34 = make("resnet34", {3, 32, 32}, 10);
  EXPECT_EQ(residual_bn(r34, "bn2"), (std::pair<int, int>{16, 16}));
  auto r50 = make("resnet50", {3, 32, 32}, 10);
  EXPECT_EQ(residual_bn(r50, "bn3"), (std::pair<int, int>{16, 16}));
  auto r50_plain = make("resnet50", {3, 32, 32}, 10, "zero_init_residual = false\n");
  EXPECT_EQ(residual_bn(r50_plain, "bn3"), (std::pair<int, int>{16, 0}));
  // mammoth keeps PyTorch's BN init for the reduced ResNet-18.
  auto reduced = make("reduced_resnet18", {3, 32, 32}, 10);
  EXPECT_EQ(residual_bn(reduced, "bn2"), (std::pair<int, int>{8, 0}));
  auto reduced_zero = make("reduced_resnet18", {3, 32, 32}, 10, "zero_init_residual = true\n");
  EXPECT_EQ(residual_bn(reduced_zero, "bn2"), (std::pair<int, int>{8, 8}));
}

TEST(Backbones, BadOptionErrorsNameTheirKey) {
  struct Case {
    std::string backbone, option, key;
  };
  const std::vector<Case> cases = {
      {"resnet18", "base_width = 0", "model.base_width"},
      {"resnet34", "base_width = -8", "model.base_width"},
      {"resnet50", "base_width = 0", "model.base_width"},
      {"reduced_resnet18", "base_width = 0", "model.base_width"},
      {"resnet50", "zero_init_residual = 1", "model.zero_init_residual"},
      {"mobilenet_v2", "width_mult = 0.0", "model.width_mult"},
      {"mobilenet_v2", "width_mult = -1", "model.width_mult"},
      {"mobilenet_v2", "variant = \"torchvision\"", "model.variant"},
      {"wrn28_2", "depth = 27", "model.depth"},
      {"wrn28_2", "depth = 4", "model.depth"},
      {"wrn28_2", "widen_factor = 0", "model.widen_factor"},
      {"wrn28_2", "dropout = 1.0", "model.dropout"},
      {"mlp", "hidden = 0", "model.hidden"},
      {"mlp", "hidden_layers = 0", "model.hidden_layers"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.backbone + ": " + c.option);
    try {
      make(c.backbone, {3, 32, 32}, 10, c.option + "\n");
      ADD_FAILURE() << "no error";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("'" + c.key + "'"), std::string::npos) << e.what();
    }
  }
}

// The default of a key as --describe prints it; "(none)" for a key not declared.
std::string described_default(const std::string& backbone, const std::string& key) {
  for (const auto& doc : BackboneRegistry::get().info(backbone).options())
    if (doc.key == key) return doc.default_value;
  return "(none)";
}

TEST(Backbones, EveryBackboneHasASummaryAndDescribesItsKeys) {
  for (const auto& b : kBackbones) {
    SCOPED_TRACE(b.name);
    const auto& info = BackboneRegistry::get().info(b.name);
    EXPECT_FALSE(info.summary.empty());
    ASSERT_TRUE(info.options);
    const auto docs = info.options();
    EXPECT_FALSE(docs.empty());
    for (const auto& doc : docs) {
      EXPECT_FALSE(doc.doc.empty()) << doc.key;
      // The run builder reads these two itself.
      EXPECT_NE(doc.key, "backbone");
      EXPECT_NE(doc.key, "multi_head");
    }
  }
  // Per-name defaults: the reduced ResNet-18 is the ResNet-18 at width 20 without zero-init.
  EXPECT_EQ(described_default("resnet18", "base_width"), "64");
  EXPECT_EQ(described_default("resnet18", "zero_init_residual"), "true");
  EXPECT_EQ(described_default("reduced_resnet18", "base_width"), "20");
  EXPECT_EQ(described_default("reduced_resnet18", "zero_init_residual"), "false");
  EXPECT_EQ(described_default("wrn28_2", "depth"), "28");
  EXPECT_EQ(described_default("mobilenet_v2", "width_mult"), "1.0");
  EXPECT_EQ(described_default("small_cnn", "width"), "32");
  EXPECT_EQ(described_default("mlp", "hidden_layers"), "2");
}

TEST(Backbones, ResolvedConfigNamesTheDefaultsThatTookEffect) {
  const auto config = Config::from_string("[model]\nbackbone = \"reduced_resnet18\"\n", "model.toml");
  const auto section = config.section("model");
  EXPECT_EQ(section.get<std::string>("backbone"), "reduced_resnet18");
  BackboneRegistry::get().at("reduced_resnet18")(section, InputShape{3, 32, 32});
  EXPECT_NO_THROW(config.ensure_all_used());
  const std::string resolved = config.to_toml();
  EXPECT_NE(resolved.find("base_width = 20"), std::string::npos) << resolved;
  EXPECT_NE(resolved.find("zero_init_residual = false"), std::string::npos) << resolved;
  // An unknown key stays an error.
  const auto typo = Config::from_string("[model]\nwidht = 20\n", "model.toml");
  BackboneRegistry::get().at("small_cnn")(typo.section("model"), InputShape{1, 28, 28});
  EXPECT_THROW(typo.ensure_all_used(), ConfigError);
}

TEST(Backbones, InputChannelsComeFromTheDataset) {
  auto model = make("small_cnn", {3, 32, 32}, 4);
  EXPECT_EQ(model->forward(torch::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 4}));
}

}  // namespace
}  // namespace sscl
