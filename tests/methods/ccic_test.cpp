// CCIC: its losses on hand-computed tensors (batch-hard and negative-only
// triplets, label guessing, the consistency term, row-wise mixup, the evaluation
// k-NN) and its behaviour on the synthetic two-task run (buffer, terms, the
// contrast phase, k-NN evaluation, checkpoints, option checks).
#include "methods/semi/ccic.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"
#include "tests/methods/semi_loss_fixture.h"

namespace sscl {
namespace {

// Three 1-D features 0, 1, 3 with labels 0, 0, 1. Squared distances:
// d(0,1) = 1, d(0,2) = 9, d(1,2) = 4.
const auto kLabels = [] { return torch::tensor({0, 0, 1}, torch::kLong); };
const auto kPoints = [] { return torch::tensor({{0.0}, {1.0}, {3.0}}); };

TEST(Ccic, PairwiseSquaredDistances) {
  const auto d = pairwise_squared_distances(kPoints());
  EXPECT_TRUE(torch::allclose(d, torch::tensor({{0.0, 1.0, 9.0}, {1.0, 0.0, 4.0}, {9.0, 4.0, 0.0}})));
}

TEST(Ccic, BatchHardTripletPairsTheFarthestPositiveWithTheNearestNegative) {
  // k = 1, margin 5: anchor 0: 1 - 9 + 5 < 0 -> 0; anchor 1: 1 - 4 + 5 = 2;
  // anchor 2 (only itself as positive, d = 0): 0 - 4 + 5 = 1. Mean 3 / 3 = 1.
  EXPECT_NEAR(batch_hard_triplet_loss(kLabels(), kPoints(), 1, 5.0).item<double>(), 1.0, 1e-6);
  // k = 2: anchor 0 pairs (1, 9) and (0, inf: dropped); anchor 1 (1, 4) and (0, inf:
  // dropped); anchor 2 (0, 4) and (0, 9). Kept: -3 -> 0, 2, 1, -4 -> 0: mean 3 / 4.
  EXPECT_NEAR(batch_hard_triplet_loss(kLabels(), kPoints(), 2, 5.0).item<double>(), 0.75, 1e-6);
  // With margin 1 every kept pair is already satisfied.
  EXPECT_EQ(batch_hard_triplet_loss(kLabels(), kPoints(), 1, 1.0).item<double>(), 0.0);
}

TEST(Ccic, BatchHardTripletPullsPositivesAndPushesNegatives) {
  // k = 1, margin 5: L = [(f1 - f0)^2 - (f1 - f2)^2 + 5 + (-(f2 - f1)^2 + 5)] / 3.
  // dL/df0 = -2(f1 - f0) / 3 = -2/3; dL/df1 = [2(f1 - f0) - 2(f1 - f2) + 2(f2 - f1)] / 3
  // = (2 + 4 + 4) / 3 = 10/3; dL/df2 = [2(f1 - f2) - 2(f2 - f1)] / 3 = -8/3.
  const auto f = kPoints().set_requires_grad(true);
  batch_hard_triplet_loss(kLabels(), f, 1, 5.0).backward();
  EXPECT_NEAR(f.grad()[0][0].item<double>(), -2.0 / 3.0, 1e-5);
  EXPECT_NEAR(f.grad()[1][0].item<double>(), 10.0 / 3.0, 1e-5);
  EXPECT_NEAR(f.grad()[2][0].item<double>(), -8.0 / 3.0, 1e-5);
}

TEST(Ccic, BatchHardTripletWithoutNegativesIsZeroAndAttached) {
  const auto f = torch::tensor({{0.0}, {2.0}}).set_requires_grad(true);
  const auto loss = batch_hard_triplet_loss(torch::tensor({3, 3}, torch::kLong), f, 1, 1.0);
  EXPECT_EQ(loss.item<double>(), 0.0);
  EXPECT_TRUE(loss.requires_grad());
}

TEST(Ccic, NegativeOnlyTripletPushesTheNearestNegativesBeyondTheMargin) {
  // k = 1, margin 5: nearest negatives 9, 4, 4 -> max(0, 5 - d) = 0, 1, 1: mean 2/3.
  EXPECT_NEAR(negative_only_triplet_loss(kLabels(), kPoints(), 1, 5.0).item<double>(), 2.0 / 3.0, 1e-6);
  // k = 2: pairs 9, 4, (4, 9); anchors 0 and 1 have one negative only: 0, 1, 1, 0 -> 1/2.
  EXPECT_NEAR(negative_only_triplet_loss(kLabels(), kPoints(), 2, 5.0).item<double>(), 0.5, 1e-6);
  // One label only: nothing to separate.
  EXPECT_EQ(negative_only_triplet_loss(torch::zeros({3}, torch::kLong), kPoints(), 1, 5.0).item<double>(), 0.0);
}

TEST(Ccic, GuessAveragesSoftmaxOverViewsThenSharpens) {
  // View 0 logits [0, 0] -> [1/2, 1/2]; view 1 [ln 3, 0] -> [3/4, 1/4]; mean [5/8, 3/8];
  // T = 0.5 squares: [25, 9] / 64 -> [25/34, 9/34].
  const auto logits = torch::tensor({0.0, 0.0, std::log(3.0), 0.0}).view({2, 1, 2});
  const auto q = guess_targets(logits, 0.5);
  EXPECT_NEAR(q[0][0].item<double>(), 25.0 / 34.0, 1e-6);
  EXPECT_NEAR(q[0][1].item<double>(), 9.0 / 34.0, 1e-6);
  // A task-masked (-inf) class gets no mass and no NaN.
  const float inf = std::numeric_limits<float>::infinity();
  const auto masked = guess_targets(torch::tensor({0.0f, 1.0f, -inf}).view({1, 1, 3}), 0.5);
  EXPECT_EQ(masked[0][2].item<double>(), 0.0);
  EXPECT_FALSE(masked.isnan().any().item<bool>());
}

TEST(Ccic, ConsistencyIsTheMeanSquaredErrorOverTheColumnsDividedByTheirCount) {
  // Differences [0.5, -0.5, 2]: mean of squares 4.5 / 3 = 1.5, / 3 classes = 0.5.
  const auto logits = torch::tensor({{1.0, 0.0, 2.0}});
  const auto targets = torch::tensor({{0.5, 0.5, 0.0}});
  EXPECT_NEAR(consistency_loss(logits, targets, torch::arange(3)).item<double>(), 0.5, 1e-6);
  // Columns {0, 1} only (a task mask): 0.5 / 2 = 0.25 mean, / 2 = 0.125.
  EXPECT_NEAR(consistency_loss(logits, targets, torch::tensor({0, 1}, torch::kLong)).item<double>(), 0.125, 1e-6);
  EXPECT_EQ(consistency_loss(torch::zeros({0, 3}), torch::zeros({0, 3}), torch::arange(3)).item<double>(), 0.0);
}

TEST(Ccic, MixRowsUsesEachRowsOwnLambda) {
  const auto a = torch::tensor({{1.0, 1.0}, {2.0, 2.0}});
  const auto b = torch::tensor({{3.0, 3.0}, {4.0, 4.0}});
  // Row 0: lambda 1 keeps a; row 1: 0.5 * 2 + 0.5 * 4 = 3.
  EXPECT_TRUE(torch::allclose(mix_rows(a, b, torch::tensor({1.0f, 0.5f})), torch::tensor({{1.0, 1.0}, {3.0, 3.0}})));
}

TEST(Ccic, KnnVotesAmongTheNearestMemoryRowsWithTheNearestDistanceAsTieBreak) {
  // Memory: [1, 0] class 0, [0.8, 0.6] and [0, 1] class 1 (unit vectors). Query
  // [2, 0] normalises to [1, 0]: squared distances 0, 0.4, 2.
  const auto memory = torch::tensor({{1.0, 0.0}, {0.8, 0.6}, {0.0, 1.0}});
  const auto labels = torch::tensor({0, 1, 1}, torch::kLong);
  const auto query = torch::tensor({{2.0, 0.0}});
  // k = 1: class 0 has 1 vote - 1e-5 * 0; class 1 0 votes - 1e-5 * 0.4; class 2 none: -1.
  const auto one = knn_scores(query, memory, labels, 3, 1);
  EXPECT_NEAR(one[0][0].item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(one[0][1].item<double>(), -4e-6, 1e-7);
  EXPECT_EQ(one[0][2].item<double>(), -1.0);
  // k = 3: class 1 has 2 votes and wins.
  const auto three = knn_scores(query, memory, labels, 3, 3);
  EXPECT_EQ(three.argmax(1).item<int64_t>(), 1);
  EXPECT_NEAR(three[0][1].item<double>(), 2.0 - 4e-6, 1e-6);
  // k beyond the memory is clamped to its size.
  EXPECT_EQ(knn_scores(query, memory, labels, 3, 10).argmax(1).item<int64_t>(), 1);
}

using testing::stat_of;
using testing::term_of;

class CcicRun : public testing::MethodRunFixture {
 protected:
  CcicRun() : MethodRunFixture(/*labels_per_class=*/3, /*seed=*/11) {}

  std::unique_ptr<Method> make(const std::string& options = "") {
    const std::string buffer = options.find("buffer_size") == std::string::npos ? "buffer_size = 50\n" : "";
    config_ = Config::from_string("[method]\n" + buffer + options + "\n[model]\n", "ccic_test.toml");
    auto method = MethodRegistry::get().at("ccic")(config_.section("method"));
    method->attach(context_);
    return method;
  }
  static RunState at(int task, int64_t iter, int64_t iters_per_task = 10) {
    RunState state;
    state.task = task;
    state.iter = iter;
    state.iters_per_task = iters_per_task;
    return state;
  }
  // A fresh model with the weights and BatchNorm statistics of `source`.
  Classifier copy_of(Classifier& source) {
    Classifier copy(backbone(), tasks_.num_classes());
    torch::NoGradGuard no_grad;
    auto params = copy->named_parameters();
    for (const auto& p : source->named_parameters()) params[p.key()].copy_(p.value());
    auto buffers = copy->named_buffers();
    for (const auto& b : source->named_buffers()) buffers[b.key()].copy_(b.value());
    return copy;
  }
  LossTerms step(Method& method, int task, int64_t iter, int64_t iters_per_task = 10) {
    method.model()->train();
    return method.step(tasks_.train_batch(task, iter), at(task, iter, iters_per_task));
  }
};

TEST_F(CcicRun, StepReturnsTheNamedTermsFillsTheBufferAndLeavesTrainMode) {
  auto ccic = make();
  EXPECT_TRUE(ccic->uses_unlabeled());
  const auto first = step(*ccic, 0, 0);
  std::vector<std::string> names;
  for (const auto& t : first) names.push_back(t.first);
  EXPECT_EQ(names, (std::vector<std::string>{"sup", "replay", "unsup", "triplet", "memory_contrast"}));
  EXPECT_EQ(term_of(first, "replay"), 0.0);           // nothing stored yet
  EXPECT_EQ(term_of(first, "memory_contrast"), 0.0);  // no earlier task
  EXPECT_GT(term_of(first, "sup"), 0.0);
  EXPECT_GT(term_of(first, "unsup"), 0.0);
  EXPECT_TRUE(ccic->model()->is_training());  // the eval-mode guess restores train mode
  EXPECT_EQ(stat_of(*ccic, "buffer_entries"), 4.0);
  const auto second = step(*ccic, 0, 1);
  EXPECT_GT(term_of(second, "replay"), 0.0);
  EXPECT_EQ(stat_of(*ccic, "buffer_entries"), 8.0);
  EXPECT_GT(stat_of(*ccic, "buffer_bytes"), 0.0);
  EXPECT_EQ(stat_of(*ccic, "buffer_size"), 50.0);
  EXPECT_GT(stat_of(*ccic, "knn_feature_bytes"), 0.0);
}

TEST_F(CcicRun, StepsAreReproducibleFromTheSeed) {
  auto a = make();
  context_.model = copy_of(context_.model);
  auto b = make();
  // Identical models: the same (task, iter) gives the same draws and terms.
  const auto ta = step(*a, 0, 0);
  const auto tb = step(*b, 0, 0);
  for (size_t i = 0; i < ta.size(); ++i) EXPECT_DOUBLE_EQ(ta[i].second.item<double>(), tb[i].second.item<double>());
}

TEST_F(CcicRun, MemoryContrastOnlyInTheContrastPhaseOfLaterTasks) {
  // A huge margin makes every cross-group pair violate it, so the term is > 0 whenever applied.
  auto ccic = make("triplet_margin = 1e6");
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(term_of(step(*ccic, 0, i), "memory_contrast"), 0.0);
  EXPECT_GT(term_of(step(*ccic, 1, 0), "memory_contrast"), 0.0);  // iteration 0 < 0.9 * 10
  EXPECT_GT(term_of(step(*ccic, 1, 8), "memory_contrast"), 0.0);
  EXPECT_EQ(term_of(step(*ccic, 1, 9), "memory_contrast"), 0.0);  // the last 10% of the task
  auto never = make("triplet_margin = 1e6\ncontrast_fraction = 0.0");
  step(*never, 0, 0);
  EXPECT_EQ(term_of(step(*never, 1, 0), "memory_contrast"), 0.0);
}

TEST_F(CcicRun, KnnEvaluationRecognisesEveryBufferedImage) {
  auto ccic = make("knn_k = 1");
  for (int64_t i = 0; i < 6; ++i) step(*ccic, 0, i);
  // The buffer's entries, as a checkpoint holds them.
  auto in = testing::state_archive(testing::method_state_bytes(*ccic));
  at::Tensor ids, labels, size_field;
  in.read("method.buffer.ids", ids);
  in.read("method.buffer.labels", labels);
  in.read("method.buffer.size", size_field);
  const int64_t size = size_field.item<int64_t>();
  ASSERT_GT(size, 0);
  ids = ids.narrow(0, 0, size);
  labels = labels.narrow(0, 0, size);
  ccic->model()->eval();
  torch::NoGradGuard no_grad;
  const auto images = tasks_.views(tasks_.raw_images(ids), View::kPlain, 0);
  // An image's nearest memory row is itself (distance 0): the k-NN returns its label.
  EXPECT_TRUE(torch::equal(ccic->predict(images).argmax(1), labels));
  // The linear head of the barely trained model does not.
  auto head = make("knn_eval = false");
  EXPECT_TRUE(torch::allclose(head->predict(images), ccic->model()->forward(images)));
}

TEST_F(CcicRun, SaveAndLoadRestoreTheBufferAndThePastBoundary) {
  auto ccic = make();
  for (int64_t i = 0; i < 3; ++i) step(*ccic, 0, i);
  step(*ccic, 1, 0);
  const std::string bytes = testing::method_state_bytes(*ccic);
  context_.model = copy_of(ccic->model());  // the restored run's own model, as a checkpoint would load it
  auto restored = make();
  testing::load_method_state(*restored, bytes);
  EXPECT_EQ(stat_of(*restored, "buffer_entries"), stat_of(*ccic, "buffer_entries"));
  // The next step draws the same replay and past entries: identical terms.
  const auto a = step(*ccic, 1, 1);
  const auto b = step(*restored, 1, 1);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_DOUBLE_EQ(a[i].second.item<double>(), b[i].second.item<double>());
  ccic->model()->eval();
  restored->model()->eval();
  const auto images = tasks_.eval_batch(0, 0, 8).images;
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(restored->predict(images), ccic->predict(images)));
}

TEST_F(CcicRun, RejectsInvalidOptions) {
  EXPECT_THROW(make("k_aug = 0"), ConfigError);
  EXPECT_THROW(make("sharp_temp = 0.0"), ConfigError);
  EXPECT_THROW(make("contrast_fraction = 1.5"), ConfigError);
  EXPECT_THROW(make("knn_k = 0"), ConfigError);
  EXPECT_THROW(make("buffer_size = 0"), ConfigError);
}

}  // namespace
}  // namespace sscl
