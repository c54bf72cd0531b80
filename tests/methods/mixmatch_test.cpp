#include "methods/semi/mixmatch.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "core/method.h"
#include "core/random.h"
#include "methods/semi/semi_math.h"
#include "tests/methods/semi_loss_fixture.h"

namespace sscl {
namespace {

const double kMixMatchInf = std::numeric_limits<double>::infinity();

TEST(MixMatchMaths, GuessIsTheSharpenedMeanOfTheViewsSoftmaxes) {
  // Views: [0.6, 0.4] and [0.8, 0.2] -> mean [0.7, 0.3] -> T = 0.5: [0.49, 0.09] / 0.58.
  const auto v1 = torch::log(torch::tensor({{0.6, 0.4}})).set_requires_grad(true);
  const auto v2 = torch::log(torch::tensor({{0.8, 0.2}}));
  const auto guess = guess_labels({v1, v2}, 0.5);
  EXPECT_FALSE(guess.requires_grad());  // a target: no gradient back into the guessing pass
  EXPECT_NEAR(guess[0][0].item<double>(), 0.49 / 0.58, 1e-6);
  EXPECT_NEAR(guess[0][1].item<double>(), 0.09 / 0.58, 1e-6);
}

TEST(MixMatchMaths, GuessUnderTheTaskMaskIsZeroOutsideTheTask) {
  // Class 1 masked. [0, -inf, 0] -> [1/2, 0, 1/2]; [ln 3, -inf, 0] -> [3/4, 0, 1/4];
  // mean [5/8, 0, 3/8]; squared [25/64, 0, 9/64] / (34/64) = [25/34, 0, 9/34].
  const auto v1 = torch::tensor({{0.0, -kMixMatchInf, 0.0}});
  const auto v2 = torch::tensor({{std::log(3.0), -kMixMatchInf, 0.0}});
  const auto guess = guess_labels({v1, v2}, 0.5);
  EXPECT_NEAR(guess[0][0].item<double>(), 25.0 / 34, 1e-6);
  EXPECT_EQ(guess[0][1].item<double>(), 0.0);
  EXPECT_NEAR(guess[0][2].item<double>(), 9.0 / 34, 1e-6);
}

TEST(MixMatchMaths, MixUpPairsEachRowWithItsShuffledPartner) {
  // permutation [2, 0, 1], lambda 0.75: x' = 0.75 [1, 2, 3] + 0.25 [3, 1, 2] = [1.5, 1.75, 2.75];
  // targets: row 0 = 0.75 e0 + 0.25 e2, row 1 = 0.75 e1 + 0.25 e0, row 2 = 0.75 e2 + 0.25 e1.
  const auto inputs = torch::tensor({1.0, 2.0, 3.0}).view({3, 1});
  const auto targets = torch::eye(3);
  const auto mixed = mixmatch_mixup(inputs, targets, torch::tensor({2, 0, 1}), 0.75);
  EXPECT_TRUE(torch::allclose(mixed.inputs.view({3}), torch::tensor({1.5, 1.75, 2.75})));
  const auto expected = torch::tensor({{0.75, 0.0, 0.25}, {0.25, 0.75, 0.0}, {0.0, 0.25, 0.75}});
  EXPECT_TRUE(torch::allclose(mixed.targets, expected));
}

TEST(MixMatchMaths, MixingCoefficientIsAtLeastOneHalf) {
  Rng rng(7);
  for (int i = 0; i < 200; ++i) {
    const double lambda = mixmatch_lambda(0.5, rng);
    EXPECT_GE(lambda, 0.5);
    EXPECT_LE(lambda, 1.0);
  }
}

TEST(MixMatchMaths, LabeledSoftCrossEntropyAndUnlabeledMse) {
  // Row 0 labeled: softmax [0, ln 3] = [1/4, 3/4], target [1/2, 1/2]:
  //   L_x = -(1/2 ln 1/4 + 1/2 ln 3/4) = 0.836988.
  // Row 1: softmax [1/2, 1/2] vs [1, 0]: (1/4 + 1/4) / 2 = 1/4. Row 2: [3/4, 1/4] vs itself: 0.
  //   L_u = (1/4 + 0) / 2 = 1/8.
  const auto logits = torch::tensor({{0.0, std::log(3.0)}, {0.0, 0.0}, {std::log(3.0), 0.0}}).set_requires_grad(true);
  const auto targets = torch::tensor({{0.5, 0.5}, {1.0, 0.0}, {0.75, 0.25}});
  const auto losses = mixmatch_losses(logits, targets, 1, 2);
  EXPECT_NEAR(losses.labeled.item<double>(), -(0.5 * std::log(0.25) + 0.5 * std::log(0.75)), 1e-6);
  EXPECT_NEAR(losses.unlabeled.item<double>(), 0.125, 1e-6);
  // d L_x / d row 0 = softmax - target = [-1/4, 1/4]; L_x does not touch rows 1 and 2.
  losses.labeled.backward();
  EXPECT_TRUE(torch::allclose(logits.grad(), torch::tensor({{-0.25, 0.25}, {0.0, 0.0}, {0.0, 0.0}}), 1e-5, 1e-7));
}

TEST(MixMatchMaths, MaskedLogitsStayFiniteAndNoUnlabeledRowsGiveZero) {
  // Class 1 masked, target 0 there: L_x = -(1/2 ln 1/4 + 1/2 ln 3/4) as above.
  const auto logits = torch::tensor({{0.0, -kMixMatchInf, std::log(3.0)}}).set_requires_grad(true);
  const auto losses = mixmatch_losses(logits, torch::tensor({{0.5, 0.0, 0.5}}), 1, 2);
  EXPECT_NEAR(losses.labeled.item<double>(), -(0.5 * std::log(0.25) + 0.5 * std::log(0.75)), 1e-6);
  EXPECT_EQ(losses.unlabeled.item<double>(), 0.0);
  losses.labeled.backward();
  EXPECT_TRUE(torch::isfinite(logits.grad()).all().item<bool>());
}

// ---------------------------------------------------------------------------
// The loss composed with SFT on synthetic data (small CNN with BatchNorm).

class MixMatchRun : public testing::SemiLossRun {
 protected:
  MixMatchRun() : SemiLossRun("mixmatch", /*seed=*/11, /*iters_per_task=*/10) {}

  // SFT + MixMatch composed by hand; `loss` points at the loss so the test can call forward().
  std::unique_ptr<Method> make_holding(const std::string& options, SemiLoss** loss) {
    auto config = Config::from_string("[method]\n" + options, "method.toml");
    auto method = MethodRegistry::get().at("sft")(config.section("method"));
    auto semi = SemiLossRegistry::get().at("mixmatch")(config.section("method"));
    *loss = semi.get();
    method->set_semi(std::move(semi));
    return attached(std::move(method));
  }
  int64_t batches_tracked(Method& method) {
    for (const auto& item : method.model()->named_buffers())
      if (item.key().find("num_batches_tracked") != std::string::npos) return item.value().item<int64_t>();
    ADD_FAILURE() << "no BatchNorm in the model";
    return -1;
  }
};

TEST_F(MixMatchRun, OutputsDetachedLabeledLogitsAndUnmixedExtraLogitsWithGradient) {
  SemiLoss* loss = nullptr;
  auto method = make_holding("concat_forward = false\n", &loss);
  method->model()->train();
  const auto batch = tasks_.train_batch(0, 3);
  const auto extra = tasks_.train_batch(0, 7).labeled.images;
  const auto out = loss->forward(batch, extra, cross_entropy_loss, at(0, 3));
  EXPECT_FALSE(out.labeled_logits.requires_grad());
  EXPECT_EQ(out.labeled_logits.size(0), batch.labeled.images.size(0));
  ASSERT_TRUE(out.extra_logits.requires_grad());
  // Separate passes: the extra images went through the model alone and unmixed.
  EXPECT_TRUE(torch::allclose(out.extra_logits, method->model()->forward(extra), 1e-5, 1e-6));
  ASSERT_EQ(out.terms.size(), 2u);
  EXPECT_EQ(out.terms[0].first, "sup");
  EXPECT_EQ(out.terms[1].first, "unsup");
  for (const auto& [name, value] : out.terms) EXPECT_TRUE(std::isfinite(value.item<double>())) << name;
  EXPECT_FALSE(loss->keeps_supervised_loss());
}

TEST_F(MixMatchRun, OnlyTheTrainingPassMovesBatchNormStatistics) {
  SemiLoss* loss = nullptr;
  auto method = make_holding("", &loss);
  method->model()->train();
  const auto batch = tasks_.train_batch(0, 3);
  const int64_t before = batches_tracked(*method);
  loss->forward(batch, tasks_.train_batch(0, 7).labeled.images, cross_entropy_loss, at(0, 3));
  // One concatenated pass over [mixed, extra]; the label-guessing pass is undone.
  EXPECT_EQ(batches_tracked(*method), before + 1);
}

TEST_F(MixMatchRun, SameTaskAndIterationGiveTheSameLossesAndRampStartsAtZero) {
  auto method = make("k_aug = 3\n");
  method->model()->train();
  const auto batch = tasks_.train_batch(0, 3);
  const auto a = method->step(batch, at(0, 3));
  const auto b = method->step(batch, at(0, 3));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].second.item<double>(), b[i].second.item<double>());
  EXPECT_GT(a[1].second.item<double>(), 0.0);
  EXPECT_EQ(method->step(batch, at(0, 0))[1].second.item<double>(), 0.0);  // lambda_u ramp: 0 at iteration 0
}

TEST_F(MixMatchRun, TaskMaskKeepsEveryTermFinite) {
  auto method = make("", /*task_mask=*/true);
  method->model()->train();
  const RunState state = at(1, 5);
  for (int64_t iter = 0; iter < 3; ++iter)
    for (const auto& [name, value] : method->step(tasks_.train_batch(1, iter), state))
      EXPECT_TRUE(std::isfinite(value.item<double>())) << name;
}

TEST_F(MixMatchRun, RejectsBadOptions) {
  expect_rejected({"k_aug = 0\n", "mixup_alpha = 0.0\n", "temperature = -1.0\n"});
}

}  // namespace
}  // namespace sscl
