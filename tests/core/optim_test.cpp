// Optimizers and learning-rate schedules through their registries, as a run
// builds them from [optimizer] and [lr_schedule].
#include "core/optim.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "tests/core/fake_run.h"

namespace sscl {
namespace {

using testing::optimizer_of;
using testing::schedule_of;

TEST(LrSchedule, StepRestartsEveryTaskAsTheReference) {
  const auto s = schedule_of("policy = \"step\"\nmilestones = [800, 900]\ngamma = 0.1\n", 0.03);
  EXPECT_DOUBLE_EQ(s.lr_at(0, 1000), 0.03);
  EXPECT_DOUBLE_EQ(s.lr_at(799, 1000), 0.03);
  EXPECT_NEAR(s.lr_at(800, 1000), 0.003, 1e-15);
  EXPECT_NEAR(s.lr_at(900, 1000), 0.0003, 1e-15);
  EXPECT_NEAR(s.lr_at(999, 1000), 0.0003, 1e-15);
}

TEST(LrSchedule, CosineGoesFromBaseToMinOverTheTask) {
  const auto s = schedule_of("policy = \"cosine\"\nmin_lr = 0.01\n", 0.11);
  EXPECT_DOUBLE_EQ(s.lr_at(0, 11), 0.11);
  EXPECT_NEAR(s.lr_at(5, 11), 0.06, 1e-12);  // half way: (0.11 + 0.01) / 2
  EXPECT_NEAR(s.lr_at(10, 11), 0.01, 1e-12);
}

TEST(LrSchedule, LinearWarmupScalesTheSchedule) {
  const auto s = schedule_of("warmup_iters = 10\nwarmup_ratio = 0.1\n", 1.0);
  EXPECT_DOUBLE_EQ(s.lr_at(0, 100), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(5, 100), 0.55);
  EXPECT_DOUBLE_EQ(s.lr_at(10, 100), 1.0);
}

TEST(LrSchedule, StepNeedsAscendingMilestonesAndUnknownPoliciesAreNamed) {
  EXPECT_THROW(schedule_of("policy = \"step\"\n", 0.1), ConfigError);  // milestones are required
  try {
    schedule_of("policy = \"step\"\nmilestones = [9, 3]\n", 0.1);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "config key 'lr_schedule.milestones' (schedule.toml:3): must be ascending");
  }
  try {
    schedule_of("policy = \"poly\"\n", 0.1);
    FAIL();
  } catch (const RegistryError& e) {
    EXPECT_STREQ(e.what(), "unknown learning-rate schedule 'poly'; known: constant, cosine, step");
  }
}

TEST(Optimizer, SgdWithMomentumTakesTheExpectedSteps) {
  // w = 1, loss = w^2 / 2 so grad = w. lr 0.1, momentum 0.5:
  // v1 = 1, w1 = 1 - 0.1 = 0.9; v2 = 0.5 * 1 + 0.9 = 1.4, w2 = 0.9 - 0.14 = 0.76.
  auto w = torch::ones({1}, torch::requires_grad());
  const auto sgd = optimizer_of("lr = 0.1\nmomentum = 0.5\nweight_decay = 0.0\n");
  EXPECT_DOUBLE_EQ(sgd.lr, 0.1);
  auto opt = sgd.make({ParamGroup{{w}}});
  for (int i = 0; i < 2; ++i) {
    opt->zero_grad();
    (w * w / 2).sum().backward();
    opt->step();
  }
  EXPECT_NEAR(w.item<double>(), 0.76, 1e-6);
}

TEST(Optimizer, SetLearningRateReachesEveryGroup) {
  auto w = torch::ones({1}, torch::requires_grad());
  auto opt = optimizer_of("type = \"adam\"\n").make({ParamGroup{{w}}});
  EXPECT_NE(dynamic_cast<torch::optim::Adam*>(opt.get()), nullptr);
  set_learning_rate(*opt, 0.5);
  EXPECT_DOUBLE_EQ(opt->param_groups()[0].options().get_lr(), 0.5);
}

TEST(Optimizer, LrMultGroupsTrainEachAtItsShareOfTheLearningRate) {
  // loss = sum of the weights: every gradient is 1, so one plain SGD step moves
  // each weight by its group's learning rate.
  auto stem = torch::ones({2}, torch::requires_grad());
  auto block = torch::ones({1}, torch::requires_grad());
  auto head = torch::ones({1}, torch::requires_grad());
  auto extra = torch::ones({1}, torch::requires_grad());  // not in the model's names (a method's own module)
  const std::vector<std::pair<std::string, torch::Tensor>> named{
      {"backbone.conv1.weight", stem}, {"adapters.layer1.weight", block}, {"head.weight", head}};
  const auto sgd = optimizer_of(
      "lr = 1.0\nmomentum = 0.0\nweight_decay = 0.0\n"
      "lr_mult.backbone = 0.1\nlr_mult.layer1 = 0.0\n");
  ASSERT_EQ(sgd.lr_mult.size(), 2u);
  EXPECT_DOUBLE_EQ(lr_mult_of("backbone.layer1.0.bn1.weight", sgd.lr_mult), 0.1);  // the longest key wins
  EXPECT_DOUBLE_EQ(lr_mult_of("adapters.layer1.weight", sgd.lr_mult), 0.0);
  EXPECT_DOUBLE_EQ(lr_mult_of("heads.0.weight", sgd.lr_mult), 1.0);

  auto groups = param_groups({stem, block, head, extra}, named, sgd.lr_mult);
  ASSERT_EQ(groups.size(), 3u);  // the plain group first, then in the order the parameters come
  EXPECT_DOUBLE_EQ(groups[0].lr_mult, 1.0);
  EXPECT_EQ(groups[0].params.size(), 2u);  // head and extra
  EXPECT_DOUBLE_EQ(groups[1].lr_mult, 0.1);
  EXPECT_DOUBLE_EQ(groups[2].lr_mult, 0.0);
  const std::vector<double> mults{groups[0].lr_mult, groups[1].lr_mult, groups[2].lr_mult};
  auto opt = sgd.make(std::move(groups));
  EXPECT_DOUBLE_EQ(opt->param_groups()[1].options().get_lr(), 0.1);
  opt->zero_grad();
  (stem.sum() + block.sum() + head.sum() + extra.sum()).backward();
  opt->step();
  EXPECT_NEAR(stem[0].item<double>(), 0.9, 1e-7);
  EXPECT_NEAR(stem[1].item<double>(), 0.9, 1e-7);
  EXPECT_DOUBLE_EQ(block.item<double>(), 1.0);
  EXPECT_NEAR(head.item<double>(), 0.0, 1e-7);
  EXPECT_NEAR(extra.item<double>(), 0.0, 1e-7);
  set_learning_rate(*opt, 0.5, mults);  // the schedule's value, each group at its share
  EXPECT_DOUBLE_EQ(opt->param_groups()[0].options().get_lr(), 0.5);
  EXPECT_DOUBLE_EQ(opt->param_groups()[1].options().get_lr(), 0.05);
  EXPECT_DOUBLE_EQ(opt->param_groups()[2].options().get_lr(), 0.0);

  // Without lr_mult: one group, as before.
  EXPECT_EQ(param_groups({stem, head}, named, {}).size(), 1u);
}

TEST(Optimizer, LrMultNeedsANumberAtLeastZeroNamedByItsKey) {
  try {
    optimizer_of("lr_mult.backbone = -0.5\n");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "config key 'optimizer.lr_mult.backbone' (optimizer.toml:2): must be a finite number >= 0");
  }
  EXPECT_THROW(optimizer_of("lr_mult.backbone = \"slow\"\n"), ConfigError);
}

TEST(Optimizer, OptionsFromConfigRejectBadValuesAndStrayKeys) {
  auto cfg = Config::from_string("[optimizer]\ntype = \"sgd\"\nlr = -1.0\n", "opt.toml");
  try {
    build_optimizer(cfg.section("optimizer"));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer.lr"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("opt.toml:3"), std::string::npos) << e.what();
  }
  // Adam's betas under an SGD optimizer are never read, so they are unknown keys.
  auto stray = Config::from_string("[optimizer]\ntype = \"sgd\"\nbetas = [0.9, 0.99]\n", "opt.toml");
  build_optimizer(stray.section("optimizer"));
  EXPECT_THROW(stray.ensure_all_used(), ConfigError);
  EXPECT_THROW(optimizer_of("nesterov = true\nmomentum = 0.0\n"), ConfigError);
}

}  // namespace
}  // namespace sscl
