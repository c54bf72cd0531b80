// Every config shipped under configs/ (not _base_/) resolves, validates and
// trains: a 2-task, 2-iteration run of each on tiny data written in its dataset's
// on-disk format, so a renamed key or a broken base file fails here, not on a
// user's machine.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/config.h"
#include "tests/dataset_writers.h"
#include "tests/tools/run_binary.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// Writes tiny data for `dataset` under `root`, returning extra overrides it needs.
std::string write_tiny(const std::string& dataset, const fs::path& root) {
  testing::SyntheticImages spec;
  spec.train_per_class = 7;  // 5 labeled + 2 unlabeled per class
  spec.test_per_class = 1;
  if (dataset == "fashion_mnist") {
    testing::write_tiny_fashion_mnist(root, 7, 1);
    return "";
  }
  if (dataset == "cifar10") {
    testing::write_cifar10_bin(root, spec);
    return "";
  }
  if (dataset == "cifar100") {
    spec.classes = 100;
    testing::write_cifar100_bin(root, spec);
    return "";
  }
  if (dataset == "tiny_imagenet") {  // 64x64 like the real data, resized at load
    spec.classes = 4;
    spec.rows = spec.cols = 64;
    testing::write_tiny_imagenet(root, spec);
    return " data.resize=[32,32]";
  }
  ADD_FAILURE() << "no tiny writer for dataset " << dataset;
  return "";
}

std::vector<fs::path> shipped_configs() {
  std::vector<fs::path> configs;
  const fs::path root = testing::config_path("configs");
  for (const auto& entry : fs::recursive_directory_iterator(root))
    if (entry.path().extension() == ".toml" && entry.path().string().find("_base_") == std::string::npos)
      configs.push_back(entry.path());
  std::sort(configs.begin(), configs.end());
  return configs;
}

class ShippedConfigs : public ::testing::TestWithParam<fs::path> {};

TEST(ShippedConfigsList, FindsTheConfigs) { EXPECT_GE(shipped_configs().size(), 6u); }

TEST_P(ShippedConfigs, TrainsTwoShortTasksOnTinyDataOfItsFormat) {
  const fs::path& config = GetParam();
  TempDir dir;
  const Config loaded = Config::load(config);
  std::string extra = write_tiny(loaded.get<std::string>("data.dataset"), dir / "data");
  // Queries must fall inside the 2-iteration tasks.
  if (loaded.has("active.strategy")) extra += " active.warmup_iters=1 active.budget_per_class=1";
  // oEWC's Fisher takes a backward pass per image: 250 of them made the CIFAR-100
  // run take over a minute. A few still exercise the whole path.
  if (loaded.has("method.fisher_samples")) extra += " method.fisher_samples=8";
  // Step schedules get a milestone inside the 2 iterations (constant ones have none).
  if (loaded.has("lr_schedule.milestones")) extra += " lr_schedule.milestones=[1]";
  // A ResNet-18 checkpoint is ~100 MB and ~0.8 s to write, twice per run, 61 runs:
  // checkpoints of every method are tested in tests/methods/resume_test and those
  // of the small-CNN configs here.
  if (config.string().find("resnet") != std::string::npos) extra += " checkpoint.enabled=false train.save_model=false";
  // ResNets at an eighth of their width (base_width 8): the same layers, blocks
  // and code paths at ~1/64 of the multiply-adds. At full width these 62 runs
  // took 463 s of tools_tests' and methods_tests' 987 s (gtest's times, 620321d);
  // full-width ResNet-18 passes run in models_tests, and full-width training is
  // in docs/evidence.md.
  if (loaded.has("model.base_width")) extra += " model.base_width=8";
  const auto p = testing::run_train(
      "'" + config.string() + "' --work-dir '" + (dir / "run").string() + "' --cfg-options data.root='" +
          (dir / "data").string() + "' data.num_tasks=2 data.uratio=1 train.iters_per_task=2 train.threads=1" + extra,
      dir);
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  EXPECT_TRUE(fs::exists(dir / "run" / "results.json"));
  if (config.string().find("fixmatch") != std::string::npos) {
    EXPECT_NE(p.out.find("RandAugment (reference: 3 ops, level 7 of 10"), std::string::npos) << p.out;
  }
}

INSTANTIATE_TEST_SUITE_P(All, ShippedConfigs, ::testing::ValuesIn(shipped_configs()),
                         [](const ::testing::TestParamInfo<fs::path>& info) { return info.param.stem().string(); });

}  // namespace
}  // namespace sscl
