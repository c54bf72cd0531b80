#include "methods/semi/flexmatch.h"

#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/method.h"
#include "methods/continual/sft.h"
#include "methods/semi/weak_strong_loss.h"

namespace sscl {

at::Tensor flexmatch_learning_effect(const at::Tensor& class_counts, const at::Tensor& num_unused, bool thresh_warmup) {
  const auto best = class_counts.max();
  // Warm-up: while most of the pool was never confidently predicted, N_unused
  // is the largest "class", which keeps every beta small at the start.
  const auto denominator = thresh_warmup ? torch::maximum(best, num_unused.to(best.dtype())) : best;
  // Counts are whole numbers, so clamping at 1 only turns 0 / 0 into 0.
  return class_counts / denominator.clamp_min(1.0);
}

at::Tensor flexmatch_mapping(const at::Tensor& beta, FlexMatchMapping mapping) {
  switch (mapping) {
    case FlexMatchMapping::kConvex: return beta / (2.0 - beta);
    case FlexMatchMapping::kLinear: return beta;
  }
  return beta;
}

ClasswiseThresholdLoss classwise_threshold_loss(const at::Tensor& logits_weak, const at::Tensor& logits_strong,
                                                const at::Tensor& class_thresholds) {
  ClasswiseThresholdLoss out;
  const auto probs = torch::softmax(logits_weak.detach(), 1);
  auto [confidence, label] = probs.max(1);
  out.confidence = confidence;
  out.pseudo_label = label;
  const auto threshold = class_thresholds.to(confidence.device(), confidence.scalar_type()).index_select(0, label);
  out.mask = confidence.ge(threshold).to(logits_strong.scalar_type());
  out.loss = masked_cross_entropy(logits_strong, label, out.mask);
  return out;
}

void FlexMatchOptions::declare(OptionSpec<FlexMatchOptions>& o) {
  o.key("threshold", &FlexMatchOptions::threshold, "tau: the threshold of a fully learnt class").between(0, 1);
  o.key("lambda_u", &FlexMatchOptions::lambda_u, "weight of the unlabeled term").min(0);
  o.key("thresh_warmup", &FlexMatchOptions::thresh_warmup,
        "normalise the learning effects by the images never confidently predicted while they are the most");
  o.choice("mapping", &FlexMatchOptions::mapping,
           {{"convex", FlexMatchMapping::kConvex}, {"linear", FlexMatchMapping::kLinear}},
           "M(beta): convex x / (2 - x) (the reference's) or linear x");
  o.key("concat_forward", &FlexMatchOptions::concat_forward, kConcatForwardDoc);
}

// ---- FlexMatchStatus ----

void FlexMatchStatus::reset(int64_t pool_size, int64_t num_classes, const c10::Device& device) {
  pool_size_ = pool_size;
  num_classes_ = num_classes;
  // Keep the table's capacity (the next task's ids are of the same training set).
  if (status_.defined() && status_.device() == device) {
    status_.fill_(-1);
  } else {
    status_ = torch::full({1}, -1, torch::TensorOptions().dtype(torch::kLong).device(device));
  }
}

void FlexMatchStatus::record(const at::Tensor& ids, const at::Tensor& labels, const at::Tensor& confident) {
  check<Error>(status_.defined(), "FlexMatchStatus::record before reset");
  if (ids.numel() == 0) return;
  // The batch's ids live on the CPU (the trainer moves only images and labels),
  // so finding the largest costs no device synchronisation.
  const int64_t needed = ids.max().item<int64_t>() + 1;
  const int64_t capacity = status_.size(0) - 1;
  if (needed > capacity) {
    const int64_t grown = std::max(needed, 2 * capacity);
    auto table = torch::full({grown + 1}, -1, status_.options());
    table.narrow(0, 0, capacity).copy_(status_.narrow(0, 0, capacity));
    status_ = table;
  }
  const int64_t sink = status_.size(0) - 1;
  const auto device = status_.device();
  const auto slots =
      ids.to(device, torch::kLong, /*non_blocking=*/true).masked_fill(~confident.to(device, torch::kBool), sink);
  status_.index_put_({slots}, labels.to(device, torch::kLong));
}

at::Tensor FlexMatchStatus::class_counts() const {
  check<Error>(status_.defined(), "FlexMatchStatus::class_counts before reset");
  const int64_t capacity = status_.size(0) - 1;
  const auto f = torch::TensorOptions().dtype(torch::kFloat).device(status_.device());
  // Shift by one so that -1 ("never confident") lands in bin 0, then drop it.
  auto bins = torch::zeros({num_classes_ + 1}, f);
  bins.scatter_add_(0, status_.narrow(0, 0, capacity) + 1, torch::ones({capacity}, f));
  return bins.narrow(0, 1, num_classes_);
}

at::Tensor FlexMatchStatus::num_unused() const {
  return (static_cast<double>(pool_size_) - class_counts().sum()).clamp_min(0.0);
}

at::Tensor FlexMatchStatus::class_thresholds(const FlexMatchOptions& options) const {
  const auto counts = class_counts();
  const auto beta = flexmatch_learning_effect(counts, num_unused(), options.thresh_warmup);
  return options.threshold * flexmatch_mapping(beta, options.mapping);
}

int64_t FlexMatchStatus::bytes() const {
  return status_.defined() ? status_.numel() * static_cast<int64_t>(status_.element_size()) : 0;
}

void FlexMatchStatus::visit_state(StateVisitor& s) {
  s("pool_size", pool_size_);
  s("num_classes", num_classes_);
  s("status", status_, Place::kDevice);
}

ClasswiseThresholdLoss flexmatch_step(const at::Tensor& logits_weak, const at::Tensor& logits_strong,
                                      const at::Tensor& ids, FlexMatchStatus& status, const FlexMatchOptions& options,
                                      World* world) {
  auto out = classwise_threshold_loss(logits_weak, logits_strong, status.class_thresholds(options));
  const auto confident = out.confidence.ge(options.threshold);
  if (world == nullptr || !world->distributed()) {
    status.record(ids, out.pseudo_label, confident);
    return out;
  }
  // One gather of [id, pseudo-label, confident] rows, on the CPU as the ids are.
  const auto all =
      world->gather_rows(torch::stack({ids.cpu(), out.pseudo_label.cpu(), confident.to(torch::kLong).cpu()}, 1));
  status.record(all.select(1, 0), all.select(1, 1), all.select(1, 2).to(torch::kBool));
  return out;
}

// ---- the loss ----

namespace {

class FlexMatchLoss : public WeakStrongLoss {
 public:
  explicit FlexMatchLoss(FlexMatchOptions options) : WeakStrongLoss(options.concat_forward), options_(options) {}
  std::string name() const override { return "flexmatch"; }
  bool distributed() const override { return true; }

  // The status describes the task's own pool: a new task starts with every image
  // "never confidently predicted" (all thresholds 0). A task that is already
  // current (a checkpoint resumed inside it) keeps its status.
  void before_task(const RunState& state) override {
    if (state.task != task_) start_task(state.task);
  }

  std::vector<std::pair<std::string, double>> stats() const override {
    auto out = WeakStrongLoss::stats();
    double unused = 0, mean_threshold = 0;
    if (task_ >= 0 && status_.pool_size() > 0) {
      unused = status_.num_unused().item<double>() / static_cast<double>(status_.pool_size());
      const auto& classes = method().task_classes(task_);
      const auto thresholds = status_.class_thresholds(options_).to(torch::kCPU);
      for (int64_t c : classes) mean_threshold += thresholds[c].item<double>();
      mean_threshold /= static_cast<double>(std::max<size_t>(classes.size(), 1));
    }
    out.emplace_back("unused_fraction", unused);
    out.emplace_back("mean_class_threshold", mean_threshold);
    out.emplace_back("status_bytes", static_cast<double>(status_.bytes()));
    return out;
  }

  void visit_state(StateVisitor& s) override {
    WeakStrongLoss::visit_state(s);
    s("task", task_);
    s("status", status_);
  }

 protected:
  LossTerms unlabeled_terms(const UnlabeledLogits& u, const RunState&) override {
    if (u.task != task_) start_task(u.task);  // a caller that skipped before_task
    const auto out = flexmatch_step(u.weak, u.strong, u.indices, status_, options_, &method().world());
    record_mask(out.mask);
    return {{"unsup", options_.lambda_u * out.loss}};
  }

 private:
  void start_task(int task) {
    Method& m = method();
    status_.reset(m.data().num_unlabeled(task), m.model()->num_classes(), m.context().device);
    task_ = task;
  }

  FlexMatchOptions options_;
  FlexMatchStatus status_;
  int task_ = -1;
};

SSCL_REGISTER_SEMI_LOSS("flexmatch", FlexMatchLoss, FlexMatchOptions{},
                        "FlexMatch: FixMatch with per-class thresholds scaled by each class's learning effect");

}  // namespace
}  // namespace sscl
