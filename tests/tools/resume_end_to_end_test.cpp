// Checkpoints and resume through the sscl_train binary, as a user meets them: a
// run killed with SIGKILL in the middle of a task and resumed ends with the
// results.json accuracies (and method figures) of the uninterrupted run; SIGTERM
// writes a checkpoint and says how to resume; a non-finite loss keeps the last
// good checkpoint; a run directory that cannot take checkpoints, or a write that
// fails, is a clear error and never a corrupt checkpoint.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/checkpoint.h"
#include "tests/tools/run_binary.h"
#include "tools/tensorboard/event_file.h"

extern char** environ;

namespace sscl {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::vector<std::string> tiny_args(const TempDir& dir, const std::string& config, const fs::path& run_dir) {
  return {testing::config_path(config),
          "--work-dir",
          run_dir.string(),
          "--cfg-options",
          "data.root='" + (dir / "data").string() + "'",
          "train.iters_per_task=40",
          "train.iters_per_virtual_epoch=5",
          "train.threads=1",
          "log.interval=10",
          "data.labels_per_class=3",
          "model.width=8",
          "model.hidden=16",
          "lr_schedule.milestones=[30,35]",
          "checkpoint.interval=25"};
}

// sscl_train started in the background (no shell: the pid is the binary's).
pid_t spawn_train(const std::vector<std::string>& args, const fs::path& log) {
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&files, STDOUT_FILENO, STDERR_FILENO);
  std::vector<std::string> all{SSCL_TRAIN_BINARY};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, SSCL_TRAIN_BINARY, &files, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  EXPECT_EQ(rc, 0) << "posix_spawn failed";
  return pid;
}

// Waits until `file` exists, polling fast; false if the process ended first.
bool wait_for(const fs::path& file, pid_t pid) {
  for (;;) {
    if (fs::exists(file)) return true;
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return fs::exists(file);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string quoted(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += " '" + a + "'";
  return out;
}

nlohmann::json results(const fs::path& run_dir) {
  return nlohmann::json::parse(testing::read_file(run_dir / "results.json"));
}

// Method figures without the wall-time ones ("..._s").
nlohmann::json stats_without_times(const nlohmann::json& stats) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : stats.items())
    if (key.size() < 2 || key.substr(key.size() - 2) != "_s") out[key] = value;
  return out;
}

// metrics.jsonl lines by type: every iteration interval and evaluation once.
std::pair<int, int> metrics_lines(const fs::path& run_dir) {
  std::ifstream lines(run_dir / "metrics.jsonl");
  int train = 0, eval = 0;
  for (std::string line; std::getline(lines, line);) (nlohmann::json::parse(line)["type"] == "train" ? train : eval)++;
  return {train, eval};
}

// The steps of train/loss in the run's one TensorBoard file, every record's CRCs checked.
std::vector<int64_t> tensorboard_steps(const fs::path& run_dir) {
  std::vector<int64_t> steps;
  int files = 0;
  for (const auto& entry : fs::directory_iterator(run_dir / "tb")) {
    ++files;
    const EventFile file = read_event_file(entry.path());
    EXPECT_EQ(file.error, "");
    for (const auto& event : file.events)
      for (const auto& value : event.values)
        if (value.tag == "train/loss") steps.push_back(event.step);
  }
  EXPECT_EQ(files, 1) << run_dir;
  return steps;
}

// Checkpoint files, newest first.
std::vector<fs::path> CheckpointList(const fs::path& run_dir) { return CheckpointDir(run_dir, 1).list(); }

class KillAndResume : public ::testing::TestWithParam<std::string> {};

TEST_P(KillAndResume, ResumedRunEndsWithTheUninterruptedAccuracies) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const std::string config = GetParam();
  std::vector<std::string> extra{"log.tensorboard=true"};
  if (config.find("edgehml") != std::string::npos) extra.push_back("method.unsup_warmup_iters=10");
  auto args_for = [&](const fs::path& run_dir) {
    auto args = tiny_args(dir, config, run_dir);
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };

  const auto whole = dir / "whole";
  const auto p = testing::run_train(quoted(args_for(whole)), dir);
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;

  // Killed soon after the checkpoint at global iteration 50 (task 1, iteration 10).
  const auto killed = dir / "killed";
  const pid_t pid = spawn_train(args_for(killed), dir / "killed.log");
  ASSERT_TRUE(wait_for(killed / "checkpoints" / "ckpt_000000050.pt", pid)) << testing::read_file(dir / "killed.log");
  kill(pid, SIGKILL);
  EXPECT_EQ(wait_exit(pid), 128 + SIGKILL);
  ASSERT_FALSE(fs::exists(killed / "results.json")) << "the run ended before it was killed";

  const auto resumed = testing::run_train("--resume '" + killed.string() + "'", dir);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err << resumed.out;
  const auto a = results(whole), b = results(killed);
  EXPECT_EQ(a["accuracy"], b["accuracy"]);
  EXPECT_EQ(stats_without_times(a["method_stats"]), stats_without_times(b["method_stats"]));
  ASSERT_EQ(b["resumes"].size(), 1u);
  EXPECT_GE(b["resumes"][0]["global_iter"].get<int>(), 50);
  EXPECT_FALSE(b["resumes"][0]["task_end"].get<bool>()) << "resumed in the middle of a task";
  EXPECT_EQ(metrics_lines(killed), metrics_lines(whole)) << "lines after the checkpoint are not repeated";
  EXPECT_EQ(tensorboard_steps(killed), tensorboard_steps(whole)) << "TensorBoard steps after the checkpoint repeated";
  EXPECT_NE(testing::read_file(killed / "train.log").find("resuming from"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Methods, KillAndResume,
                         ::testing::Values("configs/sft/sft_small_cnn_fmnist5.toml",
                                           "configs/der/der_small_cnn_fmnist5.toml",
                                           "configs/fixmatch/fixmatch_small_cnn_fmnist5.toml",
                                           "configs/edgehml/edgehml_small_cnn_fmnist5.toml"),
                         [](const auto& info) {
                           const std::string path = info.param;
                           const auto slash = path.find('/', 8);
                           return path.substr(8, slash - 8);
                         });

// Resumed from an older checkpoint than the last lines written (the newest
// removed, as a damaged one is skipped): the TensorBoard file is cut back to
// that checkpoint's size, so the steps after it are not written twice.
TEST(Resume, TensorBoardFileIsCutBackToTheCheckpointItResumesFrom) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  auto args_for = [&](const fs::path& run_dir) {
    auto args = tiny_args(dir, "configs/sft/sft_small_cnn_fmnist5.toml", run_dir);
    args.push_back("log.tensorboard=true");
    return args;
  };
  const auto whole = dir / "whole";
  ASSERT_EQ(testing::run_train(quoted(args_for(whole)), dir).exit_code, 0);
  const auto killed = dir / "killed";
  const pid_t pid = spawn_train(args_for(killed), dir / "killed.log");
  ASSERT_TRUE(wait_for(killed / "checkpoints" / "ckpt_000000050.pt", pid)) << testing::read_file(dir / "killed.log");
  kill(pid, SIGKILL);
  wait_exit(pid);
  fs::remove(killed / "checkpoints" / "ckpt_000000050.pt");
  const auto before = tensorboard_steps(killed);
  ASSERT_FALSE(before.empty());
  ASSERT_GE(before.back(), 50) << "the steps after the older checkpoint are in the file";
  const auto resumed = testing::run_train("--resume '" + killed.string() + "'", dir);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  // The older checkpoint kept is the first task's end (iteration 40).
  EXPECT_EQ(results(killed)["resumes"][0]["global_iter"].get<int>(), 40);
  EXPECT_EQ(tensorboard_steps(killed), tensorboard_steps(whole));
}

TEST(Resume, SigtermWritesACheckpointAndTellsHowToResume) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto run_dir = dir / "run";
  const pid_t pid = spawn_train(tiny_args(dir, "configs/sft/sft_small_cnn_fmnist5.toml", run_dir), dir / "run.log");
  ASSERT_TRUE(wait_for(run_dir / "checkpoints" / "ckpt_000000040_task_end.pt", pid));
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit(pid), 128 + SIGTERM);
  const auto log = testing::read_file(dir / "run.log");
  EXPECT_NE(log.find("stopped by SIGTERM"), std::string::npos) << log;
  EXPECT_NE(log.find("resume with: tools/train --resume " + run_dir.string()), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(run_dir / "results.json"));
  // The newest checkpoint damaged (as by a disk fault): named, and the older one used.
  const auto files = CheckpointList(run_dir);
  ASSERT_EQ(files.size(), 2u);  // the task end and the stop's (keep_last = 2)
  fs::resize_file(files[0], fs::file_size(files[0]) / 2);
  const auto resumed = testing::run_train("--resume '" + run_dir.string() + "'", dir);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find(files[0].string() + ": unreadable checkpoint, trying an older one"), std::string::npos)
      << resumed.out;
  EXPECT_NE(resumed.out.find("resuming from " + files[1].string()), std::string::npos) << resumed.out;
  EXPECT_EQ(results(run_dir)["accuracy"]["task_il"]["matrix"].size(), 5u);
  // A finished run is not resumed again.
  const auto again = testing::run_train("--resume '" + run_dir.string() + "'", dir);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("the run is finished"), std::string::npos) << again.err;
}

// --resume auto, as a requeued job uses it: the same command starts the run,
// then goes on with it after a kill; without --work-dir it finds the newest
// unfinished run of the config under work_dirs/<name>/.
TEST(Resume, AutoStartsARunThenGoesOnWithIt) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto run_dir = dir / "run";
  auto args = tiny_args(dir, "configs/sft/sft_small_cnn_fmnist5.toml", run_dir);
  args.insert(args.begin(), {"--resume", "auto"});
  const pid_t pid = spawn_train(args, dir / "first.log");
  ASSERT_TRUE(wait_for(run_dir / "checkpoints" / "ckpt_000000025.pt", pid));
  kill(pid, SIGKILL);
  wait_exit(pid);
  EXPECT_NE(testing::read_file(dir / "first.log").find("starting a new one"), std::string::npos);
  ASSERT_FALSE(fs::exists(run_dir / "results.json"));

  // Moved to where a run without --work-dir lives: found by the config's name.
  const auto unfinished = dir / "work_dirs" / "sft_small_cnn_fmnist5" / "20990101_000000";
  fs::create_directories(unfinished.parent_path());
  fs::rename(run_dir, unfinished);
  args.erase(args.begin() + 3, args.begin() + 5);  // --work-dir RUN
  const auto second =
      testing::run_shell("cd '" + dir.path().string() + "' && " + SSCL_TRAIN_BINARY + quoted(args), dir);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out.find("resuming from work_dirs/sft_small_cnn_fmnist5/20990101_000000/checkpoints/"),
            std::string::npos)
      << second.out;
  EXPECT_TRUE(fs::exists(unfinished / "results.json"));
}

TEST(Resume, WhatCannotBeResumedIsNamed) {
  TempDir dir;
  const auto run_dir = dir / "run";
  fs::create_directories(run_dir);
  auto p = testing::run_train("--resume '" + run_dir.string() + "'", dir);
  EXPECT_EQ(p.exit_code, 1);
  EXPECT_NE(p.err.find(run_dir.string() + ": not a run directory (no config.toml)"), std::string::npos) << p.err;
  testing::write_text(run_dir / "config.toml", "name = \"x\"\n");
  p = testing::run_train("--resume '" + run_dir.string() + "'", dir);
  EXPECT_NE(p.err.find(run_dir.string() + ": no checkpoint in"), std::string::npos) << p.err;
  p = testing::run_train("--resume '" + run_dir.string() + "' --work-dir '" + (dir / "other").string() + "'", dir);
  EXPECT_NE(p.err.find("give no --work-dir"), std::string::npos) << p.err;
  p = testing::run_train("--resume auto", dir);
  EXPECT_EQ(p.exit_code, 2) << "auto needs the config";
}

TEST(Resume, NonFiniteLossKeepsTheLastGoodCheckpointToResumeFrom) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto run_dir = dir / "run";
  // The learning rate jumps to 1e28 at iteration 30 of the first task: the loss
  // becomes non-finite a few iterations later.
  auto args = tiny_args(dir, "configs/sft/sft_small_cnn_fmnist5.toml", run_dir);
  args.push_back("lr_schedule.gamma=1e30");
  args.push_back("checkpoint.interval=10");
  const auto p = testing::run_train(quoted(args), dir);
  ASSERT_EQ(p.exit_code, 1) << p.out;
  EXPECT_NE(p.err.find("non-finite loss at task 0, iteration"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("sup="), std::string::npos) << "the loss terms are named: " << p.err;
  const auto log = testing::read_file(run_dir / "train.log");
  EXPECT_NE(log.find("last good checkpoint: " + (run_dir / "checkpoints" / "ckpt_000000030.pt").string()),
            std::string::npos)
      << log;
  // With the schedule mended, the run goes on from that checkpoint and finishes.
  const auto resumed =
      testing::run_train("--resume '" + run_dir.string() + "' --cfg-options lr_schedule.gamma=0.1", dir);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const auto r = results(run_dir);
  EXPECT_EQ(r["resumes"][0]["global_iter"], 30);
  EXPECT_EQ(r["resumes"][0]["overrides"][0], "lr_schedule.gamma=0.1");
}

TEST(Resume, ARunDirectoryThatCannotTakeCheckpointsFailsBeforeTraining) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto run_dir = dir / "run";
  fs::create_directories(run_dir);
  testing::write_text(run_dir / "checkpoints", "a file where the folder should be");
  const auto p = testing::run_train(quoted(tiny_args(dir, "configs/sft/sft_small_cnn_fmnist5.toml", run_dir)), dir);
  EXPECT_EQ(p.exit_code, 1);
  EXPECT_NE(p.err.find((run_dir / "checkpoints").string() + ": cannot create the checkpoint folder"), std::string::npos)
      << p.err;
  EXPECT_FALSE(fs::exists(run_dir / "train.log")) << "nothing trained";
}

TEST(Resume, AFailedCheckpointWriteIsAClearErrorAndLeavesNoPartialFile) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto run_dir = dir / "run";
  // Files are limited to 100 KB (SIGXFSZ ignored, so a write beyond fails with
  // EFBIG as on a full disk): the logs fit, a DER checkpoint does not.
  const auto p = testing::run_shell("trap '' XFSZ; ulimit -f 100; " + std::string(SSCL_TRAIN_BINARY) +
                                        quoted(tiny_args(dir, "configs/der/der_small_cnn_fmnist5.toml", run_dir)),
                                    dir);
  EXPECT_EQ(p.exit_code, 1) << p.out;
  EXPECT_NE(p.err.find("ckpt_000000025.pt: write failed: File too large"), std::string::npos) << p.err;
  for (const auto& entry : fs::directory_iterator(run_dir / "checkpoints"))
    ADD_FAILURE() << "left behind: " << entry.path();
  EXPECT_FALSE(fs::exists(run_dir / "results.json"));
}

}  // namespace
}  // namespace sscl
