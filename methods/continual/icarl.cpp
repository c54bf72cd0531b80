#include "methods/continual/icarl.h"

#include <torch/nn/functional/loss.h>
#include <torch/nn/functional/normalization.h>
#include <torch/torch.h>

#include <limits>
#include <map>

#include "core/error.h"
#include "core/random.h"
#include "methods/common/model_copy.h"
#include "methods/common/replay.h"

namespace sscl {

namespace F = torch::nn::functional;

namespace {
constexpr int64_t kIcarlFeatureChunk = 256;  // images per forward pass when extracting features

torch::Tensor icarl_normalise(const torch::Tensor& x) { return F::normalize(x, F::NormalizeFuncOptions().dim(1)); }
}  // namespace

std::vector<int64_t> herding_selection(const at::Tensor& features, int64_t m) {
  const auto phi = icarl_normalise(features.detach());
  const int64_t n = phi.size(0);
  const int64_t count = std::min(m, n);
  std::vector<int64_t> chosen;
  if (count <= 0) return chosen;
  const auto mu = phi.mean(0, /*keepdim=*/true);
  auto running = torch::zeros_like(mu);  // sum of the chosen features
  auto taken = torch::zeros({n}, torch::TensorOptions().dtype(torch::kBool).device(phi.device()));
  for (int64_t k = 1; k <= count; ++k) {
    // p_k = argmin_x || mu - (phi(x) + sum_{j<k} phi(p_j)) / k ||, among the rows not chosen yet.
    const auto cost = (mu - (phi + running) / static_cast<double>(k))
                          .norm(2, 1)
                          .masked_fill(taken, std::numeric_limits<double>::infinity());
    const int64_t pick = cost.argmin().item<int64_t>();
    chosen.push_back(pick);
    taken[pick] = true;
    running = running + phi[pick].unsqueeze(0);
  }
  return chosen;
}

std::vector<int64_t> keep_first_per_class(const at::Tensor& labels, int64_t m, const at::Tensor& tasks) {
  const auto host = labels.to(torch::kCPU, torch::kLong).contiguous();
  const auto task_host = tasks.defined() ? tasks.to(torch::kCPU, torch::kLong).contiguous() : torch::zeros_like(host);
  const int64_t* l = host.data_ptr<int64_t>();
  const int64_t* t = task_host.data_ptr<int64_t>();
  std::map<std::pair<int64_t, int64_t>, int64_t> kept_of_group;
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < host.numel(); ++i)
    if (kept_of_group[{l[i], t[i]}]++ < m) rows.push_back(i);
  return rows;
}

std::pair<at::Tensor, at::Tensor> exemplar_means(const at::Tensor& features, const at::Tensor& labels,
                                                 int64_t num_classes) {
  const auto phi = icarl_normalise(features.detach());
  const auto idx = labels.to(phi.device(), torch::kLong);
  auto sums = torch::zeros({num_classes, phi.size(1)}, phi.options()).index_add_(0, idx, phi);
  auto counts = torch::zeros({num_classes}, phi.options()).index_add_(0, idx, torch::ones_like(idx, phi.options()));
  // Normalising the sum is normalising the average; empty classes stay zero.
  return {icarl_normalise(sums), counts.gt(0)};
}

at::Tensor nme_logits(const at::Tensor& features, const at::Tensor& means, const at::Tensor& has_mean) {
  const auto phi = icarl_normalise(features);
  const auto distance = torch::cdist(phi, means.to(phi.dtype()));
  return (-distance).masked_fill(~has_mean.to(phi.device()).unsqueeze(0), kNoMeanLogit);
}

at::Tensor icarl_targets(const at::Tensor& labels, const at::Tensor& old_logits, const at::Tensor& old_classes,
                         int64_t num_classes) {
  auto targets = torch::one_hot(labels, num_classes).to(torch::kFloat);
  if (!old_logits.defined()) return targets;
  const auto old_probs = torch::sigmoid(old_logits.detach().to(torch::kFloat));
  return torch::where(old_classes.to(labels.device()).unsqueeze(0), old_probs, targets);
}

at::Tensor icarl_bce(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& class_mask, World* world) {
  const auto per_entry = F::binary_cross_entropy_with_logits(
      logits, targets.to(logits.scalar_type()), F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  const auto weight = class_mask.to(logits.device()).expand_as(per_entry).to(logits.scalar_type());
  const auto sum = (per_entry * weight).sum();
  if (!world || !world->distributed()) return sum / weight.sum().clamp_min(1.0);
  // The mean over every rank's entries: this rank's sum over the global count,
  // times the world size, since the trainer averages the ranks' gradients.
  std::vector<at::Tensor> count{weight.sum().detach().to(torch::kCPU, torch::kDouble).reshape({1})};
  world->all_reduce_sum(count);
  return sum * (world->size() / std::max(1.0, count[0].item<double>()));
}

Icarl::Icarl(const ReplayOptions& options) : options_(options), memory_(options.buffer_size, ReplayPolicy::kReservoir) {
  traits_.distributed = true;
}

void Icarl::attach(MethodContext context) {
  Method::attach(std::move(context));
  task_class_masks_.clear();
  const int64_t num_classes = model()->num_classes();
  for (const auto& classes : this->context().task_classes) {
    auto mask = torch::zeros({num_classes}, torch::kBool);
    for (int64_t c : classes) mask[c] = true;
    task_class_masks_.push_back(mask.to(this->context().device));
  }
}

torch::Tensor Icarl::classes_up_to(int last) const {
  auto mask = torch::zeros({context().model->num_classes()},
                           torch::TensorOptions().dtype(torch::kBool).device(context().device));
  for (int t = 0; t <= last; ++t) mask = mask.logical_or(task_class_masks_.at(t));
  return mask;
}

LossTerms Icarl::step(const TrainBatch& batch, const RunState& state) {
  const int task = batch.task;
  const int64_t n = options_.minibatch_size > 0 ? options_.minibatch_size : context().batch_size;
  Rng rng = this->rng("icarl.replay", task, state.iter);
  // Distributed: this rank's slice of the draw beside its slice of the batch;
  // the loss's normaliser is the count over every rank's rows.
  const auto replay = draw_replay_batch(memory_, n, data(), View::kWeak, rng, context().device, &world());

  auto images = batch.labeled.images;
  auto labels = batch.labeled.labels;
  auto tasks = torch::full({labels.size(0)}, task, labels.options());
  if (replay.size() > 0) {
    images = torch::cat({images, replay.images});
    labels = torch::cat({labels, replay.labels});
    tasks = torch::cat({tasks, replay.tasks});
  }
  const auto logits = model()->forward(images);
  torch::Tensor old_logits;
  if (teacher_) {
    torch::NoGradGuard no_grad;
    old_logits = teacher_->forward(images);
  }
  // The old classes are those of earlier tasks that this task does not bring again:
  // in domain-IL none (every task has every class), so labels always count.
  const auto old_classes = classes_up_to(task - 1).logical_and(task_class_masks_.at(task).logical_not());
  const auto targets = icarl_targets(labels, old_logits, old_classes, model()->num_classes());
  // Each row learns the classes seen so far, or, under the task mask, its own task's classes.
  const auto class_mask =
      context().mask_train_logits ? torch::stack(task_class_masks_).index_select(0, tasks) : classes_up_to(task);
  return {{"bce", icarl_bce(logits, targets, class_mask, &world())}};
}

void Icarl::after_task(const RunState& state) {
  update_exemplars(state.task);
  update_class_means();
  teacher_ = frozen_copy(model(), context());
}

torch::Tensor Icarl::plain_features(const torch::Tensor& raw) {
  const bool was_training = model()->is_training();
  model()->eval();
  torch::NoGradGuard no_grad;
  // Distributed: each rank extracts its share of the images and every rank
  // gets the same gathered features, so herding and the class means choose
  // alike everywhere (bit for bit, whatever the kernels).
  const auto [begin, end] = world().shard(raw.size(0));
  std::vector<torch::Tensor> parts;
  for (int64_t start = begin; start < end; start += kIcarlFeatureChunk) {
    const int64_t len = std::min(kIcarlFeatureChunk, end - start);
    const auto images = data().views(raw.narrow(0, start, len), View::kPlain, 0).to(context().device);
    parts.push_back(model()->features(images));
  }
  model()->train(was_training);
  const int64_t dim = model()->backbone().feature_dim();
  const auto mine =
      parts.empty() ? torch::zeros({0, dim}, torch::TensorOptions().device(context().device)) : torch::cat(parts);
  return icarl_normalise(gather_rows(mine));
}

void Icarl::update_exemplars(int task) {
  // Exemplars per (class, task) pair: per class in class-IL, per class per domain
  // in domain-IL (a class that every task brings counts once per task).
  int64_t seen = 0;
  for (int t = 0; t <= task; ++t) seen += static_cast<int64_t>(task_classes(t).size());
  const int64_t m = options_.buffer_size / seen;
  Rng rng = this->rng("icarl.memory", task);

  // ReduceExemplarSet (Alg. 5): every old class keeps the first m of its herding order.
  ReplaySamples kept = memory_.all();
  if (kept.size() > 0)
    kept = memory_.at_slots(torch::tensor(keep_first_per_class(kept.labels, m, kept.tasks), torch::kLong));
  memory_.clear();
  if (kept.size() > 0) memory_.add(kept, rng);

  // ConstructExemplarSet (Alg. 4) for each new class, from the task's labeled images.
  const auto set = data().labeled_set(task);
  if (m == 0 || set.ids.numel() == 0) return;
  const auto ids = set.ids.to(torch::kCPU, torch::kLong);
  const auto labels = set.labels.to(torch::kCPU, torch::kLong);
  const auto raw = data().raw_images(ids);
  const auto features = plain_features(raw);
  for (int64_t c : task_classes(task)) {
    const auto rows = labels.eq(c).nonzero().flatten();
    if (rows.numel() == 0) continue;
    const auto order = herding_selection(features.index_select(0, rows.to(features.device())), m);
    const auto chosen = rows.index_select(0, torch::tensor(order, torch::kLong));
    ReplaySamples exemplars;
    exemplars.images = raw.index_select(0, chosen);
    exemplars.labels = labels.index_select(0, chosen);
    exemplars.tasks = torch::full({chosen.size(0)}, task, torch::kLong);
    exemplars.ids = ids.index_select(0, chosen);
    memory_.add(exemplars, rng);
  }
}

void Icarl::update_class_means() {
  const auto all = memory_.all();
  if (all.size() == 0) {
    means_ = has_mean_ = torch::Tensor();
    return;
  }
  std::tie(means_, has_mean_) = exemplar_means(plain_features(all.images), all.labels, model()->num_classes());
}

torch::Tensor Icarl::predict(const torch::Tensor& images) {
  // Before the first task ends there are no exemplars: the network's own logits.
  if (!means_.defined()) return model()->forward(images);
  return nme_logits(model()->features(images), means_, has_mean_);
}

std::vector<std::pair<std::string, double>> Icarl::stats() const {
  auto stats = replay_stats(memory_);
  stats.insert(stats.end(), {{"class_means_bytes", means_.defined() ? static_cast<double>(means_.nbytes()) : 0.0},
                             {"teacher_bytes", copy_bytes(teacher_)}});
  return stats;
}

void Icarl::visit_state(StateVisitor& s) {
  s("memory", memory_);
  s("means", means_, Place::kDevice);
  s("has_mean", has_mean_, Place::kDevice);
  s.optional_module("teacher", teacher_, [this] { return frozen_copy(model(), context()); });
}

SSCL_REGISTER_METHOD("icarl", Icarl, MemoryOptions{},
                     "iCaRL: herded exemplars, BCE distilled from the last model, nearest-mean classification");

}  // namespace sscl
