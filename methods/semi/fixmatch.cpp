#include "methods/semi/fixmatch.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include "core/method.h"
#include "methods/semi/weak_strong_loss.h"

namespace sscl {

at::Tensor masked_cross_entropy(const at::Tensor& logits, const at::Tensor& label, const at::Tensor& mask) {
  if (logits.size(0) == 0) return logits.sum();  // zero, still attached to the graph
  namespace F = torch::nn::functional;
  const auto per_image = F::cross_entropy(logits, label, F::CrossEntropyFuncOptions().reduction(torch::kNone));
  return (per_image * mask).mean();
}

PseudoLabelLoss fixmatch_loss(const at::Tensor& logits_weak, const at::Tensor& logits_strong, double threshold) {
  PseudoLabelLoss out;
  const auto probs = torch::softmax(logits_weak.detach(), 1);
  auto [confidence, label] = probs.max(1);
  out.pseudo_label = label;
  out.mask = confidence.ge(threshold).to(logits_strong.scalar_type());
  out.loss = masked_cross_entropy(logits_strong, label, out.mask);
  return out;
}

namespace {

class FixMatchLoss : public WeakStrongLoss {
 public:
  explicit FixMatchLoss(FixMatchOptions options) : WeakStrongLoss(options.concat_forward), options_(options) {}
  std::string name() const override { return "fixmatch"; }

 protected:
  LossTerms unlabeled_terms(const UnlabeledLogits& u, const RunState&) override {
    // With a task mask, pseudo-labels too are among the current task's classes.
    const auto out = fixmatch_loss(u.weak, u.strong, options_.threshold);
    record_mask(out.mask);
    return {{"unsup", options_.lambda_u * out.loss}};
  }

 private:
  FixMatchOptions options_;
};

std::unique_ptr<SemiLoss> make_fixmatch(const ConfigSection& s) {
  FixMatchOptions o;
  o.threshold = s.get_or("threshold", o.threshold);
  o.lambda_u = s.get_or("lambda_u", o.lambda_u);
  o.concat_forward = read_concat_forward(s);
  if (o.threshold < 0 || o.threshold > 1) s.fail("threshold", "must be in [0, 1]");
  if (o.lambda_u < 0) s.fail("lambda_u", "must be >= 0");
  return std::make_unique<FixMatchLoss>(o);
}

SSCL_REGISTER(SemiLossRegistry, "fixmatch", make_fixmatch);
SSCL_REGISTER(MethodRegistry, "fixmatch", semi_alone("fixmatch"));

}  // namespace
}  // namespace sscl
