// Bad input: one clear line on stderr naming the problem, a non-zero exit, and no
// run directory that looks like a finished run.
#include <gtest/gtest.h>

#include "tests/tools/run_binary.h"

namespace sscl {
namespace {

using testing::TempDir;

const char* kSftConfig = "configs/sft/sft_small_cnn_fmnist5.toml";

struct Failure {
  testing::Process process;
  bool run_dir_exists;
  bool results_exist;
};

Failure run_failing(const std::string& args, const TempDir& dir) {
  const auto run_dir = dir / "run";
  Failure f{testing::run_train(args + " --work-dir '" + run_dir.string() + "'", dir), std::filesystem::exists(run_dir),
            std::filesystem::exists(run_dir / "results.json")};
  return f;
}

void expect_one_line_error(const Failure& f, const std::string& needle) {
  EXPECT_NE(f.process.exit_code, 0);
  EXPECT_EQ(f.process.err.rfind("error: ", 0), 0u) << f.process.err;
  EXPECT_NE(f.process.err.find(needle), std::string::npos) << f.process.err;
  EXPECT_EQ(std::count(f.process.err.begin(), f.process.err.end(), '\n'), 1) << f.process.err;
  EXPECT_FALSE(f.results_exist);
}

TEST(TrainErrors, MultiHeadOutsideTaskIlIsRejected) {
  TempDir dir;
  const auto f = run_failing(
      testing::config_path(kSftConfig) + " --cfg-options model.multi_head=true data.scenario=class-il", dir);
  expect_one_line_error(f, "model.multi_head");
  EXPECT_FALSE(f.run_dir_exists);
}

// Precision and device keys the machine cannot honour: one line naming the key,
// before the run directory exists.
TEST(TrainErrors, DeviceKeysTheMachineCannotHonourNameTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"train.amp='\"fp16\"'", "train.amp"},  // a CPU run (this suite has no GPU to give)
      {"train.amp='\"fp8\"'", "train.amp"},
      {"train.device='\"cuda:7\"'", "train.device"},
      {"model.backbone='\"mlp\"' model.channels_last=true", "model.channels_last"},
  };
  for (const auto& [overrides, key] : cases) {
    TempDir dir;
    const auto f =
        run_failing(testing::config_path(kSftConfig) + " --cfg-options train.device='\"cpu\"' " + overrides, dir);
    expect_one_line_error(f, key);
    EXPECT_FALSE(f.run_dir_exists) << overrides;
  }
}

TEST(TrainErrors, MissingConfig) {
  TempDir dir;
  const auto f = run_failing("'" + (dir / "none.toml").string() + "'", dir);
  expect_one_line_error(f, "config file not found");
  EXPECT_FALSE(f.run_dir_exists);
}

TEST(TrainErrors, TomlSyntaxErrorNamesFileAndLine) {
  TempDir dir;
  testing::write_text(dir / "bad.toml", "[train]\niters_per_task = 10\nseed = = 3\n");
  const auto f = run_failing("'" + (dir / "bad.toml").string() + "'", dir);
  expect_one_line_error(f, (dir / "bad.toml").string() + ":3:");
  EXPECT_FALSE(f.run_dir_exists);
}

TEST(TrainErrors, UnknownKeyNamesItsOrigin) {
  TempDir dir;
  const auto f = run_failing(testing::config_path(kSftConfig) + " --cfg-options train.iters_per_tsk=3", dir);
  expect_one_line_error(f, "unknown config key 'train.iters_per_tsk' (from --cfg-options train.iters_per_tsk=3)");
  EXPECT_FALSE(f.run_dir_exists);
}

TEST(TrainErrors, UnknownKeyInAFileNamesFileAndLine) {
  TempDir dir;
  testing::write_text(dir / "typo.toml",
                      "_base_ = \"" + testing::config_path(kSftConfig) + "\"\n[optimizer]\nmomentun = 0.8\n");
  const auto f = run_failing("'" + (dir / "typo.toml").string() + "'", dir);
  expect_one_line_error(f, "unknown config key 'optimizer.momentun' (from " + (dir / "typo.toml").string() + ":3)");
}

TEST(TrainErrors, TypeChangeInAnOverride) {
  TempDir dir;
  const auto f = run_failing(testing::config_path(kSftConfig) + " --cfg-options train.iters_per_task=\"many\"", dir);
  expect_one_line_error(f, "type change for 'train.iters_per_task'");
}

TEST(TrainErrors, UnknownMethodListsKnownOnes) {
  TempDir dir;
  const auto f = run_failing(testing::config_path(kSftConfig) + " --cfg-options method.name=fixmach", dir);
  expect_one_line_error(
      f,
      "unknown method 'fixmach'; known: agem, ccic, der, derpp, edgehml, er, er_ace, fixmatch, flexmatch, freematch, "
      "gdumb, icarl, joint, lwf, mean_teacher, mixmatch, oewc, pnn, pseudo_label, sft, si, softmatch, uda");
  EXPECT_FALSE(f.run_dir_exists);
}

TEST(TrainErrors, SemiLossOnAMethodThatCannotComposeIsRejectedBeforeTraining) {
  TempDir dir;
  const auto f =
      run_failing(testing::config_path(kSftConfig) + " --cfg-options method.name=icarl method.semi=fixmatch", dir);
  expect_one_line_error(f, "method 'icarl' does not compose with a semi-supervised loss (method.semi)");
  EXPECT_FALSE(f.run_dir_exists);
}

TEST(TrainErrors, MixMatchWithAMethodThatNeedsThePlainLabeledPassIsRejected) {
  TempDir dir;
  const auto f =
      run_failing(testing::config_path(kSftConfig) + " --cfg-options method.name=lwf method.semi=mixmatch", dir);
  expect_one_line_error(f, "method.semi = 'mixmatch' trains on mixed labeled images, and method 'lwf' needs");
  EXPECT_FALSE(f.run_dir_exists);
}

TEST(TrainErrors, UnknownSemiLossListsKnownOnes) {
  TempDir dir;
  const auto f =
      run_failing(testing::config_path(kSftConfig) + " --cfg-options method.name=der method.semi=fixmach", dir);
  expect_one_line_error(f, "unknown semi-supervised loss 'fixmach'; known: fixmatch, ");
  EXPECT_FALSE(f.run_dir_exists);
}

TEST(TrainErrors, SemiLossOptionsAreReadFromTheirOwnSection) {
  TempDir dir;
  const auto bad = run_failing(testing::config_path(kSftConfig) +
                                   " --cfg-options method.name=der method.semi=fixmatch method.fixmatch.threshold=1.5",
                               dir);
  expect_one_line_error(bad, "config key 'method.fixmatch.threshold'");
  expect_one_line_error(bad, "must be in [0, 1]");
  const auto misspelt =
      run_failing(testing::config_path(kSftConfig) +
                      " --cfg-options method.name=der method.semi=fixmatch method.fixmatch.treshold=0.9",
                  dir);
  expect_one_line_error(misspelt, "method.fixmatch.treshold");
  EXPECT_FALSE(misspelt.run_dir_exists);
}

TEST(TrainErrors, UnknownBackbone) {
  TempDir dir;
  const auto f = run_failing(testing::config_path(kSftConfig) + " --cfg-options model.backbone=resnet1", dir);
  expect_one_line_error(f, "unknown backbone 'resnet1'");
}

TEST(TrainErrors, BadValueNamesTheKey) {
  TempDir dir;
  const auto f = run_failing(testing::config_path(kSftConfig) + " --cfg-options optimizer.lr=-0.1", dir);
  expect_one_line_error(f, "config key 'optimizer.lr' (--cfg-options optimizer.lr=-0.1): must be > 0");
}

TEST(TrainErrors, MissingDatasetDirectory) {
  TempDir dir;
  const auto f = run_failing(testing::config_path(kSftConfig) + " --cfg-options data.root=/nonexistent/fmnist", dir);
  expect_one_line_error(f, "data.root '/nonexistent/fmnist': directory not found");
  EXPECT_FALSE(f.run_dir_exists);
}

TEST(TrainErrors, TruncatedIdxFile) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 4, 2);
  std::filesystem::resize_file(dir / "data" / "train-images-idx3-ubyte", 1000);
  const auto f =
      run_failing(testing::config_path(kSftConfig) + " --cfg-options data.root='" + (dir / "data").string() + "'", dir);
  expect_one_line_error(f, "train-images-idx3-ubyte: truncated: expected 31360 bytes of data, got 984");
}

TEST(TrainErrors, WrongMagicIdxFile) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 4, 2);
  testing::write_text(dir / "data" / "t10k-labels-idx1-ubyte", std::string("PK\x03\x04garbage", 11));
  const auto f =
      run_failing(testing::config_path(kSftConfig) + " --cfg-options data.root='" + (dir / "data").string() + "'", dir);
  expect_one_line_error(f, "t10k-labels-idx1-ubyte: not an IDX file");
}

TEST(TrainErrors, ScenarioTheDataOrMethodDoesNotSupportIsRejectedBeforeTraining) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 6, 2);
  const std::string data = " data.root='" + (dir / "data").string() + "'";
  auto f = run_failing(testing::config_path(kSftConfig) + " --cfg-options data.scenario=online-il", dir);
  expect_one_line_error(f,
                        "config key 'data.scenario' (--cfg-options data.scenario=online-il): must be one of: task-il, "
                        "class-il, domain-il; got 'online-il'");
  // Class-incremental tasks are not domains.
  f = run_failing(testing::config_path(kSftConfig) + " --cfg-options data.scenario=domain-il" + data, dir);
  expect_one_line_error(
      f,
      "config key 'data.scenario' (--cfg-options data.scenario=domain-il): domain-il needs tasks that "
      "share every class under changing inputs");
  // Multi-head models choose a head by the task id.
  f = run_failing(testing::config_path(kSftConfig) +
                      " --cfg-options data.scenario=domain-il data.domain.kind=rotated model.multi_head=true" + data,
                  dir);
  expect_one_line_error(f, "config key 'model.multi_head' (--cfg-options model.multi_head=true): needs data.scenario");
}

TEST(TrainErrors, DivergingRunStopsAndIsNotMarkedFinished) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 6, 2);
  const auto f = run_failing(testing::config_path(kSftConfig) + " --cfg-options data.root='" + (dir / "data").string() +
                                 "' data.labels_per_class=3 optimizer.lr=1e30 train.iters_per_task=20",
                             dir);
  expect_one_line_error(f, "non-finite loss at task 0, iteration ");
  EXPECT_TRUE(f.run_dir_exists);
  // The log of the failed run is kept, with the error in it.
  EXPECT_NE(testing::read_file(dir / "run" / "train.log").find("run failed: non-finite loss"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir / "run" / "config.toml"));
}

// model.pretrained: a file that is not a weights file, and a strict load of a
// model.pt whose head has other classes, fail before the run directory exists.
TEST(TrainErrors, PretrainedFilesThatCannotLoadNameTheKeyAndTheFile) {
  TempDir dir;
  testing::write_text(dir / "notes.txt", "not weights\n");
  auto f = run_failing(
      testing::config_path(kSftConfig) + " --cfg-options model.pretrained='" + (dir / "notes.txt").string() + "'", dir);
  expect_one_line_error(f, "model.pretrained");
  EXPECT_NE(f.process.err.find("notes.txt: not a PyTorch weights file"), std::string::npos) << f.process.err;
  EXPECT_FALSE(f.run_dir_exists);
  f = run_failing(testing::config_path(kSftConfig) + " --cfg-options model.pretrained_strict=true", dir);
  expect_one_line_error(f, "model.pretrained_strict");
  EXPECT_FALSE(f.run_dir_exists);
}

TEST(TrainErrors, FinishedRunDirectoryIsNotOverwritten) {
  TempDir dir;
  std::filesystem::create_directories(dir / "run");
  testing::write_text(dir / "run" / "results.json", "{\"keep\": true}\n");
  const auto p =
      testing::run_train(testing::config_path(kSftConfig) + " --cfg-options train.iters_per_task=1 --work-dir '" +
                             (dir / "run").string() + "'",
                         dir);
  EXPECT_NE(p.exit_code, 0);
  EXPECT_NE(p.err.find("already holds a finished run"), std::string::npos) << p.err;
  EXPECT_EQ(testing::read_file(dir / "run" / "results.json"), "{\"keep\": true}\n");
}

}  // namespace
}  // namespace sscl
