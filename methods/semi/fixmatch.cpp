#include "methods/semi/fixmatch.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include "core/method.h"
#include "methods/continual/sft.h"
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

void FixMatchOptions::declare(OptionSpec<FixMatchOptions>& o) {
  o.key("threshold", &FixMatchOptions::threshold, "confidence of the weak view that makes a pseudo-label")
      .between(0, 1);
  o.key("lambda_u", &FixMatchOptions::lambda_u, "weight of the unlabeled term").min(0);
  o.key("concat_forward", &FixMatchOptions::concat_forward, kConcatForwardDoc);
}

namespace {

class FixMatchLoss : public WeakStrongLoss {
 public:
  explicit FixMatchLoss(FixMatchOptions options) : WeakStrongLoss(options.concat_forward), options_(options) {}
  std::string name() const override { return "fixmatch"; }
  bool distributed() const override { return true; }

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

SSCL_REGISTER_SEMI_LOSS("fixmatch", FixMatchLoss, FixMatchOptions{},
                        "FixMatch: confident weak-view predictions are hard pseudo-labels for the strong view");

}  // namespace
}  // namespace sscl
