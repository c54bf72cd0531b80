// Data-parallel training on this machine's cores: each config trains as one
// process with 1 thread (the baseline), one process with 2 threads (torch's
// intra-op parallelism) and 2 ranks with 1 thread each (Gloo, --nproc 2), all
// through sscl_train with the same global batch. Figures come from each run's
// results.json: the median ms per iteration, the communication part of it
// (waiting for the other rank: the loss and statistics reduction and the
// gradient buckets not hidden behind backward), the speed-up over the baseline
// and the scaling efficiency (speed-up / cores used). With --repeats N the
// three runs go N times interleaved and each figure is the median. The runs are
// the config's tasks with --iters iterations each, no checkpoints, and no
// warm-up of the unlabeled terms (EdgeHML's unsup_warmup_iters = 0), so that
// every iteration is a full one.
// Prints numbers; asserts nothing.
//
//   tools/bench ddp [--config FILE ...] [--iters 10] [--repeats 1] [--cfg-options key=value ...]
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/device.h"
#include "tools/benchmarks/bench_common.h"

extern char** environ;

namespace fs = std::filesystem;

namespace sscl {
namespace {

struct BenchConfig {
  std::string path;
  std::vector<std::string> overrides;  // what the config needs for full iterations from the first
};

// The small-CNN FixMatch run and the reduced-ResNet-18 EdgeHML run of the issue.
const std::vector<BenchConfig> kDefaultConfigs = {
    {"configs/fixmatch/fixmatch_small_cnn_fmnist5.toml", {}},
    {"configs/edgehml/edgehml_reduced_resnet18_fmnist5.toml", {"method.unsup_warmup_iters=0"}}};

struct Layout {
  std::string name;
  int ranks = 1;
  int threads = 1;
};

const std::vector<Layout> kLayouts = {
    {"1 process x 1 thread", 1, 1}, {"1 process x 2 threads", 1, 2}, {"2 ranks x 1 thread", 2, 1}};

struct Figures {
  double ms = 0, comm_ms = 0;
};

fs::path sscl_train_binary() { return fs::read_symlink("/proc/self/exe").parent_path() / "sscl_train"; }

// Runs sscl_train with `args`, its output into `log`; its exit status.
int run_train(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> all{sscl_train_binary().string()};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&files, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv[0], &files, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  if (spawned != 0) return -1;
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Figures run_layout(const BenchConfig& config, const Layout& layout, int iters, const std::vector<std::string>& user,
                   const fs::path& scratch) {
  const fs::path run_dir = scratch / "run";
  fs::remove_all(run_dir);
  std::vector<std::string> args{config.path,
                                "--work-dir",
                                run_dir.string(),
                                "--cfg-options",
                                "train.iters_per_task=" + std::to_string(iters),
                                "train.threads=" + std::to_string(layout.threads),
                                "checkpoint.enabled=false",
                                "train.save_model=false",
                                "log.interval=1000000"};
  args.insert(args.end(), config.overrides.begin(), config.overrides.end());
  args.insert(args.end(), user.begin(), user.end());
  if (layout.ranks > 1) {
    args.push_back("--nproc");
    args.push_back(std::to_string(layout.ranks));
  }
  const fs::path log = scratch / "train.log";
  if (const int status = run_train(args, log); status != 0) {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    throw std::runtime_error(config.path + " (" + layout.name + "): sscl_train exited with status " +
                             std::to_string(status) + ":\n" + text.str());
  }
  std::ifstream in(run_dir / "results.json");
  const auto results = nlohmann::json::parse(in);
  const auto& timing = results.at("timing");
  Figures f{timing.at("ms_per_iter_median").get<double>(),
            timing.at("ms_per_iter_parts").at("communication").get<double>()};
  fs::remove_all(run_dir);
  return f;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int bench_main(int argc, char** argv) {
  CLI::App app{"tools/bench ddp: 1 process x 1 and x 2 threads against 2 ranks x 1 thread"};
  std::vector<std::string> configs, overrides;
  int iters = 10, repeats = 1;
  app.add_option("--config", configs, "configs to time (default: small-CNN FixMatch, reduced-ResNet-18 EdgeHML)");
  app.add_option("--iters", iters, "iterations of each task")->check(CLI::PositiveNumber);
  app.add_option("--repeats", repeats, "times each run goes (interleaved); figures are medians")
      ->check(CLI::PositiveNumber);
  app.add_option("--cfg-options", overrides, "overrides for every run (key=value)");
  CLI11_PARSE(app, argc, argv);
  std::vector<BenchConfig> list;
  for (const auto& c : configs) list.push_back({c, {}});
  if (list.empty()) list = kDefaultConfigs;

  bench::print_environment(set_blas_threads(1) + ", as each run's train.blas_threads");
  std::printf(
      "each run: sscl_train, the config's tasks x %d iterations, the same global batch; ms/iter is the "
      "median iteration, comm the part of it spent waiting for the other rank; %d repeat(s)\n\n",
      iters, repeats);
  const fs::path scratch = fs::temp_directory_path() / ("sscl_bench_ddp_" + std::to_string(::getpid()));
  fs::create_directories(scratch);
  for (const auto& config : list) {
    std::vector<std::vector<Figures>> runs(kLayouts.size());
    for (int r = 0; r < repeats; ++r)
      for (size_t l = 0; l < kLayouts.size(); ++l)
        runs[l].push_back(run_layout(config, kLayouts[l], iters, overrides, scratch));
    std::vector<double> ms(kLayouts.size()), comm(kLayouts.size());
    for (size_t l = 0; l < kLayouts.size(); ++l) {
      std::vector<double> m, c;
      for (const auto& f : runs[l]) {
        m.push_back(f.ms);
        c.push_back(f.comm_ms);
      }
      ms[l] = median(m);
      comm[l] = median(c);
    }
    std::printf("%s\n", config.path.c_str());
    std::printf("  %-24s %10s %10s %9s %11s\n", "layout", "ms/iter", "comm ms", "speed-up", "efficiency");
    for (size_t l = 0; l < kLayouts.size(); ++l) {
      const double cores = kLayouts[l].ranks * kLayouts[l].threads;
      const double speedup = ms[0] / ms[l];
      std::printf("  %-24s %10.2f %10.2f %8.2fx %10.0f%%\n", kLayouts[l].name.c_str(), ms[l], comm[l], speedup,
                  100.0 * speedup / cores);
    }
    std::printf("  2 ranks x 1 thread against 1 process x 2 threads: %.2fx the speed\n\n", ms[1] / ms[2]);
    std::fflush(stdout);
  }
  fs::remove_all(scratch);
  return 0;
}

}  // namespace
}  // namespace sscl

int main(int argc, char** argv) {
  try {
    return sscl::bench_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
