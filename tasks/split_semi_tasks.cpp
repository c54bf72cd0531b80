#include "tasks/split_semi_tasks.h"

#include <ATen/ATen.h>
#include <oneapi/tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numeric>
#include <opencv2/core.hpp>
#include <string_view>
#include <thread>

#include "core/error.h"
#include "core/logging.h"
#include "core/random.h"

namespace sscl {

namespace {

// k positions in [0, n) of a pool: distinct when the pool is large enough, else
// with replacement (the pool's ids are not needed to draw them).
std::vector<int64_t> draw_positions(size_t n, int64_t k, Rng& rng) {
  if (n == 0 || k == 0) return {};
  if (static_cast<size_t>(k) <= n) return rng.sample_positions(n, static_cast<size_t>(k));
  std::vector<int64_t> out(k);
  for (auto& p : out) p = static_cast<int64_t>(rng.below(n));
  return out;
}

cv::Mat image_view(const ImageDataset& d, int64_t id) {
  const auto shape = d.shape();
  auto* base = const_cast<uint8_t*>(d.images.data_ptr<uint8_t>());
  return cv::Mat(static_cast<int>(shape.height), static_cast<int>(shape.width),
                 CV_8UC(static_cast<int>(shape.channels)), base + id * shape.channels * shape.height * shape.width);
}

at::Tensor ids_tensor(const std::vector<int64_t>& ids) { return at::tensor(at::ArrayRef<int64_t>(ids), at::kLong); }

// Batches of `batch` in an epoch over `n` items; a pool smaller than one batch
// gives one partial batch even with drop_last.
int64_t batches_per_epoch(int64_t n, int64_t batch, bool drop_last) {
  if (n == 0 || batch == 0) return 0;
  return drop_last ? std::max<int64_t>(1, n / batch) : (n + batch - 1) / batch;
}

std::vector<int64_t> pick(const std::vector<int64_t>& values, const std::vector<int64_t>& positions) {
  std::vector<int64_t> out;
  out.reserve(positions.size());
  for (int64_t p : positions) out.push_back(values[p]);
  return out;
}

// k ids from `pool`, as draw_positions chooses them.
std::vector<int64_t> draw(const std::vector<int64_t>& pool, int64_t k, Rng& rng) {
  return pick(pool, draw_positions(pool.size(), k, rng));
}

}  // namespace

void SplitSemiOptions::declare(OptionSpec<SplitSemiOptions>& o) {
  using O = SplitSemiOptions;
  o.key("dataset", &O::dataset, "the dataset (a DatasetRegistry entry)");
  o.key("root", &O::root, "the dataset's directory");
  o.include(&O::split);
  o.key("batch_size", &O::batch_size, "labeled images per iteration").above(0);
  o.key("uratio", &O::uratio, "unlabeled images per labeled image").min(0);
  o.key("sampler", &O::sampler,
        "epoch: each epoch a seeded permutation (every image once); uniform: each batch an independent draw; "
        "auto: epoch when train.epochs_per_task is set")
      .one_of({"auto", "epoch", "uniform"});
  o.key("drop_last", &O::drop_last, "epoch sampler: drop each epoch's last partial batch");
  o.rule([](const O& v, const ConfigSection& s) {
    const bool uniform = v.sampler == "uniform" || (v.sampler == "auto" && !s.config().has("train.epochs_per_task"));
    if (v.drop_last && uniform)
      s.fail("drop_last",
             "applies to the epoch sampler, and data.sampler is uniform here (data.sampler = \"" + v.sampler + "\")");
  });
  o.key("mean", &O::mean, "per-channel mean on the 0..255 scale; []: the dataset's");
  o.key("std", &O::std, "per-channel std on the 0..255 scale; []: the dataset's").above(0);
  o.key("workers", &O::workers,
        "loader threads (TBB); 0: auto (1 on a CPU, where torch uses the cores; on a GPU every core but one, "
        "at most 8)")
      .min(0);
  o.key("prefetch", &O::prefetch, "a loader thread prepares the coming batches in the background");
  o.key("prefetch_factor", &O::prefetch_factor, "batches the loader thread prepares ahead").above(0);
  o.section("augment", &O::augment, "the views of the training images");
  o.section("domain", &O::domain, "domain-IL: a copy of the dataset per task under a transform");
  o.key("resize", &O::resize, "[rows, cols]: every image resized once at load; []: native size")
      .check([](const std::vector<int64_t>& r) { return r.empty() || (r.size() == 2 && r[0] > 0 && r[1] > 0); },
             "must be [] or [rows, cols] with both > 0");
}

SplitSemiTasks::SplitSemiTasks(SplitSemiOptions options, DatasetSplits data, uint64_t seed)
    : options_(std::move(options)),
      data_(std::move(data)),
      seed_(seed),
      workers_(resolve_workers(options_.workers, c10::Device(c10::kCPU))),
      arena_(workers_) {
  const int64_t channels = data_.train->shape().channels;
  if (options_.mean.empty()) options_.mean = data_.mean;
  if (options_.std.empty()) options_.std = data_.std;
  if (static_cast<int64_t>(options_.mean.size()) != channels || static_cast<int64_t>(options_.std.size()) != channels)
    throw ConfigError("data.mean and data.std need " + std::to_string(channels) + " value(s) for " + data_.name);
  if (!options_.resize.empty()) {
    const int rows = static_cast<int>(options_.resize[0]), cols = static_cast<int>(options_.resize[1]);
    data_.train = resized(*data_.train, rows, cols);
    data_.test = resized(*data_.test, rows, cols);
  }
  augment_.emplace(options_.augment, options_.mean, options_.std);
  const auto& split = options_.split;
  if (options_.domain.kind != "none") {
    const int domains = split.num_tasks                     ? *split.num_tasks
                        : options_.domain.rotations.empty() ? 5
                                                            : static_cast<int>(options_.domain.rotations.size());
    data_ = transformed_domains(data_, options_.domain, domains, seed_);
  } else if (!data_.domains.empty() && split.num_tasks && *split.num_tasks != static_cast<int>(data_.domains.size())) {
    throw ConfigError("data.num_tasks = " + std::to_string(*split.num_tasks) + " but " + data_.name + " has " +
                      std::to_string(data_.domains.size()) +
                      " domains (a task each); drop num_tasks or make them agree");
  }
  tasks_ = data_.domains.empty() ? build_task_split(data_, split, seed_)
                                 : build_domain_split(data_, data_.domains, split, seed_);
  epoch_sampler_ = options_.sampler == "epoch";
}

void SplitSemiTasks::schedule_in_epochs() {
  drop_prepared();
  if (options_.sampler == "auto") epoch_sampler_ = true;
}

int64_t SplitSemiTasks::iters_for_epochs(int task, double epochs) const {
  if (!epoch_sampler_) return TaskData::iters_for_epochs(task, epochs);
  const auto labeled = static_cast<int64_t>(tasks_.at(task).labeled.size());
  if (options_.drop_last && labeled < options_.batch_size)
    throw ConfigError("data.drop_last: task " + std::to_string(task) + " has " + std::to_string(labeled) +
                      " labeled images, fewer than one batch of data.batch_size = " +
                      std::to_string(options_.batch_size) + ", so an epoch would have no batch");
  const auto per_epoch = static_cast<double>(batches_per_epoch(labeled, options_.batch_size, options_.drop_last));
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(epochs * per_epoch)));
}

std::vector<std::string> SplitSemiTasks::describe(bool unlabeled_views) const {
  const auto& split = options_.split;
  std::string labeled;
  if (split.labels_fraction) {
    labeled = "a share of " + options_detail::format_number(*split.labels_fraction) + " of each class";
  } else {
    for (size_t i = 0; i < split.labels_per_class.size(); ++i)
      labeled += (i ? "/" : "") + (split.labels_per_class[i] < 0 ? std::string("every image")
                                                                 : std::to_string(split.labels_per_class[i]));
    labeled += split.labels_per_class.size() > 1 ? " per class (task by task)" : " per class";
    if (split.labels_per_class == std::vector<int64_t>{-1}) labeled = "every image";
  }
  std::string sizes;
  for (int t = 0; t < num_tasks(); ++t) {
    const auto size = std::to_string(classes(t).size());
    if (t == 0 || classes(t).size() != classes(t - 1).size()) sizes += (t ? ", then " : "") + size;
  }
  std::vector<std::string> lines;
  lines.push_back((data_.domains.empty() ? options_.dataset : data_.name) + ": " + std::to_string(num_tasks()) +
                  " tasks of " + sizes + " classes, " + labeled + " labeled, uratio " +
                  std::to_string(options_.uratio) + ", batch " + std::to_string(options_.batch_size) + ", " +
                  std::to_string(workers_) + " loader worker(s)" + (options_.workers == 0 ? " (auto)" : ""));
  if (stager_)
    lines.push_back("device copies: the loader pins each batch and copies it to " + device_name_ +
                    " on a side stream, overlapped with the step");
  lines.push_back(epoch_sampler_
                      ? std::string("sampler: epoch (each epoch a seeded permutation of the task's images, ") +
                            (options_.drop_last ? "last partial batch dropped)" : "last partial batch kept)")
                      : std::string("sampler: uniform (each batch an independent draw)"));
  if (!data_.domains.empty()) {
    std::string names;
    for (const auto& name : data_.domain_names) names += (names.empty() ? "" : ", ") + name;
    lines.push_back("domains (one per task, every class in each): " + names);
  }
  if (unlabeled_views) lines.push_back("strong view: " + options_.augment.describe_strong());
  return lines;
}

SplitSemiTasks::~SplitSemiTasks() { ring_.reset(); }

int resolve_workers(int workers, c10::Device device) {
  if (workers > 0) return workers;
  if (device.is_cpu()) return 1;
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(cores - 1, 1, 8);
}

void SplitSemiTasks::set_device(c10::Device device) {
  drop_prepared();
  const int workers = resolve_workers(options_.workers, device);
  if (workers != workers_) {
    workers_ = workers;
    arena_.terminate();
    arena_.initialize(workers_);
  }
  stager_.reset();
  if (!device.is_cpu()) stager_.emplace(device);
  device_name_ = device.str();
}

bool SplitSemiTasks::set_shard(int rank, int size) {
  drop_prepared();
  shard_rank_ = rank;
  shard_size_ = size;
  return true;
}

void SplitSemiTasks::drop_prepared() {
  if (ring_) ring_->flush();
}

void SplitSemiTasks::set_load_unlabeled(bool load) {
  drop_prepared();
  load_unlabeled_ = load;
}

TrainBatch SplitSemiTasks::train_batch(int task, int64_t iter) {
  const auto build = [this](int t, int64_t i) {
    return stager_ ? stager_->stage(build_batch(t, i)) : build_batch(t, i);
  };
  if (options_.prefetch && !ring_) ring_ = std::make_unique<BatchRing>(build, options_.prefetch_factor);
  TrainBatch batch = ring_ ? ring_->take(task, iter) : build(task, iter);
  if (stager_) stager_->adopt(batch);
  return batch;
}

std::vector<int64_t> SplitSemiTasks::epoch_batch(int64_t n, int64_t batch, int64_t iter, std::string_view stream,
                                                 int task) const {
  const int64_t per_epoch = batches_per_epoch(n, batch, options_.drop_last);
  if (per_epoch == 0) return {};
  const int64_t epoch = iter / per_epoch;
  std::lock_guard lock(epoch_mutex_);
  auto cached =
      std::find_if(epoch_orders_.begin(), epoch_orders_.end(), [&](const EpochOrder& e) { return e.stream == stream; });
  if (cached == epoch_orders_.end()) {
    cached = epoch_orders_.insert(epoch_orders_.end(), EpochOrder{});
    cached->stream = stream;
  }
  if (cached->task != task || cached->epoch != epoch || cached->n != n) {
    // Each epoch a permutation seeded by (seed, stream, task, epoch).
    cached->order.resize(static_cast<size_t>(n));
    std::iota(cached->order.begin(), cached->order.end(), 0);
    Rng rng(stream_seed(seed_, stream, task, epoch));
    rng.shuffle(cached->order);
    cached->task = task;
    cached->epoch = epoch;
    cached->n = n;
  }
  const int64_t begin = (iter % per_epoch) * batch;
  return {cached->order.begin() + begin, cached->order.begin() + std::min(n, begin + batch)};
}

TrainBatch SplitSemiTasks::build_batch(int task, int64_t iter) const {
  const TaskIndices& indices = tasks_.at(task);
  const int64_t unlabeled_batch = load_unlabeled_ ? options_.batch_size * options_.uratio : 0;
  std::vector<int64_t> positions, unlabeled;
  const auto num_labeled = static_cast<int64_t>(indices.labeled.size());
  if (epoch_sampler_) {
    positions = epoch_batch(num_labeled, options_.batch_size, iter, "split_semi.epoch", task);
    const auto num_unlabeled = static_cast<int64_t>(indices.unlabeled.size());
    unlabeled =
        pick(indices.unlabeled, epoch_batch(num_unlabeled, unlabeled_batch, iter, "split_semi.unlabeled_epoch", task));
  } else {
    Rng rng(stream_seed(seed_, "split_semi.batch", task, iter));
    positions = draw_positions(indices.labeled.size(), options_.batch_size, rng);
    unlabeled = draw(indices.unlabeled, unlabeled_batch, rng);
  }
  // A rank's slice of the global batch; each row keeps the augmentation of its global slot.
  // (Plain variables, not structured bindings: the augmentation lambda captures them.)
  const auto lab_range = shard_range(static_cast<int64_t>(positions.size()), shard_rank_, shard_size_);
  const auto unl_range = shard_range(static_cast<int64_t>(unlabeled.size()), shard_rank_, shard_size_);
  const int64_t lab_begin = lab_range.first, lab_end = lab_range.second;
  const int64_t unl_begin = unl_range.first, unl_end = unl_range.second;
  const int64_t global_labeled = static_cast<int64_t>(positions.size());
  positions = {positions.begin() + lab_begin, positions.begin() + lab_end};
  unlabeled = {unlabeled.begin() + unl_begin, unlabeled.begin() + unl_end};
  const std::vector<int64_t> labeled = pick(indices.labeled, positions), labels = pick(indices.labels, positions);
  const auto shape = data_.train->shape();
  const int64_t n_lab = static_cast<int64_t>(labeled.size()), n_unl = static_cast<int64_t>(unlabeled.size());
  const int64_t image_floats = shape.channels * shape.height * shape.width;

  TrainBatch batch;
  batch.task = task;
  batch.labeled.images = at::empty({n_lab, shape.channels, shape.height, shape.width}, at::kFloat);
  batch.labeled.indices = ids_tensor(labeled);
  batch.labeled.labels = ids_tensor(labels);
  batch.unlabeled.weak = at::empty({n_unl, shape.channels, shape.height, shape.width}, at::kFloat);
  batch.unlabeled.strong = at::empty_like(batch.unlabeled.weak);
  batch.unlabeled.indices = ids_tensor(unlabeled);

  float* lab_out = batch.labeled.images.data_ptr<float>();
  float* weak_out = batch.unlabeled.weak.data_ptr<float>();
  float* strong_out = batch.unlabeled.strong.data_ptr<float>();

  const AugmentPipeline& augment = *augment_;
  arena_.execute([&] {
    tbb::parallel_for(int64_t{0}, n_lab + n_unl, [&](int64_t slot) {
      if (slot < n_lab) {
        // A labeled slot draws its weak view only: without augmentation nothing is
        // drawn, so neither the slot's generator nor a copy of the image is made.
        const cv::Mat image = image_view(*data_.train, labeled[slot]);
        if (augment.weak_is_identity()) {
          augment.normalize(image, lab_out + slot * image_floats);
          return;
        }
        Rng r(stream_seed(seed_, "split_semi.augment", task, iter, lab_begin + slot));
        augment.normalize(augment.weak(image, r), lab_out + slot * image_floats);
        return;
      }
      const int64_t u = slot - n_lab;
      Rng r(stream_seed(seed_, "split_semi.augment", task, iter, global_labeled + unl_begin + u));
      const cv::Mat image = image_view(*data_.train, unlabeled[u]);
      augment.normalize(augment.weak(image, r), weak_out + u * image_floats);
      augment.normalize(augment.strong(image, r), strong_out + u * image_floats);
    });
  });
  return batch;
}

int64_t SplitSemiTasks::num_eval_batches(int task, int64_t batch_size) const {
  const int64_t n = static_cast<int64_t>(tasks_.at(task).eval.size());
  return (n + batch_size - 1) / batch_size;
}

EvalBatch SplitSemiTasks::eval_batch(int task, int64_t batch, int64_t batch_size) const {
  const auto& ids = tasks_.at(task).eval;
  const int64_t begin = batch * batch_size;
  const int64_t end = std::min<int64_t>(begin + batch_size, static_cast<int64_t>(ids.size()));
  check<Error>(begin < end, "eval_batch: batch " + std::to_string(batch) + " out of range");
  const auto shape = data_.test->shape();
  const int64_t image_floats = shape.channels * shape.height * shape.width;
  std::vector<int64_t> chosen(ids.begin() + begin, ids.begin() + end);
  EvalBatch out;
  out.images = at::empty({end - begin, shape.channels, shape.height, shape.width}, at::kFloat);
  out.labels = data_.test->labels.index_select(0, ids_tensor(chosen));
  float* dst = out.images.data_ptr<float>();
  arena_.execute([&] {
    tbb::parallel_for(int64_t{0}, end - begin, [&](int64_t i) {
      augment_->normalize(image_view(*data_.test, chosen[i]), dst + i * image_floats);
    });
  });
  return out;
}

LabeledSet SplitSemiTasks::labeled_set(int task) const {
  LabeledSet out;
  out.ids = ids_tensor(tasks_.at(task).labeled);
  out.labels = ids_tensor(tasks_.at(task).labels);
  return out;
}

void SplitSemiTasks::add_labels(int task, const at::Tensor& ids, const at::Tensor& labels) {
  // The batches prepared in the background were drawn from the old sets.
  drop_prepared();
  TaskIndices& indices = tasks_.at(task);
  const auto id_rows = ids.to(at::kLong).cpu().contiguous(), label_rows = labels.to(at::kLong).cpu().contiguous();
  check<Error>(id_rows.dim() == 1 && label_rows.sizes() == id_rows.sizes(), "add_labels: one label per id expected");
  const int64_t* id = id_rows.data_ptr<int64_t>();
  const int64_t* label = label_rows.data_ptr<int64_t>();
  const int64_t n = id_rows.numel();
  // Everything is checked before anything moves.
  std::vector<int64_t> sorted(id, id + n);
  std::sort(sorted.begin(), sorted.end());
  check<Error>(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(), "add_labels: an id appears twice");
  for (int64_t i = 0; i < n; ++i) {
    check<Error>(
        std::binary_search(indices.unlabeled.begin(), indices.unlabeled.end(), id[i]),
        "add_labels: image " + std::to_string(id[i]) + " is not in task " + std::to_string(task) + "'s unlabeled pool");
    check<Error>(std::find(indices.classes.begin(), indices.classes.end(), label[i]) != indices.classes.end(),
                 "add_labels: label " + std::to_string(label[i]) + " is not a class of task " + std::to_string(task));
  }
  std::vector<int64_t> rest;
  std::set_difference(indices.unlabeled.begin(), indices.unlabeled.end(), sorted.begin(), sorted.end(),
                      std::back_inserter(rest));
  indices.unlabeled = std::move(rest);
  indices.labeled.insert(indices.labeled.end(), id, id + n);
  indices.labels.insert(indices.labels.end(), label, label + n);
}

at::Tensor SplitSemiTasks::raw_images(const at::Tensor& ids) const {
  const int64_t n = data_.train->images.size(0);
  if (ids.numel() > 0) {
    const auto lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    check<Error>(lo >= 0 && hi < n, "raw_images: id out of range [0, " + std::to_string(n) + ")");
  }
  return data_.train->images.index_select(0, ids.to(at::kLong).cpu());
}

at::Tensor SplitSemiTasks::views(const at::Tensor& raw, View view, uint64_t seed, int64_t first_row) const {
  const auto shape = data_.train->shape();
  check<Error>(raw.dim() == 4 && raw.scalar_type() == at::kByte && raw.size(1) == shape.height &&
                   raw.size(2) == shape.width && raw.size(3) == shape.channels,
               "views: expected uint8 [N, H, W, C] images of the training set's shape");
  const auto images = raw.cpu().contiguous();
  const int64_t n = images.size(0);
  const int64_t image_floats = shape.channels * shape.height * shape.width;
  auto out = at::empty({n, shape.channels, shape.height, shape.width}, at::kFloat);
  if (n == 0) return out;
  auto* src = const_cast<uint8_t*>(images.data_ptr<uint8_t>());
  float* dst = out.data_ptr<float>();
  const AugmentPipeline& augment = *augment_;
  arena_.execute([&] {
    tbb::parallel_for(int64_t{0}, n, [&](int64_t i) {
      const cv::Mat image(static_cast<int>(shape.height), static_cast<int>(shape.width),
                          CV_8UC(static_cast<int>(shape.channels)), src + i * image_floats);
      // One view an image: a plain view, or a weak one without augmentation, draws nothing.
      if (view == View::kPlain || (view == View::kWeak && augment.weak_is_identity())) {
        augment.normalize(image, dst + i * image_floats);
        return;
      }
      Rng r(stream_seed(seed, "split_semi.replay_view", first_row + i));
      if (view == View::kWeak)
        augment.normalize(augment.weak(image, r), dst + i * image_floats);
      else
        augment.normalize(augment.strong(image, r), dst + i * image_floats);
    });
  });
  return out;
}

namespace {

// A named object rather than a temporary: GCC 12 warns (-Wmaybe-uninitialized,
// falsely) about the strings of a SplitSemiOptions{} destroyed at static init.
const SplitSemiOptions kSplitSemiDefaults;

SSCL_REGISTER_OPTIONS(TaskSequenceRegistry, "split_semi",
                      "Split-Semi: the dataset's classes split into tasks, a few labeled images per class and the "
                      "rest unlabeled",
                      kSplitSemiDefaults, [](const SplitSemiOptions& o, uint64_t seed) {
                        const auto& load_dataset = DatasetRegistry::get().at(o.dataset);
                        get_logger("sscl")->info("loading {} from {}", o.dataset, o.root);
                        return std::make_unique<SplitSemiTasks>(o, load_dataset(o.root), seed);
                      });

}  // namespace
}  // namespace sscl
