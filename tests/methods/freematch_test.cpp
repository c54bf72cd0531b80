// FreeMatch: the EMAs' initial values (1/C, with and without the task mask),
// one EMA step, the class thresholds, the order "update, then threshold", the
// fairness term (value, gradient, the empty and masked cases), and the loss in a
// short run (terms, reset per task, save and load).
#include "methods/semi/freematch.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/error.h"
#include "core/method.h"
#include "tests/methods/semi_loss_fixture.h"

namespace sscl {
namespace {

using testing::float_tensor;

TEST(FreeMatch, EmasStartAtOneOverTheNumberOfTrainedClasses) {
  // All 4 classes: tau_0 = p~_0(c) = h_0(c) = 1/4.
  auto ema = freematch_initial_ema(float_tensor({1, 1, 1, 1}));
  EXPECT_FLOAT_EQ(ema.global_threshold.item<float>(), 0.25f);
  EXPECT_TRUE(torch::allclose(ema.class_probs, float_tensor({0.25, 0.25, 0.25, 0.25})));
  EXPECT_TRUE(torch::allclose(ema.label_hist, float_tensor({0.25, 0.25, 0.25, 0.25})));
  // Task mask on classes 2 and 3: C = 2 -> 1/2 there, 0 on the masked classes.
  ema = freematch_initial_ema(float_tensor({0, 0, 1, 1}));
  EXPECT_FLOAT_EQ(ema.global_threshold.item<float>(), 0.5f);
  EXPECT_TRUE(torch::allclose(ema.class_probs, float_tensor({0, 0, 0.5, 0.5})));
}

TEST(FreeMatch, OneEmaStepAndTheClassThresholds) {
  // m = 0.9 from 1/3 everywhere (K = 3); probs [0.7, 0.2, 0.1] and [0.1, 0.3, 0.6]:
  //   tau_1 = 0.9/3 + 0.1 * mean(0.7, 0.6) = 0.3 + 0.065 = 0.365
  //   p~_1  = 0.3 + 0.1 * [0.4, 0.25, 0.35] = [0.34, 0.325, 0.335]
  //   h_1   = 0.3 + 0.1 * hist(argmax = 0, 2) / 2 = 0.3 + 0.1 * [0.5, 0, 0.5] = [0.35, 0.3, 0.35]
  auto ema = freematch_initial_ema(float_tensor({1, 1, 1}));
  freematch_update(ema, torch::tensor({{0.7f, 0.2f, 0.1f}, {0.1f, 0.3f, 0.6f}}), 0.9);
  EXPECT_NEAR(ema.global_threshold.item<float>(), 0.365, 1e-6);
  EXPECT_TRUE(torch::allclose(ema.class_probs, float_tensor({0.34, 0.325, 0.335})));
  EXPECT_TRUE(torch::allclose(ema.label_hist, float_tensor({0.35, 0.3, 0.35})));
  // tau_1(c) = p~_1(c) / 0.34 * 0.365 = [0.365, 0.348897, 0.359632].
  EXPECT_TRUE(torch::allclose(freematch_class_thresholds(ema), float_tensor({0.365, 0.348897, 0.359632}), 1e-5, 1e-6));
}

TEST(FreeMatch, MaskedClassesStayAtZeroAndGiveNoNaN) {
  auto ema = freematch_initial_ema(float_tensor({0, 1, 1}));
  const auto logits = torch::tensor({{-INFINITY, 1.0f, 0.0f}, {-INFINITY, 0.0f, 2.0f}});
  freematch_update(ema, torch::softmax(logits, 1), 0.9);
  EXPECT_EQ(ema.class_probs[0].item<float>(), 0.0f);
  EXPECT_EQ(ema.label_hist[0].item<float>(), 0.0f);
  EXPECT_TRUE(torch::isfinite(freematch_class_thresholds(ema)).all().item<bool>());
  const auto strong = logits.clone().set_requires_grad(true);
  const auto loss = freematch_fairness_loss(strong, float_tensor({1, 1}), ema.class_probs, ema.label_hist);
  EXPECT_TRUE(std::isfinite(loss.item<float>()));
  loss.backward();
  EXPECT_TRUE(torch::isfinite(strong.grad()).all().item<bool>());
}

TEST(FreeMatch, StepUpdatesTheEmasBeforeThresholdingTheBatch) {
  // K = 2, m = 0.5, from tau_0 = 0.5, p~_0 = [0.5, 0.5]; probs [0.55, 0.45], [0.95, 0.05]:
  //   tau_1 = 0.25 + 0.5 * 0.75 = 0.625; p~_1 = 0.25 + 0.5 * [0.75, 0.25] = [0.625, 0.375]
  //   thresholds = [1, 0.6] * 0.625 = [0.625, 0.375]
  // Row 0 (0.55, label 0) falls below 0.625 -- it would have passed the old 0.5 --
  // row 1 (0.95) passes.
  auto ema = freematch_initial_ema(float_tensor({1, 1}));
  FreeMatchOptions options;
  options.ema_momentum = 0.5;
  const auto weak = torch::log(torch::tensor({{0.55f, 0.45f}, {0.95f, 0.05f}}));
  const auto strong = torch::tensor({{0.0f, 0.0f}, {0.0f, 0.0f}});
  const auto out = freematch_step(weak, strong, ema, options);
  EXPECT_TRUE(torch::equal(out.mask, float_tensor({0, 1})));
  // Only row 1 counts: CE of uniform logits = log 2, averaged over U = 2.
  EXPECT_NEAR(out.unsup.item<float>(), std::log(2.0) / 2, 1e-6);
  ASSERT_TRUE(out.fairness.defined());
  options.lambda_f = 0.0;
  EXPECT_FALSE(freematch_step(weak, strong, ema, options).fairness.defined());
}

TEST(FreeMatch, FairnessIsMinusTheCrossEntropyOfTheNormalisedDistributions) {
  // p~ = [0.6, 0.4], h = [0.5, 0.5] -> SumNorm(p~ / h) = [0.6, 0.4].
  // Selected strong rows: [ln 3, 0] -> [0.75, 0.25] (label 0), [0, ln 3] -> [0.25, 0.75]
  // (label 1), [ln 3, 0] -> [0.75, 0.25] (label 0); row 3 is not selected.
  //   h_bar = [2/3, 1/3], p_bar = [1.75, 1.25] / 3 = [0.583333, 0.416667]
  //   p_bar / h_bar = [0.875, 1.25] -> SumNorm = [0.411765, 0.588235]
  //   L_f = 0.6 ln 0.411765 + 0.4 ln 0.588235 = -0.744633
  const float l3 = std::log(3.0f);
  const auto strong = torch::tensor({{l3, 0.0f}, {0.0f, l3}, {l3, 0.0f}, {5.0f, -5.0f}}).set_requires_grad(true);
  const auto loss =
      freematch_fairness_loss(strong, float_tensor({1, 1, 1, 0}), float_tensor({0.6, 0.4}), float_tensor({0.5, 0.5}));
  EXPECT_NEAR(loss.item<float>(), -0.744633, 1e-5);
  loss.backward();
  // The unselected row gets no gradient; the selected ones do.
  EXPECT_TRUE(torch::equal(strong.grad()[3], torch::zeros({2})));
  EXPECT_GT(strong.grad()[0].abs().sum().item<float>(), 0.0f);
}

TEST(FreeMatch, FairnessIsZeroWithFiniteGradientWhenNothingIsSelected) {
  const auto strong = torch::tensor({{1.0f, 0.0f}, {0.0f, 2.0f}}).set_requires_grad(true);
  const auto loss =
      freematch_fairness_loss(strong, float_tensor({0, 0}), float_tensor({0.5, 0.5}), float_tensor({0.5, 0.5}));
  EXPECT_EQ(loss.item<float>(), 0.0f);
  loss.backward();
  EXPECT_TRUE(torch::equal(strong.grad(), torch::zeros({2, 2})));
}

TEST(FreeMatch, TargetsCarryNoGradientToTheWeakView) {
  auto ema = freematch_initial_ema(float_tensor({1, 1}));
  const auto weak = torch::tensor({{3.0f, 0.0f}, {0.0f, 2.0f}}).set_requires_grad(true);
  const auto strong = torch::tensor({{0.0f, 1.0f}, {1.0f, 0.0f}}).set_requires_grad(true);
  const auto out = freematch_step(weak, strong, ema, FreeMatchOptions{});
  (out.unsup + out.fairness).backward();
  EXPECT_FALSE(weak.grad().defined());
  ASSERT_TRUE(strong.grad().defined());
  EXPECT_GT(strong.grad().abs().sum().item<float>(), 0.0f);
}

// ---- in a run ----

using testing::stat_of;

class FreeMatchRun : public testing::SemiLossRun {
 protected:
  FreeMatchRun() : SemiLossRun("freematch", /*seed=*/1, /*iters_per_task=*/4) {}
};

TEST_F(FreeMatchRun, ThresholdMovesDuringATaskAndRestartsAtOneOverCWithTheNext) {
  auto method = make("ema_momentum = 0.5\n");
  begin_task(*method, 0);
  EXPECT_FLOAT_EQ(stat_of(*method, "semi.global_threshold"), 0.25);  // 4 classes, no task mask
  const auto terms = method->step(tasks_.train_batch(0, 0), at(0));
  ASSERT_EQ(terms.size(), 3u);
  EXPECT_EQ(terms[1].first, "unsup");
  EXPECT_EQ(terms[2].first, "fairness");
  EXPECT_NE(stat_of(*method, "semi.global_threshold"), 0.25);
  begin_task(*method, 1);
  EXPECT_FLOAT_EQ(stat_of(*method, "semi.global_threshold"), 0.25);
}

TEST_F(FreeMatchRun, TaskMaskCountsOnlyTheTasksClasses) {
  auto method = make("", /*task_mask=*/true);
  begin_task(*method, 0);
  EXPECT_FLOAT_EQ(stat_of(*method, "semi.global_threshold"), 0.5);  // 2 classes per task
  EXPECT_FLOAT_EQ(stat_of(*method, "semi.mean_class_threshold"), 0.5);
  // -inf logits outside the task: the terms and thresholds stay finite.
  for (const auto& [name, value] : method->step(tasks_.train_batch(0, 0), at(0)))
    EXPECT_TRUE(std::isfinite(value.item<double>())) << name;
  EXPECT_TRUE(std::isfinite(stat_of(*method, "semi.mean_class_threshold")));
}

TEST_F(FreeMatchRun, ZeroFairnessWeightDropsTheTerm) {
  auto method = make("lambda_f = 0.0\n");
  begin_task(*method, 0);
  const auto terms = method->step(tasks_.train_batch(0, 0), at(0));
  ASSERT_EQ(terms.size(), 2u);
  EXPECT_EQ(terms[1].first, "unsup");
}

TEST_F(FreeMatchRun, EmasSurviveSaveAndLoad) {
  auto method = make("ema_momentum = 0.5\n");
  begin_task(*method, 0);
  method->step(tasks_.train_batch(0, 0), at(0));
  auto restored = reloaded(*method, "ema_momentum = 0.5\n");
  begin_task(*restored, 0);  // the same task: kept
  EXPECT_DOUBLE_EQ(stat_of(*restored, "semi.global_threshold"), stat_of(*method, "semi.global_threshold"));
  EXPECT_DOUBLE_EQ(stat_of(*restored, "semi.mean_class_threshold"), stat_of(*method, "semi.mean_class_threshold"));
}

TEST_F(FreeMatchRun, RejectsBadOptions) {
  expect_rejected({"lambda_f = -0.1\n", "lambda_u = -1.0\n", "ema_momentum = 1.0\n"});
}

}  // namespace
}  // namespace sscl
