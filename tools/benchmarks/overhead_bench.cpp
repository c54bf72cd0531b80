// The framework's overhead over the bare step. Each config trains through the
// real runner (loader, method, hooks); the trainer splits every iteration into
// data wait, forward and loss, backward and step, and other. The overhead share
// is (data wait + other) / iteration. Then, in the same process, the bare step of
// the same model: the same tensors' forward, loss, backward and SGD step written
// straight in LibTorch, with the batches made once beforehand and the replay
// draws (ER, DER, DER++) as fixed tensors of the method's draw size; EdgeHML's
// bare step is its concatenated FixMatch-style pass over labeled, replayed,
// weak and strong images (the memory tiers' bookkeeping is what it leaves out).
// The ratio run / bare is what sscl costs over that floor. With --repeats N the
// list runs N times interleaved and each figure is the median. Prints numbers;
// asserts nothing.
//
//   tools/bench overhead [--config FILE ...] [--repeats 1] [--bare-iters 2000] [--cfg-options key=value ...]
#include <torch/torch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/device.h"
#include "core/logging.h"
#include "core/run_builder.h"
#include "tasks/split_semi_tasks.h"
#include "tools/benchmarks/bench_common.h"
#include "tools/runner.h"

namespace fs = std::filesystem;

namespace sscl {
namespace {

const std::vector<std::string> kDefaultConfigs = {
    "configs/classic/sft_mlp_fmnist5_classic.toml", "configs/classic/er_mlp_fmnist5_classic.toml",
    "configs/classic/der_mlp_fmnist5_classic.toml", "configs/classic/derpp_mlp_fmnist5_classic.toml",
    "configs/edgehml/edgehml_small_cnn_fmnist5.toml"};

struct RunFigures {
  double ms = 0, data = 0, forward = 0, backward = 0, other = 0;
};

RunFigures run_config(const fs::path& config, const std::vector<std::string>& overrides, const fs::path& work_dir) {
  TrainArgs args;
  args.config = config;
  args.overrides = overrides;
  args.work_dir = work_dir;
  const auto outcome = run_training(args);
  fs::remove_all(work_dir);
  const auto& timing = outcome.results.at("timing");
  const auto& parts = timing.at("ms_per_iter_parts");
  return {timing.at("ms_per_iter_mean").get<double>(), parts.at("data").get<double>(),
          parts.at("forward_and_loss").get<double>(), parts.at("backward_and_step").get<double>(),
          parts.at("other").get<double>()};
}

// The draw size of a replay method: method.minibatch_size, or the batch when 0/unset.
int64_t replay_size(const Config& config, int64_t batch) {
  const int64_t n = config.has("method.minibatch_size") ? config.get<int64_t>("method.minibatch_size") : 0;
  return n > 0 ? n : batch;
}

double value_or(const Config& config, const std::string& key, double fallback) {
  return config.has(key) ? config.get<double>(key) : fallback;
}

struct BareFigures {
  double step_ms = 0, build_ms = 0;  // the bare step; one batch built on this thread
};

// ms per bare step of the config's model on tensors of the run's shapes, and
// the cost of building one of the run's batches without the loader thread.
BareFigures bare_step(const fs::path& config_path, const std::vector<std::string>& overrides, int iters) {
  Config config = Config::load(config_path);
  for (const auto& o : overrides) config.apply_override(o);
  RunBuilder builder(config);
  std::unique_ptr<Run> run = builder.finish();
  TaskData& data = *run->data;
  const std::string method = config.get<std::string>("method.name");
  const bool unlabeled = method == "edgehml";
  data.set_load_unlabeled(unlabeled);
  // A few real batches of task 0, made before the clock starts.
  auto* split = dynamic_cast<SplitSemiTasks*>(&data);
  std::vector<TrainBatch> batches;
  const auto build_start = std::chrono::steady_clock::now();
  // 200 builds time one batch on the caller thread (a ring miss costs this).
  const int builds = split ? 200 : 8;
  for (int64_t i = 0; i < builds; ++i) {
    auto b = split ? split->build_batch(0, 200 + i) : data.train_batch(0, 200 + i);
    if (batches.size() < 8) batches.push_back(std::move(b));
  }
  const double build_ms = bench::seconds_since(build_start) * 1000.0 / builds;
  const int64_t batch = data.batch_size(), replay = replay_size(config, batch);
  const auto& first = batches.front().labeled;
  const auto replay_images = first.images.repeat({(replay + batch - 1) / batch, 1, 1, 1}).narrow(0, 0, replay);
  const auto replay_labels = first.labels.repeat({(replay + batch - 1) / batch}).narrow(0, 0, replay);
  Classifier model = run->model;
  model->train();
  const auto replay_logits = model->forward(replay_images).detach();
  const double lr = config.get<double>("optimizer.lr");
  torch::optim::SGD sgd(model->parameters(),
                        torch::optim::SGDOptions(lr).momentum(value_or(config, "optimizer.momentum", 0.0)));
  const double alpha = value_or(config, "method.alpha", 0.1), beta = value_or(config, "method.beta", 0.5);
  const double threshold = value_or(config, "method.threshold", 0.95);
  const auto step = [&](const TrainBatch& b) {
    const auto& x = b.labeled.images;
    const auto& y = b.labeled.labels;
    torch::Tensor loss;
    if (method == "er") {
      loss = torch::cross_entropy_loss(model->forward(torch::cat({x, replay_images})), torch::cat({y, replay_labels}));
    } else if (method == "der" || method == "derpp") {
      loss = torch::cross_entropy_loss(model->forward(x), y) +
             alpha * torch::mse_loss(model->forward(replay_images), replay_logits);
      if (method == "derpp")
        loss = loss + beta * torch::cross_entropy_loss(model->forward(replay_images), replay_labels);
    } else if (unlabeled) {
      const int64_t nu = b.unlabeled.weak.size(0);
      const auto logits = model->forward(torch::cat({x, replay_images, b.unlabeled.weak, b.unlabeled.strong}));
      const auto sup = logits.narrow(0, 0, batch + replay);
      const auto weak = logits.narrow(0, batch + replay, nu).detach().softmax(1);
      const auto strong = logits.narrow(0, batch + replay + nu, nu);
      const auto [confidence, pseudo] = weak.max(1);
      const auto mask = confidence.ge(threshold).to(torch::kFloat);
      loss = torch::cross_entropy_loss(sup, torch::cat({y, replay_labels})) +
             (torch::nn::functional::cross_entropy(
                  strong, pseudo, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone)) *
              mask)
                 .mean();
    } else {
      loss = torch::cross_entropy_loss(model->forward(x), y);
    }
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    return loss.item<double>();
  };
  for (int i = 0; i < 50; ++i) step(batches[i % batches.size()]);  // warm-up
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) step(batches[i % batches.size()]);
  return {bench::seconds_since(start) * 1000.0 / iters, build_ms};
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int run_main(int argc, char** argv) {
  CLI::App app{"sscl overhead benchmark: the loop's time outside forward, backward and step"};
  std::vector<std::string> configs, overrides;
  int repeats = 1, bare_iters = 2000;
  app.add_option("--config", configs, "configs (default: classic SFT, ER, DER, DER++ MLP; EdgeHML small CNN)");
  app.add_option("--repeats", repeats, "interleaved repeats; figures are medians")->check(CLI::PositiveNumber);
  app.add_option("--bare-iters", bare_iters, "timed iterations of each bare step")->check(CLI::PositiveNumber);
  app.add_option("--cfg-options", overrides, "key=value overrides for every config");
  CLI11_PARSE(app, argc, argv);
  if (configs.empty()) configs = kDefaultConfigs;
  set_console_logging(false);  // the runs' logs would interleave with the table
  overrides.insert(overrides.begin(), {"checkpoint.enabled=false", "train.save_model=false"});

  const fs::path work = fs::temp_directory_path() / ("sscl_bench_overhead_" + std::to_string(::getpid()));
  std::vector<std::vector<RunFigures>> runs(configs.size());
  std::vector<std::vector<BareFigures>> bare(configs.size());
  bench::print_environment(set_blas_threads(1) + ", before each run's own train.blas_threads");
  for (int r = 0; r < repeats; ++r) {
    for (size_t c = 0; c < configs.size(); ++c) {
      runs[c].push_back(run_config(configs[c], overrides, work / std::to_string(c)));
      bare[c].push_back(bare_step(configs[c], overrides, bare_iters));
    }
  }
  std::printf("\n%-34s %8s %8s %8s %8s %8s %9s %8s %7s %9s\n", "config", "ms/iter", "data", "fwd+loss", "bwd+step",
              "other", "overhead", "bare ms", "ratio", "build ms");
  for (size_t c = 0; c < configs.size(); ++c) {
    const auto med = [&](double RunFigures::*field) {
      std::vector<double> v;
      for (const auto& f : runs[c]) v.push_back(f.*field);
      return median_of(v);
    };
    const double ms = med(&RunFigures::ms), data = med(&RunFigures::data), other = med(&RunFigures::other);
    std::vector<double> steps, builds;
    for (const auto& f : bare[c]) {
      steps.push_back(f.step_ms);
      builds.push_back(f.build_ms);
    }
    const double b = median_of(steps);
    std::printf("%-34s %8.4f %8.4f %8.4f %8.4f %8.4f %8.1f%% %8.4f %6.2fx %9.4f\n", fs::path(configs[c]).stem().c_str(),
                ms, data, med(&RunFigures::forward), med(&RunFigures::backward), other, 100.0 * (data + other) / ms, b,
                ms / b, median_of(builds));
  }
  std::printf(
      "\noverhead = (data wait + other) / iteration; ratio = the run's ms/iter over the bare step's, both measured in "
      "this process (ms: mean over the run's iterations, median over %d repeat(s)); build ms = one batch built on "
      "the calling thread, without the loader\n",
      repeats);
  fs::remove_all(work);
  return 0;
}

}  // namespace
}  // namespace sscl

int main(int argc, char** argv) {
  try {
    return sscl::run_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
