// Every registered method, and every continual method composed with every
// semi-supervised loss, trains 2 tasks x a few iterations on small synthetic data
// with finite losses and fills its accuracy matrices.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>
#include <tuple>

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
    names.clear();
    for (const auto& term : s.losses) names.insert(term.first);
  }
  int iterations = 0;
  std::set<std::string> names;  // of the last iteration's terms
};

const Config& empty_config() {
  static const Config config = Config::from_string("[method]\n[model]\n", "smoke.toml");
  return config;
}

std::unique_ptr<Method> make_method(const std::string& name) {
  return MethodRegistry::get().at(name)(empty_config().section("method"));
}

// Trains `method` 2 tasks x 4 iterations and checks losses and matrices.
std::shared_ptr<FiniteLossHook> smoke_train(Method& method) {
  SplitSemiOptions data_options;
  data_options.split.num_tasks = 2;
  data_options.split.labels_per_class = 3;
  data_options.batch_size = 4;
  data_options.uratio = 2;
  SplitSemiTasks tasks(data_options, testing::synthetic_splits(4, 20, 1, 12), 0);
  const auto& config = empty_config();
  torch::manual_seed(0);
  MethodContext context;
  context.model = Classifier(BackboneRegistry::get().at("small_cnn")(config.section("model"), tasks.input_shape()),
                             tasks.num_classes());
  context.task_classes = {tasks.classes(0), tasks.classes(1)};
  context.data = &tasks;
  context.batch_size = data_options.batch_size;
  context.make_backbone = [&] {
    return BackboneRegistry::get().at("small_cnn")(config.section("model"), tasks.input_shape());
  };
  method.attach(context);
  HookDispatcher hooks;
  auto finite = std::make_shared<FiniteLossHook>();
  hooks.add(finite);
  TrainerOptions options;
  options.iters_per_task = 4;
  Trainer trainer(options, method, tasks, hooks, OptimizerOptions{}, LrScheduleOptions{}, torch::kCPU);
  const RunState& state = trainer.run();
  EXPECT_EQ(finite->iterations, 8);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j <= i; ++j) {
      EXPECT_TRUE(state.task_il.has(i, j));
      EXPECT_TRUE(state.class_il.has(i, j));
    }
  EXPECT_FALSE(state.task_il.has(0, 1));  // task 2 is not evaluated before it is trained
  return finite;
}

class MethodSmoke : public ::testing::TestWithParam<std::string> {};

TEST_P(MethodSmoke, TrainsTwoTasksWithFiniteLossesAndAFullMatrix) {
  auto method = make_method(GetParam());
  smoke_train(*method);
}

INSTANTIATE_TEST_SUITE_P(AllRegistered, MethodSmoke, ::testing::ValuesIn(MethodRegistry::get().names()));

std::vector<std::string> composable_methods() {
  std::vector<std::string> out;
  for (const auto& name : MethodRegistry::get().names()) {
    if (SemiLossRegistry::get().contains(name)) continue;  // a loss alone: already SFT + the loss
    if (make_method(name)->composes_with_semi()) out.push_back(name);
  }
  return out;
}

class CompositionSmoke : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(CompositionSmoke, ComposedMethodTrainsWithTheLossTermsOfBoth) {
  const auto& [method_name, loss_name] = GetParam();
  auto method = make_method(method_name);
  auto loss = SemiLossRegistry::get().at(loss_name)(empty_config().section("method"));
  if (!loss->keeps_supervised_loss() && method->needs_plain_labeled_pass()) {
    EXPECT_THROW(method->set_semi(std::move(loss)), ConfigError);  // refused, never silently weaker
    return;
  }
  method->set_semi(std::move(loss));
  EXPECT_TRUE(method->uses_unlabeled());
  EXPECT_EQ(method->display_name(), method_name + "+" + loss_name);
  const auto terms = smoke_train(*method)->names;
  EXPECT_TRUE(terms.count("sup")) << "the labeled term";
  EXPECT_GE(terms.size(), 2u) << "the loss adds at least one unlabeled term";
}

INSTANTIATE_TEST_SUITE_P(AllPairs, CompositionSmoke,
                         ::testing::Combine(::testing::ValuesIn(composable_methods()),
                                            ::testing::ValuesIn(SemiLossRegistry::get().names())),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

TEST(Composition, MethodsWithoutACurrentBatchTermRefuseASemiLoss) {
  for (const auto& name : MethodRegistry::get().names()) {
    auto method = make_method(name);
    if (method->composes_with_semi()) continue;
    auto loss = SemiLossRegistry::get().at("fixmatch")(empty_config().section("method"));
    EXPECT_THROW(method->set_semi(std::move(loss)), ConfigError) << name;
  }
  // A loss alone (SFT + the loss) takes no second one.
  auto alone = make_method("fixmatch");
  EXPECT_THROW(alone->set_semi(SemiLossRegistry::get().at("fixmatch")(empty_config().section("method"))), ConfigError);
}

}  // namespace
}  // namespace sscl
