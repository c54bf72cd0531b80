#include "tasks/task_split.h"

#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <set>

#include "core/error.h"
#include "tests/tasks/synthetic_data.h"

namespace sscl {
namespace {

TaskSplitOptions options(int tasks, int64_t k, std::string order = "ascending") {
  TaskSplitOptions o;
  o.num_tasks = tasks;
  o.labels_per_class = {k};
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
  auto sizes = options(5, 1);
  sizes.num_tasks.reset();
  sizes.classes_per_task = {4, 4, 4};
  try {
    build_task_split(data, sizes, 0);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "data.classes_per_task = [4, 4, 4] sums to 12, not the 10 classes of synthetic");
  }
  auto budgets = options(5, 1);
  budgets.labels_per_class = {1, 1};
  try {
    build_task_split(data, budgets, 0);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "data.labels_per_class lists 2 budgets but there are 5 tasks; give one number or one per task");
  }
  auto order = options(5, 1);
  order.class_order_list = {0, 1, 2, 3, 4, 5, 6, 7, 8, 8};
  try {
    build_task_split(data, order, 0);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "data.class_order = [0, 1, 2, 3, 4, 5, 6, 7, 8, 8] must list every class id 0..9 of synthetic exactly "
                 "once");
  }
  auto first = options(4, 1);
  first.first_task_classes = 5;
  try {
    build_task_split(data, first, 0);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "data.first_task_classes = 5 leaves 5 of the 10 classes of synthetic, which do not split equally into "
                 "data.num_tasks - 1 = 3 tasks");
  }
  try {
    build_task_split(data, options(5, 5), 0);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("data.labels_per_class = 5 but class 0"), std::string::npos);
  }
}

// Labeled images of each class in `task`.
std::map<int64_t, int64_t> labeled_per_class(const DatasetSplits& data, const TaskIndices& task) {
  std::map<int64_t, int64_t> out;
  for (int64_t id : task.labeled) ++out[data.train->labels[id].item<int64_t>()];
  return out;
}

TEST(TaskSplit, UnequalTasksFromClassesPerTaskOrFirstTaskClasses) {
  const auto data = testing::synthetic_splits(10, 4);
  TaskSplitOptions o = options(5, 1);
  o.num_tasks.reset();
  o.classes_per_task = {4, 2, 2, 2};
  auto tasks = build_task_split(data, o, 0);
  ASSERT_EQ(tasks.size(), 4u);
  EXPECT_EQ(o.tasks(), 4);
  EXPECT_EQ(tasks[0].classes, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(tasks[3].classes, (std::vector<int64_t>{8, 9}));
  EXPECT_EQ(tasks[0].eval.size(), 12u);  // 4 classes x 3 test images
  // B4-Inc2: a first task of 4 classes, the other 6 in 3 equal tasks.
  TaskSplitOptions b = options(4, 1);
  b.first_task_classes = 4;
  const auto first = build_task_split(data, b, 0);
  for (size_t t = 0; t < 4; ++t) EXPECT_EQ(first[t].classes, tasks[t].classes) << "task " << t;
}

TEST(TaskSplit, ExplicitClassOrderIsFollowed) {
  const auto data = testing::synthetic_splits(6, 4);
  TaskSplitOptions o = options(3, 1);
  o.class_order_list = {5, 0, 3, 1, 4, 2};
  const auto tasks = build_task_split(data, o, 0);
  EXPECT_EQ(tasks[0].classes, (std::vector<int64_t>{5, 0}));
  EXPECT_EQ(tasks[1].classes, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(tasks[2].classes, (std::vector<int64_t>{4, 2}));
}

TEST(TaskSplit, LabelBudgetsPerTaskAndAsAFraction) {
  const auto data = testing::synthetic_splits(6, 20);
  TaskSplitOptions o = options(3, 1);
  o.labels_per_class = {3, -1, 1};
  const auto tasks = build_task_split(data, o, 0);
  EXPECT_EQ(labeled_per_class(data, tasks[0]), (std::map<int64_t, int64_t>{{0, 3}, {1, 3}}));
  EXPECT_EQ(labeled_per_class(data, tasks[1]), (std::map<int64_t, int64_t>{{2, 20}, {3, 20}}));
  EXPECT_TRUE(tasks[1].unlabeled.empty());
  EXPECT_EQ(labeled_per_class(data, tasks[2]), (std::map<int64_t, int64_t>{{4, 1}, {5, 1}}));
  EXPECT_EQ(tasks[2].unlabeled.size(), 38u);
  // A share of each class: 0.25 of 20 = 5; a tiny share still labels one image.
  TaskSplitOptions f = options(3, 1);
  f.labels_fraction = 0.25;
  for (const auto& task : build_task_split(data, f, 0))
    for (auto [c, n] : labeled_per_class(data, task)) EXPECT_EQ(n, 5) << "class " << c;
  f.labels_fraction = 0.001;
  for (auto [c, n] : labeled_per_class(data, build_task_split(data, f, 0)[0])) EXPECT_EQ(n, 1) << "class " << c;
  f.labels_fraction = 1.0;
  EXPECT_TRUE(build_task_split(data, f, 0)[0].unlabeled.empty());
}

TEST(TaskSplit, DomainTasksHoldEveryClassAndTheirDomainsImagesOnly) {
  // Two domains of 4 classes x 10 training images (ids 0..39 and 40..79) and 4 x 3
  // test images each (0..11 and 12..23).
  auto one = testing::synthetic_splits(4, 10);
  auto two = testing::synthetic_splits(4, 10);
  DatasetSplits data = one;
  auto train = std::make_shared<ImageDataset>(*one.train), test = std::make_shared<ImageDataset>(*one.test);
  train->images = torch::cat({one.train->images, two.train->images});
  train->labels = torch::cat({one.train->labels, two.train->labels});
  test->images = torch::cat({one.test->images, two.test->images});
  test->labels = torch::cat({one.test->labels, two.test->labels});
  data.train = train;
  data.test = test;
  const std::vector<DomainRange> domains = {{0, 40, 0, 12}, {40, 80, 12, 24}};
  TaskSplitOptions o = options(2, 2);
  const auto tasks = build_domain_split(data, domains, o, 3);
  ASSERT_EQ(tasks.size(), 2u);
  for (size_t t = 0; t < 2; ++t) {
    EXPECT_EQ(tasks[t].classes, (std::vector<int64_t>{0, 1, 2, 3}));
    EXPECT_EQ(labeled_per_class(data, tasks[t]), (std::map<int64_t, int64_t>{{0, 2}, {1, 2}, {2, 2}, {3, 2}}));
    EXPECT_EQ(tasks[t].labeled.size() + tasks[t].unlabeled.size(), 40u);
    for (int64_t id : tasks[t].labeled) EXPECT_TRUE(id >= domains[t].train_begin && id < domains[t].train_end);
    for (int64_t id : tasks[t].unlabeled) EXPECT_TRUE(id >= domains[t].train_begin && id < domains[t].train_end);
    EXPECT_EQ(tasks[t].eval.size(), 12u);
    for (int64_t id : tasks[t].eval) EXPECT_TRUE(id >= domains[t].test_begin && id < domains[t].test_end);
  }
  // Unequal tasks have no meaning here.
  o.classes_per_task = {2, 2};
  EXPECT_THROW(build_domain_split(data, domains, o, 3), ConfigError);
}

}  // namespace
}  // namespace sscl
