// SoftMatch: the truncated Gaussian weights, the EMA of the confidence's mean and
// variance (1/C and 1 at first), uniform distribution alignment, one full step
// (pseudo-labels from the unaligned prediction, weights from the aligned one),
// the gradient, and the loss in a short run (reset per task, save and load).
#include "methods/semi/softmatch.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/error.h"
#include "core/method.h"
#include "tests/methods/semi_loss_fixture.h"

namespace sscl {
namespace {

using testing::float_tensor;

TEST(SoftMatch, WeightsAreOneAboveTheMeanAndGaussianBelow) {
  // mu = 0.5, sigma^2 = 0.04, n_sigma = 2: 2 sigma^2 / n_sigma^2 = 0.02.
  //   0.9, 0.5 -> 1 (not below the mean)
  //   0.3 -> exp(-0.2^2 / 0.02) = exp(-2);  0.4 -> exp(-0.1^2 / 0.02) = exp(-0.5)
  const auto w = softmatch_weights(float_tensor({0.9, 0.5, 0.3, 0.4}), torch::tensor(0.5f), torch::tensor(0.04f), 2.0);
  EXPECT_TRUE(torch::allclose(w, float_tensor({1.0, 1.0, std::exp(-2.0f), std::exp(-0.5f)})));
  // A larger n_sigma narrows the Gaussian: n_sigma = 4 -> 0.005 -> 0.4 gets exp(-2).
  EXPECT_NEAR(softmatch_weights(float_tensor({0.4}), torch::tensor(0.5f), torch::tensor(0.04f), 4.0).item<float>(),
              std::exp(-2.0), 1e-6);
}

TEST(SoftMatch, StateStartsAtOneOverCAndOne) {
  auto state = softmatch_initial_state(float_tensor({1, 1, 1, 1}));
  EXPECT_FLOAT_EQ(state.mean.item<float>(), 0.25f);
  EXPECT_FLOAT_EQ(state.variance.item<float>(), 1.0f);
  EXPECT_TRUE(torch::allclose(state.p_target, float_tensor({0.25, 0.25, 0.25, 0.25})));
  EXPECT_FALSE(state.p_model.defined());
  // Task mask on classes 0 and 1 of 4: C = 2.
  state = softmatch_initial_state(float_tensor({1, 1, 0, 0}));
  EXPECT_FLOAT_EQ(state.mean.item<float>(), 0.5f);
  EXPECT_TRUE(torch::allclose(state.p_target, float_tensor({0.5, 0.5, 0, 0})));
}

TEST(SoftMatch, GaussianEmaUsesTheUnbiasedVarianceAndSkipsItForOneImage) {
  // m = 0.9 from mu = 0.25, sigma^2 = 1; conf [0.3, 0.5, 0.7]: mean 0.5,
  // unbiased variance (0.04 + 0 + 0.04) / 2 = 0.04:
  //   mu = 0.225 + 0.05 = 0.275, sigma^2 = 0.9 + 0.004 = 0.904
  auto state = softmatch_initial_state(float_tensor({1, 1, 1, 1}));
  softmatch_update_gaussian(state, float_tensor({0.3, 0.5, 0.7}), 0.9);
  EXPECT_NEAR(state.mean.item<float>(), 0.275, 1e-6);
  EXPECT_NEAR(state.variance.item<float>(), 0.904, 1e-6);
  // One image: mu = 0.9 * 0.275 + 0.1 * 0.8 = 0.3275, variance unchanged.
  softmatch_update_gaussian(state, float_tensor({0.8}), 0.9);
  EXPECT_NEAR(state.mean.item<float>(), 0.3275, 1e-6);
  EXPECT_NEAR(state.variance.item<float>(), 0.904, 1e-6);
}

TEST(SoftMatch, UniformAlignmentDividesByTheModelsMarginal) {
  // p_model = [0.8, 0.2], target [0.5, 0.5]: factors [0.625, 2.5].
  //   [0.6, 0.4] -> [0.375, 1.0] / 1.375 = [0.272727, 0.727273]
  //   [0.2, 0.8] -> [0.125, 2.0] / 2.125 = [0.058824, 0.941176]
  const auto aligned = distribution_alignment(torch::tensor({{0.6f, 0.4f}, {0.2f, 0.8f}}), float_tensor({0.8, 0.2}),
                                              float_tensor({0.5, 0.5}));
  EXPECT_TRUE(torch::allclose(aligned, torch::tensor({{0.272727f, 0.727273f}, {0.058824f, 0.941176f}}), 1e-5, 1e-6));
  // A masked class (probability 0, target 0) stays 0 and the row still sums to 1.
  const auto masked = distribution_alignment(torch::tensor({{0.6f, 0.4f, 0.0f}}), float_tensor({0.5, 0.5, 0.0}),
                                             float_tensor({0.5, 0.5, 0.0}));
  EXPECT_TRUE(torch::allclose(masked, torch::tensor({{0.6f, 0.4f, 0.0f}}), 1e-5, 1e-6));
}

TEST(SoftMatch, StepLabelsFromTheRawPredictionAndWeighsTheAlignedOne) {
  // K = 2, m = 0.5, n_sigma = 2; weak probabilities [0.9, 0.1], [0.6, 0.4], [0.3, 0.7].
  //   p_model = the first batch's mean = [0.6, 0.4]; factors 0.5 / [0.6, 0.4] = [0.8333, 1.25]
  //   aligned: [0.857143, 0.142857], [0.5, 0.5], [0.222222, 0.777778]
  //   pseudo-labels from the raw prediction: [0, 0, 1] (row 1: 0.6 > 0.4, a tie once aligned)
  //   conf = [0.857143, 0.5, 0.777778]: mean 0.711640, unbiased variance 0.035168
  //   mu = 0.25 + 0.355820 = 0.605820, sigma^2 = 0.5 + 0.017584 = 0.517584
  //   weights: [1, exp(-(0.5 - 0.605820)^2 / (2 * 0.517584 / 4)), 1] = [1, 0.957653, 1]
  //   strong logits all 0: CE = log 2 each -> loss = log 2 * (2.957653 / 3) = 0.683363
  auto state = softmatch_initial_state(float_tensor({1, 1}));
  SoftMatchOptions options;
  options.ema_momentum = 0.5;
  const auto weak = torch::log(torch::tensor({{0.9f, 0.1f}, {0.6f, 0.4f}, {0.3f, 0.7f}}));
  const auto out = softmatch_step(weak, torch::zeros({3, 2}), state, options);
  EXPECT_TRUE(torch::allclose(state.p_model, float_tensor({0.6, 0.4})));
  EXPECT_TRUE(torch::equal(out.pseudo_label, torch::tensor(std::vector<int64_t>{0, 0, 1})));
  EXPECT_NEAR(state.mean.item<float>(), 0.605820, 1e-5);
  EXPECT_NEAR(state.variance.item<float>(), 0.517584, 1e-5);
  EXPECT_TRUE(torch::allclose(out.weights, float_tensor({1.0, 0.957653, 1.0}), 1e-5, 1e-6));
  EXPECT_NEAR(out.loss.item<float>(), 0.683363, 1e-5);
  // The second batch moves p_model by the EMA: 0.5 * [0.6, 0.4] + 0.5 * [0.9, 0.1] = [0.75, 0.25].
  softmatch_step(torch::log(torch::tensor({{0.9f, 0.1f}})), torch::zeros({1, 2}), state, options);
  EXPECT_TRUE(torch::allclose(state.p_model, float_tensor({0.75, 0.25})));
}

TEST(SoftMatch, WithoutAlignmentTheRawConfidenceIsWeighed) {
  // m = 0.5, from mu = 0.5, sigma^2 = 1; conf [0.9, 0.6]: mean 0.75, variance 0.045
  //   mu = 0.625, sigma^2 = 0.5225; 0.6 -> exp(-0.025^2 / (2 * 0.5225 / 4)) = exp(-0.0023923)
  auto state = softmatch_initial_state(float_tensor({1, 1}));
  SoftMatchOptions options;
  options.ema_momentum = 0.5;
  options.dist_align = false;
  const auto out =
      softmatch_step(torch::log(torch::tensor({{0.9f, 0.1f}, {0.4f, 0.6f}})), torch::zeros({2, 2}), state, options);
  EXPECT_FALSE(state.p_model.defined());
  EXPECT_NEAR(state.mean.item<float>(), 0.625, 1e-6);
  EXPECT_NEAR(state.variance.item<float>(), 0.5225, 1e-6);
  EXPECT_TRUE(torch::allclose(out.weights, float_tensor({1.0, std::exp(-0.0023923f)}), 1e-5, 1e-7));
}

TEST(SoftMatch, TargetsCarryNoGradientToTheWeakView) {
  auto state = softmatch_initial_state(float_tensor({1, 1}));
  const auto weak = torch::tensor({{3.0f, 0.0f}, {0.0f, 2.0f}}).set_requires_grad(true);
  const auto strong = torch::tensor({{0.0f, 1.0f}, {1.0f, 0.0f}}).set_requires_grad(true);
  softmatch_step(weak, strong, state, SoftMatchOptions{}).loss.backward();
  EXPECT_FALSE(weak.grad().defined());
  ASSERT_TRUE(strong.grad().defined());
  EXPECT_GT(strong.grad().abs().sum().item<float>(), 0.0f);
}

// ---- in a run ----

using testing::stat_of;

class SoftMatchRun : public testing::SemiLossRun {
 protected:
  SoftMatchRun() : SemiLossRun("softmatch", /*seed=*/1, /*iters_per_task=*/4) {}
};

TEST_F(SoftMatchRun, GaussianMovesDuringATaskAndRestartsWithTheNext) {
  auto method = make("ema_momentum = 0.5\n");
  begin_task(*method, 0);
  EXPECT_FLOAT_EQ(stat_of(*method, "semi.gaussian_mean"), 0.25);  // 4 classes, no task mask
  EXPECT_FLOAT_EQ(stat_of(*method, "semi.gaussian_variance"), 1.0);
  const auto terms = method->step(tasks_.train_batch(0, 0), at(0));
  ASSERT_EQ(terms.size(), 2u);
  EXPECT_EQ(terms[1].first, "unsup");
  EXPECT_NE(stat_of(*method, "semi.gaussian_mean"), 0.25);
  EXPECT_LT(stat_of(*method, "semi.gaussian_variance"), 1.0);
  const double rate = stat_of(*method, "semi.mask_rate");  // the mean weight
  EXPECT_GT(rate, 0.0);
  EXPECT_LE(rate, 1.0);
  begin_task(*method, 1);
  EXPECT_FLOAT_EQ(stat_of(*method, "semi.gaussian_mean"), 0.25);
  EXPECT_FLOAT_EQ(stat_of(*method, "semi.gaussian_variance"), 1.0);
}

TEST_F(SoftMatchRun, TaskMaskCountsOnlyTheTasksClasses) {
  auto method = make("", /*task_mask=*/true);
  begin_task(*method, 1);
  EXPECT_FLOAT_EQ(stat_of(*method, "semi.gaussian_mean"), 0.5);  // 2 classes per task
  // -inf logits outside the task: the term and the Gaussian stay finite.
  for (const auto& [name, value] : method->step(tasks_.train_batch(1, 0), at(1)))
    EXPECT_TRUE(std::isfinite(value.item<double>())) << name;
  EXPECT_TRUE(std::isfinite(stat_of(*method, "semi.gaussian_variance")));
}

TEST_F(SoftMatchRun, StateSurvivesSaveAndLoad) {
  auto method = make("ema_momentum = 0.5\n");
  begin_task(*method, 0);
  method->step(tasks_.train_batch(0, 0), at(0));
  auto restored = reloaded(*method, "ema_momentum = 0.5\n");
  begin_task(*restored, 0);  // the same task: kept
  EXPECT_DOUBLE_EQ(stat_of(*restored, "semi.gaussian_mean"), stat_of(*method, "semi.gaussian_mean"));
  EXPECT_DOUBLE_EQ(stat_of(*restored, "semi.gaussian_variance"), stat_of(*method, "semi.gaussian_variance"));
  // Both continue identically (they share the model): the same batch, the same state.
  method->step(tasks_.train_batch(0, 1), at(0));
  restored->step(tasks_.train_batch(0, 1), at(0));
  EXPECT_DOUBLE_EQ(stat_of(*restored, "semi.gaussian_mean"), stat_of(*method, "semi.gaussian_mean"));
}

TEST_F(SoftMatchRun, RejectsBadOptions) {
  expect_rejected({"n_sigma = 0.0\n", "lambda_u = -1.0\n", "ema_momentum = -0.1\n"});
}

}  // namespace
}  // namespace sscl
