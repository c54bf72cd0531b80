// Distributed runs through the sscl_train binary, two ranks on 127.0.0.1 (Gloo,
// a free port): the same run as one process with the same global batch, only
// rank 0 writing the run directory, a killed rank named by the launcher and a
// resumed run that ends as the uninterrupted one, at either world size; bad
// launcher environments are one error line naming the variable.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/tools/run_binary.h"

extern char** environ;

namespace sscl {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// The classic MLP configs on tiny Fashion-MNIST: 12 images a class, batch 10,
// 10 epochs (30 iterations) a task, 5 tasks.
std::string tiny_args(const TempDir& dir, const std::string& method, const fs::path& run_dir) {
  return "'" + testing::config_path("configs/classic/" + method + "_mlp_fmnist5_classic.toml") + "' --work-dir '" +
         run_dir.string() + "' --cfg-options data.root='" + (dir / "data").string() +
         "' train.epochs_per_task=10 train.threads=1 log.interval=10 checkpoint.interval=50";
}

nlohmann::json results(const fs::path& run_dir) {
  return nlohmann::json::parse(testing::read_file(run_dir / "results.json"));
}

// Every tensor of a model.pt (torch::save of the model), by its dotted name.
void read_tensors(torch::serialize::InputArchive& archive, const std::string& prefix,
                  std::map<std::string, at::Tensor>& out) {
  for (const auto& key : archive.keys()) {
    at::Tensor t;
    torch::serialize::InputArchive nested;
    if (archive.try_read(key, t, /*is_buffer=*/true) || archive.try_read(key, t))
      out[prefix + key] = t;
    else if (archive.try_read(key, nested))
      read_tensors(nested, prefix + key + ".", out);
  }
}

std::map<std::string, at::Tensor> model_tensors(const fs::path& run_dir) {
  torch::serialize::InputArchive archive;
  archive.load_from((run_dir / "model.pt").string());
  std::map<std::string, at::Tensor> out;
  read_tensors(archive, "", out);
  return out;
}

double max_abs_difference(const std::map<std::string, at::Tensor>& a, const std::map<std::string, at::Tensor>& b) {
  EXPECT_EQ(a.size(), b.size());
  EXPECT_GE(a.size(), 6u) << "the MLP's weights and biases were not read";
  double most = 0;
  for (const auto& [name, t] : a) {
    const auto other = b.find(name);
    if (other == b.end()) {
      ADD_FAILURE() << name << " is missing";
      continue;
    }
    most = std::max(most, (t.to(torch::kDouble) - other->second.to(torch::kDouble)).abs().max().item<double>());
  }
  return most;
}

// Every entry of both accuracy matrices within `points`.
void expect_accuracies_near(const nlohmann::json& a, const nlohmann::json& b, double points) {
  for (const char* kind : {"task_il", "class_il"}) {
    const auto& ma = a["accuracy"][kind]["matrix"];
    const auto& mb = b["accuracy"][kind]["matrix"];
    ASSERT_EQ(ma.size(), mb.size()) << kind;
    for (size_t i = 0; i < ma.size(); ++i)
      for (size_t j = 0; j < ma[i].size(); ++j) {
        if (ma[i][j].is_null()) continue;
        EXPECT_NEAR(ma[i][j].get<double>(), mb[i][j].get<double>(), points) << kind << " " << i << "," << j;
      }
  }
}

class TwoRanks : public ::testing::TestWithParam<std::string> {};

TEST_P(TwoRanks, TrainTheModelOfOneProcessWithTheSameGlobalBatch) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto one = dir / "one", two = dir / "two";
  const auto p1 = testing::run_train(tiny_args(dir, GetParam(), one), dir);
  ASSERT_EQ(p1.exit_code, 0) << p1.err;
  const auto p2 = testing::run_train(tiny_args(dir, GetParam(), two) + " --nproc 2", dir);
  ASSERT_EQ(p2.exit_code, 0) << p2.err;
  const double difference = max_abs_difference(model_tensors(one), model_tensors(two));
  EXPECT_LE(difference, 1e-5);
  std::cout << "largest parameter difference, 2 ranks against 1 process: " << difference << "\n";
  const auto a = results(one), b = results(two);
  expect_accuracies_near(a, b, 0.1);
  EXPECT_EQ(a["method_stats"], b["method_stats"]);  // the buffer's entries and bytes
  EXPECT_EQ(b["environment"]["world_size"], 2);
  EXPECT_EQ(b["environment"]["backend"], "gloo");
  EXPECT_EQ(a["environment"]["world_size"], 1);
  // Rank 0 writes the run; rank 1 only its warnings and errors (none here).
  EXPECT_TRUE(fs::exists(two / "train.log"));
  ASSERT_TRUE(fs::exists(two / "train.rank1.log"));
  EXPECT_EQ(testing::read_file(two / "train.rank1.log"), "");
  EXPECT_FALSE(fs::exists(two / "train.rank0.log"));
}

INSTANTIATE_TEST_SUITE_P(Classic, TwoRanks, ::testing::Values("sft", "der"));

// The classic SFT run with a small CNN (3 BatchNorm layers: width 4, hidden 16)
// on one task of the 10 classes, one epoch (12 iterations). Longer runs part by
// more than rounding: training with BatchNorm amplifies it (docs/distributed.md).
std::string small_cnn_args(const TempDir& dir, const fs::path& run_dir, bool sync_bn) {
  return "'" + testing::config_path("configs/classic/sft_small_cnn_fmnist5_classic.toml") + "' --work-dir '" +
         run_dir.string() + "' --cfg-options data.root='" + (dir / "data").string() +
         "' model.width=4 model.hidden=16 data.num_tasks=1 train.epochs_per_task=1 train.threads=1 model.sync_bn=" +
         (sync_bn ? "true" : "false");
}

TEST(SyncBatchNorm, SmallCnnOnTwoRanksTrainsTheModelOfOneProcess) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto one = dir / "one", synced = dir / "synced", local = dir / "local";
  const auto p1 = testing::run_train(small_cnn_args(dir, one, true), dir);
  ASSERT_EQ(p1.exit_code, 0) << p1.err;
  const auto p2 = testing::run_train(small_cnn_args(dir, synced, true) + " --nproc 2", dir);
  ASSERT_EQ(p2.exit_code, 0) << p2.err;
  const auto p3 = testing::run_train(small_cnn_args(dir, local, false) + " --nproc 2", dir);
  ASSERT_EQ(p3.exit_code, 0) << p3.err;
  for (const auto& [run, ranks] : {std::pair{one, 1}, std::pair{synced, 2}})
    EXPECT_NE(testing::read_file(run / "train.log")
                  .find("BatchNorm: 3 layer(s) normalise each training batch over all " + std::to_string(ranks) +
                        " rank(s) (model.sync_bn"),
              std::string::npos)
        << run;
  const auto reference = model_tensors(one);
  const double synced_difference = max_abs_difference(reference, model_tensors(synced));
  const double local_difference = max_abs_difference(reference, model_tensors(local));
  std::cout << "largest difference of a parameter or statistic against 1 process: sync_bn " << synced_difference
            << ", per-rank BatchNorm " << local_difference << "\n";
  EXPECT_LE(synced_difference, 1e-4);
  // Normalising each rank's half alone is another run: the check above can fail.
  EXPECT_GT(local_difference, 1000 * synced_difference);
}

pid_t spawn_train(const std::string& args, const fs::path& log) {
  const std::string command = std::string("exec ") + SSCL_TRAIN_BINARY + " " + args;
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&files, STDOUT_FILENO, STDERR_FILENO);
  const char* argv[] = {"sh", "-c", command.c_str(), nullptr};
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, "/bin/sh", &files, nullptr, const_cast<char**>(argv), environ), 0);
  posix_spawn_file_actions_destroy(&files);
  return pid;
}

// The child of `parent` whose environment has RANK=<rank>; -1 when none (yet).
pid_t rank_process(pid_t parent, int rank) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string status = testing::read_file(entry.path() / "status");
    if (status.find("\nPPid:\t" + std::to_string(parent) + "\n") == std::string::npos) continue;
    std::string environment = testing::read_file(entry.path() / "environ");
    std::replace(environment.begin(), environment.end(), '\0', '\n');
    if (("\n" + environment).find("\nRANK=" + std::to_string(rank) + "\n") != std::string::npos)
      return static_cast<pid_t>(std::stoi(name));
  }
  return -1;
}

// Semi-supervised runs on the tiny data with the MLP: 4 labels a class, two
// unlabeled images per labeled one (batch 8 + 16), 2 tasks of 24 iterations.
// The method's section is the test's; the bases are the repository's.
fs::path write_semi_config(const TempDir& dir, const std::string& name, const std::string& method) {
  const auto base = [](const std::string& file) { return "'" + testing::config_path("configs/_base_/" + file) + "'"; };
  const auto path = dir / (name + ".toml");
  std::ofstream(path) << "_base_ = [" << base("default_runtime.toml") << ", " << base("datasets/fmnist_5.toml") << ", "
                      << base("models/mlp.toml") << ", " << base("schedules/sgd_step_fmnist.toml") << "]\n"
                      << "[data]\nroot = '" << (dir / "data").string()
                      << "'\nnum_tasks = 2\nlabels_per_class = 4\nuratio = 2\n"
                      << "[model]\nhidden = 32\n"
                      << "[train]\niters_per_task = 24\nthreads = 1\n[log]\ninterval = 8\n"
                      << "[checkpoint]\ninterval = 0\n"
                      << method;
  return path;
}

struct SemiCase {
  std::string name;
  std::string method;     // the [method] (and [active]) sections
  std::string exercised;  // a method_stats figure above 0 once the state that ranks share was built
};

void PrintTo(const SemiCase& c, std::ostream* out) { *out << c.name; }

class TwoRanksSemi : public ::testing::TestWithParam<SemiCase> {};

// Every rank's model, method state and labeled sets agree at each task end (the
// run checks it and fails naming the field otherwise; results.json lists the
// fingerprints), and the run is the one-process run up to the order of float sums.
TEST_P(TwoRanksSemi, EveryRankHoldsTheSameStateAtEachTaskEndAndTrainsTheOneProcessRun) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto config = write_semi_config(dir, GetParam().name, GetParam().method);
  const auto one = dir / "one", two = dir / "two";
  const auto p1 = testing::run_train("'" + config.string() + "' --work-dir '" + one.string() + "'", dir);
  ASSERT_EQ(p1.exit_code, 0) << p1.err;
  const auto p2 = testing::run_train("'" + config.string() + "' --work-dir '" + two.string() + "' --nproc 2", dir);
  ASSERT_EQ(p2.exit_code, 0) << p2.err;
  const auto a = results(one), b = results(two);
  ASSERT_EQ(b["state_fingerprints"].size(), 2u) << b.dump();
  for (const auto& digest : b["state_fingerprints"]) EXPECT_EQ(digest.get<std::string>().size(), 16u);
  EXPECT_FALSE(a.contains("state_fingerprints"));  // one process has nothing to compare
  const auto log = testing::read_file(two / "train.log");
  EXPECT_NE(log.find("after task 2: the model, method state and labeled sets are the same on every rank"),
            std::string::npos);

  const double difference = max_abs_difference(model_tensors(one), model_tensors(two));
  EXPECT_LE(difference, 1e-4);
  std::cout << GetParam().name << ": largest parameter difference, 2 ranks against 1 process: " << difference << "\n";
  expect_accuracies_near(a, b, 0.1);
  // What the method kept (entries, counts, rates) is the one-process run's; wall times are not.
  for (const auto& [key, value] : a["method_stats"].items()) {
    if (key.size() > 2 && key.substr(key.size() - 2) == "_s") continue;
    ASSERT_TRUE(b["method_stats"].contains(key)) << key;
    EXPECT_NEAR(value.get<double>(), b["method_stats"][key].get<double>(), 1e-6 * (1 + std::abs(value.get<double>())))
        << key;
  }
  if (!GetParam().exercised.empty())
    EXPECT_GT(a["method_stats"].value(GetParam().exercised, 0.0), 0.0) << GetParam().exercised;
  if (!a.contains("active_learning")) return;
  // The same images chosen and labeled, round by round.
  const auto &qa = a["active_learning"]["queries"], &qb = b["active_learning"]["queries"];
  ASSERT_EQ(qa.size(), 4u);  // 2 rounds in each of 2 tasks
  ASSERT_EQ(qa.size(), qb.size());
  for (size_t i = 0; i < qa.size(); ++i) {
    EXPECT_EQ(qa[i]["ids"], qb[i]["ids"]) << i;
    EXPECT_EQ(qa[i]["labels"], qb[i]["labels"]) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Methods, TwoRanksSemi,
    ::testing::Values(
        SemiCase{"der_flexmatch",
                 "[method]\nname = 'der'\nbuffer_size = 40\nminibatch_size = 8\nalpha = 0.3\nsemi = 'flexmatch'\n"
                 "[method.flexmatch]\nthreshold = 0.5\n",
                 "semi.mask_rate"},
        SemiCase{"edgehml",
                 "[method]\nname = 'edgehml'\npool_sizes = [40, 200]\nonline_pool_size = 30\nunsup_warmup_iters = "
                 "4\nthreshold = 0.5\n",
                 "online_tier_entries"},
        SemiCase{"lwf_fixmatch", "[method]\nname = 'lwf'\nsemi = 'fixmatch'\n[method.fixmatch]\nthreshold = 0.5\n",
                 "semi.mask_rate"},
        SemiCase{"si_softmatch", "[method]\nname = 'si'\nsemi = 'softmatch'\n", "importance_bytes"},
        // lambda_f = 1: a fairness term of each rank's own slice would part the runs by more than the bound.
        SemiCase{
            "oewc_freematch",
            "[method]\nname = 'oewc'\nfisher = 'sampled'\nsemi = 'freematch'\n[method.freematch]\nlambda_f = 1.0\n",
            "fisher_samples"},
        // lambda_u = 1: at MixMatch's 75 the tiny run is unstable enough to grow the
        // order-of-sums differences past the bound (DER+MixMatch: 6e-3 after 48 iterations).
        SemiCase{"agem_mixmatch",
                 "[method]\nname = 'agem'\nbuffer_size = 40\nsemi = 'mixmatch'\n[method.mixmatch]\nlambda_u = 1.0\n",
                 "semi.guess_confidence"},
        SemiCase{"er_ace", "[method]\nname = 'er_ace'\nbuffer_size = 40\n", "buffer_entries"},
        SemiCase{"icarl", "[method]\nname = 'icarl'\nbuffer_size = 40\nminibatch_size = 6\n", "class_means_bytes"},
        SemiCase{"gdumb", "[method]\nname = 'gdumb'\nbuffer_size = 30\nminibatch_size = 6\n", "buffer_entries"},
        SemiCase{"joint", "[method]\nname = 'joint'\n", "buffer_size"},
        SemiCase{"pnn", "[method]\nname = 'pnn'\n", "parameters_column_1"},
        SemiCase{"ccic",
                 "[method]\nname = 'ccic'\nbuffer_size = 40\nminibatch_size = 6\nk_aug = 2\ncontrast_fraction = 0.5\n"
                 "[optimizer]\n_delete_ = true\ntype = 'adam'\nlr = 0.001\nweight_decay = 0.0\n",
                 "buffer_entries"},
        SemiCase{"sft_qbc",
                 "[method]\nname = 'sft'\n[active]\nstrategy = 'qbc'\nbudget_per_class = 2\nrounds = 2\n"
                 "warmup_iters = 4\niters_between_rounds = 8\ncommittee_size = 2\ncommittee_iters = 4\n",
                 ""}),
    [](const ::testing::TestParamInfo<SemiCase>& info) { return info.param.name; });

TEST(TwoRanksFaults, KilledRankIsNamedAndTheResumedRunEndsAsTheUninterruptedOne) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto whole = dir / "whole";
  const auto p = testing::run_train(tiny_args(dir, "der", whole) + " --nproc 2", dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;

  // Rank 1 killed after the checkpoint at global iteration 50 (task 1).
  const auto killed = dir / "killed";
  const pid_t launcher = spawn_train(tiny_args(dir, "der", killed) + " --nproc 2", dir / "killed.log");
  const auto checkpoint = killed / "checkpoints" / "ckpt_000000050.pt";
  int status = 0;
  while (!fs::exists(checkpoint) && waitpid(launcher, &status, WNOHANG) == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const pid_t rank1 = rank_process(launcher, 1);
  ASSERT_GT(rank1, 0) << testing::read_file(dir / "killed.log");
  kill(rank1, SIGKILL);
  const auto start = std::chrono::steady_clock::now();
  waitpid(launcher, &status, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));  // train.dist_timeout_s
  ASSERT_FALSE(fs::exists(killed / "results.json")) << "the run ended before rank 1 was killed";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  const std::string log = testing::read_file(dir / "killed.log");
  EXPECT_NE(log.find("rank 1 of 2 was killed by signal 9"), std::string::npos) << log;

  // A copy of the interrupted run, resumed on one process.
  const auto on_one = dir / "on_one";
  fs::copy(killed, on_one, fs::copy_options::recursive);
  const auto resumed = testing::run_train("--resume '" + killed.string() + "' --nproc 2", dir);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(results(whole)["accuracy"], results(killed)["accuracy"]);
  EXPECT_EQ(results(whole)["method_stats"], results(killed)["method_stats"]);
  EXPECT_EQ(max_abs_difference(model_tensors(whole), model_tensors(killed)), 0.0);

  const auto single = testing::run_train("--resume '" + on_one.string() + "'", dir);
  ASSERT_EQ(single.exit_code, 0) << single.err;
  expect_accuracies_near(results(whole), results(on_one), 0.1);
  EXPECT_LE(max_abs_difference(model_tensors(whole), model_tensors(on_one)), 1e-5);
}

// Waits for `file` while `pid` runs; false if it ended first.
bool wait_for(const fs::path& file, pid_t pid, int& status) {
  while (!fs::exists(file))
    if (waitpid(pid, &status, WNOHANG) != 0)
      return false;
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return true;
}

TEST(TwoRanksFaults, SigtermToTheLauncherCheckpointsEveryRankAndTheRunGoesOn) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto whole = dir / "whole", stopped = dir / "stopped";
  const auto p = testing::run_train(tiny_args(dir, "der", whole) + " --nproc 2", dir);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const pid_t launcher = spawn_train(tiny_args(dir, "der", stopped) + " --nproc 2", dir / "stopped.log");
  int status = 0;
  ASSERT_TRUE(wait_for(stopped / "checkpoints" / "ckpt_000000050.pt", launcher, status));
  kill(launcher, SIGTERM);
  waitpid(launcher, &status, 0);
  ASSERT_FALSE(fs::exists(stopped / "results.json")) << "the run ended before SIGTERM";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM);
  const std::string log = testing::read_file(dir / "stopped.log");
  EXPECT_NE(log.find("stopped by SIGTERM"), std::string::npos) << log;
  EXPECT_NE(log.find("--nproc 2"), std::string::npos) << log;  // the resume hint
  const auto resumed = testing::run_train("--resume '" + stopped.string() + "' --nproc 2", dir);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(results(whole)["accuracy"], results(stopped)["accuracy"]);
}

TEST(TwoRanksFaults, StoppedRankIsNamedWithinTheTimeout) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto run_dir = dir / "run";
  const pid_t launcher = spawn_train(
      tiny_args(dir, "der", run_dir) + " train.epochs_per_task=1000 train.dist_timeout_s=3 --nproc 2", dir / "log");
  int status = 0;
  ASSERT_TRUE(wait_for(run_dir / "checkpoints" / "ckpt_000000050.pt", launcher, status));
  const pid_t rank1 = rank_process(launcher, 1);
  ASSERT_GT(rank1, 0);
  kill(rank1, SIGSTOP);  // hung: alive, silent
  const auto start = std::chrono::steady_clock::now();
  waitpid(launcher, &status, 0);
  // 3 s timeout, 2 s to see who is silent, 10 s before the launcher kills the stopped rank.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(40));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  const std::string log = testing::read_file(dir / "log");
  EXPECT_NE(log.find("rank 1 stopped answering"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(run_dir / "results.json"));
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(TwoRanksFaults, BadEnvironmentIsOneLineNamingTheVariable) {
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  // A port something listens on already.
  const int taken_fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(taken_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(taken_fd, 1), 0);
  ::getsockname(taken_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int taken = ntohs(addr.sin_port);
  const int silent = free_port();
  const std::vector<std::pair<std::string, std::string>> cases{
      {"WORLD_SIZE=2", "WORLD_SIZE=2 is set but RANK is not"},
      {"RANK=2 WORLD_SIZE=2", "RANK=2 is not below WORLD_SIZE=2"},
      {"RANK=0 WORLD_SIZE=2 MASTER_PORT=" + std::to_string(taken), "MASTER_PORT=" + std::to_string(taken)},
      {"RANK=1 WORLD_SIZE=2 MASTER_PORT=" + std::to_string(silent), "MASTER_PORT=" + std::to_string(silent)},
  };
  for (const auto& [env, needle] : cases) {
    const auto run_dir = dir / "run";
    const auto start = std::chrono::steady_clock::now();
    const auto f = testing::run_shell(
        env + " " + SSCL_TRAIN_BINARY + " " + tiny_args(dir, "sft", run_dir) + " train.dist_timeout_s=3", dir);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30)) << env;
    EXPECT_NE(f.exit_code, 0) << env;
    EXPECT_EQ(f.err.rfind("error: ", 0), 0u) << env << ": " << f.err;
    EXPECT_NE(f.err.find(needle), std::string::npos) << env << ": " << f.err;
    EXPECT_EQ(std::count(f.err.begin(), f.err.end(), '\n'), 1) << env << ": " << f.err;
    EXPECT_FALSE(fs::exists(run_dir)) << env;
  }
  ::close(taken_fd);
}

TEST(TwoRanksFaults, MethodsThatDoNotRunDistributedAreRefusedNamingTheKey) {
  // Every built-in method and loss runs distributed; a user's method that does
  // not declare it (docs/extending.md's example, built as a plugin) is refused.
  TempDir dir;
  testing::write_tiny_fashion_mnist(dir / "data", 12, 4);
  const auto run_dir = dir / "run";
  const auto f =
      testing::run_train("'" + testing::config_path("examples/balanced_replay/balanced_replay_fmnist5.toml") +
                             "' --plugin '" + SSCL_PLUGIN_BALANCED_REPLAY + "' --work-dir '" + run_dir.string() +
                             "' --cfg-options data.root='\"" + (dir / "data").string() + "\"' --nproc 2",
                         dir);
  EXPECT_NE(f.exit_code, 0);
  EXPECT_NE(f.err.find("method.name"), std::string::npos) << f.err;
  EXPECT_NE(f.err.find("'balanced_replay' does not run distributed yet"), std::string::npos) << f.err;
  EXPECT_FALSE(fs::exists(run_dir / "results.json"));
}

}  // namespace
}  // namespace sscl
