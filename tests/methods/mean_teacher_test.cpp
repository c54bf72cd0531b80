#include "methods/semi/mean_teacher.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "core/method.h"
#include "methods/semi/semi_math.h"
#include "tests/methods/semi_loss_fixture.h"

namespace sscl {
namespace {

const double kMeanTeacherInf = std::numeric_limits<double>::infinity();

TEST(MeanTeacherMaths, SoftmaxMseIsTheMeanSquaredGapOverTheClassesInPlay) {
  // Row 0: softmax [0, ln 3] = [1/4, 3/4] vs [1, 0]: (9/16 + 9/16) / 2 = 0.5625.
  // Row 1: softmax [0, 0] = [1/2, 1/2] vs [1/2, 1/2]: 0.
  const auto logits = torch::tensor({{0.0, std::log(3.0)}, {0.0, 0.0}});
  const auto targets = torch::tensor({{1.0, 0.0}, {0.5, 0.5}});
  const auto mse = softmax_mse(logits, targets, 2);
  EXPECT_NEAR(mse[0].item<double>(), 0.5625, 1e-6);
  EXPECT_NEAR(mse[1].item<double>(), 0.0, 1e-7);
}

TEST(MeanTeacherMaths, MaskedClassesAddNothingAndCountOnlyTheTasksClasses) {
  // Class 1 masked: softmax [ln 3, -inf, 0] = [3/4, 0, 1/4] vs [1/2, 0, 1/2]:
  // (1/16 + 0 + 1/16) / C with C = 2 classes in play = 0.0625.
  const auto logits = torch::tensor({{std::log(3.0), -kMeanTeacherInf, 0.0}}).set_requires_grad(true);
  const auto mse = softmax_mse(logits, torch::tensor({{0.5, 0.0, 0.5}}), 2);
  EXPECT_NEAR(mse.item<double>(), 0.0625, 1e-6);
  mse.sum().backward();
  EXPECT_TRUE(torch::isfinite(logits.grad()).all().item<bool>());
  EXPECT_EQ(logits.grad()[0][1].item<double>(), 0.0);
}

TEST(MeanTeacherMaths, EmaDecayWarmsUpThenCaps) {
  // min(1 - 1/(n + 1), 0.999): n = 1 -> 1/2, n = 9 -> 0.9, n = 10000 -> 0.999.
  EXPECT_NEAR(ema_decay_at(1, 0.999), 0.5, 1e-12);
  EXPECT_NEAR(ema_decay_at(9, 0.999), 0.9, 1e-12);
  EXPECT_NEAR(ema_decay_at(10000, 0.999), 0.999, 1e-12);
}

TEST(MeanTeacherMaths, EmaUpdateMovesTheTeacherTowardsTheStudent) {
  // 0.75 * [1, 2] + 0.25 * [3, 6] = [1.5, 3].
  auto teacher = torch::tensor({1.0, 2.0});
  const auto student = torch::tensor({3.0, 6.0}).set_requires_grad(true);
  ema_update({teacher}, {student}, 0.75);
  EXPECT_TRUE(torch::allclose(teacher, torch::tensor({1.5, 3.0})));
  EXPECT_FALSE(teacher.requires_grad());
}

TEST(MeanTeacherMaths, RampUps) {
  // Linear: 20 / (0.4 * 100) = 0.5. Sigmoid (the paper's): exp(-5 (1 - 0.5)^2) = exp(-1.25).
  EXPECT_NEAR(mean_teacher_ramp(RampUp::kLinear, 20, 100, 0.4), 0.5, 1e-12);
  EXPECT_NEAR(mean_teacher_ramp(RampUp::kSigmoid, 20, 100, 0.4), std::exp(-1.25), 1e-12);
  EXPECT_NEAR(mean_teacher_ramp(RampUp::kSigmoid, 0, 100, 0.4), std::exp(-5.0), 1e-12);
  EXPECT_EQ(mean_teacher_ramp(RampUp::kLinear, 0, 100, 0.4), 0.0);
  EXPECT_EQ(mean_teacher_ramp(RampUp::kSigmoid, 50, 100, 0.4), 1.0);
}

// ---------------------------------------------------------------------------
// The loss composed with SFT on two synthetic tasks, small CNN with BatchNorm.

using testing::stat_of;

class MeanTeacherRun : public testing::SemiLossRun {
 protected:
  MeanTeacherRun() : SemiLossRun("mean_teacher", /*seed=*/0, /*iters_per_task=*/10) {}

  static const MeanTeacherLoss& loss_of(const Method& method) {
    return dynamic_cast<const MeanTeacherLoss&>(*method.semi());
  }
  // One training step as the trainer does it: losses, backward, SGD step, after_iter.
  LossTerms train_step(Method& method, const TrainBatch& batch, int64_t iter, double lr = 0.1) {
    method.model()->train();
    const auto terms = method.step(batch, at(0, iter));
    torch::Tensor total = terms.front().second;
    for (size_t i = 1; i < terms.size(); ++i) total = total + terms[i].second;
    for (auto& p : method.model()->parameters()) p.mutable_grad() = torch::Tensor();
    total.backward();
    {
      torch::NoGradGuard no_grad;
      for (auto& p : method.model()->parameters())
        if (p.grad().defined()) p.sub_(lr * p.grad());
    }
    for (Hook* hook : method.lifecycle_hooks()) hook->after_iter(at(0, iter));
    return terms;
  }
};

TEST_F(MeanTeacherRun, TeacherStartsAsAFrozenCopyAndFollowsTheEmaOfTheStudent) {
  auto method = make();
  begin_task(*method, 0);
  const auto& teacher = loss_of(*method).teacher();
  ASSERT_TRUE(teacher);
  std::vector<torch::Tensor> before;
  for (const auto& p : teacher->parameters()) {
    EXPECT_FALSE(p.requires_grad());
    before.push_back(p.clone());
  }
  const auto student_before = method->model()->parameters();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(before[i], student_before[i]));

  train_step(*method, tasks_.train_batch(0, 0), 5);
  // First update: decay min(1 - 1/2, 0.999) = 1/2, so teacher = (old + student) / 2.
  const auto teacher_params = teacher->parameters();
  const auto student = method->model()->parameters();
  bool moved = false;
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_FALSE(teacher_params[i].grad().defined());  // no gradient ever reaches the teacher
    EXPECT_TRUE(torch::allclose(teacher_params[i], 0.5 * before[i] + 0.5 * student[i], 1e-6, 1e-7));
    moved = moved || !torch::equal(teacher_params[i], before[i]);
  }
  EXPECT_TRUE(moved);
  // BN running statistics: the student's, copied.
  const auto teacher_buffers = teacher->buffers();
  const auto student_buffers = method->model()->buffers();
  ASSERT_FALSE(teacher_buffers.empty());
  for (size_t i = 0; i < teacher_buffers.size(); ++i) EXPECT_TRUE(torch::equal(teacher_buffers[i], student_buffers[i]));
  EXPECT_EQ(loss_of(*method).updates(), 1);
}

TEST_F(MeanTeacherRun, ConsistencyIsZeroWhenStudentAndTeacherAgreeAndGrowsWhenTheyDiffer) {
  // Separate passes, so the student's BN sees the unlabeled images alone, as the
  // teacher's does; strong view := weak view, so both get the same input.
  auto method = make("concat_forward = false\n");
  begin_task(*method, 0);
  auto batch = tasks_.train_batch(0, 0);
  batch.unlabeled.strong = batch.unlabeled.weak.clone();
  method->model()->train();
  const auto terms = method->step(batch, at(0, 5));
  EXPECT_EQ(terms.back().first, "unsup");
  EXPECT_NEAR(terms.back().second.item<double>(), 0.0, 1e-10);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : method->model()->parameters()) p.add_(torch::randn_like(p) * 0.5);
  }
  EXPECT_GT(method->step(batch, at(0, 5)).back().second.item<double>(), 1e-6);
  // Ramp: weight 0 at the task's first iteration.
  EXPECT_EQ(method->step(batch, at(0, 0)).back().second.item<double>(), 0.0);
}

TEST_F(MeanTeacherRun, ConsistencyValueMatchesItsDefinition) {
  // lambda_u 50, linear ramp 5 / (0.4 * 10) -> 1, so
  // unsup = 50 * mean over rows of softmax_mse(student(strong), softmax(teacher(weak))).
  auto method = make("concat_forward = false\n");
  begin_task(*method, 0);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : method->model()->parameters()) p.add_(torch::randn_like(p) * 0.5);
  }
  const auto batch = tasks_.train_batch(0, 0);
  method->model()->train();
  const double unsup = method->step(batch, at(0, 5)).back().second.item<double>();
  torch::NoGradGuard no_grad;
  auto teacher = loss_of(*method).teacher();
  teacher->train();
  const auto targets = torch::softmax(teacher->forward(batch.unlabeled.weak), 1);
  teacher->eval();
  const auto expected = 50.0 * softmax_mse(method->model()->forward(batch.unlabeled.strong), targets, 4).mean();
  EXPECT_NEAR(unsup, expected.item<double>(), 1e-5 * std::abs(unsup) + 1e-9);
  EXPECT_GT(unsup, 0.0);
}

TEST_F(MeanTeacherRun, TeacherAndUpdateCountSurviveSaveAndLoad) {
  auto method = make();
  begin_task(*method, 0);
  train_step(*method, tasks_.train_batch(0, 0), 5);
  auto restored = reloaded(*method);
  const auto& a = loss_of(*method);
  const auto& b = loss_of(*restored);
  ASSERT_TRUE(b.teacher());
  EXPECT_EQ(b.updates(), 1);
  const auto pa = a.teacher()->parameters(), pb = b.teacher()->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i]));
  // It came from the archive: the student (shared, one step further) differs from it.
  bool differs = false;
  const auto student = restored->model()->parameters();
  for (size_t i = 0; i < pb.size(); ++i) differs = differs || !torch::equal(pb[i], student[i]);
  EXPECT_TRUE(differs);
}

TEST_F(MeanTeacherRun, ReportsTheTeachersBytes) {
  auto method = make();
  begin_task(*method, 0);
  double bytes = 0;
  for (const auto& p : method->model()->parameters()) bytes += static_cast<double>(p.nbytes());
  for (const auto& b : method->model()->buffers()) bytes += static_cast<double>(b.nbytes());
  EXPECT_EQ(stat_of(*method, "semi.teacher_bytes"), bytes);
}

TEST_F(MeanTeacherRun, RejectsBadOptions) {
  expect_rejected({"ema_decay = 1.0\n", "ramp_up = \"cosine\"\n", "teacher_bn = \"frozen\"\n"});
}

}  // namespace
}  // namespace sscl
