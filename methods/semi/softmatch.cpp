#include "methods/semi/softmatch.h"

#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/method.h"
#include "methods/continual/sft.h"
#include "methods/semi/fixmatch.h"
#include "methods/semi/semi_math.h"
#include "methods/semi/weak_strong_loss.h"

namespace sscl {

void SoftMatchOptions::declare(OptionSpec<SoftMatchOptions>& o) {
  o.key("lambda_u", &SoftMatchOptions::lambda_u, "weight of the unlabeled term").min(0);
  o.key("n_sigma", &SoftMatchOptions::n_sigma, "width of the Gaussian in standard deviations").above(0);
  o.key("ema_momentum", &SoftMatchOptions::ema_momentum, "m, the momentum of the mean, variance and p_model (ema_p)")
      .min(0)
      .check([](const double& m) { return m < 1; }, "must be < 1");
  o.key("dist_align", &SoftMatchOptions::dist_align, "uniform distribution alignment of the weighting confidence");
  o.key("concat_forward", &SoftMatchOptions::concat_forward, kConcatForwardDoc);
}

SoftMatchState softmatch_initial_state(const at::Tensor& class_support) {
  const auto support = class_support.to(torch::kFloat);
  const auto num_classes = support.sum();
  SoftMatchState state;
  state.mean = num_classes.reciprocal();
  state.variance = torch::ones({}, support.options());
  state.p_target = support / num_classes;
  return state;
}

void softmatch_update_gaussian(SoftMatchState& state, const at::Tensor& confidence, double momentum) {
  const auto c = confidence.detach().to(state.mean.scalar_type());
  const double m = momentum;
  state.mean = m * state.mean + (1.0 - m) * c.mean();
  if (c.size(0) >= 2) state.variance = m * state.variance + (1.0 - m) * c.var(/*unbiased=*/true);
}

at::Tensor softmatch_weights(const at::Tensor& confidence, const at::Tensor& mean, const at::Tensor& variance,
                             double n_sigma) {
  // Only confidences below the mean are down-weighted (the truncation).
  const auto below = (confidence - mean).clamp_max(0.0);
  return torch::exp(-below.square() / (2.0 * variance / (n_sigma * n_sigma)));
}

at::Tensor distribution_alignment(const at::Tensor& probs, const at::Tensor& p_model, const at::Tensor& p_target) {
  const auto aligned = probs * (p_target + 1e-6) / (p_model + 1e-6);
  return aligned / aligned.sum(1, /*keepdim=*/true);
}

SoftMatchTerm softmatch_step(const at::Tensor& logits_weak, const at::Tensor& logits_strong, SoftMatchState& state,
                             const SoftMatchOptions& options, const at::Tensor& weak_all) {
  SoftMatchTerm out;
  const auto probs_of = [&](const at::Tensor& logits) {
    return torch::softmax(logits.detach(), 1).to(state.mean.scalar_type());
  };
  const auto probs = probs_of(logits_weak);
  const auto probs_all = weak_all.defined() ? probs_of(weak_all) : probs;
  out.pseudo_label = probs.argmax(1);  // from the unaligned prediction, as the reference
  auto weighting_probs = probs, weighting_all = probs_all;
  if (options.dist_align) {
    const auto batch_mean = probs_all.mean(0);
    const double m = options.ema_momentum;
    state.p_model = state.p_model.defined() ? m * state.p_model + (1.0 - m) * batch_mean : batch_mean;
    weighting_probs = distribution_alignment(probs, state.p_model, state.p_target);
    weighting_all =
        weak_all.defined() ? distribution_alignment(probs_all, state.p_model, state.p_target) : weighting_probs;
  }
  const auto confidence = std::get<0>(weighting_probs.max(1));
  const auto confidence_all = weak_all.defined() ? std::get<0>(weighting_all.max(1)) : confidence;
  softmatch_update_gaussian(state, confidence_all, options.ema_momentum);
  out.weights =
      softmatch_weights(confidence, state.mean, state.variance, options.n_sigma).to(logits_strong.scalar_type());
  out.loss = masked_cross_entropy(logits_strong, out.pseudo_label, out.weights);
  return out;
}

namespace {

class SoftMatchLoss : public WeakStrongLoss {
 public:
  explicit SoftMatchLoss(SoftMatchOptions options) : WeakStrongLoss(options.concat_forward), options_(options) {}
  std::string name() const override { return "softmatch"; }
  bool distributed() const override { return true; }

  // mu, sigma^2 and p_model describe the task's pool and classes: a new task
  // starts them again. A task that is already current (a checkpoint resumed
  // inside it) keeps them.
  void before_task(const RunState& state) override {
    if (state.task != task_) start_task(state.task);
  }

  std::vector<std::pair<std::string, double>> stats() const override {
    auto out = WeakStrongLoss::stats();
    out.emplace_back("gaussian_mean", task_ >= 0 ? state_.mean.item<double>() : 0.0);
    out.emplace_back("gaussian_variance", task_ >= 0 ? state_.variance.item<double>() : 0.0);
    return out;
  }

  void visit_state(StateVisitor& s) override {
    WeakStrongLoss::visit_state(s);
    s("task", task_);
    s("mean", state_.mean, Place::kDevice);
    s("variance", state_.variance, Place::kDevice);
    s("p_target", state_.p_target, Place::kDevice);
    s("p_model", state_.p_model, Place::kDevice);
  }

 protected:
  LossTerms unlabeled_terms(const UnlabeledLogits& u, const RunState&) override {
    if (u.task != task_) start_task(u.task);  // a caller that skipped before_task
    Method& m = method();
    const auto out = softmatch_step(u.weak, u.strong, state_, options_,
                                    m.world().distributed() ? m.gather_rows(u.weak.detach()) : at::Tensor());
    record_mask(out.weights);
    return {{"unsup", options_.lambda_u * out.loss}};
  }

 private:
  // C = the task's classes under the task mask (the others have probability 0),
  // all classes otherwise; the alignment's uniform target is spread over them.
  void start_task(int task) {
    state_ = softmatch_initial_state(classes_in_play_mask(method(), task));
    task_ = task;
  }

  SoftMatchOptions options_;
  SoftMatchState state_;
  int task_ = -1;
};

SSCL_REGISTER_SEMI_LOSS("softmatch", SoftMatchLoss, SoftMatchOptions{},
                        "SoftMatch: pseudo-labels weighted by a truncated Gaussian of their confidence");

}  // namespace
}  // namespace sscl
