// Every registered method trains 2 tasks x a few iterations on small synthetic
// data with finite losses and fills its accuracy matrices.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/method.h"
#include "core/trainer.h"
#include "tasks/split_semi_tasks.h"
#include "tests/tasks/synthetic_data.h"

namespace sscl {
namespace {

class FiniteLossHook : public Hook {
 public:
  std::string hook_name() const override { return "finite_loss"; }
  void after_iter(const RunState& s) override {
    ++iterations;
    EXPECT_TRUE(std::isfinite(s.loss)) << "task " << s.task << " iter " << s.iter;
    for (const auto& [name, value] : s.losses) EXPECT_TRUE(std::isfinite(value)) << name;
  }
  int iterations = 0;
};

class MethodSmoke : public ::testing::TestWithParam<std::string> {};

TEST_P(MethodSmoke, TrainsTwoTasksWithFiniteLossesAndAFullMatrix) {
  SplitSemiOptions data_options;
  data_options.split.num_tasks = 2;
  data_options.split.labels_per_class = 3;
  data_options.batch_size = 4;
  data_options.uratio = 2;
  SplitSemiTasks tasks(data_options, testing::synthetic_splits(4, 20, 1, 12), 0);
  auto config = Config::from_string("[method]\n[model]\n", "smoke.toml");
  auto method = MethodRegistry::get().at(GetParam())(config.section("method"));
  torch::manual_seed(0);
  MethodContext context;
  context.model = Classifier(BackboneRegistry::get().at("small_cnn")(config.section("model"), tasks.input_shape()),
                             tasks.num_classes());
  context.task_classes = {tasks.classes(0), tasks.classes(1)};
  context.data = &tasks;
  context.batch_size = data_options.batch_size;
  context.make_backbone = [&] { return BackboneRegistry::get().at("small_cnn")(config.section("model"), tasks.input_shape()); };
  method->attach(context);
  HookDispatcher hooks;
  auto finite = std::make_shared<FiniteLossHook>();
  hooks.add(finite);
  TrainerOptions options;
  options.iters_per_task = 4;
  Trainer trainer(options, *method, tasks, hooks, OptimizerOptions{}, LrScheduleOptions{}, torch::kCPU);
  const RunState& state = trainer.run();
  EXPECT_EQ(finite->iterations, 8);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j <= i; ++j) {
      EXPECT_TRUE(state.task_il.has(i, j));
      EXPECT_TRUE(state.class_il.has(i, j));
    }
  EXPECT_FALSE(state.task_il.has(0, 1));  // task 2 is not evaluated before it is trained
}

INSTANTIATE_TEST_SUITE_P(AllRegistered, MethodSmoke, ::testing::ValuesIn(MethodRegistry::get().names()));

}  // namespace
}  // namespace sscl
