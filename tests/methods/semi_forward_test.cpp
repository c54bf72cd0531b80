// The plumbing of a composed semi-supervised loss: one concatenated forward pass
// and separate passes give the same terms on a model without BatchNorm, the
// loss's figures reach results.json, and the lifecycle reaches the loss.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/method.h"
#include "tests/core/fake_run.h"

namespace sscl {
namespace {

TrainBatch batch_with_unlabeled() {
  torch::manual_seed(3);
  TrainBatch b;
  b.task = 0;
  b.labeled.images = torch::rand({2, 1, 4, 4});
  b.labeled.labels = torch::tensor({0, 1});
  b.labeled.indices = torch::tensor({0, 1});
  b.unlabeled.weak = torch::rand({3, 1, 4, 4});
  b.unlabeled.strong = torch::rand({3, 1, 4, 4});
  b.unlabeled.indices = torch::tensor({5, 6, 7});
  return b;
}

// SFT + FixMatch at threshold 0 (every pseudo-label kept, so "unsup" is not zero).
std::unique_ptr<Method> sft_fixmatch(bool concat, Classifier model) {
  const auto config = Config::from_string(
      std::string("[method]\nname = \"fixmatch\"\nthreshold = 0.0\nconcat_forward = ") + (concat ? "true" : "false"),
      "semi.toml");
  auto method = MethodRegistry::get().at("fixmatch")(config.section("method"));
  MethodContext context;
  context.model = model;
  context.task_classes = {{0, 1}, {2, 3}};
  method->attach(context);
  return method;
}

TEST(SemiForward, ConcatenatedAndSeparatePassesGiveTheSameTerms) {
  auto model = testing::make_tiny_classifier();  // one linear layer: no batch statistics
  const auto batch = batch_with_unlabeled();
  RunState state;
  state.iters_per_task = 10;
  const auto concat = sft_fixmatch(true, model)->step(batch, state);
  const auto separate = sft_fixmatch(false, model)->step(batch, state);
  ASSERT_EQ(concat.size(), 2u);
  ASSERT_EQ(separate.size(), 2u);
  for (size_t i = 0; i < concat.size(); ++i) {
    EXPECT_EQ(concat[i].first, separate[i].first);
    EXPECT_NEAR(concat[i].second.item<double>(), separate[i].second.item<double>(), 1e-6) << concat[i].first;
  }
  EXPECT_EQ(concat[1].first, "unsup");
  EXPECT_GT(concat[1].second.item<double>(), 0.0);
}

TEST(SemiForward, WithoutUnlabeledImagesTheUnlabeledTermIsAZeroOfTheSameName) {
  auto method = sft_fixmatch(true, testing::make_tiny_classifier());
  auto batch = batch_with_unlabeled();
  batch.unlabeled = UnlabeledBatch{};
  const auto terms = method->step(batch, RunState{});
  ASSERT_EQ(terms.size(), 2u);
  EXPECT_EQ(terms[1].first, "unsup");
  EXPECT_EQ(terms[1].second.item<double>(), 0.0);
}

TEST(SemiForward, MaskRateReachesTheStatsAndTheLossIsALifecycleHook) {
  auto method = sft_fixmatch(true, testing::make_tiny_classifier());
  method->step(batch_with_unlabeled(), RunState{});
  double mask_rate = -1;
  for (const auto& [key, value] : method->all_stats())
    if (key == "semi.mask_rate") mask_rate = value;
  EXPECT_EQ(mask_rate, 1.0);  // threshold 0 keeps every image
  const auto hooks = method->lifecycle_hooks();
  ASSERT_EQ(hooks.size(), 2u);
  EXPECT_EQ(hooks[0], method.get());
  EXPECT_EQ(hooks[1]->hook_name(), "semi:fixmatch");
}

}  // namespace
}  // namespace sscl
