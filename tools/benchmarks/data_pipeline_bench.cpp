// Throughput of the augmentation pipelines (images per second, weak and strong
// views, 1 thread and all threads, 32x32 RGB and 28x28 gray) and the share of a
// training iteration spent waiting for data in the default run, under several
// loader settings. Prints numbers; asserts nothing.
//
//   tools/bench data [--images N] [--iters N] [--skip-training]
#include <ATen/ATen.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "core/device.h"
#include "core/logging.h"
#include "core/random.h"
#include "datasets/augment_pipeline.h"
#include "datasets/image_dataset.h"
#include "tools/benchmarks/bench_common.h"
#include "tools/runner.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;
constexpr const char* kMainConfig = "configs/fixmatch/fixmatch_small_cnn_fmnist5.toml";
constexpr const char* kFashionMnist = "/usr/share/datasets/fashion-mnist";

// `n` images of rows x cols x channels: smooth random gradients plus noise, so
// that histogram and geometric operations see natural-looking content.
std::vector<cv::Mat> synthetic_images(int n, int rows, int cols, int channels) {
  std::vector<cv::Mat> images;
  Rng rng(1);
  for (int i = 0; i < n; ++i) {
    cv::Mat m(rows, cols, CV_8UC(channels));
    const double gx = rng.uniform(-4, 4), gy = rng.uniform(-4, 4), base = rng.uniform(40, 200);
    for (int y = 0; y < rows; ++y)
      for (int x = 0; x < cols; ++x)
        for (int c = 0; c < channels; ++c)
          m.ptr<uint8_t>(y)[x * channels + c] =
              cv::saturate_cast<uint8_t>(base + gx * x + gy * y + 20 * c + rng.uniform(-12, 12));
    images.push_back(m);
  }
  return images;
}

// The first n Fashion-MNIST training images, or synthetic ones if not installed.
std::vector<cv::Mat> gray_images(int n, std::string& source) {
  if (!fs::is_directory(kFashionMnist)) {
    source = "synthetic (Fashion-MNIST not installed)";
    return synthetic_images(n, 28, 28, 1);
  }
  const DatasetSplits splits = DatasetRegistry::get().at("fashion_mnist")(kFashionMnist);
  source = "Fashion-MNIST training images";
  std::vector<cv::Mat> images;
  for (int i = 0; i < n; ++i)
    images.push_back(cv::Mat(28, 28, CV_8UC1, splits.train->images[i].data_ptr<uint8_t>()).clone());
  return images;
}

// Images per second of one view over `images`, in an arena of `threads` threads;
// repeats passes until at least `min_seconds` have gone by.
double images_per_second(const std::vector<cv::Mat>& images, const AugmentPipeline& pipeline, bool strong, int threads,
                         double min_seconds = 1.0) {
  const int floats = images[0].rows * images[0].cols * images[0].channels();
  std::vector<float> out(images.size() * static_cast<size_t>(floats));
  tbb::task_arena arena(threads);
  int64_t done = 0;
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t pass = 0; done == 0 || bench::seconds_since(start) < min_seconds; ++pass) {
    arena.execute([&] {
      tbb::parallel_for(size_t{0}, images.size(), [&](size_t i) {
        Rng rng(derive_seed(7, {pass, i}));
        const cv::Mat view = strong ? pipeline.strong(images[i], rng) : pipeline.weak(images[i], rng);
        pipeline.normalize(view, out.data() + i * floats);
      });
    });
    done += static_cast<int64_t>(images.size());
  }
  return done / bench::seconds_since(start);
}

void pipeline_table(int n, int all_threads) {
  std::string gray_source;
  struct Input {
    std::string name;
    std::vector<cv::Mat> images;
    std::vector<double> mean, std;
  };
  const std::vector<Input> inputs = {
      {"32x32 RGB", synthetic_images(n, 32, 32, 3), {125.3, 123.0, 113.9}, {51.6, 50.8, 51.3}},
      {"28x28 gray", gray_images(n, gray_source), {72.94}, {90.02}},
  };
  std::printf("\n## Augmentation throughput (%d images; 28x28 gray: %s)\n", n, gray_source.c_str());
  std::printf("views: weak = crop(4) + flip; strong = weak + RandAugment + Cutout, as the default config\n\n");
  std::printf("| input | view | 1 thread (img/s) | %d threads (img/s) | speed-up |\n|---|---|---:|---:|---:|\n",
              all_threads);
  for (const auto& input : inputs) {
    for (const auto& variant : {std::string("reference"), std::string("fixmatch")}) {
      AugmentOptions options;
      options.randaugment.variant = variant;
      if (variant == "fixmatch") {
        options.randaugment.num_ops = 2;
        options.strong_cutout_mode = "random";
      }
      const AugmentPipeline pipeline(options, input.mean, input.std);
      for (bool strong : {false, true}) {
        if (!strong && variant == "fixmatch") continue;  // the same weak view
        const double one = images_per_second(input.images, pipeline, strong, 1);
        const double all = images_per_second(input.images, pipeline, strong, all_threads);
        const std::string view = strong ? "strong (" + variant + " RandAugment)" : "weak";
        std::printf("| %s | %s | %.0f | %.0f | %.2fx |\n", input.name.c_str(), view.c_str(), one, all, all / one);
      }
    }
  }
}

struct LoaderSetting {
  std::string name;
  std::vector<std::string> overrides;
};

void training_table(int iters, int all_threads) {
  std::printf("\n## Waiting for data in the default run (%s, %d iterations per task)\n\n", kMainConfig, iters);
  std::printf(
      "| setting | data wait (ms/iter) | ms/iter (median) | ms/iter (mean) | share waiting |\n"
      "|---|---:|---:|---:|---:|\n");
  const std::string t = std::to_string(all_threads);
  const std::vector<LoaderSetting> settings = {
      {"no prefetch, 1 worker (baseline)", {"data.prefetch=false", "data.workers=1"}},
      {"prefetch, 1 worker (default)", {"data.prefetch=true", "data.workers=1"}},
      {"prefetch, " + t + " workers", {"data.prefetch=true", "data.workers=" + t}},
      {"prefetch, 1 worker, torch threads " + std::to_string(std::max(1, all_threads - 1)),
       {"data.prefetch=true", "data.workers=1", "train.threads=" + std::to_string(std::max(1, all_threads - 1))}},
  };
  const fs::path scratch = fs::temp_directory_path() / ("sscl_bench_data_" + std::to_string(::getpid()));
  set_console_logging(false);
  for (size_t i = 0; i < settings.size(); ++i) {
    TrainArgs args;
    args.config = kMainConfig;
    args.overrides = settings[i].overrides;
    args.overrides.push_back("train.iters_per_task=" + std::to_string(iters));
    args.work_dir = scratch / std::to_string(i);
    const auto timing = run_training(args).results.at("timing");
    const double data = timing.at("ms_per_iter_parts").at("data").get<double>();
    const double mean = timing.at("ms_per_iter_mean").get<double>();
    std::printf("| %s | %.2f | %.2f | %.2f | %.1f%% |\n", settings[i].name.c_str(), data,
                timing.at("ms_per_iter_median").get<double>(), mean, 100.0 * data / mean);
    std::fflush(stdout);
  }
  set_console_logging(true);
  std::error_code ec;
  fs::remove_all(scratch, ec);
}

}  // namespace
}  // namespace sscl

int main(int argc, char** argv) {
  CLI::App app{"sscl data pipeline benchmark"};
  int images = 2048, iters = 100;
  bool skip_training = false;
  app.add_option("--images", images, "images per throughput pass")->check(CLI::PositiveNumber);
  app.add_option("--iters", iters, "iterations per task of the training runs")->check(CLI::PositiveNumber);
  app.add_flag("--skip-training", skip_training, "only the throughput table");
  CLI11_PARSE(app, argc, argv);
  try {
    const int all_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    sscl::set_torch_threads(0);
    sscl::bench::print_environment(sscl::set_blas_threads(1));
    sscl::pipeline_table(images, all_threads);
    if (!skip_training) sscl::training_table(iters, all_threads);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
