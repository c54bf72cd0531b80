#include "tasks/split_semi_tasks.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <set>
#include <thread>

#include "core/config.h"
#include "core/error.h"
#include "tests/tasks/synthetic_data.h"
#include "tests/test_util.h"

namespace sscl {
namespace {

SplitSemiOptions options(int workers, bool prefetch) {
  SplitSemiOptions o;
  o.split.num_tasks = 2;
  o.split.labels_per_class = {4};
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

TEST(SplitSemiTasks, AutoWorkersAreOneOnACpuAndTheSpareCoresForAGpu) {
  EXPECT_EQ(resolve_workers(0, c10::Device(c10::kCPU)), 1);
  EXPECT_EQ(resolve_workers(3, c10::Device(c10::kCPU)), 3);
  EXPECT_EQ(resolve_workers(3, c10::Device(c10::kCUDA, 0)), 3);
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  EXPECT_EQ(resolve_workers(0, c10::Device(c10::kCUDA, 0)), std::clamp(cores - 1, 1, 8));
  SplitSemiOptions o = options(0, true);
  SplitSemiTasks tasks(o, testing::synthetic_splits(4, 30), 1);
  tasks.set_device(c10::Device(c10::kCPU));
  EXPECT_EQ(tasks.workers(), 1);
  EXPECT_NE(tasks.describe(false).at(0).find("1 loader worker(s) (auto)"), std::string::npos);
  // On a CPU the batches stay where the loader built them, as a direct build makes them.
  expect_same(tasks.train_batch(0, 3), tasks.build_batch(0, 3));
}

TEST(DeviceStager, IsANoOpOnACpu) {
  DeviceStager stager{c10::Device(c10::kCPU)};
  EXPECT_FALSE(stager.active());
  TrainBatch batch;
  batch.labeled.images = torch::ones({2, 1, 2, 2});
  const auto* data = batch.labeled.images.data_ptr();
  TrainBatch staged = stager.stage(std::move(batch));
  stager.adopt(staged);
  EXPECT_EQ(staged.labeled.images.data_ptr(), data);
}

TEST(SplitSemiTasks, TellsItsBatchSizeAndDescribesItself) {
  SplitSemiOptions o = options(2, false);
  o.dataset = "synthetic";
  SplitSemiTasks tasks(o, testing::synthetic_splits(4, 30), 1);
  EXPECT_EQ(tasks.batch_size(), 3);
  const std::string data_line =
      "synthetic: 2 tasks of 2 classes, 4 per class labeled, uratio 5, batch 3, 2 loader worker(s)";
  const std::string sampler_line = "sampler: uniform (each batch an independent draw)";
  EXPECT_EQ(tasks.describe(false), (std::vector<std::string>{data_line, sampler_line}));
  EXPECT_EQ(tasks.describe(true),
            (std::vector<std::string>{data_line, sampler_line, "strong view: " + o.augment.describe_strong()}));
  EXPECT_EQ(o.augment.describe_strong(),
            "crop (padding 4), flip (p 0.5), RandAugment (reference: 3 ops, level 7 of 10 std 0.5, p 0.5), Cutout 5x5");
  o.split.labels_per_class = {-1};
  o.workers = 1;
  SplitSemiTasks all(o, testing::synthetic_splits(4, 30), 1);
  EXPECT_EQ(all.describe(false).at(0),
            "synthetic: 2 tasks of 2 classes, every image labeled, uratio 5, batch 3, 1 loader worker(s)");
}

// The labeled (or unlabeled) ids of batches first..last of task 0, in order.
std::vector<int64_t> ids_of(SplitSemiTasks& tasks, int64_t first, int64_t last, bool unlabeled = false) {
  std::vector<int64_t> out;
  for (int64_t iter = first; iter <= last; ++iter) {
    const auto b = tasks.train_batch(0, iter);
    const auto ids = unlabeled ? b.unlabeled.indices : b.labeled.indices;
    for (int64_t i = 0; i < ids.numel(); ++i) out.push_back(ids[i].item<int64_t>());
  }
  return out;
}

std::vector<int64_t> sorted(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

SplitSemiOptions epoch_options(int workers) {
  SplitSemiOptions o = options(workers, false);
  o.sampler = "epoch";
  o.split.labels_per_class = {5};  // 10 labeled images a task: batches of 3, 3, 3, 1
  return o;
}

TEST(SplitSemiTasks, EpochSamplerShowsEveryImageExactlyOncePerEpoch) {
  const auto data = testing::synthetic_splits(4, 30);
  SplitSemiTasks tasks(epoch_options(1), data, 2);
  EXPECT_TRUE(tasks.epoch_sampler());
  const auto& labeled = tasks.indices(0).labeled;
  EXPECT_EQ(tasks.iters_for_epochs(0, 1.0), 4);
  EXPECT_EQ(tasks.iters_for_epochs(0, 2.5), 10);
  EXPECT_EQ(tasks.train_batch(0, 3).labeled.images.size(0), 1);  // the last partial batch is kept
  const auto first = ids_of(tasks, 0, 3), second = ids_of(tasks, 4, 7);
  EXPECT_EQ(sorted(first), labeled);
  EXPECT_EQ(sorted(second), labeled);
  EXPECT_NE(first, second) << "each epoch is a permutation of its own";
  EXPECT_NE(first, labeled) << "shuffled, not in id order";
  // The labels travel with their images.
  const auto b = tasks.train_batch(0, 1);
  for (int64_t i = 0; i < b.labeled.labels.numel(); ++i)
    EXPECT_EQ(b.labeled.labels[i].item<int64_t>(),
              data.train->labels[b.labeled.indices[i].item<int64_t>()].item<int64_t>());
  // The unlabeled pool (2 classes x 25 = 50 images, batches of 15) is an epoch stream
  // of its own: 15 + 15 + 15 + 5.
  const auto& pool = tasks.indices(0).unlabeled;
  ASSERT_EQ(pool.size(), 50u);
  EXPECT_EQ(sorted(ids_of(tasks, 0, 3, true)), pool);
  EXPECT_EQ(sorted(ids_of(tasks, 4, 7, true)), pool);
}

TEST(SplitSemiTasks, EpochSamplerDropLastDropsThePartialBatch) {
  SplitSemiOptions o = epoch_options(1);
  o.drop_last = true;
  SplitSemiTasks tasks(o, testing::synthetic_splits(4, 30), 2);
  EXPECT_EQ(tasks.iters_for_epochs(0, 1.0), 3);
  const auto epoch = ids_of(tasks, 0, 2);
  EXPECT_EQ(epoch.size(), 9u);
  EXPECT_EQ(std::set<int64_t>(epoch.begin(), epoch.end()).size(), 9u);
  EXPECT_EQ(tasks.train_batch(0, 3).labeled.images.size(0), 3) << "iteration 3 starts the second epoch";
  // An epoch with no full batch is refused, naming the key.
  o.batch_size = 11;
  SplitSemiTasks small(o, testing::synthetic_splits(4, 30), 2);
  try {
    small.iters_for_epochs(0, 1.0);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("data.drop_last: task 0 has 10 labeled images"), std::string::npos)
        << e.what();
  }
}

TEST(SplitSemiTasks, EpochBatchesAreTheSameForAnyThreadCountAndAfterAResume) {
  const auto data = testing::synthetic_splits(4, 30, 3, 8);
  SplitSemiTasks one(epoch_options(1), data, 9);
  SplitSemiOptions threaded = epoch_options(4);
  threaded.prefetch = true;
  SplitSemiTasks many(threaded, data, 9);
  for (int task = 0; task < 2; ++task)
    for (int64_t iter = 0; iter < 6; ++iter) expect_same(one.train_batch(task, iter), many.train_batch(task, iter));
  // A resumed run builds a new sequence and asks for the batch after the last one
  // it trained: mid-epoch, it is the batch an uninterrupted run would have had.
  SplitSemiTasks resumed(epoch_options(1), data, 9);
  expect_same(resumed.train_batch(1, 6), one.train_batch(1, 6));
}

TEST(SplitSemiTasks, AutoSamplerFollowsAnEpochSchedule) {
  SplitSemiOptions o = options(1, false);
  SplitSemiTasks plain(o, testing::synthetic_splits(4, 30), 1);
  EXPECT_FALSE(plain.epoch_sampler());
  EXPECT_EQ(plain.iters_for_epochs(0, 1.0), 3);  // ceil(8 / 3) draws
  SplitSemiTasks scheduled(o, testing::synthetic_splits(4, 30), 1);
  scheduled.schedule_in_epochs();
  EXPECT_TRUE(scheduled.epoch_sampler());
  o.sampler = "uniform";
  SplitSemiTasks uniform(o, testing::synthetic_splits(4, 30), 1);
  uniform.schedule_in_epochs();
  EXPECT_FALSE(uniform.epoch_sampler()) << "an explicit uniform sampler stays";
  EXPECT_EQ(scheduled.describe(false).at(1),
            "sampler: epoch (each epoch a seeded permutation of the task's images, last partial batch kept)");
}

SplitSemiOptions domain_options(const std::string& kind, std::vector<double> rotations = {}) {
  SplitSemiOptions o = options(1, false);
  o.split.num_tasks = 3;
  o.domain.kind = kind;
  o.domain.rotations = std::move(rotations);
  return o;
}

TEST(SplitSemiTasks, RotatedDomainsHoldEveryClassUnderTheirAngle) {
  const auto data = testing::synthetic_splits(4, 30);
  SplitSemiTasks tasks(domain_options("rotated", {0.0, 90.0, 180.0}), data, 1);
  ASSERT_EQ(tasks.num_tasks(), 3);
  EXPECT_TRUE(tasks.domain_incremental());
  for (int t = 0; t < 3; ++t) EXPECT_EQ(tasks.classes(t), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(tasks.labeled_set(2).ids.numel(), 16);  // 4 per class in each domain
  // Task t's test image i is test image i turned by t * 90 degrees.
  const auto& test = *tasks.data().test;
  ASSERT_EQ(test.size(), 3 * data.test->size());
  const auto original = data.test->images[5].squeeze(2);
  EXPECT_TRUE(torch::equal(test.images[5].squeeze(2), original));
  EXPECT_TRUE(torch::equal(test.images[data.test->size() + 5].squeeze(2), torch::rot90(original, 1, {0, 1})));
  EXPECT_TRUE(torch::equal(test.images[2 * data.test->size() + 5].squeeze(2), torch::rot90(original, 2, {0, 1})));
  EXPECT_TRUE(torch::equal(test.labels.narrow(0, data.test->size(), data.test->size()), data.test->labels));
  // Each task evaluates on its own domain's test images only.
  for (int64_t id : tasks.indices(1).eval) EXPECT_TRUE(id >= data.test->size() && id < 2 * data.test->size());
  EXPECT_EQ(tasks.describe(false).at(2),
            "domains (one per task, every class in each): rotated 0 deg, rotated 90 deg, "
            "rotated 180 deg");
  // Evenly spaced without a list: 0, 60, 120.
  SplitSemiTasks even(domain_options("rotated"), data, 1);
  EXPECT_EQ(even.data().domain_names, (std::vector<std::string>{"rotated 0 deg", "rotated 60 deg", "rotated 120 deg"}));
  EXPECT_THROW(SplitSemiTasks(domain_options("rotated", {0.0, 90.0}), data, 1), ConfigError);
}

TEST(SplitSemiTasks, PermutedDomainsShuffleThePixelsBySeed) {
  const auto data = testing::synthetic_splits(4, 30);
  SplitSemiTasks a(domain_options("permuted"), data, 1), b(domain_options("permuted"), data, 1);
  SplitSemiTasks other(domain_options("permuted"), data, 2);
  const int64_t n = data.train->size();
  EXPECT_TRUE(torch::equal(a.data().train->images, b.data().train->images)) << "same seed, same permutations";
  EXPECT_FALSE(torch::equal(a.data().train->images, other.data().train->images));
  for (int t = 0; t < 3; ++t) {
    const auto copy = a.data().train->images[t * n + 7].flatten();
    EXPECT_FALSE(torch::equal(copy, data.train->images[7].flatten())) << "every task is permuted, the first too";
    EXPECT_TRUE(torch::equal(std::get<0>(copy.sort()), std::get<0>(data.train->images[7].flatten().sort())))
        << "the same pixels, moved";
  }
  EXPECT_EQ(a.data().name, "permuted_synthetic");
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
  o.split.labels_per_class = {2};
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
       {"class_order = \"ascending\"", "workers = 0", "crop_padding = 4", "variant = \"reference\"", "num_ops = 3"})
    EXPECT_NE(resolved.find(key), std::string::npos) << key << " in\n" << resolved;
}

TEST_F(SplitSemiRegistration, ReadsTaskSizesOrdersAndBudgetsFromTheDataSection) {
  std::string text = data_section("classes_per_task = [6, 2, 2]\nclass_order = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]\n");
  text.replace(text.find("num_tasks = 5\n"), 14, "");
  text.replace(text.find("labels_per_class = 2"), 20, "labels_per_class = [2, 1, 2]");
  const Config config = Config::from_string(text, "data.toml");
  const auto data = build(config);
  ASSERT_EQ(data->num_tasks(), 3);
  EXPECT_EQ(data->classes(0), (std::vector<int64_t>{9, 8, 7, 6, 5, 4}));
  EXPECT_EQ(data->classes(2), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(data->labeled_set(0).ids.numel(), 12);  // 6 classes x 2
  EXPECT_EQ(data->labeled_set(1).ids.numel(), 2);   // 2 classes x 1
  EXPECT_NE(data->describe(false).at(0).find("3 tasks of 6, then 2 classes, 2/1/2 per class (task by task) labeled"),
            std::string::npos)
      << data->describe(false).at(0);
  // A number where the base gave a list, and back, merges (the key takes either).
  Config merged = Config::from_string(text, "data.toml");
  merged.apply_override("data.labels_per_class=1");
  EXPECT_EQ(build(merged)->labeled_set(0).ids.numel(), 6);
  merged.apply_override("data.class_order=\"ascending\"");
  EXPECT_EQ(build(merged)->classes(0), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
}

TEST_F(SplitSemiRegistration, ErrorsNameTheirKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"workers = -1\n", "data.workers"},
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
  EXPECT_NE(replace("labels_per_class = 2", "labels_fraction = 1.5").find("'data.labels_fraction'"), std::string::npos);
  EXPECT_NE(replace("labels_per_class = 2", "labels_per_class = [2, 0]").find("'data.labels_per_class'"),
            std::string::npos);
  EXPECT_NE(error_of("labels_fraction = 0.5\n").find("'data.labels_fraction'"), std::string::npos)
      << "both labels_per_class and labels_fraction";
  EXPECT_NE(error_of("classes_per_task = [6, 4]\n").find("'data.num_tasks'"), std::string::npos);
  EXPECT_NE(error_of("drop_last = true\n").find("'data.drop_last'"), std::string::npos);
  EXPECT_NE(error_of("sampler = \"shuffle\"\n").find("'data.sampler'"), std::string::npos);
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
