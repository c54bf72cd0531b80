// Iteration time of semi-supervised training: each config trains a few
// iterations per task through the real runner (data loading, augmentation,
// forward, backward, optimizer), and for every config with a concatenated
// forward option the same run is repeated with separate forward passes. With
// --repeats N the whole list runs N times, interleaved (config 1, 2, ..., then
// again), so that the drift of a shared machine hits every config alike; each
// figure is the median over the repeats. Prints the median and mean ms/iter, the
// ratio of separate to concatenated, and the ratio to the first config (the
// baseline, SFT by default) measured in the same run. Prints numbers; asserts
// nothing.
//
//   tools/bench semi [--iters 30] [--repeats 1] [--config FILE ...] [--cfg-options key=value ...]
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/device.h"
#include "core/logging.h"
#include "core/semi_loss.h"
#include "tools/benchmarks/bench_common.h"
#include "tools/runner.h"

namespace fs = std::filesystem;

namespace sscl {
namespace {

const std::vector<std::string> kDefaultConfigs = {"sft/sft_small_cnn_fmnist5",
                                                  "der/der_small_cnn_fmnist5",
                                                  "fixmatch/fixmatch_small_cnn_fmnist5",
                                                  "flexmatch/flexmatch_small_cnn_fmnist5",
                                                  "uda/uda_small_cnn_fmnist5",
                                                  "mixmatch/mixmatch_small_cnn_fmnist5",
                                                  "freematch/freematch_small_cnn_fmnist5",
                                                  "softmatch/softmatch_small_cnn_fmnist5",
                                                  "pseudo_label/pseudo_label_small_cnn_fmnist5",
                                                  "mean_teacher/mean_teacher_small_cnn_fmnist5",
                                                  "der_fixmatch/der_fixmatch_small_cnn_fmnist5",
                                                  "der_flexmatch/der_flexmatch_small_cnn_fmnist5",
                                                  "der_uda/der_uda_small_cnn_fmnist5",
                                                  "der_mixmatch/der_mixmatch_small_cnn_fmnist5",
                                                  "er_fixmatch/er_fixmatch_small_cnn_fmnist5",
                                                  "ccic/ccic_small_cnn_fmnist5"};

// The key that switches a config's semi-supervised loss between one pass and
// separate passes; empty when the config has none.
std::string concat_key(const Config& config) {
  if (config.has("method.semi")) return "method." + config.get<std::string>("method.semi") + ".concat_forward";
  if (SemiLossRegistry::get().contains(config.get<std::string>("method.name")) || config.has("method.concat_forward"))
    return "method.concat_forward";  // a loss alone, or a method with its own option (EdgeHML)
  return "";
}

struct Timing {
  double median = 0, mean = 0;
};

Timing time_run(const fs::path& config, std::vector<std::string> overrides, const fs::path& work_dir) {
  TrainArgs args;
  args.config = config;
  args.overrides = std::move(overrides);
  args.work_dir = work_dir;
  const auto outcome = run_training(args);
  fs::remove_all(work_dir);
  const auto& timing = outcome.results.at("timing");
  return {timing.at("ms_per_iter_median").get<double>(), timing.at("ms_per_iter_mean").get<double>()};
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The runs of one config and forward mode, over the repeats.
struct Series {
  std::vector<double> medians, means;
  void add(const Timing& t) {
    medians.push_back(t.median);
    means.push_back(t.mean);
  }
  std::string text() const {
    if (medians.empty()) return "n/a";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f (%.1f)", median_of(medians), median_of(means));
    return buf;
  }
};

}  // namespace
}  // namespace sscl

int main(int argc, char** argv) {
  CLI::App app{"sscl semi-supervised iteration-time benchmark"};
  int iters = 30, repeats = 1;
  std::vector<std::string> configs, overrides;
  app.add_option("--iters", iters, "training iterations per task")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--repeats", repeats, "runs of the whole list, interleaved; figures are medians over them")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
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
    std::printf(
        "\n%d iterations per task x 5 tasks per run, %d repeat(s) interleaved; median ms/iter of each run "
        "(results.json timing.ms_per_iter_median: data wait + forward + backward + step), the mean in "
        "brackets; each the median over the repeats.\n\n",
        iters, repeats);
    std::vector<std::string> keys;
    for (const auto& file : configs) {
      auto config = sscl::Config::load(file);
      for (const auto& o : overrides) config.apply_override(o);
      keys.push_back(sscl::concat_key(config));
    }
    std::vector<sscl::Series> one(configs.size()), separate(configs.size());
    int run = 0;
    for (int r = 0; r < repeats; ++r)
      for (size_t i = 0; i < configs.size(); ++i) {
        auto with = overrides;
        if (!keys[i].empty()) with.push_back(keys[i] + "=true");
        one[i].add(sscl::time_run(configs[i], with, scratch / std::to_string(run++)));
        if (keys[i].empty()) continue;
        with.back() = keys[i] + "=false";
        separate[i].add(sscl::time_run(configs[i], with, scratch / std::to_string(run++)));
      }
    std::printf(
        "| config | ms/iter (one pass) | ms/iter (separate passes) | separate / one pass | vs %s |\n"
        "|---|---:|---:|---:|---:|\n",
        fs::path(configs.front()).stem().c_str());
    const double baseline = sscl::median_of(one.front().medians);
    for (size_t i = 0; i < configs.size(); ++i) {
      const double median = sscl::median_of(one[i].medians);
      std::string ratio = "n/a";
      if (!separate[i].medians.empty()) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.2fx", sscl::median_of(separate[i].medians) / median);
        ratio = buf;
      }
      std::printf("| %s | %s | %s | %s | %.2fx |\n", fs::path(configs[i]).stem().c_str(), one[i].text().c_str(),
                  separate[i].text().c_str(), ratio.c_str(), median / baseline);
    }
    std::printf("\nPer run (median ms/iter, one pass), in order of the repeats:\n");
    for (size_t i = 0; i < configs.size(); ++i) {
      std::printf("  %s:", fs::path(configs[i]).stem().c_str());
      for (double m : one[i].medians) std::printf(" %.1f", m);
      std::printf("\n");
    }
    fs::remove_all(scratch);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
