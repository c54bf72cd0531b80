#include "tasks/task_split.h"

#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "tests/tasks/synthetic_data.h"

namespace sscl {
namespace {

TaskSplitOptions options(int tasks, int64_t k, std::string order = "ascending") {
  TaskSplitOptions o;
  o.num_tasks = tasks;
  o.labels_per_class = k;
  o.class_order = std::move(order);
  return o;
}

TEST(TaskSplit, DisjointClassesAndExactlyKLabeledPerClass) {
  const auto data = testing::synthetic_splits(10, 20);
  const auto tasks = build_task_split(data, options(5, 3), 11);
  ASSERT_EQ(tasks.size(), 5u);
  std::set<int64_t> all_classes;
  const auto labels = data.train->labels;
  for (size_t t = 0; t < tasks.size(); ++t) {
    EXPECT_EQ(tasks[t].classes, (std::vector<int64_t>{int64_t(2 * t), int64_t(2 * t + 1)}));
    for (int64_t c : tasks[t].classes) EXPECT_TRUE(all_classes.insert(c).second);
    std::map<int64_t, int> per_class;
    for (int64_t id : tasks[t].labeled) ++per_class[labels[id].item<int64_t>()];
    EXPECT_EQ(per_class.size(), 2u);
    for (auto [c, n] : per_class) EXPECT_EQ(n, 3) << "class " << c;
    // Labeled and unlabeled partition the task's 40 training images.
    std::set<int64_t> ids(tasks[t].labeled.begin(), tasks[t].labeled.end());
    for (int64_t id : tasks[t].unlabeled) {
      EXPECT_TRUE(ids.insert(id).second) << "image " << id << " is both labeled and unlabeled";
      EXPECT_TRUE(labels[id].item<int64_t>() / 2 == int64_t(t));
    }
    EXPECT_EQ(ids.size(), 40u);
    EXPECT_EQ(tasks[t].eval.size(), 6u);
  }
}

TEST(TaskSplit, SameSeedSameSplitOtherSeedOtherDraw) {
  const auto data = testing::synthetic_splits(10, 50);
  const auto a = build_task_split(data, options(5, 5), 1);
  const auto b = build_task_split(data, options(5, 5), 1);
  const auto c = build_task_split(data, options(5, 5), 2);
  bool differs = false;
  for (size_t t = 0; t < a.size(); ++t) {
    EXPECT_EQ(a[t].labeled, b[t].labeled);
    differs |= a[t].labeled != c[t].labeled;
  }
  EXPECT_TRUE(differs);
}

TEST(TaskSplit, RandomClassOrderIsASeededPermutation) {
  const auto data = testing::synthetic_splits(10, 5);
  const auto a = build_task_split(data, options(5, 1, "random"), 4);
  const auto b = build_task_split(data, options(5, 1, "random"), 4);
  std::vector<int64_t> order;
  for (size_t t = 0; t < a.size(); ++t) {
    EXPECT_EQ(a[t].classes, b[t].classes);
    order.insert(order.end(), a[t].classes.begin(), a[t].classes.end());
  }
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_NE(order, sorted);
}

TEST(TaskSplit, AllLabeledLeavesNoUnlabeledPool) {
  const auto tasks = build_task_split(testing::synthetic_splits(4, 10), options(2, -1), 0);
  EXPECT_EQ(tasks[0].labeled.size(), 20u);
  EXPECT_TRUE(tasks[0].unlabeled.empty());
}

TEST(TaskSplit, ErrorsNameTheKey) {
  const auto data = testing::synthetic_splits(10, 4);
  try {
    build_task_split(data, options(3, 1), 0);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "data.num_tasks = 3 does not divide the 10 classes of synthetic");
  }
  try {
    build_task_split(data, options(5, 5), 0);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("data.labels_per_class = 5 but class 0"), std::string::npos);
  }
}

}  // namespace
}  // namespace sscl
