#include "methods/semi/freematch.h"

#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/method.h"
#include "methods/semi/flexmatch.h"
#include "methods/semi/semi_math.h"
#include "methods/semi/weak_strong_loss.h"

namespace sscl {

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
at::Tensor reciprocal_or_zero(const at::Tensor& x) { return x.reciprocal().masked_fill(x <= 0, 0.0); }

// x / sum(x); the clamp only keeps an all-zero x finite (its term is then zeroed).
at::Tensor sum_norm(const at::Tensor& x) { return x / x.sum().clamp_min(1e-12); }

}  // namespace

at::Tensor freematch_fairness_loss(const at::Tensor& logits_strong, const at::Tensor& mask,
                                   const at::Tensor& class_probs, const at::Tensor& label_hist) {
  if (logits_strong.size(0) == 0) return logits_strong.sum();
  // Weighted by the mask instead of selecting rows: no host synchronisation.
  const auto selected = mask.detach().to(logits_strong.scalar_type());
  const auto count = selected.sum();
  const auto probs = torch::softmax(logits_strong, 1);
  const auto label = probs.detach().argmax(1);
  const auto hist = torch::zeros({probs.size(1)}, probs.options()).index_add_(0, label, selected);
  const auto hist_s = hist / count.clamp_min(1.0);                                        // h_bar
  const auto mean_probs = (probs * selected.unsqueeze(1)).sum(0) / count.clamp_min(1.0);  // p_bar
  const auto target = sum_norm(class_probs * reciprocal_or_zero(label_hist)).detach().to(probs.scalar_type());
  const auto prediction = sum_norm(mean_probs * reciprocal_or_zero(hist_s).detach());
  // -H(target, prediction) = sum_c target_c log prediction_c (the 1e-12 as the reference).
  const auto loss = (target * torch::log(prediction + 1e-12)).sum();
  return loss * count.gt(0).to(loss.scalar_type());
}

FreeMatchTerms freematch_step(const at::Tensor& logits_weak, const at::Tensor& logits_strong, FreeMatchEma& ema,
                              const FreeMatchOptions& options) {
  freematch_update(ema, torch::softmax(logits_weak.detach(), 1), options.ema_momentum);
  const auto out = classwise_threshold_loss(logits_weak, logits_strong, freematch_class_thresholds(ema));
  FreeMatchTerms terms;
  terms.unsup = out.loss;
  terms.mask = out.mask;
  if (options.lambda_f > 0)
    terms.fairness = freematch_fairness_loss(logits_strong, out.mask, ema.class_probs, ema.label_hist);
  return terms;
}

namespace {

class FreeMatchLoss : public WeakStrongLoss {
 public:
  explicit FreeMatchLoss(FreeMatchOptions options) : WeakStrongLoss(options.concat_forward), options_(options) {}
  std::string name() const override { return "freematch"; }

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

  void save_state(torch::serialize::OutputArchive& archive) const override {
    WeakStrongLoss::save_state(archive);
    archive.write("semi.freematch.task", torch::tensor(int64_t{task_}, torch::kLong));
    if (task_ < 0) return;
    archive.write("semi.freematch.class_support", class_support_);
    archive.write("semi.freematch.global_threshold", ema_.global_threshold);
    archive.write("semi.freematch.class_probs", ema_.class_probs);
    archive.write("semi.freematch.label_hist", ema_.label_hist);
  }

  void load_state(torch::serialize::InputArchive& archive) override {
    WeakStrongLoss::load_state(archive);
    at::Tensor task;
    archive.read("semi.freematch.task", task);
    task_ = static_cast<int>(task.item<int64_t>());
    if (task_ < 0) return;
    const auto device = method().context().device;
    auto read = [&](const char* key, at::Tensor& into) {
      at::Tensor t;
      archive.read(key, t);
      into = t.to(device);
    };
    read("semi.freematch.class_support", class_support_);
    read("semi.freematch.global_threshold", ema_.global_threshold);
    read("semi.freematch.class_probs", ema_.class_probs);
    read("semi.freematch.label_hist", ema_.label_hist);
  }

 protected:
  std::vector<std::string> term_names() const override {
    if (options_.lambda_f > 0) return {"unsup", "fairness"};
    return {"unsup"};
  }

  LossTerms unlabeled_terms(const UnlabeledLogits& u, const RunState&) override {
    if (u.task != task_) start_task(u.task);  // a caller that skipped before_task
    const auto out = freematch_step(u.weak, u.strong, ema_, options_);
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

std::unique_ptr<SemiLoss> make_freematch(const ConfigSection& s) {
  FreeMatchOptions o;
  o.lambda_u = s.get_or("lambda_u", o.lambda_u);
  o.lambda_f = s.get_or("lambda_f", o.lambda_f);
  o.ema_momentum = s.get_or("ema_momentum", o.ema_momentum);
  o.concat_forward = read_concat_forward(s);
  if (o.lambda_u < 0) s.fail("lambda_u", "must be >= 0");
  if (o.lambda_f < 0) s.fail("lambda_f", "must be >= 0 (0 disables the fairness term)");
  if (o.ema_momentum < 0 || o.ema_momentum >= 1) s.fail("ema_momentum", "must be in [0, 1)");
  return std::make_unique<FreeMatchLoss>(o);
}

SSCL_REGISTER(SemiLossRegistry, "freematch", make_freematch);
SSCL_REGISTER(MethodRegistry, "freematch", semi_alone("freematch"));

}  // namespace
}  // namespace sscl
