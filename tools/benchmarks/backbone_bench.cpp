// Training-step time of every registered backbone (default options, 10-class
// linear head): forward + cross-entropy + backward + SGD step in train mode, on
// the reference's batch (8 labeled + 56 unlabeled images in a weak and a strong
// view, concatenated: 120 of 32x32x3) and on 120 Fashion-MNIST-sized images (28x28x1).
// Prints median and mean ms per step, images/s and the ratio to small_cnn's time
// in the same run. Prints numbers; asserts nothing.
//
//   tools/bench backbones [--backbone NAME] [--batch 120] [--warmup 1] [--iters 5] [--max-seconds 30]
#include <c10/util/Exception.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/device.h"
#include "core/nn/classifier.h"
#include "models/model_stats.h"
#include "tools/benchmarks/bench_common.h"

namespace sscl {
namespace {

constexpr const char* kBaseline = "small_cnn";
constexpr int64_t kClasses = 10;

struct Options {
  int64_t batch = 120;
  int warmup = 1;
  int iters = 5;
  double max_seconds = 30;
};

struct Row {
  std::string name;
  std::string error;  // non-empty: the backbone could not be built or trained on this input
  int64_t macs = 0;   // per image, forward
  std::vector<double> ms;
  double median() const {
    std::vector<double> s = ms;
    std::sort(s.begin(), s.end());
    const size_t n = s.size();
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  }
  double mean() const { return std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size()); }
};

std::string error_text(const std::exception& e) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  std::string text = c10_error ? c10_error->what_without_backtrace() : e.what();
  for (char& c : text)
    if (c == '|' || c == '\n') c = ' ';
  return text;
}

Row measure(const std::string& name, const InputShape& shape, const Options& options) {
  Row row{name, "", 0, {}};
  try {
    torch::manual_seed(0);
    const auto config = Config::from_string("[model]\n", "model.toml");
    Classifier model(BackboneRegistry::get().at(name)(config.section("model"), shape), kClasses);
    row.macs = model_stats(*model, shape).macs;
    model->train();
    torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.03).momentum(0.9));
    const torch::Tensor images = torch::randn({options.batch, shape.channels, shape.height, shape.width});
    const torch::Tensor labels = torch::randint(0, kClasses, {options.batch}, torch::kLong);
    auto step = [&] {
      optimizer.zero_grad();
      const torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(images), labels);
      loss.backward();
      optimizer.step();
    };
    for (int i = 0; i < options.warmup; ++i) step();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < options.iters; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      step();
      row.ms.push_back(1000.0 * bench::seconds_since(t0));
      if (bench::seconds_since(start) > options.max_seconds) break;  // at least one timed step
    }
  } catch (const std::exception& e) {
    row.error = error_text(e);
  }
  return row;
}

void table(const std::string& title, const InputShape& shape, const std::vector<std::string>& names,
           const Options& options) {
  std::printf("\n## %s: %lld images of %lldx%lldx%lld, %lld-class head\n\n", title.c_str(),
              static_cast<long long>(options.batch), static_cast<long long>(shape.height),
              static_cast<long long>(shape.width), static_cast<long long>(shape.channels),
              static_cast<long long>(kClasses));
  std::printf(
      "| backbone | MMACs/image | ms/step (median) | ms/step (mean) | timed steps | images/s | "
      "time vs %s |\n|---|---:|---:|---:|---:|---:|---:|\n",
      kBaseline);
  std::optional<double> baseline;
  for (const auto& name : names) {
    const Row row = measure(name, shape, options);
    if (!row.error.empty()) {
      std::printf("| %s | failed: %s | | | | | |\n", name.c_str(), row.error.c_str());
      std::fflush(stdout);
      continue;
    }
    const double median = row.median();
    if (name == kBaseline) baseline = median;
    char ratio[32] = "n/a";
    if (baseline) std::snprintf(ratio, sizeof ratio, "%.2fx", median / *baseline);
    std::printf("| %s | %.1f | %.1f | %.1f | %zu | %.0f | %s |\n", name.c_str(), row.macs / 1e6, median, row.mean(),
                row.ms.size(), 1000.0 * static_cast<double>(options.batch) / median, ratio);
    std::fflush(stdout);
  }
}

}  // namespace
}  // namespace sscl

int main(int argc, char** argv) {
  CLI::App app{"sscl backbone training-step benchmark"};
  sscl::Options options;
  std::string only;
  app.add_option("--backbone", only, "only this backbone (small_cnn, the baseline, is measured too)");
  app.add_option("--batch", options.batch, "images per step")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", options.warmup, "untimed steps first")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--iters", options.iters, "timed steps")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-seconds", options.max_seconds, "stop timing a row after this many seconds (>= 1 step)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    const auto all = sscl::BackboneRegistry::get().names();
    std::vector<std::string> names;
    // The baseline first, so that every other row has its ratio.
    if (std::find(all.begin(), all.end(), sscl::kBaseline) != all.end()) names.push_back(sscl::kBaseline);
    if (only.empty()) {
      for (const auto& name : all)
        if (name != sscl::kBaseline) names.push_back(name);
    } else {
      sscl::BackboneRegistry::get().at(only);  // an unknown name lists the known ones
      if (only != sscl::kBaseline) names.push_back(only);
    }
    sscl::set_torch_threads(0);
    sscl::bench::print_environment(sscl::set_blas_threads(1));
    std::printf(
        "\nOne step = zero_grad + forward + cross-entropy + backward + SGD (momentum 0.9), train mode, "
        "default backbone options. %d warm-up step(s), then %d timed step(s), a row stops timing after "
        "%.0f s (at least one step): small defaults so that the whole run takes a few minutes on 2 cores; "
        "raise --iters for steadier figures. MMACs: forward, one image (models/model_stats.h).\n",
        options.warmup, options.iters, options.max_seconds);
    const auto start = std::chrono::steady_clock::now();
    sscl::table("The reference's batch (CIFAR-sized)", {3, 32, 32}, names, options);
    sscl::table("Fashion-MNIST-sized", {1, 28, 28}, names, options);
    std::printf("\ntotal %.0f s\n", sscl::bench::seconds_since(start));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
