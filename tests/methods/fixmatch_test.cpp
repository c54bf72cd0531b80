#include "methods/semi/fixmatch.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace sscl {
namespace {

TEST(FixMatch, MaskKeepsConfidentWeakPredictionsAndAveragesOverAllImages) {
  // Weak view probabilities: row 0 [0.97, 0.03] (confident, label 0), row 1
  // [0.40, 0.60] (not confident at 0.95), row 2 [0.01, 0.99] (confident, label 1).
  const auto weak = torch::log(torch::tensor({{0.97, 0.03}, {0.40, 0.60}, {0.01, 0.99}}));
  // Strong logits: row 0 uniform -> CE = log 2; row 2 [0, ln 3] -> p(1) = 3/4 -> CE = log(4/3).
  const auto strong = torch::tensor({{0.0, 0.0}, {5.0, -5.0}, {0.0, std::log(3.0)}}).set_requires_grad(true);
  const auto out = fixmatch_loss(weak, strong, 0.95);
  EXPECT_TRUE(torch::equal(out.pseudo_label, torch::tensor({0, 1, 1})));
  EXPECT_TRUE(torch::equal(out.mask, torch::tensor({1.0, 0.0, 1.0}, torch::kDouble)));
  EXPECT_NEAR(out.loss.item<double>(), (std::log(2.0) + std::log(4.0 / 3.0)) / 3.0, 1e-6);
}

TEST(FixMatch, TargetsCarryNoGradientToTheWeakView) {
  const auto weak = torch::tensor({{3.0, 0.0}}).set_requires_grad(true);
  const auto strong = torch::tensor({{0.0, 1.0}}).set_requires_grad(true);
  fixmatch_loss(weak, strong, 0.5).loss.backward();
  EXPECT_FALSE(weak.grad().defined());
  ASSERT_TRUE(strong.grad().defined());
  // d CE / d logits = softmax - onehot(0): softmax([0, 1]) = [1/(1+e), e/(1+e)].
  const double p0 = 1.0 / (1.0 + std::exp(1.0));
  EXPECT_NEAR(strong.grad()[0][0].item<double>(), p0 - 1.0, 1e-6);
  EXPECT_NEAR(strong.grad()[0][1].item<double>(), 1.0 - p0, 1e-6);
}

TEST(FixMatch, ThresholdAboveEveryConfidenceGivesZeroLoss) {
  const auto weak = torch::tensor({{1.0, 0.0}, {0.0, 2.0}});
  const auto strong = torch::tensor({{0.0, 3.0}, {3.0, 0.0}});
  const auto out = fixmatch_loss(weak, strong, 0.99);
  EXPECT_EQ(out.mask.sum().item<double>(), 0.0);
  EXPECT_EQ(out.loss.item<double>(), 0.0);
}

TEST(FixMatch, EmptyUnlabeledBatchGivesZero) {
  const auto empty = torch::zeros({0, 4});
  EXPECT_EQ(fixmatch_loss(empty, empty, 0.95).loss.item<double>(), 0.0);
}

}  // namespace
}  // namespace sscl
