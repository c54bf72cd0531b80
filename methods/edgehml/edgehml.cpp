#include "methods/edgehml/edgehml.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "core/error.h"
#include "core/logging.h"
#include "methods/semi/fixmatch.h"
#include "methods/semi/weak_strong_loss.h"

namespace sscl {

namespace {
constexpr int64_t kEdgeHmlLossBatch = 256;  // rows per pass when measuring the labeled tier's losses

// A zero loss term on the device of `like`.
at::Tensor edgehml_zero_like(const at::Tensor& like) { return torch::zeros({}, like.options()); }
}  // namespace

void EdgeHmlOptions::declare(OptionSpec<EdgeHmlOptions>& o) {
  o.key("pool_sizes", &EdgeHmlOptions::pool_sizes, "[S_sup, S_off]: the labeled tier's and the offline tier's capacity")
      .check([](const std::vector<int64_t>& v) { return v.size() == 2; }, "expected [S_sup, S_off], e.g. [200, 2000]")
      .check([](const std::vector<int64_t>& v) { return v[0] >= 1; }, "S_sup must be >= 1")
      .check([](const std::vector<int64_t>& v) { return v[1] >= 1; }, "S_off must be >= 1");
  o.key("online_pool_size", &EdgeHmlOptions::online_pool_size,
        "the online tier's budget; 0: S_sup minus the labeled tier's entries at each task end")
      .min(0);
  o.key("minibatch_size", &EdgeHmlOptions::minibatch_size, "images of each replay draw; 0: data.batch_size").min(0);
  o.key("lambda_sup", &EdgeHmlOptions::lambda_sup, "weight of the labeled batch's cross-entropy").min(0);
  o.key("lambda_sup_replay", &EdgeHmlOptions::lambda_sup_replay, "weight of the labeled tier's replay").min(0);
  o.key("lambda_u", &EdgeHmlOptions::lambda_u, "weight of the FixMatch term after the warm-up")
      .alias("lambda_unsup")
      .min(0);
  o.key("lambda_ur", &EdgeHmlOptions::lambda_ur, "weight of the online tier's pseudo-labeled replay")
      .alias("lambda_unsup_replay")
      .min(0);
  o.key("need_sup_replay", &EdgeHmlOptions::need_sup_replay, "replay the labeled tier");
  o.key("need_unsup_replay", &EdgeHmlOptions::need_unsup_replay, "replay the online tier");
  o.key("unsup_warmup_iters", &EdgeHmlOptions::unsup_warmup_iters,
        "iterations of each task without the unlabeled term (its views never reach the model)")
      .alias("unsup_iter_threshold")
      .min(0);
  o.key("unsup_ramp_iters", &EdgeHmlOptions::unsup_ramp_iters,
        "iterations of the cosine ramp of the unlabeled weight after the warm-up; 0: none")
      .alias("threshold_length")
      .min(0);
  o.key("sup_replay_start_iter", &EdgeHmlOptions::sup_replay_start_iter,
        "first iteration of each task that replays the labeled tier")
      .alias("sup_iter_threshold");
  o.key("unsup_replay_start_iter", &EdgeHmlOptions::unsup_replay_start_iter,
        "first iteration of each task that replays the online tier")
      .alias("unsup_replay_iter_threshold");
  o.key("threshold", &EdgeHmlOptions::threshold, "FixMatch's and the offline tier's confidence").between(0, 1);
  o.choice("offline_storage", &EdgeHmlOptions::offline_storage,
           {{"disk", OfflineStorage::kDisk}, {"ram", OfflineStorage::kRam}},
           "where the offline tier keeps its images: a file in the run directory, or RAM");
  o.key("concat_forward", &EdgeHmlOptions::concat_forward,
        "one model pass over [labeled, replays, weak, strong]; false: the unlabeled views in passes of their own");
  o.key("include_harddisk_read_time", &EdgeHmlOptions::include_harddisk_read_time,
        "refill the online tier inside the next task's first iteration, so that its disk read counts in ms/iter");
  o.refuse("minibatch_size_unsup", "the unlabeled batch is data.batch_size x data.uratio in sscl; set those instead");
}

EdgeHml::EdgeHml(EdgeHmlOptions options)
    : Er(ReplayOptions{options.labeled_pool_size(), options.minibatch_size}),
      edge_options_(options),
      online_(std::max(options.online_pool_size, options.labeled_pool_size()), ReplayPolicy::kReservoir,
              ReplayFields{0, false, true}) {
  traits_.uses_unlabeled = true;
  traits_.composes_with_semi = false;  // its FixMatch is built in
  // Every rank's tiers take the whole global batch (gathered), its replay draws
  // are sharded and the task-end losses are rank 0's: the tiers stay the same.
  traits_.distributed = true;
  // The labeled tier: one entry per image id (the reference's id index, with
  // evicted ids removed from it).
  buffer_ = ReplayBuffer(options.labeled_pool_size(), ReplayPolicy::kReservoir, ReplayFields{0, false, true});
}

EdgeHml::~EdgeHml() {
  offline_.reset();  // the store's writer finishes before its folder goes
  if (!temp_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(temp_dir_, ignored);
  }
}

void EdgeHml::attach(MethodContext ctx) {
  Er::attach(std::move(ctx));
  std::filesystem::path dir = context().run_dir;
  if (dir.empty() && edge_options_.offline_storage == OfflineStorage::kDisk) {
    // Tests attach without a run directory: a private folder, removed with the method.
    temp_dir_ = std::filesystem::temp_directory_path() / ("sscl_edgehml_" + std::to_string(::getpid()) + "_" +
                                                          std::to_string(reinterpret_cast<uintptr_t>(this)));
    dir = temp_dir_;
  }
  // Every rank keeps the whole tier, each in a file of its own (they share the run directory).
  const std::string file = world().distributed() ? "edgehml_offline_tier.rank" + std::to_string(world().rank()) + ".bin"
                                                 : std::string("edgehml_offline_tier.bin");
  offline_ =
      std::make_unique<OfflineTier>(edge_options_.offline_pool_size(), edge_options_.offline_storage, dir / file);
}

void EdgeHml::before_task(const RunState&) {
  // The offline tier holds the current task only (a pending refill empties it).
  if (pending_refill_task_ < 0) offline_->clear();
}

void EdgeHml::after_task(const RunState& state) {
  if (edge_options_.include_harddisk_read_time && state.task + 1 < state.num_tasks) {
    pending_refill_task_ = state.task;
    return;
  }
  refill_online_tier(state.task);
}

std::vector<double> EdgeHml::labeled_class_losses(const std::vector<int64_t>& classes, int task) {
  namespace F = torch::nn::functional;
  std::vector<double> sum(classes.size(), 0.0);
  std::vector<int64_t> count(classes.size(), 0);
  const auto entries = buffer_.all();
  if (entries.size() > 0) {
    const bool was_training = model()->is_training();
    model()->eval();  // measure, do not move BN's running statistics
    torch::NoGradGuard no_grad;
    for (int64_t start = 0; start < entries.size(); start += kEdgeHmlLossBatch) {
      const int64_t n = std::min(kEdgeHmlLossBatch, entries.size() - start);
      const auto images = data().views(entries.images.narrow(0, start, n), View::kPlain, 0).to(context().device);
      const auto labels = entries.labels.narrow(0, start, n).to(context().device);
      const auto tasks = entries.tasks.narrow(0, start, n).to(context().device);
      const auto losses = F::cross_entropy(train_logits(model()->forward(images), tasks), labels,
                                           F::CrossEntropyFuncOptions().reduction(torch::kNone))
                              .to(torch::kCPU, torch::kDouble);
      const auto host_labels = labels.cpu();
      const auto host_tasks = tasks.cpu();
      for (int64_t i = 0; i < n; ++i) {
        if (host_tasks[i].item<int64_t>() != task) continue;
        const auto it = std::find(classes.begin(), classes.end(), host_labels[i].item<int64_t>());
        if (it == classes.end()) continue;
        const auto c = static_cast<size_t>(it - classes.begin());
        sum[c] += losses[i].item<double>();
        ++count[c];
      }
    }
    model()->train(was_training);
  }
  // Rank 0's sums: ranks on other machines may round differently, and the draw
  // these losses weight must be the same on every rank.
  if (world().distributed()) {
    std::vector<at::Tensor> shared{torch::tensor(sum, torch::kDouble), torch::tensor(count, torch::kLong)};
    world().broadcast(shared, 0);
    sum.assign(shared[0].data_ptr<double>(), shared[0].data_ptr<double>() + shared[0].numel());
    count.assign(shared[1].data_ptr<int64_t>(), shared[1].data_ptr<int64_t>() + shared[1].numel());
  }
  // A class with no labeled-tier image takes the mean of the others.
  double known = 0;
  int64_t known_classes = 0;
  for (size_t c = 0; c < classes.size(); ++c)
    if (count[c] > 0) {
      sum[c] /= static_cast<double>(count[c]);
      known += sum[c];
      ++known_classes;
    }
  for (size_t c = 0; c < classes.size(); ++c)
    if (count[c] == 0) sum[c] = known_classes > 0 ? known / static_cast<double>(known_classes) : 0.0;
  return sum;
}

void EdgeHml::refill_online_tier(int task) {
  const auto start = std::chrono::steady_clock::now();
  auto log = get_logger("edgehml");
  offline_->store().flush();
  peak_disk_bytes_ = std::max(peak_disk_bytes_, offline_->bytes_on_disk());
  peak_offline_ram_bytes_ = std::max(peak_offline_ram_bytes_, offline_->bytes_in_ram());
  Rng rng = this->rng("edgehml.refill", task);  // the task-end draw

  // The budget: the reference draws min(|offline|, S_sup - |labeled tier|) per
  // task and never evicts; here the online tier holds at most that many in all,
  // split evenly over the tasks that have entries.
  const int64_t budget = edge_options_.online_pool_size > 0
                             ? edge_options_.online_pool_size
                             : std::max<int64_t>(0, edge_options_.labeled_pool_size() - buffer_.size());
  const auto online_entries = online_.all();
  std::map<int64_t, std::vector<int64_t>> slots_of_task;  // old tasks' online slots
  for (int64_t i = 0; i < online_entries.size(); ++i)
    slots_of_task[online_entries.tasks[i].item<int64_t>()].push_back(i);
  std::vector<int64_t> available, task_ids;
  for (const auto& [t, slots] : slots_of_task) {
    task_ids.push_back(t);
    available.push_back(static_cast<int64_t>(slots.size()));
  }
  task_ids.push_back(task);
  available.push_back(offline_->size());
  const auto shares = online_task_shares(budget, available);

  // Old tasks give back what exceeds their share, chosen at random.
  std::vector<int64_t> drop;
  for (size_t i = 0; i + 1 < task_ids.size(); ++i) {
    const auto& slots = slots_of_task[task_ids[i]];
    const auto keep = static_cast<size_t>(shares[i]);
    if (slots.size() <= keep) continue;
    const auto dropped = rng.sample(slots, slots.size() - keep);
    drop.insert(drop.end(), dropped.begin(), dropped.end());
  }
  if (!drop.empty()) online_.remove_slots(drop);

  // The new task's share, by the class-weighted draw.
  const int64_t k = shares.back();
  const auto entries = offline_->entries();
  std::vector<int64_t> classes;
  std::vector<int64_t> counts;
  for (int64_t i = 0; i < entries.size(); ++i) {
    const int64_t c = entries.labels[i].item<int64_t>();
    const auto it = std::find(classes.begin(), classes.end(), c);
    if (it == classes.end()) {
      classes.push_back(c);
      counts.push_back(1);
    } else {
      ++counts[static_cast<size_t>(it - classes.begin())];
    }
  }
  std::vector<double> class_weights;
  int64_t drawn = 0;
  if (k > 0 && entries.size() > 0) {
    const auto losses = labeled_class_losses(classes, task);
    class_weights = edgehml_class_weights(counts, losses, entries.size());
    std::vector<double> weights(static_cast<size_t>(entries.size()));
    for (int64_t i = 0; i < entries.size(); ++i) {
      const auto c = std::find(classes.begin(), classes.end(), entries.labels[i].item<int64_t>()) - classes.begin();
      weights[static_cast<size_t>(i)] = class_weights[static_cast<size_t>(c)];
    }
    const auto picked = torch::tensor(weighted_draw_without_replacement(weights, k, rng), torch::kLong);
    ReplaySamples draw = offline_->index_at(picked);
    draw.images = offline_->read_images(draw.ids);
    drawn = online_.add(draw, rng);
  }
  online_drawn_ += drawn;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  read_seconds_ += seconds;
  std::string weights_text;
  for (size_t c = 0; c < class_weights.size(); ++c)
    weights_text += (c ? ", " : "") + std::to_string(classes[c]) + ": " + std::to_string(counts[c]) + " @ " +
                    std::to_string(class_weights[c]);
  log->info(
      "task {} end: offline tier {} of {} offered ({} B on disk, {} B in RAM); drew {} into the online tier "
      "(budget {}, now {} entries over {} task(s)); class: count @ weight [{}]; {:.1f} ms",
      task + 1, offline_->size(), offline_->seen(), offline_->bytes_on_disk(), offline_->bytes_in_ram(), drawn, budget,
      online_.size(), task_ids.size(), weights_text, seconds * 1e3);
  offline_->clear();
}

LossTerms EdgeHml::step(const TrainBatch& batch, const RunState& state) {
  namespace F = torch::nn::functional;
  if (pending_refill_task_ >= 0) {
    refill_online_tier(pending_refill_task_);  // timed: include_harddisk_read_time
    pending_refill_task_ = -1;
  }
  const auto& o = edge_options_;
  const auto& lab = batch.labeled;
  const auto& unl = batch.unlabeled;
  const int task = batch.task;
  const auto device = context().device;
  Rng rng = this->rng("edgehml.step", task, state.iter);  // replay draws and tier offers

  ReplayBatch sup_replay, unsup_replay;
  if (o.need_sup_replay && o.lambda_sup_replay > 0 && state.iter >= o.sup_replay_start_iter)
    sup_replay = draw_replay_batch(buffer_, minibatch_size(), data(), View::kWeak, rng, device, &world());
  if (o.need_unsup_replay && o.lambda_ur > 0 && state.iter >= o.unsup_replay_start_iter)
    unsup_replay = draw_replay_batch(online_, minibatch_size(), data(), View::kWeak, rng, device, &world());
  const double w = edgehml_unsup_weight(state.iter, o.unsup_warmup_iters, o.unsup_ramp_iters, o.lambda_u);
  const bool unsup = w > 0 && !unl.empty();

  // The parts that go through the model: labeled, replays, then weak and strong
  // views when the unlabeled term is on (during the warm-up they are never used).
  std::vector<at::Tensor> parts{lab.images};
  const auto add_part = [&parts](const at::Tensor& images) {
    if (!images.defined() || images.size(0) == 0) return -1;
    parts.push_back(images);
    return static_cast<int>(parts.size()) - 1;
  };
  const int sup_replay_at = add_part(sup_replay.images);
  const int unsup_replay_at = add_part(unsup_replay.images);
  std::vector<at::Tensor> logits;
  at::Tensor weak_logits, strong_logits;
  if (unsup && o.concat_forward) {
    parts.push_back(unl.weak);
    parts.push_back(unl.strong);
    logits = forward_concat(model(), parts);
    strong_logits = logits.back();
    weak_logits = logits[logits.size() - 2];
  } else {
    logits = forward_concat(model(), parts);
    if (unsup) {
      {
        torch::NoGradGuard no_grad;  // the weak view only supplies targets
        weak_logits = model()->forward(unl.weak);
      }
      strong_logits = model()->forward(unl.strong);
    }
  }

  const auto zero = edgehml_zero_like(logits[0]);
  LossTerms terms;
  terms.emplace_back("sup", o.lambda_sup * F::cross_entropy(train_logits(logits[0], task), lab.labels));
  terms.emplace_back("sup_replay", sup_replay_at < 0
                                       ? zero
                                       : o.lambda_sup_replay * sup_replay.weight *
                                             F::cross_entropy(train_logits(logits[sup_replay_at], sup_replay.tasks),
                                                              sup_replay.labels));
  if (unsup) {
    const auto fm = fixmatch_loss(train_logits(weak_logits, task), train_logits(strong_logits, task), o.threshold);
    terms.emplace_back("unsup", w * fm.loss);
    mask_rate_.add(fm.mask, world());
    // Confident images whose pseudo-label is a class of this task go offline
    // (without the training mask a weak view may predict an old class): every
    // rank's rows [id, pseudo-label, goes offline], so that every rank's tier
    // takes the global batch.
    const auto& classes = task_classes(task);
    const auto in_task = torch::isin(fm.pseudo_label, torch::tensor(classes, torch::kLong).to(device));
    const auto offered = gather_rows(
        torch::stack({unl.indices.cpu(), fm.pseudo_label.cpu(), ((fm.mask > 0) & in_task).to(torch::kLong).cpu()}, 1));
    const auto rows = offered.select(1, 2).nonzero().squeeze(1);
    if (rows.size(0) > 0) {
      const auto ids = offered.select(1, 0).index_select(0, rows);
      offline_stored_ +=
          offline_->add(ids, data().raw_images(ids), offered.select(1, 1).index_select(0, rows), task, rng);
    }
  } else {
    terms.emplace_back("unsup", zero);
  }
  terms.emplace_back(
      "unsup_replay",
      unsup_replay_at < 0
          ? zero
          : o.lambda_ur * unsup_replay.weight *
                F::cross_entropy(train_logits(logits[unsup_replay_at], unsup_replay.tasks), unsup_replay.labels));
  offer(batch, rng);  // into the labeled tier, after its draw
  return terms;
}

std::vector<std::pair<std::string, double>> EdgeHml::stats() const {
  return {{"labeled_tier_entries", static_cast<double>(buffer_.size())},
          {"labeled_tier_bytes", static_cast<double>(buffer_.bytes())},
          {"online_tier_entries", static_cast<double>(online_.size())},
          {"online_tier_bytes", static_cast<double>(online_.bytes())},
          {"offline_tier_stored", static_cast<double>(offline_stored_)},
          {"offline_tier_peak_disk_bytes", static_cast<double>(peak_disk_bytes_)},
          {"offline_tier_peak_ram_bytes", static_cast<double>(peak_offline_ram_bytes_)},
          {"online_tier_drawn", static_cast<double>(online_drawn_)},
          {"task_end_refill_s", read_seconds_},
          {"mask_rate", mask_rate_.mean()}};
}

void EdgeHml::visit_state(StateVisitor& s) {
  Er::visit_state(s);  // the labeled tier
  s("online", online_);
  s("offline", *offline_);  // its entries and their images, wherever the tier keeps them
  s("pending_refill_task", pending_refill_task_);
  s("peak_disk_bytes", peak_disk_bytes_);
  s("peak_offline_ram_bytes", peak_offline_ram_bytes_);
  s("offline_stored", offline_stored_);
  s("online_drawn", online_drawn_);
  s.measurement("read_seconds", read_seconds_);
  s("mask_rate", mask_rate_);
}

SSCL_REGISTER_SSCL_METHOD("edgehml", EdgeHml, EdgeHmlOptions{},
                          "EdgeHML: labeled, online and offline memory tiers with a progressive FixMatch schedule");

}  // namespace sscl
