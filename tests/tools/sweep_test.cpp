// tools/sweep: a grid of configs x overrides x seeds run two at a time, resumed
// without redoing finished runs, a killed run redone, and the same grid written as
// a Slurm job array.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/tools/run_binary.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

testing::Process run_sweep(const std::string& args, const TempDir& scratch) {
  const auto out = scratch / "sweep_out.txt", err = scratch / "sweep_err.txt";
  const std::string command = "SSCL_TRAIN='" + std::string(SSCL_TRAIN_BINARY) + "' " +
                              testing::config_path("tools/sweep") + " " + args + " > '" + out.string() + "' 2> '" +
                              err.string() + "'";
  const int status = std::system(command.c_str());
  testing::Process p;
  p.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  p.out = testing::read_file(out);
  p.err = testing::read_file(err);
  return p;
}

TEST(Sweep, RunsTheGridResumesAndWritesASlurmArray) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 8, 2);
  const auto out = dir / "sweep";
  const std::string args = "--configs " + testing::config_path("configs/sft/sft_small_cnn_fmnist5.toml") +
                           " --grid optimizer.lr=0.01,0.05 --seeds '0 1' --jobs 2 --out '" + out.string() +
                           "' -- data.root='" + (dir / "data").string() +
                           "' train.iters_per_task=4 lr_schedule.milestones=[3] data.labels_per_class=2 model.width=8";
  auto p = run_sweep(args, dir);
  ASSERT_EQ(p.exit_code, 0) << p.err << p.out;
  EXPECT_NE(p.err.find("4 run(s), 2 at a time"), std::string::npos) << p.err;
  const auto root = out / "sft_small_cnn_fmnist5";
  for (const char* lr : {"0.01", "0.05"})
    for (int seed : {0, 1}) {
      const auto run = root / ("optimizer.lr=" + std::string(lr)) / ("seed" + std::to_string(seed));
      ASSERT_TRUE(fs::exists(run / "results.json")) << run;
      const auto results = nlohmann::json::parse(testing::read_file(run / "results.json"));
      EXPECT_EQ(results["seed"], seed);
      EXPECT_NE(testing::read_file(run / "config.toml").find("lr = " + std::string(lr)), std::string::npos) << run;
    }

  // Again: nothing is redone.
  const auto kept = root / "optimizer.lr=0.01" / "seed0" / "results.json";
  const auto written = fs::last_write_time(kept);
  p = run_sweep(args, dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.err.find("0 run, 4 skipped"), std::string::npos) << p.err;
  EXPECT_EQ(fs::last_write_time(kept), written);

  // A run killed half-way (no results.json) goes on from its checkpoint, alone.
  fs::remove(root / "optimizer.lr=0.05" / "seed1" / "results.json");
  p = run_sweep(args, dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.err.find("1 run, 3 skipped"), std::string::npos) << p.err;
  const auto redone = root / "optimizer.lr=0.05" / "seed1" / "results.json";
  ASSERT_TRUE(fs::exists(redone));
  EXPECT_EQ(nlohmann::json::parse(testing::read_file(redone))["resumes"].size(), 1u) << "resumed, not restarted";

  // The same grid as a Slurm job array: nothing runs here.
  const auto script = dir / "sweep.sbatch";
  p = run_sweep("--slurm '" + script.string() + "' " + args, dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const auto text = testing::read_file(script);
  EXPECT_NE(text.find("#SBATCH --array=0-3"), std::string::npos) << text;
  EXPECT_NE(text.find("SLURM_ARRAY_TASK_ID"), std::string::npos) << text;
  std::ifstream tsv(out / "runs.tsv");
  int lines = 0;
  for (std::string line; std::getline(tsv, line);) ++lines;
  EXPECT_EQ(lines, 4);
  EXPECT_EQ(text.find("srun"), std::string::npos) << "one rank per run: no job step";

  // Each run distributed over 2 nodes x 4 ranks: one srun step per array task.
  const auto multi = dir / "multi.sbatch";
  p = run_sweep("--slurm '" + multi.string() + "' --nodes 2 --procs-per-node 4 --threads 8 " + args, dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const auto job = testing::read_file(multi);
  for (const char* line :
       {"#SBATCH --array=0-3\n", "#SBATCH --nodes=2\n", "#SBATCH --ntasks-per-node=4\n", "#SBATCH --cpus-per-task=8\n",
        "export MASTER_ADDR=\"$(scontrol show hostnames", "export MASTER_PORT=", "exec srun --kill-on-bad-exit=1 "})
    EXPECT_NE(job.find(line), std::string::npos) << line << " in\n" << job;
  EXPECT_NE(testing::read_file(out / "runs.tsv").find("train.threads=8"), std::string::npos) << "threads per rank";
}

TEST(Sweep, BadOptionsAreNamed) {
  TempDir dir;
  auto p = run_sweep("--configs " + testing::config_path("configs/sft/sft_small_cnn_fmnist5.toml") + " --jobs 0", dir);
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.err.find("--jobs"), std::string::npos) << p.err;
  p = run_sweep("--configs nowhere.toml", dir);
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.err.find("nowhere.toml"), std::string::npos) << p.err;
  p = run_sweep("--configs " + testing::config_path("configs/sft/sft_small_cnn_fmnist5.toml") + " --grid lr", dir);
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.err.find("--grid 'lr'"), std::string::npos) << p.err;
  p = run_sweep("--configs " + testing::config_path("configs/sft/sft_small_cnn_fmnist5.toml") + " --nodes 0", dir);
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.err.find("--nodes must be a positive integer"), std::string::npos) << p.err;
  // Several ranks per run only as a Slurm job; this machine has tools/train --nproc.
  p = run_sweep("--configs " + testing::config_path("configs/sft/sft_small_cnn_fmnist5.toml") + " --procs-per-node 2",
                dir);
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.err.find("write a Slurm job"), std::string::npos) << p.err;
}

}  // namespace
}  // namespace sscl
