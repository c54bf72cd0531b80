#include "methods/semi/ccic.h"

#include <torch/nn/functional/loss.h>
#include <torch/nn/functional/normalization.h>
#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <tuple>
#include <utility>
#include <vector>

#include "core/method.h"
#include "core/nn/all_reduce.h"
#include "core/random.h"
#include "methods/common/replay_buffer.h"
#include "methods/semi/semi_math.h"

namespace sscl {

void CcicOptions::declare(OptionSpec<CcicOptions>& o) {
  o.include(&CcicOptions::replay);
  o.key("lambda_u", &CcicOptions::lambda_u, "weight of the interpolation-consistency term").min(0);
  o.key("alpha", &CcicOptions::alpha, "weight of the memory contrast").min(0);
  o.key("memory_penalty", &CcicOptions::memory_penalty, "weight of the buffer draw's cross-entropy").min(0);
  o.key("k_aug", &CcicOptions::k_aug, "weak views per unlabeled image for the label guess").min(1);
  o.key("sharp_temp", &CcicOptions::sharp_temp, "temperature of the guess's sharpening").above(0);
  o.key("mixup_alpha", &CcicOptions::mixup_alpha, "alpha of the interpolation mixup's Beta(alpha, alpha)").above(0);
  o.key("knn_k", &CcicOptions::knn_k, "neighbours of the evaluation k-NN").min(1);
  o.key("triplet_k", &CcicOptions::triplet_k, "hardest pairs per triplet anchor; 0: max(1, data.batch_size / 10)")
      .min(0);
  o.key("triplet_margin", &CcicOptions::triplet_margin, "margin on squared feature distances").min(0);
  o.key("contrast_fraction", &CcicOptions::contrast_fraction,
        "share of each later task with mixed anchors and the memory contrast")
      .between(0, 1);
  o.key("knn_eval", &CcicOptions::knn_eval, "evaluate by a k-NN over the buffer's features; false: the linear head");
  o.rule([](const CcicOptions& v, const ConfigSection& s) {
    if (v.replay.buffer_size < 1) s.fail("buffer_size", "must be >= 1 (the k-NN and the replay need a buffer)");
  });
}

at::Tensor pairwise_squared_distances(const at::Tensor& features) {
  // Broadcast difference rather than |a|^2 + |b|^2 - 2ab: exact zeros on the
  // diagonal and no negative round-off; the batches it sees are small.
  return (features.unsqueeze(0) - features.unsqueeze(1)).pow(2).sum(2);
}

namespace {

const double kCcicInf = std::numeric_limits<double>::infinity();

// The k smallest anchor-negative distances of every row ([N, k], +inf where a row
// has fewer negatives) and the squared distances they come from.
std::pair<at::Tensor, at::Tensor> ccic_hardest_negatives(const at::Tensor& labels, const at::Tensor& features,
                                                         int64_t k) {
  const auto distances = pairwise_squared_distances(features);
  const auto same = labels.unsqueeze(0).eq(labels.unsqueeze(1));
  return {std::get<0>(distances.masked_fill(same, kCcicInf).topk(k, 1, /*largest=*/false)), distances};
}

}  // namespace

at::Tensor batch_hard_triplet_loss(const at::Tensor& labels, const at::Tensor& features, int64_t k, double margin) {
  const int64_t kk = std::min<int64_t>(k, labels.size(0));
  if (kk <= 0) return features.sum() * 0;
  const auto [negatives, distances] = ccic_hardest_negatives(labels, features, kk);
  const auto same = labels.unsqueeze(0).eq(labels.unsqueeze(1)).to(distances.scalar_type());
  // Non-positives count as distance 0, so rows with fewer than k positives pair
  // their extra negatives with 0 (as the reference's top-k over the masked matrix).
  const auto positives = std::get<0>((distances * same).topk(kk, 1, /*largest=*/true));
  const auto kept = negatives.isfinite();
  if (!kept.any().item<bool>()) return features.sum() * 0;
  return (positives - negatives + margin).clamp_min(0).masked_select(kept).mean();
}

at::Tensor negative_only_triplet_loss(const at::Tensor& labels, const at::Tensor& features, int64_t k, double margin) {
  const int64_t kk = std::min<int64_t>(k, labels.size(0));
  if (kk <= 0) return features.sum() * 0;
  const auto negatives = ccic_hardest_negatives(labels, features, kk).first;
  const auto kept = negatives.isfinite();
  if (!kept.any().item<bool>()) return features.sum() * 0;
  return (margin - negatives).clamp_min(0).masked_select(kept).mean();
}

at::Tensor guess_targets(const at::Tensor& view_logits, double temperature) {
  return sharpen(torch::softmax(view_logits, 2).mean(0), temperature);
}

at::Tensor consistency_loss(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& columns) {
  if (logits.size(0) == 0) return logits.sum() * 0;
  const auto diff = logits.index_select(1, columns) - targets.index_select(1, columns);
  return diff.pow(2).mean() / static_cast<double>(columns.size(0));
}

at::Tensor mix_rows(const at::Tensor& a, const at::Tensor& b, const at::Tensor& lambdas) {
  std::vector<int64_t> shape(static_cast<size_t>(a.dim()), 1);
  shape[0] = -1;
  const auto lambda = lambdas.to(a.device(), a.scalar_type()).view(shape);
  return lambda * a + (1 - lambda) * b;
}

at::Tensor knn_scores(const at::Tensor& query_features, const at::Tensor& memory_features,
                      const at::Tensor& memory_labels, int64_t num_classes, int64_t k) {
  namespace F = torch::nn::functional;
  const auto unit = F::NormalizeFuncOptions().p(2).dim(1);
  const auto q = F::normalize(query_features, unit), m = F::normalize(memory_features, unit);
  const int64_t n = q.size(0), rows = m.size(0);
  // |q|^2 + |m|^2 - 2 q.m: a [N, M] matrix without an [N, M, D] intermediate.
  const auto distances = (q.pow(2).sum(1, true) + m.pow(2).sum(1).unsqueeze(0) - 2 * q.matmul(m.t())).clamp_min(0);
  const int64_t kk = std::min<int64_t>(k, rows);
  const auto nearest = std::get<1>(distances.topk(kk, 1, /*largest=*/false));
  const auto votes = torch::one_hot(memory_labels.index_select(0, nearest.flatten()).view({n, kk}), num_classes).sum(1);
  // Nearest distance per class: memory rows sorted by label, one min per label run.
  const auto order = std::get<1>(memory_labels.sort());
  const auto sorted_labels = memory_labels.index_select(0, order).to(torch::kCPU).contiguous();
  const auto sorted_distances = distances.index_select(1, order);
  auto nearest_of_class = torch::full({n, num_classes}, kCcicInf, distances.options());
  const int64_t* label = sorted_labels.data_ptr<int64_t>();
  for (int64_t start = 0, end = 0; start < rows; start = end) {
    while (end < rows && label[end] == label[start]) ++end;
    nearest_of_class.select(1, label[start]).copy_(std::get<0>(sorted_distances.narrow(1, start, end - start).min(1)));
  }
  const auto scores = votes.to(distances.scalar_type()) - 1e-5 * nearest_of_class;
  return torch::where(nearest_of_class.isinf(), torch::full({}, -1.0, scores.options()), scores);
}

namespace {

constexpr double kAnchorMixupAlpha = 1.0;   // the reference mixes the anchors with Beta(1, 1)
constexpr int64_t kCcicFeatureChunk = 256;  // buffer images per forward when building the k-NN memory

class Ccic : public Method {
 public:
  explicit Ccic(CcicOptions options)
      : options_(options), buffer_(options.replay.buffer_size, ReplayPolicy::kReservoir) {
    traits_.uses_unlabeled = true;
    // The pool, the triplets and the buffer span the global batch (step);
    // the k-NN memory is built by every rank alike, without collectives (the
    // evaluator's ranks may predict different numbers of batches).
    traits_.distributed = true;
  }

  std::string name() const override { return "ccic"; }

  void attach(MethodContext context) override {
    feature_dim_ = context.model->backbone().feature_dim();
    Method::attach(std::move(context));
  }

  LossTerms step(const TrainBatch& batch, const RunState& state) override;
  torch::Tensor predict(const torch::Tensor& images) override;

  std::vector<std::pair<std::string, double>> stats() const override {
    auto out = replay_stats(buffer_);
    // The k-NN memory: one float feature row per buffer entry, built for evaluation.
    const int64_t knn_bytes = options_.knn_eval ? buffer_.capacity() * feature_dim_ * 4 : 0;
    out.emplace_back("knn_feature_bytes", static_cast<double>(knn_bytes));
    return out;
  }

  void visit_state(StateVisitor& s) override {
    s("buffer", buffer_);
    s("past_task", past_task_);
    s("past_limit", past_limit_);
    if (s.loading()) memory_features_ = memory_labels_ = at::Tensor();  // rebuilt at the next prediction
  }

 private:
  int64_t minibatch_size() const {
    return options_.replay.minibatch_size > 0 ? options_.replay.minibatch_size : context().batch_size;
  }
  int64_t triplet_k() const {
    return options_.triplet_k > 0 ? options_.triplet_k : std::max<int64_t>(1, context().batch_size / 10);
  }
  // The classes the consistency term covers: the task's under a train mask, else all.
  at::Tensor consistency_columns(int task) const {
    if (!context().mask_train_logits) return torch::arange(context().model->num_classes(), torch::kLong);
    return torch::tensor(task_classes(task), torch::kLong);
  }

  // k_aug weak views of the unlabeled images (the batch's own first, view-major:
  // row v * U + i) and each image's guessed target [U, C].
  std::pair<at::Tensor, at::Tensor> guess(const TrainBatch& batch, int64_t iter);
  // Up to n uniformly drawn entries of earlier tasks, as weak views on the device.
  ReplayBatch draw_past(int64_t n, int task, Rng& rng) const;
  void build_memory_features();

  CcicOptions options_;
  ReplayBuffer buffer_;
  int64_t feature_dim_ = 0;
  // Slots [0, past_limit_) held only earlier tasks when task past_task_ began: the
  // reservoir fills slots in order and later only overwrites them.
  int past_task_ = -1;
  int64_t past_limit_ = 0;
  // The k-NN memory (normalised features and labels of the buffer), rebuilt at the
  // first prediction after any training step.
  at::Tensor memory_features_, memory_labels_;
};

std::pair<at::Tensor, at::Tensor> Ccic::guess(const TrainBatch& batch, int64_t iter) {
  const auto& unl = batch.unlabeled;
  const int64_t u = unl.weak.size(0), k = options_.k_aug;
  std::vector<at::Tensor> views{unl.weak};
  if (k > 1) {
    const auto raw = data().raw_images(unl.indices.cpu());
    for (int64_t v = 1; v < k; ++v) {
      // Extra weak views, each image's as in the global batch (equal slices).
      const uint64_t seed = stream_seed(context().seed, "ccic.view", batch.task, iter, v);
      views.push_back(data().views(raw, View::kWeak, seed, u * world().rank()).to(unl.weak.device()));
    }
  }
  auto images = torch::cat(views);
  torch::NoGradGuard no_grad;
  // The reference guesses with the network in eval mode (BatchNorm's running statistics).
  const bool was_training = model()->is_training();
  model()->eval();
  const auto logits = train_logits(model()->forward(images), batch.task);
  model()->train(was_training);
  return {images, guess_targets(logits.view({k, u, logits.size(1)}), options_.sharp_temp)};
}

ReplayBatch Ccic::draw_past(int64_t n, int task, Rng& rng) const {
  if (past_limit_ == 0 || n <= 0) return {};
  std::vector<int64_t> order(static_cast<size_t>(past_limit_));
  std::iota(order.begin(), order.end(), 0);
  order = rng.sample(order, order.size());  // a uniform permutation of the candidate slots
  // The first n slots of it that hold a class of an earlier task and not of this
  // one: a uniform draw among them. In domain-IL every class is the current task's
  // too, so there are none and the memory contrast is off (it would learn to tell
  // the domains of one class apart).
  const auto& current = task_classes(task);
  std::vector<int64_t> chosen;
  for (size_t pos = 0; pos < order.size() && static_cast<int64_t>(chosen.size()) < n; pos += static_cast<size_t>(n)) {
    const size_t end = std::min(order.size(), pos + static_cast<size_t>(n));
    const std::vector<int64_t> chunk(order.begin() + static_cast<std::ptrdiff_t>(pos),
                                     order.begin() + static_cast<std::ptrdiff_t>(end));
    const auto labels = buffer_.at_slots(torch::tensor(chunk, torch::kLong)).labels.contiguous();
    const int64_t* l = labels.data_ptr<int64_t>();
    for (size_t j = 0; j < chunk.size() && static_cast<int64_t>(chosen.size()) < n; ++j)
      if (std::find(current.begin(), current.end(), l[j]) == current.end()) chosen.push_back(chunk[j]);
  }
  if (chosen.empty()) return {};
  return to_replay_batch(buffer_.at_slots(torch::tensor(chosen, torch::kLong)), data(), View::kWeak, rng.next(),
                         context().device);
}

LossTerms Ccic::step(const TrainBatch& batch, const RunState& state) {
  namespace F = torch::nn::functional;
  memory_features_ = memory_labels_ = at::Tensor();  // the weights and the buffer change now
  const int task = batch.task;
  const auto& lab = batch.labeled;
  if (past_task_ != task) {
    past_task_ = task;
    past_limit_ = buffer_.size();
  }
  // Distributed, the mixup partners, the triplets and the memory contrast span
  // the whole global batch: every rank builds the global pool of images (the
  // batch's parts gathered, the draws whole) and forwards its own rows of it;
  // the triplet terms take every rank's features with gradient
  // (gather_shards_with_grad). On one process every row is this rank's.
  World& ranks = world();
  const bool distributed = ranks.distributed();
  const int64_t size = ranks.size(), me = ranks.rank();
  const auto global = [&](const at::Tensor& part) { return distributed ? gather_rows(part) : part; };
  const auto rows_of = [&](const at::Tensor& t, const at::Tensor& rows) {
    return rows.defined() ? t.index_select(0, rows.to(t.device())) : t;
  };

  // Supervised images: the labeled batch and a buffer draw (the whole draw on every rank).
  Rng rng = this->rng("ccic.replay", task, state.iter);  // buffer draw and reservoir offer
  const auto replay = draw_replay_batch(buffer_, minibatch_size(), data(), View::kWeak, rng, context().device);
  const int64_t b = lab.images.size(0), r = replay.size(), bg = b * size, s = bg + r;
  const auto lab_images = global(lab.images), lab_labels = global(lab.labels);
  const auto sup_images = r > 0 ? torch::cat({lab_images, replay.images}) : lab_images;
  const auto sup_labels = r > 0 ? torch::cat({lab_labels, replay.labels}) : lab_labels;

  // Unlabeled images: k_aug weak views, view-major over the global batch, and their guessed targets.
  at::Tensor unl_views, unl_targets;  // this rank's views' targets
  const int64_t u = batch.unlabeled.empty() ? 0 : batch.unlabeled.weak.size(0), k = options_.k_aug;
  std::vector<at::Tensor> views_of_all;  // per view, every rank's images
  if (u > 0) {
    at::Tensor guesses;
    std::tie(unl_views, guesses) = guess(batch, state.iter);
    unl_targets = guesses.repeat({k, 1});
    for (int64_t v = 0; v < k; ++v) views_of_all.push_back(global(unl_views.narrow(0, v * u, u)));
  }
  const int64_t ug = u * size, ku = k * u;

  // Interpolation: every supervised and unlabeled image is mixed with a partner
  // drawn (a permutation) from the pool of all of them.
  std::vector<at::Tensor> pool_parts{sup_images};
  pool_parts.insert(pool_parts.end(), views_of_all.begin(), views_of_all.end());
  const auto pool = torch::cat(pool_parts);
  const int64_t p = pool.size(0);
  Rng mix_rng = this->rng("ccic.mix", task, state.iter);  // interpolation-consistency mixup
  std::vector<int64_t> partner(static_cast<size_t>(p));
  std::iota(partner.begin(), partner.end(), 0);
  mix_rng.shuffle(partner);
  std::vector<float> lambdas(static_cast<size_t>(p));
  for (auto& l : lambdas) l = static_cast<float>(mixmatch_lambda(options_.mixup_alpha, mix_rng));
  // This rank's pool rows: its labeled slice, its share of the draw, its slice of each view.
  at::Tensor mine;
  const auto replay_range = ranks.shard(r);
  const int64_t replay_begin = replay_range.first, replay_end = replay_range.second;
  const int64_t rm = replay_end - replay_begin;
  if (distributed) {
    std::vector<at::Tensor> parts{torch::arange(me * b, (me + 1) * b, torch::kLong),
                                  torch::arange(bg + replay_begin, bg + replay_end, torch::kLong)};
    for (int64_t v = 0; v < k && u > 0; ++v)
      parts.push_back(torch::arange(s + v * ug + me * u, s + v * ug + (me + 1) * u, torch::kLong));
    mine = torch::cat(parts);
  }
  const auto partners = torch::tensor(partner, torch::kLong);
  const auto mixed = mix_rows(rows_of(pool, mine), pool.index_select(0, rows_of(partners, mine).to(pool.device())),
                              rows_of(torch::tensor(lambdas), mine));

  // Triplet anchors: mixed among themselves while the contrast phase lasts.
  const bool contrast_phase = task > 0 && static_cast<double>(state.iter) <
                                              options_.contrast_fraction * static_cast<double>(state.iters_per_task);
  at::Tensor anchors = sup_images;
  if (contrast_phase) {
    Rng anchor_rng = this->rng("ccic.anchor", task, state.iter);  // the triplet anchors' mixup
    std::vector<int64_t> order(static_cast<size_t>(s));
    std::iota(order.begin(), order.end(), 0);
    anchor_rng.shuffle(order);
    std::vector<float> anchor_lambdas(static_cast<size_t>(s));
    for (auto& l : anchor_lambdas) l = static_cast<float>(mixmatch_lambda(kAnchorMixupAlpha, anchor_rng));
    const auto shuffled = torch::tensor(order, torch::kLong).to(sup_images.device());
    anchors = mix_rows(sup_images, sup_images.index_select(0, shuffled), torch::tensor(anchor_lambdas));
  }

  // Memory contrast: current unlabeled images (label 0) against earlier tasks'
  // buffer entries (label 1), as many of each as the reference's batches.
  at::Tensor contrast_images, contrast_labels;
  if (contrast_phase && u > 0) {
    Rng past_rng = this->rng("ccic.past", task, state.iter);  // past-task draw of the memory contrast
    const auto past = draw_past(minibatch_size(), task, past_rng);
    if (past.size() > 0) {
      const int64_t current = context().batch_size > 0 ? std::min(ug, context().batch_size) : ug;
      contrast_images = torch::cat({views_of_all.front().narrow(0, 0, current), past.images});
      contrast_labels = torch::cat({torch::zeros({current}, torch::kLong), torch::ones({past.size()}, torch::kLong)})
                            .to(contrast_images.device());
    }
  }
  const int64_t c = contrast_labels.defined() ? contrast_labels.size(0) : 0;
  const auto shard_of = [&](const at::Tensor& t) { return distributed ? ranks.shard_rows(t) : t; };

  // One forward for everything (this rank's rows): the head only on the mixed images.
  std::vector<at::Tensor> inputs{mixed, shard_of(anchors)};
  if (c > 0) inputs.push_back(shard_of(contrast_images));
  const auto features = model()->features(torch::cat(inputs));
  const int64_t pm = mixed.size(0), sm = inputs[1].size(0);
  const auto logits = model()->head(features.narrow(0, 0, pm));
  const auto zero = torch::zeros({}, logits.options());

  LossTerms terms;
  terms.emplace_back("sup", F::cross_entropy(train_logits(logits.narrow(0, 0, b), task), lab.labels));
  const auto replay_rows = [&](const at::Tensor& t) { return t.narrow(0, replay_begin, rm); };
  const double replay_weight = r > 0 ? static_cast<double>(size * rm) / static_cast<double>(r) : 0.0;
  terms.emplace_back("replay",
                     rm > 0 ? replay_weight * options_.memory_penalty *
                                  F::cross_entropy(train_logits(logits.narrow(0, b, rm), replay_rows(replay.tasks)),
                                                   replay_rows(replay.labels))
                            : zero);
  terms.emplace_back("unsup", ku > 0
                                  ? options_.lambda_u * consistency_loss(logits.narrow(0, b + rm, ku), unl_targets,
                                                                         consistency_columns(task).to(logits.device()))
                                  : zero);
  const auto anchor_features = gather_shards_with_grad(ranks, features.narrow(0, pm, sm), s);
  terms.emplace_back("triplet",
                     batch_hard_triplet_loss(sup_labels, anchor_features, triplet_k(), options_.triplet_margin));
  if (c > 0) {
    const auto contrast_features = gather_shards_with_grad(ranks, features.narrow(0, pm + sm, inputs[2].size(0)), c);
    const auto contrast =
        negative_only_triplet_loss(contrast_labels, contrast_features, triplet_k(), options_.triplet_margin);
    terms.emplace_back("memory_contrast", options_.alpha * contrast);
  } else {
    terms.emplace_back("memory_contrast", zero);
  }
  // Offered after the draw, as ER: an image never replays in the iteration it
  // arrives; every rank offers the whole global batch.
  buffer_.add(global_labeled_offer(ranks, lab, task, data()), rng);
  return terms;
}

void Ccic::build_memory_features() {
  const auto all = buffer_.all();
  std::vector<at::Tensor> chunks;
  for (int64_t start = 0; start < all.size(); start += kCcicFeatureChunk) {
    const int64_t len = std::min(kCcicFeatureChunk, all.size() - start);
    const auto images = data().views(all.images.narrow(0, start, len), View::kPlain, 0).to(context().device);
    chunks.push_back(model()->features(images));
  }
  namespace F = torch::nn::functional;
  memory_features_ = F::normalize(torch::cat(chunks), F::NormalizeFuncOptions().p(2).dim(1));
  memory_labels_ = all.labels.to(context().device);
}

torch::Tensor Ccic::predict(const torch::Tensor& images) {
  if (!options_.knn_eval || buffer_.empty()) return model()->forward(images);
  torch::NoGradGuard no_grad;
  if (!memory_features_.defined()) build_memory_features();
  return knn_scores(model()->features(images), memory_features_, memory_labels_, model()->num_classes(),
                    options_.knn_k);
}

SSCL_REGISTER_SSCL_METHOD("ccic", Ccic, CcicOptions{},
                          "CCIC: replay with interpolation consistency, triplet contrast and a k-NN over the buffer");

}  // namespace
}  // namespace sscl
