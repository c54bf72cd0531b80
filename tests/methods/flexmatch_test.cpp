// FlexMatch: the learning effect with and without warm-up, the mappings, the
// class-wise masked loss, the per-image status (by training-set id, growing,
// overwriting, reset), the order "threshold, then record", and the loss in a
// short run (status filled, reset per task, saved and loaded).
#include "methods/semi/flexmatch.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/error.h"
#include "core/method.h"
#include "tests/methods/semi_loss_fixture.h"

namespace sscl {
namespace {

using testing::float_tensor;
torch::Tensor ids(std::initializer_list<int64_t> values) { return torch::tensor(std::vector<int64_t>(values)); }
torch::Tensor flags(std::initializer_list<bool> values) {
  return torch::tensor(std::vector<int64_t>(values.begin(), values.end())).to(torch::kBool);
}

TEST(FlexMatch, LearningEffectIsNormalisedByTheUnusedImagesUnderWarmup) {
  // sigma = [2, 1, 0] in a pool of 10: N_unused = 7.
  // Warm-up: beta = sigma / max(2, 7) = [2/7, 1/7, 0]; without: sigma / 2 = [1, 0.5, 0].
  const auto counts = float_tensor({2, 1, 0});
  const auto unused = torch::tensor(7.0f);
  EXPECT_TRUE(torch::allclose(flexmatch_learning_effect(counts, unused, true), float_tensor({2.f / 7, 1.f / 7, 0})));
  EXPECT_TRUE(torch::allclose(flexmatch_learning_effect(counts, unused, false), float_tensor({1, 0.5, 0})));
  // Once most of the pool was predicted (sigma = [6, 3, 0], N_unused = 1) warm-up
  // changes nothing: max(6, 1) = 6 -> [1, 0.5, 0].
  EXPECT_TRUE(torch::allclose(flexmatch_learning_effect(float_tensor({6, 3, 0}), torch::tensor(1.0f), true),
                              float_tensor({1, 0.5, 0})));
}

TEST(FlexMatch, NothingCountedGivesZeroLearningEffectNotNaN) {
  const auto zeros = float_tensor({0, 0, 0});
  EXPECT_TRUE(torch::equal(flexmatch_learning_effect(zeros, torch::tensor(10.0f), true), zeros));
  EXPECT_TRUE(torch::equal(flexmatch_learning_effect(zeros, torch::tensor(10.0f), false), zeros));
  EXPECT_TRUE(torch::equal(flexmatch_learning_effect(zeros, torch::tensor(0.0f), true), zeros));
}

TEST(FlexMatch, ConvexMappingIsXOverTwoMinusXAndLinearIsIdentity) {
  // x / (2 - x): 0 -> 0, 0.5 -> 0.5 / 1.5 = 1/3, 1 -> 1.
  const auto beta = float_tensor({0, 0.5, 1});
  EXPECT_TRUE(torch::allclose(flexmatch_mapping(beta, FlexMatchMapping::kConvex), float_tensor({0, 1.f / 3, 1})));
  EXPECT_TRUE(torch::equal(flexmatch_mapping(beta, FlexMatchMapping::kLinear), beta));
}

TEST(FlexMatch, ClasswiseThresholdsMaskEachImageByItsPredictedClass) {
  // Thresholds: class 0 -> 0.0, class 1 -> 0.9. Weak probabilities:
  //   row 0 [0.6, 0.4]:  label 0, 0.6 >= 0.0  -> kept
  //   row 1 [0.2, 0.8]:  label 1, 0.8 <  0.9  -> dropped
  //   row 2 [0.05, 0.95]: label 1, 0.95 >= 0.9 -> kept
  const auto weak = torch::log(torch::tensor({{0.6, 0.4}, {0.2, 0.8}, {0.05, 0.95}})).to(torch::kFloat);
  // Strong: row 0 uniform -> CE(label 0) = log 2; row 2 [0, ln 3] -> p(1) = 3/4 -> log(4/3).
  const auto strong = torch::tensor({{0.0f, 0.0f}, {4.0f, -4.0f}, {0.0f, std::log(3.0f)}}).set_requires_grad(true);
  const auto out = classwise_threshold_loss(weak, strong, float_tensor({0.0, 0.9}));
  EXPECT_TRUE(torch::equal(out.pseudo_label, ids({0, 1, 1})));
  EXPECT_TRUE(torch::equal(out.mask, float_tensor({1, 0, 1})));
  EXPECT_TRUE(torch::allclose(out.confidence, float_tensor({0.6, 0.8, 0.95})));
  EXPECT_NEAR(out.loss.item<double>(), (std::log(2.0) + std::log(4.0 / 3.0)) / 3.0, 1e-6);
}

TEST(FlexMatch, GradientReachesOnlyTheStrongViewOfKeptImages) {
  const auto weak = torch::tensor({{2.0f, 0.0f}, {0.0f, 0.1f}}).set_requires_grad(true);
  const auto strong = torch::tensor({{0.0f, 1.0f}, {1.0f, 0.0f}}).set_requires_grad(true);
  // Row 0: p = softmax([2, 0]) max 0.88 >= 0.8 kept; row 1 max 0.52 < 0.8 dropped.
  classwise_threshold_loss(weak, strong, float_tensor({0.8, 0.8})).loss.backward();
  EXPECT_FALSE(weak.grad().defined());
  ASSERT_TRUE(strong.grad().defined());
  // Row 0: (softmax([0, 1]) - onehot(0)) / U with U = 2.
  const double p0 = 1.0 / (1.0 + std::exp(1.0));
  EXPECT_NEAR(strong.grad()[0][0].item<double>(), (p0 - 1.0) / 2, 1e-6);
  EXPECT_NEAR(strong.grad()[0][1].item<double>(), (1.0 - p0) / 2, 1e-6);
  EXPECT_TRUE(torch::equal(strong.grad()[1], torch::zeros({2})));
}

TEST(FlexMatch, StatusCountsTheLatestConfidentPredictionPerTrainingSetId) {
  FlexMatchStatus status;
  status.reset(/*pool_size=*/5, /*num_classes=*/3, torch::kCPU);
  EXPECT_TRUE(torch::equal(status.class_counts(), float_tensor({0, 0, 0})));
  EXPECT_EQ(status.num_unused().item<float>(), 5.0f);
  // Ids are training-set ids, not 0..pool-1. Id 3 was not confident: not counted.
  status.record(ids({10, 3, 7}), ids({2, 0, 2}), flags({true, false, true}));
  EXPECT_TRUE(torch::equal(status.class_counts(), float_tensor({0, 0, 2})));
  EXPECT_EQ(status.num_unused().item<float>(), 3.0f);
  // The latest confident prediction replaces the old one (id 10: 2 -> 1).
  status.record(ids({10, 3}), ids({1, 1}), flags({true, true}));
  EXPECT_TRUE(torch::equal(status.class_counts(), float_tensor({0, 2, 1})));
  // A non-confident prediction leaves the status alone (id 10 stays 1).
  status.record(ids({10}), ids({0}), flags({false}));
  EXPECT_TRUE(torch::equal(status.class_counts(), float_tensor({0, 2, 1})));
  // A larger id grows the table and keeps what was recorded.
  status.record(ids({25}), ids({0}), flags({true}));
  EXPECT_TRUE(torch::equal(status.class_counts(), float_tensor({1, 2, 1})));
  EXPECT_EQ(status.num_unused().item<float>(), 1.0f);
  // sigma = [1, 2, 1], N_unused = 1, warm-up: beta = sigma / 2 = [0.5, 1, 0.5];
  // convex: [1/3, 1, 1/3]; times tau = 0.9: [0.3, 0.9, 0.3].
  FlexMatchOptions options;
  options.threshold = 0.9;
  EXPECT_TRUE(torch::allclose(status.class_thresholds(options), float_tensor({0.3, 0.9, 0.3})));
  // A new task forgets everything.
  status.reset(4, 3, torch::kCPU);
  EXPECT_TRUE(torch::equal(status.class_counts(), float_tensor({0, 0, 0})));
  EXPECT_EQ(status.num_unused().item<float>(), 4.0f);
  EXPECT_TRUE(torch::equal(status.class_thresholds(options), float_tensor({0, 0, 0})));
}

TEST(FlexMatch, StepThresholdsWithTheStatusBeforeTheBatchThenRecordsIt) {
  FlexMatchStatus status;
  status.reset(/*pool_size=*/4, /*num_classes=*/3, torch::kCPU);
  FlexMatchOptions options;
  options.threshold = 0.9;
  const auto strong = torch::zeros({3, 3});
  // Batch 1: nothing learnt yet, every threshold 0 -> every image kept. Confident
  // (>= 0.9): ids 0 and 2, both class 0.
  auto weak = torch::log(torch::tensor({{0.95, 0.03, 0.02}, {0.5, 0.3, 0.2}, {0.92, 0.05, 0.03}})).to(torch::kFloat);
  auto out = flexmatch_step(weak, strong, ids({0, 1, 2}), status, options);
  EXPECT_TRUE(torch::equal(out.mask, float_tensor({1, 1, 1})));
  // sigma = [2, 0, 0], N_unused = 4 - 2 = 2 -> beta = [1, 0, 0] -> thresholds [0.9, 0, 0].
  EXPECT_TRUE(torch::allclose(status.class_thresholds(options), float_tensor({0.9, 0, 0})));
  // Batch 2: class 0 is learnt (threshold 0.9), class 1 is not (threshold 0):
  // id 1 again [0.5, 0.3, 0.2] -> label 0, 0.5 < 0.9 dropped; id 3 [0.2, 0.5, 0.3] -> label 1 kept.
  weak = torch::log(torch::tensor({{0.5, 0.3, 0.2}, {0.2, 0.5, 0.3}})).to(torch::kFloat);
  out = flexmatch_step(weak, torch::zeros({2, 3}), ids({1, 3}), status, options);
  EXPECT_TRUE(torch::equal(out.mask, float_tensor({0, 1})));
  EXPECT_TRUE(torch::equal(status.class_counts(), float_tensor({2, 0, 0})));  // neither was confident
}

// ---- in a run ----

using testing::stat_of;

class FlexMatchRun : public testing::SemiLossRun {
 protected:
  FlexMatchRun() : SemiLossRun("flexmatch", /*seed=*/1, /*iters_per_task=*/4) {}
};

TEST_F(FlexMatchRun, StatusFillsDuringATaskAndStartsAfreshWithTheNext) {
  // 4 classes, no task mask: every max probability >= 1/4, so with tau = 0.25
  // every unlabeled image is confident and enters the status.
  auto method = make("threshold = 0.25\n");
  begin_task(*method, 0);
  EXPECT_DOUBLE_EQ(stat_of(*method, "semi.unused_fraction"), 1.0);
  EXPECT_DOUBLE_EQ(stat_of(*method, "semi.mean_class_threshold"), 0.0);
  const auto terms = method->step(tasks_.train_batch(0, 0), at(0));
  ASSERT_EQ(terms.size(), 2u);
  EXPECT_EQ(terms[0].first, "sup");
  EXPECT_EQ(terms[1].first, "unsup");
  const int64_t distinct = std::get<0>(at::_unique(tasks_.train_batch(0, 0).unlabeled.indices)).numel();
  const double pool = static_cast<double>(tasks_.num_unlabeled(0));
  EXPECT_NEAR(stat_of(*method, "semi.unused_fraction"), 1.0 - distinct / pool, 1e-9);
  EXPECT_GT(stat_of(*method, "semi.mean_class_threshold"), 0.0);
  EXPECT_DOUBLE_EQ(stat_of(*method, "semi.mask_rate"), 1.0);  // all thresholds were 0 on the first batch
  EXPECT_GT(stat_of(*method, "semi.status_bytes"), 0.0);

  begin_task(*method, 1);
  EXPECT_DOUBLE_EQ(stat_of(*method, "semi.unused_fraction"), 1.0);
  EXPECT_DOUBLE_EQ(stat_of(*method, "semi.mean_class_threshold"), 0.0);
}

TEST_F(FlexMatchRun, BeforeTaskOfTheCurrentTaskKeepsTheStatus) {
  auto method = make("threshold = 0.25\n");
  begin_task(*method, 0);
  method->step(tasks_.train_batch(0, 0), at(0));
  const double unused = stat_of(*method, "semi.unused_fraction");
  ASSERT_LT(unused, 1.0);
  begin_task(*method, 0);  // e.g. a run resumed inside task 0
  EXPECT_DOUBLE_EQ(stat_of(*method, "semi.unused_fraction"), unused);
}

TEST_F(FlexMatchRun, StatusSurvivesSaveAndLoad) {
  auto method = make("threshold = 0.25\n");
  begin_task(*method, 0);
  method->step(tasks_.train_batch(0, 0), at(0));
  auto restored = reloaded(*method, "threshold = 0.25\n");
  EXPECT_DOUBLE_EQ(stat_of(*restored, "semi.unused_fraction"), stat_of(*method, "semi.unused_fraction"));
  EXPECT_DOUBLE_EQ(stat_of(*restored, "semi.mean_class_threshold"), stat_of(*method, "semi.mean_class_threshold"));
  // The restored loss continues the same task: no reset at its before_task.
  begin_task(*restored, 0);
  EXPECT_DOUBLE_EQ(stat_of(*restored, "semi.unused_fraction"), stat_of(*method, "semi.unused_fraction"));
}

TEST_F(FlexMatchRun, UnderTheTaskMaskPseudoLabelsStayInTheTasksClasses) {
  auto method = make("threshold = 0.5\n", /*task_mask=*/true);  // 2 classes per task: every max p >= 0.5
  begin_task(*method, 1);
  for (const auto& [name, value] : method->step(tasks_.train_batch(1, 0), at(1)))
    EXPECT_TRUE(std::isfinite(value.item<double>())) << name;
  // Every image entered the status; had their labels fallen outside task 1's
  // classes, the thresholds of task 1's classes (the stat's mean) would still be 0.
  EXPECT_LT(stat_of(*method, "semi.unused_fraction"), 1.0);
  EXPECT_GT(stat_of(*method, "semi.mean_class_threshold"), 0.0);
}

TEST_F(FlexMatchRun, RejectsBadOptions) {
  expect_rejected({"threshold = 1.5\n", "lambda_u = -1.0\n", "mapping = \"concave\"\n"});
  EXPECT_NO_THROW(make("mapping = \"linear\"\nthresh_warmup = false\n"));
}

}  // namespace
}  // namespace sscl
