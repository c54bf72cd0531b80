#include "methods/semi/pseudo_label.h"

#include <torch/torch.h>

#include "core/method.h"
#include "methods/semi/semi_math.h"
#include "methods/semi/weak_strong_loss.h"

namespace sscl {

PseudoLabelLoss pseudo_label_loss(const at::Tensor& logits, double threshold) {
  // FixMatch's term with the same view as source and target: fixmatch_loss
  // detaches its first argument, so only the CE side carries gradient.
  return fixmatch_loss(logits, logits, threshold);
}

namespace {

class PseudoLabelSemiLoss : public WeakStrongLoss {
 public:
  explicit PseudoLabelSemiLoss(PseudoLabelOptions options)
      : WeakStrongLoss(options.concat_forward), options_(options) {}
  std::string name() const override { return "pseudo_label"; }

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

std::unique_ptr<SemiLoss> make_pseudo_label(const ConfigSection& s) {
  PseudoLabelOptions o;
  o.threshold = s.get_or("threshold", o.threshold);
  o.lambda_u = s.get_or("lambda_u", o.lambda_u);
  o.unsup_warm_up = s.get_or("unsup_warm_up", o.unsup_warm_up);
  o.concat_forward = read_concat_forward(s);
  if (o.threshold < 0 || o.threshold > 1) s.fail("threshold", "must be in [0, 1]");
  if (o.lambda_u < 0) s.fail("lambda_u", "must be >= 0");
  if (o.unsup_warm_up < 0 || o.unsup_warm_up > 1) s.fail("unsup_warm_up", "must be in [0, 1] (a fraction of the task)");
  return std::make_unique<PseudoLabelSemiLoss>(o);
}

SSCL_REGISTER(SemiLossRegistry, "pseudo_label", make_pseudo_label);
SSCL_REGISTER(MethodRegistry, "pseudo_label", semi_alone("pseudo_label"));

}  // namespace
}  // namespace sscl
