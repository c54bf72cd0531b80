// iCaRL's maths on hand-made tensors (herding, reduction, class means, NME
// logits, the BCE with distillation targets) and its memory through two task ends.
#include "methods/continual/icarl.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <memory>
#include <sstream>

#include "core/method.h"
#include "tasks/split_semi_tasks.h"
#include "tests/methods/method_run_fixture.h"
#include "tests/tasks/synthetic_data.h"

namespace sscl {
namespace {

TEST(Icarl, HerdingPicksTheExpectedRowsOnNormalisedFeatures) {
  // Rows, and the same L2-normalised: x0 = (2, 0) -> (1, 0), x1 = (0, 3) -> (0, 1),
  // x2 = (0.6, 0.8), x3 = (1.2, -1.6) -> (0.6, -0.8). Mean mu = (0.55, 0.25).
  // k = 1: ||mu - x||^2 = 0.265 (x0), 0.865 (x1), 0.305 (x2), 1.105 (x3) -> x0.
  // k = 2: (x0 + x)/2 = (0.5, 0.5): 0.065 (x1); (0.8, 0.4): 0.085 (x2); (0.8, -0.4): 0.485 (x3) -> x1.
  // k = 3: (x0 + x1 + x)/3 = (8/15, 3/5): 221/1800 (x2); (8/15, 1/15): 61/1800 (x3) -> x3.
  // k = 4: x2, the only one left.
  // (Nearest-to-mean would pick x0, x2; herding on the raw features picks x2, x0, x1.)
  const auto features = torch::tensor({{2.0, 0.0}, {0.0, 3.0}, {0.6, 0.8}, {1.2, -1.6}});
  EXPECT_EQ(herding_selection(features, 3), (std::vector<int64_t>{0, 1, 3}));
  EXPECT_EQ(herding_selection(features, 10), (std::vector<int64_t>{0, 1, 3, 2}));  // at most every row, once
  EXPECT_TRUE(herding_selection(features, 0).empty());
}

TEST(Icarl, ReductionKeepsTheFirstMOfEachClassInStoredOrder) {
  // Stored: class 3 (herding order a, b, c), class 5 (d, e, f, g), class 7 (h).
  const auto labels = torch::tensor({3, 3, 3, 5, 5, 5, 5, 7}, torch::kLong);
  EXPECT_EQ(keep_first_per_class(labels, 2), (std::vector<int64_t>{0, 1, 3, 4, 7}));
  EXPECT_EQ(keep_first_per_class(labels, 1), (std::vector<int64_t>{0, 3, 7}));
  EXPECT_TRUE(keep_first_per_class(labels, 0).empty());
  // Per (class, task): a class that two tasks bring (domain-IL) keeps m of each.
  const auto same = torch::tensor({0, 0, 0, 0, 1, 1}, torch::kLong);
  const auto tasks = torch::tensor({0, 0, 1, 1, 0, 1}, torch::kLong);
  EXPECT_EQ(keep_first_per_class(same, 1, tasks), (std::vector<int64_t>{0, 2, 4, 5}));
  EXPECT_EQ(keep_first_per_class(same, 1), (std::vector<int64_t>{0, 4}));
}

TEST(Icarl, ClassMeansAverageNormalisedFeaturesAndRenormalise) {
  // Class 0: (3, 4) -> (0.6, 0.8) and (8, 6) -> (0.8, 0.6); average (0.7, 0.7) -> (1, 1)/sqrt 2.
  // Class 1: (0, 2) -> (0, 1). Class 2: no exemplar.
  const auto features = torch::tensor({{3.0, 4.0}, {0.0, 2.0}, {8.0, 6.0}});
  const auto [means, has_mean] = exemplar_means(features, torch::tensor({0, 1, 0}, torch::kLong), 3);
  const double r = 1.0 / std::sqrt(2.0);
  EXPECT_TRUE(torch::allclose(means, torch::tensor({{r, r}, {0.0, 1.0}, {0.0, 0.0}}).to(means.dtype()), 1e-6, 1e-6));
  EXPECT_TRUE(torch::equal(has_mean, torch::tensor({true, true, false})));
}

TEST(Icarl, NmeLogitsAreMinusTheDistanceToEachClassMean) {
  // phi(3, 4) = (0.6, 0.8): distance to mu_0 = (1, 0) is sqrt(0.16 + 0.64) = sqrt 0.8,
  // to mu_1 = (0, 1) sqrt(0.36 + 0.04) = sqrt 0.4. phi(0, -5) = (0, -1): sqrt 2 and 2.
  // Class 2 has no exemplar.
  const auto features = torch::tensor({{3.0, 4.0}, {0.0, -5.0}});
  const auto means = torch::tensor({{1.0, 0.0}, {0.0, 1.0}, {0.0, 0.0}});
  const auto logits = nme_logits(features, means, torch::tensor({true, true, false}));
  const auto expected =
      torch::tensor({{-std::sqrt(0.8), -std::sqrt(0.4), kNoMeanLogit}, {-std::sqrt(2.0), -2.0, kNoMeanLogit}});
  EXPECT_TRUE(torch::allclose(logits, expected.to(logits.dtype()), 1e-5, 1e-6)) << logits;
  EXPECT_TRUE(torch::equal(logits.argmax(1), torch::tensor({1, 0}, torch::kLong)));  // the nearest mean wins
}

TEST(Icarl, BceUsesTheOldModelsSigmoidsAsTargetsForOldClasses) {
  // Classes 0, 1 old, 2 new (the label), 3 not seen yet (masked out).
  // Old model logits (0, -ln 3) -> targets sigmoid = (0.5, 0.25); class 2: 1.
  const auto labels = torch::tensor({2}, torch::kLong);
  const auto old_logits = torch::tensor({{0.0, -std::log(3.0), 9.0, 9.0}});
  const auto old_classes = torch::tensor({true, true, false, false});
  const auto targets = icarl_targets(labels, old_logits, old_classes, 4);
  EXPECT_TRUE(torch::allclose(targets, torch::tensor({{0.5, 0.25, 1.0, 0.0}}).to(targets.dtype())));
  // Logits (0, ln 3, 0, 5), sigmoids (0.5, 0.75, 0.5, -):
  //   class 0: -(0.5 ln 0.5 + 0.5 ln 0.5) = ln 2
  //   class 1: -(0.25 ln 0.75 + 0.75 ln 0.25) = 0.25 ln(4/3) + 1.5 ln 2 = 2 ln 2 - 0.25 ln 3
  //   class 2: -ln 0.5 = ln 2
  // mean over the 3 seen classes: (4 ln 2 - 0.25 ln 3) / 3 = 0.83265.
  const auto logits = torch::tensor({{0.0, std::log(3.0), 0.0, 5.0}});
  const auto seen = torch::tensor({true, true, true, false});
  const double expected = (4 * std::log(2.0) - 0.25 * std::log(3.0)) / 3;
  EXPECT_NEAR(icarl_bce(logits, targets, seen).item<double>(), expected, 1e-6);
  // Per-row masks: the same row trained on its task's classes {2, 3} only:
  // (ln 2 + BCE(5, 0) = ln(1 + e^5)) / 2.
  const auto row_mask = torch::tensor({{false, false, true, true}});
  EXPECT_NEAR(icarl_bce(logits, targets, row_mask).item<double>(), (std::log(2.0) + std::log1p(std::exp(5.0))) / 2,
              1e-5);
  // First task: no old model, one-hot targets.
  EXPECT_TRUE(torch::equal(icarl_targets(labels, {}, old_classes, 4), torch::tensor({{0.f, 0.f, 1.f, 0.f}})));
}

// Two tasks of the 4-class synthetic data, 6 labeled images per class, small CNN.
class IcarlRun : public testing::MethodRunFixture {
 protected:
  IcarlRun() : MethodRunFixture(6, 0) {}
  std::unique_ptr<Icarl> make_icarl(int64_t buffer_size) {
    auto method = std::make_unique<Icarl>(ReplayOptions{buffer_size, 4});
    method->attach(context_);
    return method;
  }
  // Features of raw images as iCaRL extracts them (plain view, eval mode).
  torch::Tensor features(const torch::Tensor& raw) {
    torch::NoGradGuard no_grad;
    context_.model->eval();
    auto f = context_.model->features(tasks_.views(raw, View::kPlain, 0));
    context_.model->train();
    return f;
  }
  // Ids of class c in the memory, in slot order.
  static std::vector<int64_t> ids_of_class(const ReplayBuffer& memory, int64_t c) {
    const auto all = memory.all();
    const auto ids = all.ids.index_select(0, all.labels.eq(c).nonzero().flatten());
    return std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
  }
  static RunState at_task(int task) {
    RunState s;
    s.num_tasks = 2;
    s.task = task;
    return s;
  }
};

TEST_F(IcarlRun, TaskEndsHerdNewClassesAndKeepTheHerdingPrefixOfOldOnes) {
  auto icarl = make_icarl(8);
  icarl->after_task(at_task(0));
  // m = 8 / 2 classes = 4 exemplars per class, in the herding order of the class's labeled images.
  ASSERT_EQ(icarl->memory().size(), 8);
  const auto set = tasks_.labeled_set(0);
  std::map<int64_t, std::vector<int64_t>> after_first;
  for (int64_t c : tasks_.classes(0)) {
    const auto rows = set.labels.eq(c).nonzero().flatten();
    const auto order = herding_selection(features(tasks_.raw_images(set.ids.index_select(0, rows))), 4);
    std::vector<int64_t> expected;
    for (int64_t i : order) expected.push_back(set.ids[rows[i].item<int64_t>()].item<int64_t>());
    after_first[c] = ids_of_class(icarl->memory(), c);
    EXPECT_EQ(after_first[c], expected) << "class " << c;
  }
  EXPECT_TRUE(icarl->has_teacher());
  EXPECT_TRUE(icarl->has_class_means());

  // The model moves (as training would) so re-herding would reorder; the reduction must not.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : context_.model->parameters()) p.add_(torch::randn_like(p) * 0.5);
  }
  icarl->after_task(at_task(1));
  // m = 8 / 4 classes = 2: old classes keep the first two of their herding order.
  EXPECT_EQ(icarl->memory().size(), 8);
  for (int64_t c : tasks_.classes(0))
    EXPECT_EQ(ids_of_class(icarl->memory(), c),
              std::vector<int64_t>(after_first[c].begin(), after_first[c].begin() + 2));
  for (int64_t c : tasks_.classes(1)) EXPECT_EQ(ids_of_class(icarl->memory(), c).size(), 2u);
  EXPECT_GT(icarl->stats().front().second, 0.0);  // buffer_bytes
}

TEST_F(IcarlRun, PredictUsesNetworkLogitsUntilTheFirstTaskEndThenNearestMeanOfExemplars) {
  auto icarl = make_icarl(8);
  const auto images = tasks_.eval_batch(0, 0, 8).images;
  torch::NoGradGuard no_grad;
  context_.model->eval();
  EXPECT_TRUE(torch::equal(icarl->predict(images), context_.model->forward(images)));
  context_.model->train();
  icarl->after_task(at_task(0));
  const auto all = icarl->memory().all();
  const auto [means, has_mean] = exemplar_means(features(all.images), all.labels, 4);
  context_.model->eval();
  const auto logits = icarl->predict(images);
  EXPECT_TRUE(torch::allclose(logits, nme_logits(context_.model->features(images), means, has_mean), 1e-5, 1e-6));
  for (int64_t c : tasks_.classes(0)) {
    EXPECT_LE(logits.select(1, c).max().item<double>(), 0.0);
    EXPECT_GE(logits.select(1, c).min().item<double>(), -2.0);
  }
  for (int64_t c : tasks_.classes(1)) EXPECT_EQ(logits.select(1, c).max().item<double>(), kNoMeanLogit);
}

TEST_F(IcarlRun, SaveAndLoadRestoreMemoryMeansAndTeacher) {
  auto icarl = make_icarl(8);
  icarl->after_task(at_task(0));
  const std::string bytes = StateVisitor::to_bytes(*icarl);
  auto restored = make_icarl(8);
  ASSERT_FALSE(restored->has_teacher());
  StateVisitor::from_bytes(*restored, bytes, torch::kCPU);
  EXPECT_TRUE(torch::equal(restored->memory().all().ids, icarl->memory().all().ids));
  EXPECT_TRUE(restored->has_teacher());
  const auto images = tasks_.eval_batch(0, 0, 8).images;
  torch::NoGradGuard no_grad;
  context_.model->eval();
  EXPECT_TRUE(torch::equal(restored->predict(images), icarl->predict(images)));
}

}  // namespace
}  // namespace sscl
