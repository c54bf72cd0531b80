// Records every hook call of a 2-task run and compares it with the documented
// order (core/hook.h), written out by hand.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <csignal>

#include "core/stop_request.h"
#include "core/trainer.h"
#include "tests/core/fake_run.h"

namespace sscl {
namespace {

using Log = std::vector<std::string>;

#define SSCL_RECORD_STAGE(stage) \
  void stage(const RunState&) override { log_->push_back(name_ + ":" #stage); }
// clang-format 14 does not settle on one layout for this list.
// clang-format off
#define SSCL_RECORD_ALL_STAGES   \
  SSCL_RECORD_STAGE(before_run)  \
  SSCL_RECORD_STAGE(after_run)   \
  SSCL_RECORD_STAGE(before_task) \
  SSCL_RECORD_STAGE(after_task)  \
  SSCL_RECORD_STAGE(before_epoch)\
  SSCL_RECORD_STAGE(after_epoch) \
  SSCL_RECORD_STAGE(before_iter) \
  SSCL_RECORD_STAGE(after_iter)  \
  SSCL_RECORD_STAGE(before_val)  \
  SSCL_RECORD_STAGE(after_val)   \
  SSCL_RECORD_STAGE(on_stop)
// clang-format on

class RecordingHook : public Hook {
 public:
  RecordingHook(std::string name, int priority, Log* log) : name_(std::move(name)), priority_(priority), log_(log) {}
  std::string hook_name() const override { return name_; }
  int priority() const override { return priority_; }
  SSCL_RECORD_ALL_STAGES

 private:
  std::string name_;
  int priority_;
  Log* log_;
};

class RecordingMethod : public Method {
 public:
  explicit RecordingMethod(Log* log) : log_(log), name_("method") {}
  std::string name() const override { return "recording"; }
  LossTerms step(const TrainBatch& batch, const RunState&) override {
    log_->push_back("step");
    return {{"ce", torch::nn::functional::cross_entropy(model()->forward(batch.labeled.images), batch.labeled.labels)}};
  }
  SSCL_RECORD_ALL_STAGES

 private:
  Log* log_;
  std::string name_;
};

// before_X: the outer hook, the method, then user hooks by priority (b=10, then
// a and c at 60 in the order they were added); after_X: user hooks, the method,
// then the outer hook.
void expect_stage(Log& out, const std::string& stage) {
  const bool before = stage.rfind("before_", 0) == 0;
  if (before) out.push_back("outer:" + stage);
  if (before) out.push_back("method:" + stage);
  for (const char* hook : {"b", "a", "c"}) out.push_back(std::string(hook) + ":" + stage);
  if (!before) out.push_back("method:" + stage);
  if (!before) out.push_back("outer:" + stage);
}

// A tiny classifier over two tasks of two classes each.
void attach_to_two_tasks(Method& method) {
  MethodContext context;
  context.model = testing::make_tiny_classifier();
  context.task_classes = {{0, 1}, {2, 3}};
  method.attach(context);
}

TEST(HookOrder, TwoTasksThreeItersVirtualEpochOfTwo) {
  Log log;
  testing::FakeTaskData data;
  RecordingMethod method(&log);
  attach_to_two_tasks(method);
  HookDispatcher hooks;
  hooks.add(std::make_shared<RecordingHook>("a", 60, &log));
  hooks.add(std::make_shared<RecordingHook>("b", 10, &log));
  hooks.add(std::make_shared<RecordingHook>("c", 60, &log));
  hooks.add_outer(std::make_shared<RecordingHook>("outer", 50, &log));
  TrainerOptions options;
  options.iters_per_task = 3;
  options.iters_per_virtual_epoch = 2;
  Trainer trainer(options, method, data, hooks, testing::optimizer_of("lr = 0.1\n"), testing::schedule_of("", 0.1),
                  testing::evaluator(), torch::kCPU);
  trainer.run();

  Log expected;
  expect_stage(expected, "before_run");
  for (int task = 0; task < 2; ++task) {
    expect_stage(expected, "before_task");
    // iteration 0: opens virtual epoch 0
    expect_stage(expected, "before_epoch");
    expect_stage(expected, "before_iter");
    expected.push_back("step");
    expect_stage(expected, "after_iter");
    // iteration 1: closes virtual epoch 0
    expect_stage(expected, "before_iter");
    expected.push_back("step");
    expect_stage(expected, "after_iter");
    expect_stage(expected, "after_epoch");
    // iteration 2: opens epoch 1, which the task's end closes
    expect_stage(expected, "before_epoch");
    expect_stage(expected, "before_iter");
    expected.push_back("step");
    expect_stage(expected, "after_iter");
    expect_stage(expected, "after_epoch");
    expect_stage(expected, "after_task");
    expect_stage(expected, "before_val");
    expect_stage(expected, "after_val");
  }
  expect_stage(expected, "after_run");
  EXPECT_EQ(log, expected);
  // The method used no unlabeled data, so the loader was told not to load it.
  EXPECT_FALSE(data.load_unlabeled);
}

TEST(HookOrder, HookErrorNamesHookStageTaskAndIteration) {
  class Failing : public Hook {
   public:
    std::string hook_name() const override { return "failing"; }
    void before_iter(const RunState& s) override {
      if (s.task == 1 && s.iter == 2) throw std::runtime_error("boom");
    }
  };
  Log log;
  testing::FakeTaskData data;
  RecordingMethod method(&log);
  attach_to_two_tasks(method);
  HookDispatcher hooks;
  hooks.add(std::make_shared<Failing>());
  TrainerOptions options;
  options.iters_per_task = 3;
  Trainer trainer(options, method, data, hooks, testing::optimizer_of(""), testing::schedule_of("", 0.03),
                  testing::evaluator(), torch::kCPU);
  try {
    trainer.run();
    FAIL() << "expected a TrainingError";
  } catch (const TrainingError& e) {
    EXPECT_STREQ(e.what(), "hook 'failing' before_iter (task 1, iteration 2): boom");
  }
}

// A stop requested between two iterations: on_stop (user hooks, the method, the
// outer hook, as an after_ stage) instead of the next iteration, then Interrupted.
TEST(HookOrder, AStopRequestCallsOnStopInsteadOfTheNextIteration) {
  class StopAfterFirstIter : public Hook {
   public:
    std::string hook_name() const override { return "stopper"; }
    void after_iter(const RunState& s) override {
      if (s.task == 0 && s.iter == 0) request_stop(SIGTERM);
    }
  };
  Log log;
  testing::FakeTaskData data;
  RecordingMethod method(&log);
  attach_to_two_tasks(method);
  HookDispatcher hooks;
  hooks.add(std::make_shared<StopAfterFirstIter>());
  hooks.add(std::make_shared<RecordingHook>("b", 10, &log));
  hooks.add_outer(std::make_shared<RecordingHook>("outer", 50, &log));
  TrainerOptions options;
  options.iters_per_task = 3;
  Trainer trainer(options, method, data, hooks, testing::optimizer_of(""), testing::schedule_of("", 0.03),
                  testing::evaluator(), torch::kCPU);
  clear_stop_request();
  EXPECT_THROW(trainer.run(), Interrupted);
  clear_stop_request();
  const Log tail(log.end() - 4, log.end());
  EXPECT_EQ(tail, (Log{"outer:after_iter", "b:on_stop", "method:on_stop", "outer:on_stop"}));
  EXPECT_EQ(std::count(log.begin(), log.end(), "step"), 1);
}

TEST(HookOrder, PriorityOutsideRangeIsRejected) {
  Log log;
  HookDispatcher hooks;
  EXPECT_THROW(hooks.add(std::make_shared<RecordingHook>("x", 101, &log)), Error);
  EXPECT_THROW(hooks.add(std::make_shared<RecordingHook>("x", -1, &log)), Error);
}

}  // namespace
}  // namespace sscl
