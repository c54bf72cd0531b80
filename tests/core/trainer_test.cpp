#include "core/trainer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "tests/core/fake_run.h"

namespace sscl {
namespace {

// Cross-entropy on the labeled batch; from `nan_at` (task, iter) on, a NaN term.
class CeMethod : public Method {
 public:
  std::string name() const override { return "ce"; }
  LossTerms step(const TrainBatch& batch, const RunState& s) override {
    const auto logits = model()->forward(batch.labeled.images);
    logit_dtypes.push_back(logits.scalar_type());
    auto ce = torch::nn::functional::cross_entropy(logits, batch.labeled.labels);
    LossTerms terms{{"ce", ce}};
    if (s.task == nan_task && s.iter == nan_iter) terms.emplace_back("bad", torch::tensor(NAN));
    return terms;
  }
  void after_iter(const RunState& s) override { lrs.push_back(s.lr); }
  int nan_task = -1;
  int64_t nan_iter = -1;
  std::vector<double> lrs;
  std::vector<c10::ScalarType> logit_dtypes;
};

struct Fixture {
  testing::FakeTaskData data;
  CeMethod method;
  HookDispatcher hooks;
  Fixture() {
    MethodContext context;
    context.model = testing::make_tiny_classifier();
    context.task_classes = {{0, 1}, {2, 3}};
    method.attach(context);
  }
  Trainer trainer(TrainerOptions options, const std::string& schedule = "", bool eval_all_tasks = false) {
    return Trainer(options, method, data, hooks, testing::optimizer_of("lr = 0.5\n"),
                   testing::schedule_of(schedule, 0.5), testing::evaluator(eval_all_tasks), torch::kCPU);
  }
};

TrainerOptions iters(int64_t n) {
  TrainerOptions o;
  o.iters_per_task = n;
  return o;
}

TEST(Trainer, NonFiniteLossStopsWithTaskIterationAndTerms) {
  Fixture f;
  f.method.nan_task = 1;
  f.method.nan_iter = 2;
  auto trainer = f.trainer(iters(4));
  try {
    trainer.run();
    FAIL();
  } catch (const TrainingError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("non-finite loss at task 1, iteration 2: ce=", 0), 0u) << what;
    EXPECT_NE(what.find("bad=nan"), std::string::npos) << what;
  }
}

TEST(Trainer, LearnsTheFakeTasksAndFillsTheLowerTriangle) {
  Fixture f;
  auto trainer = f.trainer(iters(30));
  const auto& s = trainer.run();
  EXPECT_EQ(s.global_iter, 60);
  ASSERT_EQ(s.task_timings.size(), 2u);
  EXPECT_EQ(s.task_timings[1].iteration_ms.size(), 30u);
  EXPECT_TRUE(s.task_il.has(0, 0));
  EXPECT_FALSE(s.task_il.has(0, 1));
  EXPECT_TRUE(s.task_il.has(1, 0));
  // Each task's two classes are constant images 0 and 1 (or 2 and 3): trivially separable.
  EXPECT_EQ(s.task_il.at(0, 0), 100.0);
  EXPECT_EQ(s.task_il.at(1, 1), 100.0);
  EXPECT_EQ(s.class_il.at(1, 1), 100.0);
  // After task 1 class-IL chooses among classes 0..1 only, so it equals task-IL.
  EXPECT_EQ(s.class_il.at(0, 0), s.task_il.at(0, 0));
}

TEST(Trainer, EvalAllTasksAlsoEvaluatesFutureTasks) {
  Fixture f;
  auto trainer = f.trainer(iters(2), "", /*eval_all_tasks=*/true);
  const auto& s = trainer.run();
  EXPECT_TRUE(s.task_il.has(0, 1));
  EXPECT_EQ(s.class_il.at(0, 1), 0.0);  // classes 2, 3 are not among the seen ones yet
}

TEST(Trainer, ScheduleRestartsEveryTask) {
  Fixture f;
  auto trainer = f.trainer(iters(3), "policy = \"step\"\nmilestones = [2]\ngamma = 0.1\n");
  trainer.run();
  ASSERT_EQ(f.method.lrs.size(), 6u);
  const std::vector<double> expected{0.5, 0.5, 0.05, 0.5, 0.5, 0.05};
  for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(f.method.lrs[i], expected[i], 1e-12) << i;
}

TEST(Trainer, TaskItersGiveEachTaskItsOwnIterationCount) {
  Fixture f;
  TrainerOptions o = iters(99);  // not used once task_iters is set
  o.task_iters = {3, 5};
  auto trainer = f.trainer(o);
  const auto& s = trainer.run();
  ASSERT_EQ(s.task_timings.size(), 2u);
  EXPECT_EQ(s.task_timings[0].iteration_ms.size(), 3u);
  EXPECT_EQ(s.task_timings[1].iteration_ms.size(), 5u);
  EXPECT_EQ(s.global_iter, 8);
  o.task_iters = {3};
  EXPECT_THROW(f.trainer(o), ConfigError);
}

// Momentum survives a task boundary unless the method asks for a fresh optimizer.
class FreshOptimizerMethod : public CeMethod {
 public:
  explicit FreshOptimizerMethod(bool fresh) { traits_.fresh_optimizer_each_task = fresh; }
  void before_task(const RunState&) override { ++before_task_calls; }
  int before_task_calls = 0;
};

TEST(Trainer, FreshOptimizerEachTaskDropsMomentum) {
  auto final_weights = [](bool fresh) {
    testing::FakeTaskData data;
    FreshOptimizerMethod method(fresh);
    MethodContext context;
    context.model = testing::make_tiny_classifier();
    context.task_classes = {{0, 1}, {2, 3}};
    method.attach(context);
    HookDispatcher hooks;
    Trainer trainer(iters(2), method, data, hooks, testing::optimizer_of("lr = 0.5\nmomentum = 0.9\n"),
                    testing::schedule_of("", 0.5), testing::evaluator(), torch::kCPU);
    trainer.run();
    EXPECT_EQ(method.before_task_calls, 2);
    return method.model()->named_parameters()["head.weight"].clone();
  };
  const auto carried = final_weights(false), fresh = final_weights(true);
  // Identical first task; the second task's first step differs by the carried momentum.
  EXPECT_FALSE(torch::allclose(carried, fresh));
}

TEST(Trainer, AmpRunsTheStepUnderAutocastAndLeavesItOffAfter) {
  Fixture f;
  TrainerOptions options = iters(30);
  options.amp = Amp::kBF16;
  auto trainer = f.trainer(options);
  const auto& s = trainer.run();
  ASSERT_EQ(f.method.logit_dtypes.size(), 60u);
  for (auto dtype : f.method.logit_dtypes) EXPECT_EQ(dtype, torch::kBFloat16);
  EXPECT_EQ(s.task_il.at(1, 1), 100.0);  // still learns the separable tasks
  EXPECT_EQ(torch::mm(torch::ones({1, 1}), torch::ones({1, 1})).scalar_type(), torch::kFloat32);
}

// Loss scaling by a power of two, then unscaling, is exact in float32: the run
// with the scaler is bit-identical to the run without (the scaler's arithmetic
// is what this checks; its float16 use needs a GPU).
TEST(Trainer, GradScalingWithoutOverflowChangesNothing) {
  Fixture plain, scaled;
  TrainerOptions options = iters(20);
  auto a = plain.trainer(options);
  a.run();
  options.grad_scaling = true;
  auto b = scaled.trainer(options);
  const auto& s = b.run();
  EXPECT_EQ(s.amp_skipped_steps, 0);
  EXPECT_EQ(s.amp_loss_scale, 65536.0);
  const auto pa = plain.method.model()->parameters(), pb = scaled.method.model()->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(pa[i].equal(pb[i])) << "parameter " << i;
}

}  // namespace
}  // namespace sscl
