#include "tasks/split_semi_tasks.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "core/config.h"
#include "core/error.h"
#include "tests/tasks/synthetic_data.h"
#include "tests/test_util.h"

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

TEST(SplitSemiTasks, TellsItsBatchSizeAndDescribesItself) {
  SplitSemiOptions o = options(2, false);
  o.dataset = "synthetic";
  SplitSemiTasks tasks(o, testing::synthetic_splits(4, 30), 1);
  EXPECT_EQ(tasks.batch_size(), 3);
  const std::string data_line =
      "synthetic: 2 tasks of 2 classes, 4 per class labeled, uratio 5, batch 3, 2 loader worker(s)";
  EXPECT_EQ(tasks.describe(false), std::vector<std::string>{data_line});
  EXPECT_EQ(tasks.describe(true), (std::vector<std::string>{data_line, "strong view: " + o.augment.describe_strong()}));
  EXPECT_EQ(o.augment.describe_strong(),
            "crop (padding 4), flip (p 0.5), RandAugment (reference: 3 ops, level 7 of 10 std 0.5, p 0.5), Cutout 5x5");
  o.split.labels_per_class = -1;
  o.workers = 1;
  SplitSemiTasks all(o, testing::synthetic_splits(4, 30), 1);
  EXPECT_EQ(all.describe(false).at(0),
            "synthetic: 2 tasks of 2 classes, every image labeled, uratio 5, batch 3, 1 loader worker(s)");
}

TEST(SplitSemiTasks, HidesTheTrainingLabelsBehindHiddenLabels) {
  const auto data = testing::synthetic_splits(4, 30);
  SplitSemiTasks tasks(options(1, false), data, 1);
  const TaskData& view = tasks;
  const auto* hidden = dynamic_cast<const HiddenLabels*>(&view);
  ASSERT_NE(hidden, nullptr);
  EXPECT_TRUE(torch::equal(hidden->hidden_train_labels(), data.train->labels));
}

// The "split_semi" entry of TaskSequenceRegistry, built from [data] as the run builder does.
class SplitSemiRegistration : public ::testing::Test {
 protected:
  void SetUp() override { testing::write_tiny_fashion_mnist(dir_.path(), 6, 2); }
  std::string data_section(const std::string& extra = "") const {
    return "[data]\ndataset = \"fashion_mnist\"\nroot = \"" + dir_.path().string() +
           "\"\nnum_tasks = 5\nlabels_per_class = 2\nbatch_size = 4\nuratio = 1\nprefetch = false\n" + extra;
  }
  std::unique_ptr<TaskData> build(const Config& config) const {
    return TaskSequenceRegistry::get().at("split_semi")(config.section("data"), 11);
  }
  std::string error_of(const std::string& extra) const {
    try {
      build(Config::from_string(data_section(extra), "data.toml"));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  }
  testing::TempDir dir_;
};

TEST_F(SplitSemiRegistration, BuildsTheTasksFromTheDataSection) {
  EXPECT_FALSE(TaskSequenceRegistry::get().info("split_semi").summary.empty());
  const Config config = Config::from_string(data_section(), "data.toml");
  const auto data = build(config);
  EXPECT_NO_THROW(config.ensure_all_used());
  ASSERT_NE(dynamic_cast<SplitSemiTasks*>(data.get()), nullptr);
  EXPECT_EQ(data->num_tasks(), 5);
  EXPECT_EQ(data->num_classes(), 10);
  EXPECT_EQ(data->batch_size(), 4);
  EXPECT_EQ(data->labeled_set(0).ids.numel(), 4);  // 2 classes x 2 labels
  // The same as building it by hand with the same seed.
  SplitSemiOptions o;
  o.root = dir_.path().string();
  o.split.num_tasks = 5;
  o.split.labels_per_class = 2;
  o.batch_size = 4;
  o.uratio = 1;
  o.prefetch = false;
  SplitSemiTasks by_hand(o, DatasetRegistry::get().at("fashion_mnist")(o.root), 11);
  const auto a = data->train_batch(1, 3), b = by_hand.train_batch(1, 3);
  EXPECT_TRUE(torch::equal(a.labeled.images, b.labeled.images));
  EXPECT_TRUE(torch::equal(a.unlabeled.strong, b.unlabeled.strong));
  EXPECT_EQ(data->describe(true), by_hand.describe(true));
  // The resolved config names the defaults that took effect.
  const std::string resolved = config.to_toml();
  for (const char* key :
       {"class_order = \"ascending\"", "workers = 1", "crop_padding = 4", "variant = \"reference\"", "num_ops = 3"})
    EXPECT_NE(resolved.find(key), std::string::npos) << key << " in\n" << resolved;
}

TEST_F(SplitSemiRegistration, ErrorsNameTheirKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"workers = 0\n", "data.workers"},
      {"std = [0.0]\n", "data.std"},
      {"resize = [8]\n", "data.resize"},
      {"class_order = \"shuffled\"\n", "data.class_order"},
      {"[data.augment]\nhflip = 2.0\n", "data.augment.hflip"},
      {"[data.augment.randaugment]\nvariant = \"fixmatch\"\nmagnitude = 5\n", "data.augment.randaugment.magnitude"},
  };
  for (const auto& [extra, key] : cases) {
    const std::string error = error_of(extra);
    EXPECT_NE(error.find("'" + key + "'"), std::string::npos) << extra << ": " << error;
  }
  const auto replace = [&](const std::string& from, const std::string& to) {
    std::string text = data_section();
    text.replace(text.find(from), from.size(), to);
    try {
      build(Config::from_string(text, "data.toml"));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(replace("num_tasks = 5", "num_tasks = 0").find("'data.num_tasks'"), std::string::npos);
  EXPECT_NE(replace("labels_per_class = 2", "labels_per_class = 0").find("'data.labels_per_class'"), std::string::npos);
  EXPECT_NE(replace("batch_size = 4", "batch_size = 0").find("'data.batch_size'"), std::string::npos);
  EXPECT_NE(replace("uratio = 1", "uratio = -1").find("'data.uratio'"), std::string::npos);
  // An unknown key is left unread: the run's ensure_all_used() names it.
  const Config typo = Config::from_string(data_section("label_per_class = 3\n"), "data.toml");
  build(typo);
  try {
    typo.ensure_all_used();
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("data.label_per_class"), std::string::npos) << e.what();
  }
  // An unknown dataset names the known ones.
  std::string unknown = data_section();
  unknown.replace(unknown.find("\"fashion_mnist\""), 15, "\"nope\"");
  EXPECT_THROW(build(Config::from_string(unknown, "data.toml")), RegistryError);
}

}  // namespace
}  // namespace sscl
