#include "core/precision.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "core/error.h"

namespace sscl {
namespace {

TEST(Amp, ParsesItsThreeNamesAndRefusesOthers) {
  EXPECT_EQ(parse_amp("none"), Amp::kNone);
  EXPECT_EQ(parse_amp("bf16"), Amp::kBF16);
  EXPECT_EQ(parse_amp("fp16"), Amp::kFP16);
  EXPECT_EQ(amp_name(Amp::kBF16), "bf16");
  EXPECT_THROW(parse_amp("fp8"), ConfigError);
}

TEST(Amp, Float16OnACpuIsAConfigErrorNamingTheKey) {
  try {
    check_amp(Amp::kFP16, c10::Device(c10::kCPU));
    FAIL() << "fp16 on a CPU was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.amp"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(check_amp(Amp::kBF16, c10::Device(c10::kCPU)));
  EXPECT_NO_THROW(check_amp(Amp::kNone, c10::Device(c10::kCPU)));
}

TEST(AutocastScope, RunsAMatmulInBfloat16InsideAndFloat32After) {
  const auto a = torch::ones({2, 3}), b = torch::ones({3, 2});
  {
    AutocastScope autocast(Amp::kBF16, c10::kCPU);
    const auto product = torch::mm(a, b);
    EXPECT_EQ(product.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(product.to(torch::kFloat32).equal(torch::full({2, 2}, 3.0f)));
    {
      AutocastScope nested(Amp::kNone, c10::kCPU);  // kNone leaves the outer scope on
      EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
    }
    // Losses stay in float32 under autocast (LibTorch's float32 list).
    const auto loss = torch::nn::functional::cross_entropy(torch::mm(a, b), torch::tensor({0, 1}));
    EXPECT_EQ(loss.scalar_type(), torch::kFloat32);
  }
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat32);
}

TEST(GradScaler, ScalesTheLossAndUnscalesTheGradients) {
  GradScaler scaler(GradScaler::Options{8.0, 2.0, 0.5, 2});
  auto w = torch::tensor({1.0f, 2.0f}, torch::requires_grad());
  // d(sum(3 w))/dw = 3; the scaled loss gives 24 before unscaling.
  scaler.scale((3 * w).sum()).backward();
  EXPECT_TRUE(w.grad().equal(torch::tensor({24.0f, 24.0f})));
  EXPECT_TRUE(scaler.unscale({w}));
  EXPECT_TRUE(w.grad().equal(torch::tensor({3.0f, 3.0f})));
}

TEST(GradScaler, AnOverflowSkipsTheStepAndHalvesTheScaleAndCleanStepsGrowIt) {
  GradScaler scaler(GradScaler::Options{8.0, 2.0, 0.5, 2});
  auto w = torch::zeros({2}, torch::requires_grad());
  w.mutable_grad() = torch::tensor({1.0f, std::numeric_limits<float>::infinity()});
  auto untouched = torch::zeros({1}, torch::requires_grad());  // no gradient: ignored
  EXPECT_FALSE(scaler.unscale({w, untouched}));
  scaler.update(false);
  EXPECT_EQ(scaler.current_scale(), 4.0);
  EXPECT_EQ(scaler.skipped_steps(), 1);
  w.mutable_grad() = torch::tensor({1.0f, std::numeric_limits<float>::quiet_NaN()});
  EXPECT_FALSE(scaler.unscale({w}));
  w.mutable_grad() = torch::tensor({4.0f, 8.0f});
  EXPECT_TRUE(scaler.unscale({w}));
  EXPECT_TRUE(w.grad().equal(torch::tensor({1.0f, 2.0f})));
  scaler.update(true);
  EXPECT_EQ(scaler.current_scale(), 4.0);  // one clean step of the two growth needs
  scaler.update(true);
  EXPECT_EQ(scaler.current_scale(), 8.0);
  EXPECT_EQ(scaler.growth_tracker(), 0);
}

TEST(GradScaler, StateRoundTrips) {
  GradScaler a(GradScaler::Options{8.0, 2.0, 0.5, 3});
  a.update(false);
  a.update(true);
  GradScaler b;
  b.load_state(a.state());
  EXPECT_EQ(b.current_scale(), 4.0);
  EXPECT_EQ(b.growth_tracker(), 1);
  EXPECT_EQ(b.skipped_steps(), 1);
  EXPECT_THROW(b.load_state({1.0}), IoError);
}

}  // namespace
}  // namespace sscl
