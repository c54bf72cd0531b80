// model.freeze and model.frozen_stages: which modules each names (mmcls's
// stage count), and that a frozen part of a classifier neither trains nor
// moves its BatchNorm statistics while the rest does.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "core/nn/classifier.h"

namespace sscl {
namespace {

using Names = std::vector<std::string>;

std::shared_ptr<Backbone> backbone(const std::string& name, const std::string& toml = "") {
  torch::manual_seed(3);
  auto config = Config::from_string("[model]\n" + toml, "model.toml");
  return BackboneRegistry::get().at(name)(config.section("model"), {3, 16, 16});
}

std::string error_of(const Backbone& b, bool freeze_backbone, int64_t stages) {
  try {
    modules_to_freeze(b, freeze_backbone, stages);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Freeze, FrozenStagesCountTheStemAndThenEachStageAsMmcls) {
  const auto resnet = backbone("resnet18", "base_width = 4\n");
  EXPECT_EQ(modules_to_freeze(*resnet, false, -1), Names{});
  EXPECT_EQ(modules_to_freeze(*resnet, false, 0), (Names{"backbone.conv1", "backbone.bn1"}));
  EXPECT_EQ(modules_to_freeze(*resnet, false, 2),
            (Names{"backbone.conv1", "backbone.bn1", "backbone.layer1", "backbone.layer2"}));
  EXPECT_EQ(modules_to_freeze(*resnet, true, -1), Names{"backbone"});
  EXPECT_EQ(error_of(*resnet, false, 5), "5 is past the backbone's last stage, 4 (0 is the stem)");
  EXPECT_EQ(error_of(*resnet, true, 1), "model.freeze = \"backbone\" already freezes every stage");
  // MobileNetV2: the stem, seven groups of blocks (1, 2, 3, 4, 3, 3, 1), the last 1x1 conv.
  const auto mobilenet = backbone("mobilenet_v2", "width_mult = 0.25\n");
  const auto stages = mobilenet->stage_modules();
  ASSERT_EQ(stages.size(), 9u);
  EXPECT_EQ(stages[2], (Names{"layers.1", "layers.2"}));
  EXPECT_EQ(stages[8], (Names{"conv2", "bn2"}));
  // Every registered backbone names modules that exist.
  for (const auto& name : BackboneRegistry::get().names()) {
    auto b = backbone(name, name.find("resnet") != std::string::npos ? "base_width = 4\n" : "");
    Classifier model(b, 3);
    const auto all = b->stage_modules();
    if (all.empty()) continue;
    EXPECT_NO_THROW(model->freeze(modules_to_freeze(*b, false, static_cast<int64_t>(all.size()) - 1))) << name;
    for (const auto& p : model->named_parameters())
      if (p.key().rfind("head", 0) != 0) EXPECT_FALSE(p.value().requires_grad()) << name << " " << p.key();
  }
}

struct NoStages : Backbone {
  torch::Tensor forward(const torch::Tensor& images) override { return images.flatten(1); }
  int64_t feature_dim() const override { return 3 * 16 * 16; }
};

TEST(Freeze, ABackboneWithoutStagesIsRefusedAndAnUnknownModuleNamed) {
  NoStages none;
  EXPECT_EQ(error_of(none, false, 0),
            "this backbone has no stages to freeze (model.freeze = \"backbone\" freezes it whole)");
  EXPECT_EQ(modules_to_freeze(none, true, -1), Names{"backbone"});
  Classifier model(backbone("small_cnn", "width = 4\n"), 3);
  try {
    model->freeze({"backbone.layer9"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "classifier: no module 'backbone.layer9' to freeze");
  }
}

// small_cnn with its stem frozen (frozen_stages = 0), trained a few SGD steps in
// train mode: the stem's weights and BatchNorm statistics are what they were,
// the next stage's and the head's moved, and train() keeps the stem in eval.
TEST(Freeze, AFrozenStemNeitherTrainsNorMovesItsBatchNormStatistics) {
  Classifier model(backbone("small_cnn", "width = 4\nhidden = 16\n"), 3);
  model->freeze(modules_to_freeze(model->backbone(), false, 0));
  EXPECT_EQ(model->frozen_modules(), (Names{"backbone.conv1", "backbone.bn1"}));
  std::map<std::string, at::Tensor> before;
  for (const auto& t : model->named_parameters()) before[t.key()] = t.value().detach().clone();
  for (const auto& t : model->named_buffers()) before[t.key()] = t.value().detach().clone();
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(1e-2));
  model->train();
  const auto modules = model->named_modules();
  EXPECT_FALSE(modules["backbone.bn1"]->is_training());
  EXPECT_TRUE(modules["backbone.bn2"]->is_training());
  torch::manual_seed(5);
  for (int i = 0; i < 3; ++i) {
    const auto images = torch::randn({8, 3, 16, 16});
    const auto labels = torch::randint(0, 3, {8}, torch::kLong);
    sgd.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(images), labels).backward();
    sgd.step();
  }
  for (const auto& name : {"backbone.conv1.weight", "backbone.bn1.weight", "backbone.bn1.bias",
                           "backbone.bn1.running_mean", "backbone.bn1.running_var"}) {
    const bool buffer = std::string(name).find("running") != std::string::npos;
    const auto now = buffer ? model->named_buffers()[name] : model->named_parameters()[name];
    EXPECT_TRUE(now.equal(before.at(name))) << name;
  }
  EXPECT_FALSE(model->named_parameters()["backbone.conv2.weight"].equal(before.at("backbone.conv2.weight")));
  EXPECT_FALSE(model->named_buffers()["backbone.bn2.running_mean"].equal(before.at("backbone.bn2.running_mean")));
  EXPECT_FALSE(model->named_parameters()["head.weight"].equal(before.at("head.weight")));
  EXPECT_FALSE(model->named_parameters()["backbone.conv1.weight"].requires_grad());
  model->eval();
  model->train();
  EXPECT_FALSE(modules["backbone.bn1"]->is_training());
}

}  // namespace
}  // namespace sscl
