#include "core/optim.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"

namespace sscl {
namespace {

TEST(LrSchedule, StepRestartsEveryTaskAsTheReference) {
  LrScheduleOptions o;
  o.policy = "step";
  o.milestones = {800, 900};
  o.gamma = 0.1;
  LrSchedule s(o, 0.03);
  EXPECT_DOUBLE_EQ(s.lr_at(0, 1000), 0.03);
  EXPECT_DOUBLE_EQ(s.lr_at(799, 1000), 0.03);
  EXPECT_NEAR(s.lr_at(800, 1000), 0.003, 1e-15);
  EXPECT_NEAR(s.lr_at(900, 1000), 0.0003, 1e-15);
  EXPECT_NEAR(s.lr_at(999, 1000), 0.0003, 1e-15);
}

TEST(LrSchedule, CosineGoesFromBaseToMinOverTheTask) {
  LrScheduleOptions o;
  o.policy = "cosine";
  o.min_lr = 0.01;
  LrSchedule s(o, 0.11);
  EXPECT_DOUBLE_EQ(s.lr_at(0, 11), 0.11);
  EXPECT_NEAR(s.lr_at(5, 11), 0.06, 1e-12);  // half way: (0.11 + 0.01) / 2
  EXPECT_NEAR(s.lr_at(10, 11), 0.01, 1e-12);
}

TEST(LrSchedule, LinearWarmupScalesTheSchedule) {
  LrScheduleOptions o;
  o.warmup_iters = 10;
  o.warmup_ratio = 0.1;
  LrSchedule s(o, 1.0);
  EXPECT_DOUBLE_EQ(s.lr_at(0, 100), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(5, 100), 0.55);
  EXPECT_DOUBLE_EQ(s.lr_at(10, 100), 1.0);
}

TEST(Optimizer, SgdWithMomentumTakesTheExpectedSteps) {
  // w = 1, loss = w^2 / 2 so grad = w. lr 0.1, momentum 0.5:
  // v1 = 1, w1 = 1 - 0.1 = 0.9; v2 = 0.5 * 1 + 0.9 = 1.4, w2 = 0.9 - 0.14 = 0.76.
  auto w = torch::ones({1}, torch::requires_grad());
  OptimizerOptions o;
  o.lr = 0.1;
  o.momentum = 0.5;
  o.weight_decay = 0;
  auto opt = make_optimizer(o, {w});
  for (int i = 0; i < 2; ++i) {
    opt->zero_grad();
    (w * w / 2).sum().backward();
    opt->step();
  }
  EXPECT_NEAR(w.item<double>(), 0.76, 1e-6);
}

TEST(Optimizer, SetLearningRateReachesEveryGroup) {
  auto w = torch::ones({1}, torch::requires_grad());
  OptimizerOptions o;
  o.type = "adam";
  auto opt = make_optimizer(o, {w});
  set_learning_rate(*opt, 0.5);
  EXPECT_DOUBLE_EQ(opt->param_groups()[0].options().get_lr(), 0.5);
}

TEST(Optimizer, OptionsFromConfigRejectBadValuesAndStrayKeys) {
  auto cfg = Config::from_string("[optimizer]\ntype = \"sgd\"\nlr = -1.0\n", "opt.toml");
  try {
    OptimizerOptions::from_config(cfg.section("optimizer"));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer.lr"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("opt.toml:3"), std::string::npos) << e.what();
  }
  // Adam's betas under an SGD optimizer are never read, so they are unknown keys.
  auto stray = Config::from_string("[optimizer]\ntype = \"sgd\"\nbetas = [0.9, 0.99]\n", "opt.toml");
  OptimizerOptions::from_config(stray.section("optimizer"));
  EXPECT_THROW(stray.ensure_all_used(), ConfigError);
}

}  // namespace
}  // namespace sscl
