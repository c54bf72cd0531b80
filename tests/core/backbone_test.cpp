#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/nn/classifier.h"

namespace sscl {
namespace {

int64_t count_parameters(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

Classifier make(const std::string& backbone, InputShape shape, int64_t classes) {
  auto config = Config::from_string("[model]\n", "model.toml");
  return Classifier(BackboneRegistry::get().at(backbone)(config.section("model"), shape), classes);
}

TEST(Backbones, CifarResNet18HasItsPublishedParameterCount) {
  // Stem 3*64*9 + BN 128; 8 BasicBlocks; 3 projection shortcuts; head 512*10 + 10:
  // the CIFAR ResNet-18 everyone cites, 11,173,962 parameters.
  auto model = make("resnet18", {3, 32, 32}, 10);
  EXPECT_EQ(count_parameters(*model), 11173962);
  const auto logits = model->forward(torch::randn({2, 3, 32, 32}));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_EQ(model->features(torch::randn({2, 3, 32, 32})).size(1), 512);
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

TEST(Backbones, SmallCnnParameterCountByHand) {
  // conv1 1*32*9 = 288, bn1 64, conv2 32*64*9 = 18432, bn2 128,
  // fc 64*7*7*128 = 401408 (no bias), bn3 256, head 128*10 + 10 = 1290.
  auto model = make("small_cnn", {1, 28, 28}, 10);
  EXPECT_EQ(count_parameters(*model), 288 + 64 + 18432 + 128 + 401408 + 256 + 1290);
  EXPECT_EQ(model->forward(torch::randn({5, 1, 28, 28})).sizes(), (std::vector<int64_t>{5, 10}));
}

TEST(Backbones, InputChannelsComeFromTheDataset) {
  auto model = make("small_cnn", {3, 32, 32}, 4);
  EXPECT_EQ(model->forward(torch::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 4}));
}

}  // namespace
}  // namespace sscl
