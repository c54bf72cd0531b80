#include "methods/semi/freematch.h"

#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/method.h"
#include "core/nn/all_reduce.h"
#include "methods/continual/sft.h"
#include "methods/semi/flexmatch.h"
#include "methods/semi/semi_math.h"
#include "methods/semi/weak_strong_loss.h"

namespace sscl {

void FreeMatchOptions::declare(OptionSpec<FreeMatchOptions>& o) {
  o.key("lambda_u", &FreeMatchOptions::lambda_u, "weight of the unlabeled term").min(0);
  o.key("lambda_f", &FreeMatchOptions::lambda_f, "w_f, weight of the self-adaptive fairness term; 0 drops it").min(0);
  o.key("ema_momentum", &FreeMatchOptions::ema_momentum, "lambda, the momentum of the thresholds' EMAs (ema_p)")
      .min(0)
      .check([](const double& m) { return m < 1; }, "must be < 1");
  o.key("concat_forward", &FreeMatchOptions::concat_forward, kConcatForwardDoc);
}

FreeMatchEma freematch_initial_ema(const at::Tensor& class_support) {
  const auto support = class_support.to(torch::kFloat);
  const auto num = support.sum();
  FreeMatchEma ema;
  ema.class_probs = support / num;
  ema.label_hist = support / num;
  ema.global_threshold = num.reciprocal();
  return ema;
}

void freematch_update(FreeMatchEma& ema, const at::Tensor& probs, double momentum) {
  const auto p = probs.detach().to(ema.class_probs.scalar_type());
  const auto [confidence, label] = p.max(1);
  const auto hist = torch::zeros_like(ema.label_hist).index_add_(0, label, torch::ones_like(confidence));
  const double m = momentum;
  ema.global_threshold = m * ema.global_threshold + (1.0 - m) * confidence.mean();
  ema.class_probs = m * ema.class_probs + (1.0 - m) * p.mean(0);
  ema.label_hist = m * ema.label_hist + (1.0 - m) * hist / static_cast<double>(p.size(0));
}

at::Tensor freematch_class_thresholds(const FreeMatchEma& ema) {
  return ema.class_probs / ema.class_probs.max() * ema.global_threshold;
}

namespace {

// 1 / x where x > 0, else 0 (a class absent from a histogram drops out).
at::Tensor freematch_reciprocal_or_zero(const at::Tensor& x) { return x.reciprocal().masked_fill(x <= 0, 0.0); }

// x / sum(x); the clamp only keeps an all-zero x finite (its term is then zeroed).
at::Tensor freematch_sum_norm(const at::Tensor& x) { return x / x.sum().clamp_min(1e-12); }

}  // namespace

at::Tensor freematch_fairness_loss(const at::Tensor& logits_strong, const at::Tensor& mask,
                                   const at::Tensor& class_probs, const at::Tensor& label_hist, World* world) {
  const bool distributed = world != nullptr && world->distributed();
  if (logits_strong.size(0) == 0 && !distributed) return logits_strong.sum();
  // Weighted by the mask instead of selecting rows: no host synchronisation.
  const auto selected = mask.detach().to(logits_strong.scalar_type());
  auto count = selected.sum();
  const auto probs = torch::softmax(logits_strong, 1);
  const auto label = probs.detach().argmax(1);
  auto hist = torch::zeros({probs.size(1)}, probs.options()).index_add_(0, label, selected);
  auto probs_sum = (probs * selected.unsqueeze(1)).sum(0);
  if (distributed) {
    // The global batch's count and histogram (constants), and its sum of
    // probabilities with gradient: every rank then computes the same term.
    std::vector<at::Tensor> counts{torch::cat({count.reshape({1}), hist})};
    world->all_reduce_sum(counts);
    count = counts[0][0];
    hist = counts[0].narrow(0, 1, probs.size(1));
    probs_sum = all_reduce_sum_with_grad(*world, probs_sum);
  }
  const auto hist_s = hist / count.clamp_min(1.0);           // h_bar
  const auto mean_probs = probs_sum / count.clamp_min(1.0);  // p_bar
  const auto target =
      freematch_sum_norm(class_probs * freematch_reciprocal_or_zero(label_hist)).detach().to(probs.scalar_type());
  const auto prediction = freematch_sum_norm(mean_probs * freematch_reciprocal_or_zero(hist_s).detach());
  // -H(target, prediction) = sum_c target_c log prediction_c (the 1e-12 as the reference).
  const auto loss = (target * torch::log(prediction + 1e-12)).sum();
  return loss * count.gt(0).to(loss.scalar_type());
}

FreeMatchTerms freematch_step(const at::Tensor& logits_weak, const at::Tensor& logits_strong, FreeMatchEma& ema,
                              const FreeMatchOptions& options, const at::Tensor& weak_all, World* world) {
  const auto& batch = weak_all.defined() ? weak_all : logits_weak;
  freematch_update(ema, torch::softmax(batch.detach(), 1), options.ema_momentum);
  const auto out = classwise_threshold_loss(logits_weak, logits_strong, freematch_class_thresholds(ema));
  FreeMatchTerms terms;
  terms.unsup = out.loss;
  terms.mask = out.mask;
  if (options.lambda_f > 0)
    terms.fairness = freematch_fairness_loss(logits_strong, out.mask, ema.class_probs, ema.label_hist, world);
  return terms;
}

namespace {

class FreeMatchLoss : public WeakStrongLoss {
 public:
  explicit FreeMatchLoss(FreeMatchOptions options) : WeakStrongLoss(options.concat_forward), options_(options) {}
  std::string name() const override { return "freematch"; }
  // The fairness term's statistics are summed over the ranks (freematch_fairness_loss).
  bool distributed() const override { return true; }

  // The EMAs describe the task's pool and classes: a new task starts them again
  // at 1/C. A task that is already current (a checkpoint resumed inside it)
  // keeps them.
  void before_task(const RunState& state) override {
    if (state.task != task_) start_task(state.task);
  }

  std::vector<std::pair<std::string, double>> stats() const override {
    auto out = WeakStrongLoss::stats();
    double global = 0, mean_class = 0;
    if (task_ >= 0) {
      global = ema_.global_threshold.item<double>();
      const auto support = class_support_.to(torch::kFloat);
      mean_class = ((freematch_class_thresholds(ema_) * support).sum() / support.sum()).item<double>();
    }
    out.emplace_back("global_threshold", global);
    out.emplace_back("mean_class_threshold", mean_class);
    return out;
  }

  void visit_state(StateVisitor& s) override {
    WeakStrongLoss::visit_state(s);
    s("task", task_);
    s("class_support", class_support_, Place::kDevice);
    s("global_threshold", ema_.global_threshold, Place::kDevice);
    s("class_probs", ema_.class_probs, Place::kDevice);
    s("label_hist", ema_.label_hist, Place::kDevice);
  }

 protected:
  std::vector<std::string> term_names() const override {
    if (options_.lambda_f > 0) return {"unsup", "fairness"};
    return {"unsup"};
  }

  LossTerms unlabeled_terms(const UnlabeledLogits& u, const RunState&) override {
    if (u.task != task_) start_task(u.task);  // a caller that skipped before_task
    Method& m = method();
    const auto out =
        freematch_step(u.weak, u.strong, ema_, options_,
                       m.world().distributed() ? m.gather_rows(u.weak.detach()) : at::Tensor(), &m.world());
    record_mask(out.mask);
    LossTerms terms = {{"unsup", options_.lambda_u * out.unsup}};
    if (options_.lambda_f > 0) terms.emplace_back("fairness", options_.lambda_f * out.fairness);
    return terms;
  }

 private:
  // C = the task's classes under the task mask (the others have probability 0),
  // all classes otherwise.
  void start_task(int task) {
    class_support_ = classes_in_play_mask(method(), task);
    ema_ = freematch_initial_ema(class_support_);
    task_ = task;
  }

  FreeMatchOptions options_;
  FreeMatchEma ema_;
  at::Tensor class_support_;  // [K] float 0/1
  int task_ = -1;
};

SSCL_REGISTER_SEMI_LOSS("freematch", FreeMatchLoss, FreeMatchOptions{},
                        "FreeMatch: self-adaptive global and per-class thresholds plus a fairness term");

}  // namespace
}  // namespace sscl
