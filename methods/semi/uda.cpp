#include "methods/semi/uda.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/method.h"
#include "methods/continual/sft.h"
#include "methods/semi/semi_math.h"
#include "methods/semi/weak_strong_loss.h"

namespace sscl {

void UdaOptions::declare(OptionSpec<UdaOptions>& o) {
  o.key("temperature", &UdaOptions::temperature, "T of the sharpened target softmax(weak / T)").above(0);
  o.key("threshold", &UdaOptions::threshold, "confidence of the unsharpened weak prediction that keeps an image")
      .between(0, 1);
  o.key("lambda_u", &UdaOptions::lambda_u, "weight of the unlabeled term").min(0);
  o.choice("tsa", &UdaOptions::tsa,
           {{"none", TsaSchedule::kNone},
            {"linear", TsaSchedule::kLinear},
            {"log", TsaSchedule::kLog},
            {"exp", TsaSchedule::kExp}},
           "training-signal annealing of the labeled term: how its threshold grows over the task");
  o.key("concat_forward", &UdaOptions::concat_forward, kConcatForwardDoc);
}

UdaLoss uda_loss(const at::Tensor& logits_weak, const at::Tensor& logits_strong, double temperature, double threshold) {
  UdaLoss out;
  const auto weak = logits_weak.detach();
  // The mask uses the unsharpened prediction, the target the sharpened one; a
  // task-masked (-inf) class stays at probability 0 in both.
  const auto confidence = std::get<0>(torch::softmax(weak, 1).max(1));
  out.mask = confidence.ge(threshold).to(logits_strong.scalar_type());
  out.targets = torch::softmax(weak / temperature, 1);
  if (logits_strong.size(0) == 0) {
    out.loss = logits_strong.sum();  // zero, still attached to the graph
    return out;
  }
  out.loss = (soft_cross_entropy(logits_strong, out.targets) * out.mask).mean();
  return out;
}

double tsa_threshold(TsaSchedule schedule, double progress, int64_t num_classes) {
  const double t = std::clamp(progress, 0.0, 1.0);
  double alpha = 1.0;
  switch (schedule) {
    case TsaSchedule::kNone: return 1.0;
    case TsaSchedule::kLinear: alpha = t; break;
    case TsaSchedule::kLog: alpha = 1.0 - std::exp(-5.0 * t); break;
    case TsaSchedule::kExp: alpha = std::exp(5.0 * (t - 1.0)); break;
  }
  const double k = static_cast<double>(std::max<int64_t>(num_classes, 1));
  return alpha * (1.0 - 1.0 / k) + 1.0 / k;
}

at::Tensor tsa_keep_mask(const at::Tensor& logits, const at::Tensor& labels, double eta) {
  const auto correct = torch::softmax(logits.detach(), 1).gather(1, labels.unsqueeze(1)).squeeze(1);
  return correct.le(eta);
}

namespace {

class UdaSemiLoss : public WeakStrongLoss {
 public:
  explicit UdaSemiLoss(UdaOptions options) : WeakStrongLoss(options.concat_forward), options_(options) {}
  std::string name() const override { return "uda"; }
  bool distributed() const override { return true; }

  std::vector<std::pair<std::string, double>> stats() const override {
    auto out = WeakStrongLoss::stats();
    if (options_.tsa != TsaSchedule::kNone) out.emplace_back("tsa_keep_rate", tsa_keep_rate_.mean());
    return out;
  }

  void visit_state(StateVisitor& s) override {
    WeakStrongLoss::visit_state(s);
    s("tsa_keep_rate", tsa_keep_rate_);
  }

 protected:
  at::Tensor supervised_term(const at::Tensor& logits, const at::Tensor& labels, const SupervisedLoss& supervised,
                             const RunState& state) override {
    if (options_.tsa == TsaSchedule::kNone) return supervised(logits, labels);
    // K = the classes in play: the task's under the task mask (the others have
    // probability 0), all classes otherwise. Progress restarts every task.
    const int64_t k = classes_in_play(method(), state.task);
    const double progress =
        static_cast<double>(state.iter) / static_cast<double>(std::max<int64_t>(state.iters_per_task, 1));
    const auto keep = tsa_keep_mask(logits, labels, tsa_threshold(options_.tsa, progress, k));
    Method& m = method();
    tsa_keep_rate_.add(keep, m.world());
    // The given loss on the kept rows alone (its mean is over them, as the
    // paper's code divides by the number kept). Selecting rows syncs with the
    // host; only TSA pays for it.
    const auto rows = keep.nonzero().squeeze(1);
    double share = 1.0;
    if (m.world().distributed()) {
      // The mean over every rank's kept rows: this rank's mean weighted by its
      // share of them, times the world size that averaging the gradients divides by.
      std::vector<at::Tensor> kept{torch::full({1}, static_cast<double>(rows.size(0)), torch::kDouble)};
      m.world().all_reduce_sum(kept);
      const double all = kept[0].item<double>();
      share = all > 0 ? static_cast<double>(rows.size(0)) * m.world().size() / all : 0.0;
    }
    if (rows.size(0) == 0) return torch::zeros({}, logits.options());
    return share * supervised(logits.index_select(0, rows), labels.index_select(0, rows));
  }

  LossTerms unlabeled_terms(const UnlabeledLogits& u, const RunState&) override {
    const auto out = uda_loss(u.weak, u.strong, options_.temperature, options_.threshold);
    record_mask(out.mask);
    return {{"unsup", options_.lambda_u * out.loss}};
  }

 private:
  UdaOptions options_;
  RunningMean tsa_keep_rate_;
};

SSCL_REGISTER_SEMI_LOSS("uda", UdaSemiLoss, UdaOptions{},
                        "UDA: the sharpened weak-view prediction is a soft target for the strong view");

}  // namespace
}  // namespace sscl
