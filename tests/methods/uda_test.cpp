#include "methods/semi/uda.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "core/method.h"
#include "tests/methods/semi_loss_fixture.h"

namespace sscl {
namespace {

const double kUdaInf = std::numeric_limits<double>::infinity();

TEST(UdaMaths, SharpenedTargetsConfidenceMaskAndMeanOverAllImages) {
  // Weak probabilities: row 0 [0.9, 0.1] (0.9 >= 0.8: kept), row 1 [0.6, 0.4] (masked).
  const auto weak = torch::log(torch::tensor({{0.9, 0.1}, {0.6, 0.4}}));
  // Strong row 0 [0, ln 3] -> p = [1/4, 3/4]; row 1 anything (masked out).
  const auto strong = torch::tensor({{0.0, std::log(3.0)}, {2.0, -2.0}});
  const auto out = uda_loss(weak, strong, /*temperature=*/0.5, /*threshold=*/0.8);
  EXPECT_TRUE(torch::equal(out.mask.to(torch::kDouble), torch::tensor({1.0, 0.0}, torch::kDouble)));
  // softmax(log p / 0.5) = p^2 / sum: row 0 [0.81, 0.01] / 0.82, row 1 [0.36, 0.16] / 0.52.
  EXPECT_TRUE(torch::allclose(out.targets.to(torch::kDouble),
                              torch::tensor({{81.0 / 82, 1.0 / 82}, {36.0 / 52, 16.0 / 52}}, torch::kDouble), 1e-6,
                              1e-9));
  // Row 0: -(81/82 ln 1/4 + 1/82 ln 3/4); divided by U = 2 (the mean is over all images).
  const double row0 = -(81.0 / 82 * std::log(0.25) + 1.0 / 82 * std::log(0.75));
  EXPECT_NEAR(out.loss.item<double>(), row0 / 2, 1e-6);
}

TEST(UdaMaths, DefaultTemperatureSharpensMoreThanTheMaskSees) {
  // T = 0.4: p^(1/0.4) = p^2.5: [0.9^2.5, 0.1^2.5] = [0.768433, 0.003162] -> [0.995902, 0.004098].
  const auto weak = torch::log(torch::tensor({{0.9, 0.1}}));
  const auto out = uda_loss(weak, torch::zeros({1, 2}), 0.4, 0.8);
  EXPECT_NEAR(out.targets[0][0].item<double>(), 0.995902, 1e-5);
  // The mask looks at the unsharpened 0.9; 0.95 would drop it even though the target is 0.996.
  EXPECT_EQ(uda_loss(weak, torch::zeros({1, 2}), 0.4, 0.95).mask.item<double>(), 0.0);
}

TEST(UdaMaths, GradientReachesOnlyTheUnmaskedStrongRows) {
  const auto weak = torch::log(torch::tensor({{0.9, 0.1}, {0.6, 0.4}})).set_requires_grad(true);
  const auto strong = torch::tensor({{0.0, std::log(3.0)}, {2.0, -2.0}}).set_requires_grad(true);
  uda_loss(weak, strong, 0.5, 0.8).loss.backward();
  EXPECT_FALSE(weak.grad().defined());
  // d/dz of (1/2) softCE(z, q) = (softmax(z) - q) / 2 for row 0; row 1 is masked: 0.
  const auto expected = torch::tensor({{(0.25 - 81.0 / 82) / 2, (0.75 - 1.0 / 82) / 2}, {0.0, 0.0}});
  EXPECT_TRUE(torch::allclose(strong.grad().to(torch::kDouble), expected.to(torch::kDouble), 1e-6, 1e-9));
}

TEST(UdaMaths, TaskMaskedClassesStayFiniteAndGetNoTarget) {
  // Class 1 masked: weak probabilities [0.1, 0, 0.9] (kept at 0.8), strong [1/2, 0, 1/2].
  const auto weak = torch::tensor({{0.0, -kUdaInf, std::log(9.0)}});
  const auto strong = torch::tensor({{0.0, -kUdaInf, 0.0}}).set_requires_grad(true);
  const auto out = uda_loss(weak, strong, 0.5, 0.8);
  EXPECT_EQ(out.targets[0][1].item<double>(), 0.0);
  // Targets [0.01, 0, 0.81] / 0.82 sum to 1 over log-probabilities -ln 2: loss ln 2.
  EXPECT_NEAR(out.loss.item<double>(), std::log(2.0), 1e-6);
  out.loss.backward();
  EXPECT_TRUE(torch::isfinite(strong.grad()).all().item<bool>());
}

TEST(UdaMaths, EmptyUnlabeledBatchGivesZero) {
  EXPECT_EQ(uda_loss(torch::zeros({0, 3}), torch::zeros({0, 3}), 0.4, 0.8).loss.item<double>(), 0.0);
}

TEST(UdaTsa, ThresholdSchedulesByHand) {
  // eta = alpha (1 - 1/K) + 1/K with K = 4.
  EXPECT_NEAR(tsa_threshold(TsaSchedule::kLinear, 0.5, 4), 0.5 * 0.75 + 0.25, 1e-12);                // 0.625
  EXPECT_NEAR(tsa_threshold(TsaSchedule::kLinear, 0.0, 4), 0.25, 1e-12);                             // 1/K at the start
  EXPECT_NEAR(tsa_threshold(TsaSchedule::kLog, 0.2, 4), (1 - std::exp(-1.0)) * 0.75 + 0.25, 1e-12);  // 0.724091
  EXPECT_NEAR(tsa_threshold(TsaSchedule::kExp, 0.8, 4), std::exp(-1.0) * 0.75 + 0.25, 1e-12);        // 0.525910
  EXPECT_NEAR(tsa_threshold(TsaSchedule::kExp, 1.0, 4), 1.0, 1e-12);
  EXPECT_EQ(tsa_threshold(TsaSchedule::kNone, 0.0, 4), 1.0);
  EXPECT_NEAR(tsa_threshold(TsaSchedule::kLinear, 2.0, 4), 1.0, 1e-12);  // progress clamped at 1
}

TEST(UdaTsa, KeepsRowsWhoseCorrectClassProbabilityIsAtMostEta) {
  // Correct-class probabilities: row 0 [ln 3, 0] label 0 -> 3/4; row 1 [0, 0] label 1 -> 1/2;
  // row 2 [0, ln 9] label 1 -> 9/10. At eta 0.7 only row 1 is kept.
  const auto logits = torch::tensor({{std::log(3.0), 0.0}, {0.0, 0.0}, {0.0, std::log(9.0)}});
  const auto keep = tsa_keep_mask(logits, torch::tensor({0, 1, 1}), 0.7);
  EXPECT_TRUE(torch::equal(keep, torch::tensor({false, true, false})));
  // It is the correct class that counts, not the largest: row 0 with label 1 (p = 1/4) is kept.
  EXPECT_TRUE(tsa_keep_mask(logits.narrow(0, 0, 1), torch::tensor({1}), 0.7).item<bool>());
}

// ---------------------------------------------------------------------------
// The loss composed with SFT on two synthetic tasks.

using testing::stat_of;
using testing::term_of;

class UdaRun : public testing::SemiLossRun {
 protected:
  UdaRun() : SemiLossRun("uda", /*seed=*/5, /*iters_per_task=*/10) {}
};

TEST_F(UdaRun, AnnealingDropsLabeledImagesTheModelAlreadyFits) {
  auto method = make("tsa = \"linear\"\n");
  // Every image gets logits = the head's bias: class c0 (task 0's first) ln 3, others 0,
  // so p(c0) = 3/6 = 1/2 and every other class 1/6 (4 classes, no task mask).
  const int64_t c0 = tasks_.classes(0)[0];
  {
    torch::NoGradGuard no_grad;
    for (auto& item : method->model()->named_parameters()) {
      if (item.key() == "head.weight") item.value().zero_();
      if (item.key() == "head.bias") item.value().zero_()[c0] = std::log(3.0);
    }
  }
  const auto batch = tasks_.train_batch(0, 0);
  RunState state = at(0, 0);  // eta = 1/K = 1/4: rows of c0 (p = 1/2) drop, the others (1/6) stay
  method->model()->train();
  const auto labels = batch.labeled.labels;
  const int64_t others = labels.ne(c0).sum().item<int64_t>();
  ASSERT_GT(others, 0);
  ASSERT_LT(others, labels.size(0));
  EXPECT_NEAR(term_of(method->step(batch, state), "sup"), std::log(6.0), 1e-5);  // CE of the kept rows: -ln(1/6)
  // Near the task's end eta ~ 1: every row is back, mean of ln 2 (c0) and ln 6 (others).
  state.iter = 9;  // eta = 0.9 * 0.75 + 0.25 = 0.925 > 1/2
  const double n = static_cast<double>(labels.size(0));
  EXPECT_NEAR(term_of(method->step(batch, state), "sup"), ((n - others) * std::log(2.0) + others * std::log(6.0)) / n,
              1e-5);
  // Kept fraction: others / n, then all.
  EXPECT_NEAR(stat_of(*method, "semi.tsa_keep_rate"), (others + n) / (2 * n), 1e-9);
}

TEST_F(UdaRun, ReturnsSupThenUnsupFinite) {
  auto method = make("");
  const auto batch = tasks_.train_batch(0, 0);
  method->model()->train();
  const auto terms = method->step(batch, at(0));
  ASSERT_EQ(terms.size(), 2u);
  EXPECT_EQ(terms[0].first, "sup");
  EXPECT_EQ(terms[1].first, "unsup");
  EXPECT_TRUE(std::isfinite(terms[1].second.item<double>()));
}

TEST_F(UdaRun, RejectsBadOptions) {
  expect_rejected({"tsa = \"cosine\"\n", "temperature = 0.0\n", "threshold = 1.5\n"});
}

}  // namespace
}  // namespace sscl
