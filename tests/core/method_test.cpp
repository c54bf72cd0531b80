#include "core/method.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "tests/core/fake_run.h"

namespace sscl {
namespace {

// Exposes the protected helper.
class ProbeMethod : public Method {
 public:
  std::string name() const override { return "probe"; }
  LossTerms step(const TrainBatch&, const RunState&) override { return {}; }
  using Method::train_logits;
};

std::unique_ptr<ProbeMethod> attached(bool mask) {
  auto m = std::make_unique<ProbeMethod>();
  MethodContext context;
  context.model = testing::make_tiny_classifier();  // 4 classes
  context.task_classes = {{0, 1}, {2, 3}};
  context.mask_train_logits = mask;
  m->attach(context);
  return m;
}

TEST(Method, TrainMaskResolvesPerScenario) {
  EXPECT_TRUE(resolve_train_mask("auto", Scenario::kTaskIL));
  EXPECT_FALSE(resolve_train_mask("auto", Scenario::kClassIL));
  EXPECT_TRUE(resolve_train_mask("task", Scenario::kClassIL));
  EXPECT_FALSE(resolve_train_mask("task", Scenario::kDomainIL));  // every class: nothing to mask
  EXPECT_FALSE(resolve_train_mask("auto", Scenario::kDomainIL));
  EXPECT_FALSE(resolve_train_mask("none", Scenario::kTaskIL));
  EXPECT_THROW(resolve_train_mask("heads", Scenario::kTaskIL), ConfigError);
}

TEST(Method, TrainLogitsMaskOtherTasksClasses) {
  auto m = attached(true);
  const auto logits = torch::tensor({{1.0f, 2.0f, 3.0f, 4.0f}});
  const auto out = m->train_logits(logits, 1);
  EXPECT_TRUE(std::isinf(out[0][0].item<float>()) && out[0][0].item<float>() < 0);
  EXPECT_TRUE(std::isinf(out[0][1].item<float>()));
  EXPECT_EQ(out[0][2].item<float>(), 3.0f);
  EXPECT_EQ(out[0][3].item<float>(), 4.0f);
  EXPECT_TRUE(torch::equal(attached(false)->train_logits(logits, 1), logits));
}

TEST(Method, PerRowTrainLogitsMaskEachRowToItsOwnTask) {
  auto m = attached(true);
  const auto logits = torch::tensor({{1.0f, 2.0f, 3.0f, 4.0f}, {5.0f, 6.0f, 7.0f, 8.0f}});
  const auto out = m->train_logits(logits, torch::tensor({1, 0}, torch::kLong));
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(torch::equal(out, torch::tensor({{-inf, -inf, 3.0f, 4.0f}, {5.0f, 6.0f, -inf, -inf}})));
  EXPECT_TRUE(torch::equal(attached(false)->train_logits(logits, torch::tensor({1, 0}, torch::kLong)), logits));
}

TEST(Method, MaskedCrossEntropyLeavesOtherTasksHeadRowsUntouched) {
  auto m = attached(true);
  auto model = m->model();
  const auto images = torch::randn({3, 1, 4, 4});
  const auto labels = torch::tensor({2, 3, 2});
  torch::nn::functional::cross_entropy(m->train_logits(model->forward(images), 1), labels).backward();
  const auto head_grad = model->named_parameters()["head.weight"].grad();
  EXPECT_EQ(head_grad.slice(0, 0, 2).abs().sum().item<float>(), 0.0f);  // classes 0, 1
  EXPECT_GT(head_grad.slice(0, 2, 4).abs().sum().item<float>(), 0.0f);  // classes 2, 3
}

TEST(Method, UnsupportedScenarioIsRejectedNamingBoth) {
  class TaskIlOnly : public ProbeMethod {
   public:
    TaskIlOnly() { traits_.scenarios = {Scenario::kTaskIL}; }
  } m;
  EXPECT_NO_THROW(ensure_supported(m, Scenario::kTaskIL));
  try {
    ensure_supported(m, Scenario::kClassIL);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "method 'probe' does not support data.scenario = 'class-il' (it supports: task-il)");
  }
}

}  // namespace
}  // namespace sscl
