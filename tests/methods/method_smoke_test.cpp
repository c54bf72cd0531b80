// Every registered method, and every continual method composed with every
// semi-supervised loss, built by the RunBuilder as the tools build it, trains 2
// tasks x a few iterations on small synthetic data with finite losses and fills
// its accuracy matrices.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>
#include <tuple>

#include "core/error.h"
#include "core/method.h"
#include "tests/methods/built_run.h"

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

// A fresh config for each component built: a config records the defaults its
// readers used, and two components' defaults of one key may differ.
Config empty_config() { return Config::from_string("[method]\n[model]\n", "smoke.toml"); }

std::unique_ptr<Method> make_method(const std::string& name) {
  const Config config = empty_config();
  return MethodRegistry::get().at(name)(config.section("method"));
}

// The config of a smoke run: `method` (+ `semi`), 2 tasks x 4 iterations, in
// train.amp's precision.
Config smoke_config(const std::string& method, const std::string& semi = "", const std::string& amp = "none") {
  std::string toml = "[train]\niters_per_task = 4\namp = \"" + amp +
                     "\"\n[checkpoint]\nenabled = false\n[method]\nname = \"" + method + "\"\n";
  if (!semi.empty()) toml += "semi = \"" + semi + "\"\n";
  return Config::from_string(toml, "smoke.toml");
}

// Trains the run of `config` (built as the tools build it) and checks losses and matrices.
std::shared_ptr<FiniteLossHook> smoke_train(const Config& config) {
  testing::TempDir dir;
  auto run = testing::build_run(config, dir);
  auto finite = std::make_shared<FiniteLossHook>();
  run->hooks.add(finite);
  const RunState& state = run->trainer->run();
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

TEST_P(MethodSmoke, TrainsTwoTasksWithFiniteLossesAndAFullMatrix) { smoke_train(smoke_config(GetParam())); }

INSTANTIATE_TEST_SUITE_P(AllRegistered, MethodSmoke, ::testing::ValuesIn(MethodRegistry::get().names()));

// Every method, and every loss alone (registered as methods too), trains under
// bfloat16 autocast on the CPU: no op of theirs mixes dtypes autocast produces.
class MethodSmokeBf16 : public ::testing::TestWithParam<std::string> {};

TEST_P(MethodSmokeBf16, TrainsTwoTasksUnderBfloat16Autocast) { smoke_train(smoke_config(GetParam(), "", "bf16")); }

INSTANTIATE_TEST_SUITE_P(AllRegistered, MethodSmokeBf16, ::testing::ValuesIn(MethodRegistry::get().names()));

std::vector<std::string> composable_methods() {
  std::vector<std::string> out;
  for (const auto& name : MethodRegistry::get().names()) {
    if (SemiLossRegistry::get().contains(name)) continue;  // a loss alone: already SFT + the loss
    if (make_method(name)->traits().composes_with_semi) out.push_back(name);
  }
  return out;
}

class CompositionSmoke : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(CompositionSmoke, ComposedMethodTrainsWithTheLossTermsOfBoth) {
  const auto& [method_name, loss_name] = GetParam();
  const Config config = smoke_config(method_name, loss_name);
  const Config loss_config = empty_config();
  const auto loss = SemiLossRegistry::get().at(loss_name)(loss_config.section("method"));
  if (!loss->keeps_supervised_loss() && make_method(method_name)->traits().needs_plain_labeled_pass) {
    testing::TempDir dir;
    EXPECT_THROW(testing::build_run(config, dir), ConfigError);  // refused, never silently weaker
    return;
  }
  testing::TempDir dir;
  const auto run = testing::build_run(config, dir);
  EXPECT_TRUE(run->method->uses_unlabeled());
  EXPECT_EQ(run->method->display_name(), method_name + "+" + loss_name);
  const auto terms = smoke_train(config)->names;
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
    if (method->traits().composes_with_semi) continue;
    const Config config = empty_config();
    auto loss = SemiLossRegistry::get().at("fixmatch")(config.section("method"));
    EXPECT_THROW(method->set_semi(std::move(loss)), ConfigError) << name;
  }
  // A loss alone (SFT + the loss) takes no second one.
  auto alone = make_method("fixmatch");
  const Config config = empty_config();
  EXPECT_THROW(alone->set_semi(SemiLossRegistry::get().at("fixmatch")(config.section("method"))), ConfigError);
}

}  // namespace
}  // namespace sscl
