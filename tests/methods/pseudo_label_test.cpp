#include "methods/semi/pseudo_label.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/method.h"
#include "methods/semi/semi_math.h"
#include "tests/methods/semi_loss_fixture.h"

namespace sscl {
namespace {

TEST(PseudoLabelMaths, LinearWarmUpOverAFractionOfTheTask) {
  // clip(iter / (0.4 * 100), 0, 1).
  EXPECT_EQ(unsup_warmup(0, 100, 0.4), 0.0);
  EXPECT_NEAR(unsup_warmup(20, 100, 0.4), 0.5, 1e-12);
  EXPECT_NEAR(unsup_warmup(10, 100, 0.4), 0.25, 1e-12);
  EXPECT_EQ(unsup_warmup(40, 100, 0.4), 1.0);
  EXPECT_EQ(unsup_warmup(99, 100, 0.4), 1.0);
  EXPECT_EQ(unsup_warmup(0, 100, 0.0), 1.0);  // no warm-up
}

TEST(PseudoLabelMaths, ConfidentRowsTrainTheSameViewTowardsTheirArgmax) {
  // Row 0: softmax [0.97, 0.03] (>= 0.95: label 0, kept); row 1: [0.5, 0.5] (masked).
  const auto logits = torch::log(torch::tensor({{0.97, 0.03}, {0.5, 0.5}})).set_requires_grad(true);
  const auto out = pseudo_label_loss(logits, 0.95);
  EXPECT_TRUE(torch::equal(out.mask.to(torch::kDouble), torch::tensor({1.0, 0.0}, torch::kDouble)));
  EXPECT_EQ(out.pseudo_label[0].item<int64_t>(), 0);
  // Loss = CE(row 0, 0) / U = -ln 0.97 / 2.
  EXPECT_NEAR(out.loss.item<double>(), -std::log(0.97) / 2, 1e-6);
  out.loss.backward();
  // The gradient reaches the same logits as CE only (the labels are constants):
  // (softmax - onehot) / 2 = ([0.97, 0.03] - [1, 0]) / 2 for row 0, 0 for row 1.
  const auto expected = torch::tensor({{-0.015, 0.015}, {0.0, 0.0}});
  EXPECT_TRUE(torch::allclose(logits.grad().to(torch::kDouble), expected.to(torch::kDouble), 1e-5, 1e-7));
}

TEST(PseudoLabelMaths, ThresholdAtTheConfidenceKeepsTheRow) {
  // Softmax [3/4, 1/4]: kept at 0.75 (>=), dropped at 0.76.
  const auto logits = torch::tensor({{std::log(3.0), 0.0}});
  EXPECT_EQ(pseudo_label_loss(logits, 0.75).mask.item<float>(), 1.0f);
  EXPECT_EQ(pseudo_label_loss(logits, 0.76).mask.item<float>(), 0.0f);
  EXPECT_EQ(pseudo_label_loss(torch::zeros({0, 2}), 0.95).loss.item<double>(), 0.0);
}

using testing::stat_of;

class PseudoLabelRun : public testing::SemiLossRun {
 protected:
  PseudoLabelRun() : SemiLossRun("pseudo_label", /*seed=*/0, /*iters_per_task=*/10) {}

  double unsup(Method& method, const TrainBatch& batch, int64_t iter) {
    method.model()->train();
    const auto terms = method.step(batch, at(0, iter));
    EXPECT_EQ(terms.size(), 2u);
    EXPECT_EQ(terms.back().first, "unsup");
    return terms.back().second.item<double>();
  }
};

TEST_F(PseudoLabelRun, UnlabeledWeightFollowsTheWarmUp) {
  // threshold 0: every image is pseudo-labeled, so the term is never 0 by masking.
  auto method = make("threshold = 0.0\nlambda_u = 2.0\n");
  const auto batch = tasks_.train_batch(0, 0);
  EXPECT_EQ(unsup(*method, batch, 0), 0.0);  // weight 0: the unlabeled pass is skipped
  // Warm-up over 0.4 * 10 = 4 iterations: weight 2 * 2/4 = 1 at iter 2, 2 from iter 4.
  // In train mode BN uses the batch's statistics, so the same batch gives the same CE.
  const double at2 = unsup(*method, batch, 2);
  const double at4 = unsup(*method, batch, 4);
  EXPECT_GT(at2, 0.0);
  EXPECT_NEAR(at4, 2 * at2, 1e-5 * at4);
  EXPECT_NEAR(unsup(*method, batch, 9), at4, 1e-5 * at4);
}

TEST_F(PseudoLabelRun, ThresholdOneMasksEverythingAndReportsTheRate) {
  auto method = make("threshold = 1.0\n");
  EXPECT_EQ(unsup(*method, tasks_.train_batch(0, 0), 5), 0.0);
  EXPECT_EQ(stat_of(*method, "semi.mask_rate"), 0.0);
}

TEST_F(PseudoLabelRun, RejectsBadOptions) {
  expect_rejected({"threshold = -0.1\n", "unsup_warm_up = 2.0\n", "lambda_u = -1.0\n"});
}

}  // namespace
}  // namespace sscl
