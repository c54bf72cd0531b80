#include "tools/pretraining/pretrain_run.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "core/atomic_file.h"
#include "core/describe.h"
#include "core/distributed.h"
#include "core/environment.h"
#include "core/error.h"
#include "core/logging.h"
#include "core/nn/pretrained.h"
#include "core/nn/state_dict_file.h"
#include "core/random.h"
#include "core/run_builder.h"
#include "core/text.h"
#include "tools/runner.h"

namespace sscl {

namespace fs = std::filesystem;

void PretrainOptions::declare(OptionSpec<PretrainOptions>& o) {
  using O = PretrainOptions;
  o.key("images", &O::images, "train: the images of every task (labels unused); first_task: the first task's only")
      .one_of({"train", "first_task"});
  o.key("iters", &O::iters, "SimSiam iterations").min(1);
  o.key("batch_size", &O::batch_size, "images per iteration (each in two views)").min(2);
  o.key("lr", &O::lr, "SGD learning rate, cosine-decayed to 0 over the iterations").above(0);
  o.key("momentum", &O::momentum, "SGD momentum").between(0, 1);
  o.key("weight_decay", &O::weight_decay, "SGD weight decay").min(0);
  o.key("fix_pred_lr", &O::fix_pred_lr, "the predictor keeps the initial learning rate (SimSiam's default)");
  o.key("log_interval", &O::log_interval, "iterations between loss lines in pretrain.log").min(1);
  o.include(&O::simsiam);
  o.section("augment", &O::augment, "the views: SimSiam's CIFAR augmentation");
}

namespace {

const ToolSectionDoc kPretrainDoc{
    "pretrain", "tools/pretrain: SimSiam on the dataset's images (tools/train checks the keys and ignores them)",
    [] { return describe_options<PretrainOptions>(); },
    [](const ConfigSection& section) { read_options<PretrainOptions>(section); }};

// The training images pretraining draws from: the labeled and unlabeled ids of
// every task (or the first), once each, in id order.
std::vector<int64_t> image_pool(const TaskData& data, bool first_task_only) {
  std::set<int64_t> ids;
  for (int task = 0; task < (first_task_only ? 1 : data.num_tasks()); ++task) {
    const LabeledSet labeled = data.labeled_set(task);
    const auto* labeled_ids = labeled.ids.data_ptr<int64_t>();
    ids.insert(labeled_ids, labeled_ids + labeled.ids.numel());
    for (const int64_t id : data.unlabeled_ids(task)) ids.insert(id);
  }
  return {ids.begin(), ids.end()};
}

// Batches are epochs over the pool: each epoch a fresh permutation, the last
// incomplete batch dropped (SimSiam's drop_last).
class EpochSampler {
 public:
  EpochSampler(std::vector<int64_t> pool, int64_t batch_size, uint64_t seed)
      : pool_(std::move(pool)), batch_size_(batch_size), seed_(seed) {}
  int64_t batches_per_epoch() const { return static_cast<int64_t>(pool_.size()) / batch_size_; }
  at::Tensor batch(int64_t iter) {
    const int64_t epoch = iter / batches_per_epoch(), slot = iter % batches_per_epoch();
    if (epoch != epoch_) {
      order_ = pool_;
      Rng rng(stream_seed(seed_, "pretrain.order", epoch));
      rng.shuffle(order_);
      epoch_ = epoch;
    }
    return torch::tensor(
        std::vector<int64_t>(order_.begin() + slot * batch_size_, order_.begin() + (slot + 1) * batch_size_),
        torch::kInt64);
  }

 private:
  std::vector<int64_t> pool_, order_;
  int64_t batch_size_;
  uint64_t seed_;
  int64_t epoch_ = -1;
};

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

PretrainOutcome run_pretraining(const PretrainArgs& args) {
  const auto wall_start = std::chrono::steady_clock::now();
  auto log = get_logger("pretrain");
  if (read_dist_env().world_size > 1)
    throw ConfigError("tools/pretrain runs in one process: WORLD_SIZE is set (start it without a launcher)");
  Config config = read_run_config(args.config, args.overrides, args.plugins, args.config.stem().string());
  const std::string name = config.get<std::string>("name");
  const fs::path run_dir =
      args.work_dir ? *args.work_dir : args.work_dirs_root / name / ("pretrain_" + run_timestamp());
  if (fs::exists(run_dir / "pretrain.json"))
    throw IoError(run_dir.string() +
                  ": already holds a finished pretraining (pretrain.json); choose another --work-dir");

  // The whole config is built, as tools/train builds it, and every key checked.
  const ConfigSection section = config.section("pretrain");
  const PretrainOptions options = read_options<PretrainOptions>(section);
  const std::unique_ptr<Run> built = RunBuilder(config, run_dir).finish();
  Run& run = *built;
  if (!run.model->frozen_modules().empty())
    config.section("model").fail(config.section("model").has("freeze") ? "freeze" : "frozen_stages",
                                 "pretraining trains the whole backbone; leave the key out for tools/pretrain");
  std::vector<int64_t> pool = image_pool(*run.data, options.images == "first_task");
  if (static_cast<int64_t>(pool.size()) < options.batch_size)
    section.fail("batch_size", std::to_string(options.batch_size) + " is more than the " + std::to_string(pool.size()) +
                                   " images to pretrain on");
  const int64_t pool_size = static_cast<int64_t>(pool.size());
  EpochSampler sampler(std::move(pool), options.batch_size, static_cast<uint64_t>(run.train.seed));

  create_run_dir(run_dir);
  write_file_atomic(run_dir / "config.toml", config.to_toml());
  // The names pretrain.json reports, from the resolved config (defaults included).
  const Config resolved = Config::from_string(config.to_toml(), (run_dir / "config.toml").string());
  add_log_file(run_dir / "pretrain.log");
  struct LogFileGuard {
    ~LogFileGuard() { reset_log_files(); }
  } log_file_guard;

  auto backbone = std::dynamic_pointer_cast<Backbone>(run.model->named_children()["backbone"]);
  check<Error>(static_cast<bool>(backbone), "the classifier has no backbone module");
  torch::manual_seed(stream_seed(static_cast<uint64_t>(run.train.seed), "pretrain.heads"));
  SimSiam model(backbone, options.simsiam);
  model->to(run.device);
  model->train();
  std::vector<at::Tensor> encoder = backbone->parameters();
  for (const auto& p : model->projector()->parameters()) encoder.push_back(p);
  const double lr = options.lr;
  const auto sgd = [&options, lr] {
    return torch::optim::SGDOptions(lr).momentum(options.momentum).weight_decay(options.weight_decay);
  };
  torch::optim::SGD optimizer(
      {torch::optim::OptimizerParamGroup(encoder, std::make_unique<torch::optim::SGDOptions>(sgd())),
       torch::optim::OptimizerParamGroup(model->predictor()->parameters(),
                                         std::make_unique<torch::optim::SGDOptions>(sgd()))},
      sgd());

  const double epochs = static_cast<double>(options.iters) / sampler.batches_per_epoch();
  log->info("run directory {}", run_dir.string());
  log->info("{}", describe_run(run).front());  // versions, device, threads, BLAS
  if (run.pretrained) log->info("{}", describe(*run.pretrained));
  const auto count = [](const std::vector<at::Tensor>& params) {
    int64_t n = 0;
    for (const auto& p : params) n += p.numel();
    return n;
  };
  log->info("backbone {}: {} parameters, {} features; SimSiam's projector and predictor: {} more",
            resolved.get<std::string>("model.backbone"), count(backbone->parameters()), backbone->feature_dim(),
            count(model->parameters()) - count(backbone->parameters()));
  log->info("SimSiam on {} training images ({}; labels unused), {} iterations of {} (about {:.2f} epochs), fp32",
            pool_size, options.images == "train" ? "every task's" : "the first task's", options.iters,
            options.batch_size, epochs);
  log->info("projector {} layers of {}, predictor bottleneck {}; SGD lr {} (cosine{}), momentum {}, weight decay {}",
            options.simsiam.proj_layers, options.simsiam.proj_dim, options.simsiam.pred_dim, lr,
            options.fix_pred_lr ? "; the predictor's fixed" : "", options.momentum, options.weight_decay);
  log->info("views: {}", options.augment.describe());
  if (run.amp != Amp::kNone) log->warn("train.amp applies to tools/train only: pretraining runs in fp32");

  const uint64_t seed = static_cast<uint64_t>(run.train.seed);
  const bool channels_last = run.model->channels_last();
  const auto prepare = [&](const at::Tensor& raw, const char* stream, int64_t iter) {
    auto images =
        run.data->views(simsiam_views(raw, options.augment, stream_seed(seed, stream, iter)), View::kPlain, 0);
    if (channels_last) images = images.contiguous(at::MemoryFormat::ChannelsLast);
    return images.to(run.device);
  };
  nlohmann::json curve = nlohmann::json::array();
  std::vector<double> iter_ms, data_ms;
  double interval_loss = 0, first_loss = 0, last_loss = 0, last_std = 0;
  for (int64_t iter = 0; iter < options.iters; ++iter) {
    const auto start = std::chrono::steady_clock::now();
    const at::Tensor raw = run.data->raw_images(sampler.batch(iter));
    const at::Tensor view1 = prepare(raw, "pretrain.view1", iter), view2 = prepare(raw, "pretrain.view2", iter);
    const auto loaded = std::chrono::steady_clock::now();
    const double progress = static_cast<double>(iter) / options.iters;
    const double lr_now = lr * 0.5 * (1 + std::cos(M_PI * progress));
    static_cast<torch::optim::SGDOptions&>(optimizer.param_groups()[0].options()).lr(lr_now);
    static_cast<torch::optim::SGDOptions&>(optimizer.param_groups()[1].options()).lr(options.fix_pred_lr ? lr : lr_now);
    const SimSiamOutput out = model->forward(view1, view2);
    const at::Tensor loss = simsiam_loss(out.p1, out.p2, out.z1, out.z2);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    const double value = loss.item<double>();
    if (!std::isfinite(value))
      throw Error("pretrain: the loss is " + std::to_string(value) + " at iteration " + std::to_string(iter + 1) +
                  "; nothing was written but the log (lower pretrain.lr)");
    const auto end = std::chrono::steady_clock::now();
    iter_ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    data_ms.push_back(std::chrono::duration<double, std::milli>(loaded - start).count());
    if (iter == 0) first_loss = value;
    interval_loss += value;
    last_loss = value;
    const int64_t in_interval = iter % options.log_interval + 1;
    if (in_interval == options.log_interval || iter + 1 == options.iters) {
      last_std = normalized_std(out.z1);
      const double mean_loss = interval_loss / static_cast<double>(in_interval);
      curve.push_back({{"iter", iter + 1}, {"loss", mean_loss}, {"z_std", last_std}, {"lr", lr_now}});
      log->info(
          "iter {}/{}: loss {:.4f} (mean of {}), z std {:.4f} (collapse: 0; 1/sqrt(dim) = {:.4f}), lr {:.5f}, "
          "{:.1f} ms/iter",
          iter + 1, options.iters, mean_loss, in_interval, last_std,
          1.0 / std::sqrt(static_cast<double>(options.simsiam.proj_dim)), lr_now, iter_ms.back());
      interval_loss = 0;
    }
  }

  // The backbone alone, under `backbone.`, in torch.save's format: the loader
  // reads it as a state_dict (core/nn/state_dict_file.h), as Python does.
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& [tensor_name, tensor] : named_tensors(*backbone))
    tensors.emplace_back("backbone." + tensor_name, tensor.detach().cpu());
  write_file_atomic(run_dir / "model.pt", state_dict_bytes(tensors));
  const auto blas = loaded_blas_libraries();
  nlohmann::json results{
      {"name", name},
      {"method", "simsiam"},
      {"backbone", resolved.get<std::string>("model.backbone")},
      {"dataset", resolved.get_or<std::string>("data.dataset", "?")},
      {"images", options.images},
      {"pool_images", pool_size},
      {"iters", options.iters},
      {"batch_size", options.batch_size},
      {"epochs", epochs},
      {"seed", run.train.seed},
      {"device", run.device.str()},
      {"threads", run.threads},
      {"blas", blas.empty() ? "no BLAS library mapped" : join(blas, ", ")},
      {"config_hash", config.fingerprint()},
      {"loss", {{"first", first_loss}, {"last", last_loss}, {"curve", curve}}},
      {"z_std", last_std},
      {"ms_per_iter_median", median(iter_ms)},
      {"data_ms_per_iter_median", median(data_ms)},
      {"model", {{"file", "model.pt"}, {"tensors", tensors.size()}, {"prefix", "backbone."}}},
      {"wall_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count()}};
  write_file_atomic(run_dir / "pretrain.json", results.dump(2) + "\n");
  log->info("loss {:.4f} -> {:.4f}; {:.1f} ms/iter median ({:.1f} of it preparing the views)", first_loss, last_loss,
            median(iter_ms), median(data_ms));
  log->info("wrote {} ({} backbone tensors): train from it with --cfg-options model.pretrained='{}'",
            (run_dir / "model.pt").string(), tensors.size(), (run_dir / "model.pt").string());
  return {run_dir, results};
}

}  // namespace sscl
