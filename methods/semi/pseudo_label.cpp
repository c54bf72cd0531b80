#include "methods/semi/pseudo_label.h"

#include <torch/torch.h>

#include "core/method.h"
#include "methods/continual/sft.h"
#include "methods/semi/semi_math.h"
#include "methods/semi/weak_strong_loss.h"

namespace sscl {

PseudoLabelLoss pseudo_label_loss(const at::Tensor& logits, double threshold) {
  // FixMatch's term with the same view as source and target: fixmatch_loss
  // detaches its first argument, so only the CE side carries gradient.
  return fixmatch_loss(logits, logits, threshold);
}

void PseudoLabelOptions::declare(OptionSpec<PseudoLabelOptions>& o) {
  o.key("threshold", &PseudoLabelOptions::threshold,
        "confidence that makes a prediction its own pseudo-label (p_cutoff)")
      .between(0, 1);
  o.key("lambda_u", &PseudoLabelOptions::lambda_u, "weight of the unlabeled term (ulb_loss_ratio)").min(0);
  o.key("unsup_warm_up", &PseudoLabelOptions::unsup_warm_up,
        "fraction of each task over which the unlabeled weight ramps linearly to lambda_u")
      .between(0, 1);
  o.key("concat_forward", &PseudoLabelOptions::concat_forward, kConcatForwardDoc);
}

namespace {

class PseudoLabelSemiLoss : public WeakStrongLoss {
 public:
  explicit PseudoLabelSemiLoss(PseudoLabelOptions options)
      : WeakStrongLoss(options.concat_forward), options_(options) {}
  std::string name() const override { return "pseudo_label"; }
  bool distributed() const override { return true; }

 protected:
  bool trains_weak_view() const override { return true; }
  // No unlabeled pass while the warm-up weight is still 0 (the first iteration of a task).
  bool active(const RunState& state) const override { return weight(state) > 0; }

  LossTerms unlabeled_terms(const UnlabeledLogits& u, const RunState& state) override {
    const auto out = pseudo_label_loss(u.weak, options_.threshold);
    record_mask(out.mask);
    return {{"unsup", weight(state) * out.loss}};
  }

 private:
  double weight(const RunState& state) const {
    return options_.lambda_u * unsup_warmup(state.iter, state.iters_per_task, options_.unsup_warm_up);
  }

  PseudoLabelOptions options_;
};

SSCL_REGISTER_SEMI_LOSS("pseudo_label", PseudoLabelSemiLoss, PseudoLabelOptions{},
                        "Pseudo-Label: a confident weak-view prediction is the hard label of that same view");

}  // namespace
}  // namespace sscl
