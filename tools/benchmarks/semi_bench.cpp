// Iteration time of semi-supervised training: each config trains a few
// iterations per task through the real runner (data loading, augmentation,
// forward, backward, optimizer), and for every semi-supervised loss the same run
// is repeated with separate forward passes instead of one concatenated pass.
// Prints the median ms/iter of each, the ratio of separate to concatenated, and
// the ratio to the first config's time (the baseline, SFT by default) measured in
// the same run. Prints numbers; asserts nothing.
//
//   tools/bench semi [--iters 30] [--config FILE ...] [--cfg-options key=value ...]
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/config.h"
#include "core/device.h"
#include "core/logging.h"
#include "core/semi_loss.h"
#include "tools/benchmarks/bench_common.h"
#include "tools/runner.h"

namespace fs = std::filesystem;

namespace sscl {
namespace {

const std::vector<std::string> kDefaultConfigs = {
    "sft/sft_small_cnn_fmnist5",           "der/der_small_cnn_fmnist5",
    "fixmatch/fixmatch_small_cnn_fmnist5", "flexmatch/flexmatch_small_cnn_fmnist5",
    "uda/uda_small_cnn_fmnist5",           "mixmatch/mixmatch_small_cnn_fmnist5",
    "freematch/freematch_small_cnn_fmnist5", "softmatch/softmatch_small_cnn_fmnist5",
    "pseudo_label/pseudo_label_small_cnn_fmnist5", "mean_teacher/mean_teacher_small_cnn_fmnist5",
    "der_fixmatch/der_fixmatch_small_cnn_fmnist5", "der_flexmatch/der_flexmatch_small_cnn_fmnist5",
    "der_uda/der_uda_small_cnn_fmnist5",   "der_mixmatch/der_mixmatch_small_cnn_fmnist5",
    "er_fixmatch/er_fixmatch_small_cnn_fmnist5", "ccic/ccic_small_cnn_fmnist5"};

// The key that switches a config's semi-supervised loss between one pass and
// separate passes; empty when the config has none.
std::string concat_key(const Config& config) {
  if (config.has("method.semi")) return "method." + config.get<std::string>("method.semi") + ".concat_forward";
  if (SemiLossRegistry::get().contains(config.get<std::string>("method.name"))) return "method.concat_forward";
  return "";
}

double median_ms(const fs::path& config, std::vector<std::string> overrides, const fs::path& work_dir) {
  TrainArgs args;
  args.config = config;
  args.overrides = std::move(overrides);
  args.work_dir = work_dir;
  const auto outcome = run_training(args);
  fs::remove_all(work_dir);
  return outcome.results.at("timing").at("ms_per_iter_median").get<double>();
}

}  // namespace
}  // namespace sscl

int main(int argc, char** argv) {
  CLI::App app{"sscl semi-supervised iteration-time benchmark"};
  int iters = 30;
  std::vector<std::string> configs, overrides;
  app.add_option("--iters", iters, "training iterations per task")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--config", configs, "config files (default: the Fashion-MNIST-5 table's); the first is the baseline");
  app.add_option("--cfg-options", overrides, "key=value overrides for every run");
  CLI11_PARSE(app, argc, argv);
  if (configs.empty())
    for (const auto& c : sscl::kDefaultConfigs) configs.push_back("configs/" + c + ".toml");
  try {
    const fs::path scratch = fs::temp_directory_path() / ("sscl_bench_semi_" + std::to_string(::getpid()));
    overrides.push_back("train.iters_per_task=" + std::to_string(iters));
    sscl::set_console_logging(false);  // the runs' logs would interleave with the table
    // The bench prints the environment of the first run's settings (train.threads 0 = all cores).
    sscl::bench::print_environment(sscl::set_blas_threads(1) + ", before each run's own setting");
    std::printf("\n%d iterations per task x 5 tasks per run; the median ms/iter of each run (results.json "
                "timing.ms_per_iter_median: data wait + forward + backward + step).\n\n",
                iters);
    std::printf("| config | ms/iter (one pass) | ms/iter (separate passes) | separate / one pass | vs %s |\n"
                "|---|---:|---:|---:|---:|\n",
                fs::path(configs.front()).stem().c_str());
    std::optional<double> baseline;
    int run = 0;
    for (const auto& file : configs) {
      auto config = sscl::Config::load(file);
      for (const auto& o : overrides) config.apply_override(o);
      const auto key = sscl::concat_key(config);
      auto with = overrides;
      if (!key.empty()) with.push_back(key + "=true");
      const double one = sscl::median_ms(file, with, scratch / std::to_string(run++));
      if (!baseline) baseline = one;
      std::string separate = "n/a", ratio = "n/a";
      if (!key.empty()) {
        with.back() = key + "=false";
        const double sep = sscl::median_ms(file, with, scratch / std::to_string(run++));
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.1f", sep);
        separate = buf;
        std::snprintf(buf, sizeof buf, "%.2fx", sep / one);
        ratio = buf;
      }
      std::printf("| %s | %.1f | %s | %s | %.2fx |\n", fs::path(file).stem().c_str(), one, separate.c_str(),
                  ratio.c_str(), one / *baseline);
      std::fflush(stdout);
    }
    fs::remove_all(scratch);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
