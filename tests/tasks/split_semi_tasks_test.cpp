#include "tasks/split_semi_tasks.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "tests/tasks/synthetic_data.h"

namespace sscl {
namespace {

SplitSemiOptions options(int workers, bool prefetch) {
  SplitSemiOptions o;
  o.split.num_tasks = 2;
  o.split.labels_per_class = 4;
  o.batch_size = 3;
  o.uratio = 5;
  o.workers = workers;
  o.prefetch = prefetch;
  return o;
}

void expect_same(const TrainBatch& a, const TrainBatch& b) {
  EXPECT_TRUE(torch::equal(a.labeled.images, b.labeled.images));
  EXPECT_TRUE(torch::equal(a.labeled.labels, b.labeled.labels));
  EXPECT_TRUE(torch::equal(a.unlabeled.weak, b.unlabeled.weak));
  EXPECT_TRUE(torch::equal(a.unlabeled.strong, b.unlabeled.strong));
  EXPECT_TRUE(torch::equal(a.unlabeled.indices, b.unlabeled.indices));
}

TEST(SplitSemiTasks, BatchShapesAndContents) {
  SplitSemiTasks tasks(options(1, false), testing::synthetic_splits(4, 30, 3, 8), 5);
  const auto b = tasks.train_batch(1, 0);
  EXPECT_EQ(b.labeled.images.sizes(), (std::vector<int64_t>{3, 3, 8, 8}));
  EXPECT_EQ(b.unlabeled.weak.sizes(), (std::vector<int64_t>{15, 3, 8, 8}));
  EXPECT_EQ(b.unlabeled.strong.sizes(), (std::vector<int64_t>{15, 3, 8, 8}));
  const std::set<int64_t> labeled(tasks.indices(1).labeled.begin(), tasks.indices(1).labeled.end());
  const std::set<int64_t> unlabeled(tasks.indices(1).unlabeled.begin(), tasks.indices(1).unlabeled.end());
  for (int64_t i = 0; i < 3; ++i) EXPECT_TRUE(labeled.count(b.labeled.indices[i].item<int64_t>()));
  std::set<int64_t> drawn;
  for (int64_t i = 0; i < 15; ++i) {
    const int64_t id = b.unlabeled.indices[i].item<int64_t>();
    EXPECT_TRUE(unlabeled.count(id));
    drawn.insert(id);
  }
  EXPECT_EQ(drawn.size(), 15u) << "unlabeled images of one batch are distinct";
  for (int64_t i = 0; i < 3; ++i) EXPECT_TRUE(b.labeled.labels[i].item<int64_t>() >= 2);
  // The weak and the strong view of the same image differ (independent crops + Cutout).
  EXPECT_FALSE(torch::equal(b.unlabeled.weak, b.unlabeled.strong));
}

TEST(SplitSemiTasks, BatchesAreBitIdenticalWhateverTheThreadCount) {
  const auto data = testing::synthetic_splits(4, 30, 3, 8);
  SplitSemiTasks one(options(1, false), data, 9);
  SplitSemiTasks many(options(4, true), data, 9);
  for (int task = 0; task < 2; ++task)
    for (int64_t iter = 0; iter < 5; ++iter) expect_same(one.train_batch(task, iter), many.train_batch(task, iter));
}

TEST(SplitSemiTasks, PrefetchedBatchEqualsADirectBuildAndOutOfOrderRequestsWork) {
  SplitSemiTasks tasks(options(2, true), testing::synthetic_splits(4, 30), 1);
  const auto first = tasks.train_batch(0, 0);  // starts prefetching (0, 1)
  expect_same(tasks.train_batch(0, 1), tasks.build_batch(0, 1));
  expect_same(tasks.train_batch(1, 7), tasks.build_batch(1, 7));  // not the guess
  expect_same(first, tasks.build_batch(0, 0));
  EXPECT_FALSE(torch::equal(tasks.build_batch(0, 2).labeled.images, tasks.build_batch(0, 3).labeled.images));
}

TEST(SplitSemiTasks, UnlabeledViewsAreSkippedWhenNotWanted) {
  SplitSemiTasks tasks(options(1, false), testing::synthetic_splits(4, 30), 1);
  tasks.set_load_unlabeled(false);
  const auto b = tasks.train_batch(0, 0);
  EXPECT_TRUE(b.unlabeled.empty());
  EXPECT_EQ(b.labeled.images.size(0), 3);
}

TEST(SplitSemiTasks, EvalBatchesCoverTheTaskTestImagesNormalised) {
  const auto data = testing::synthetic_splits(4, 30);
  SplitSemiTasks tasks(options(1, false), data, 1);
  ASSERT_EQ(tasks.num_eval_batches(0, 4), 2);  // 6 test images of classes {0, 1}
  const auto b0 = tasks.eval_batch(0, 0, 4), b1 = tasks.eval_batch(0, 1, 4);
  EXPECT_EQ(b0.images.size(0) + b1.images.size(0), 6);
  const int64_t id = tasks.indices(0).eval[0];
  const auto expected = (data.test->images[id].permute({2, 0, 1}).to(torch::kFloat) - 127.5) / 64.0;
  EXPECT_TRUE(torch::allclose(b0.images[0], expected));
  EXPECT_EQ(b0.labels[0].item<int64_t>(), data.test->labels[id].item<int64_t>());
}

}  // namespace
}  // namespace sscl
