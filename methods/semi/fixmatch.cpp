#include "methods/semi/fixmatch.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include "core/method.h"

namespace sscl {

PseudoLabelLoss fixmatch_loss(const at::Tensor& logits_weak, const at::Tensor& logits_strong, double threshold) {
  PseudoLabelLoss out;
  const auto probs = torch::softmax(logits_weak.detach(), 1);
  auto [confidence, label] = probs.max(1);
  out.pseudo_label = label;
  out.mask = confidence.ge(threshold).to(logits_strong.scalar_type());
  if (logits_strong.size(0) == 0) {
    out.loss = logits_strong.sum();  // zero, still attached to the graph
    return out;
  }
  namespace F = torch::nn::functional;
  const auto per_image = F::cross_entropy(logits_strong, label, F::CrossEntropyFuncOptions().reduction(torch::kNone));
  out.loss = (per_image * out.mask).mean();
  return out;
}

namespace {

class FixMatch : public Method {
 public:
  explicit FixMatch(FixMatchOptions options) : options_(options) {}

  std::string name() const override { return "fixmatch"; }
  bool uses_unlabeled() const override { return true; }

  LossTerms step(const TrainBatch& batch, const RunState&) override {
    namespace F = torch::nn::functional;
    const auto& lab = batch.labeled;
    const auto& unl = batch.unlabeled;
    torch::Tensor logits_lab, logits_weak, logits_strong;
    if (unl.empty()) {
      logits_lab = model()->forward(lab.images);
      logits_weak = logits_strong = torch::empty({0, logits_lab.size(1)}, logits_lab.options());
    } else if (options_.concat_forward) {
      const int64_t b = lab.images.size(0), u = unl.weak.size(0);
      const auto logits = model()->forward(torch::cat({lab.images, unl.weak, unl.strong}));
      logits_lab = logits.narrow(0, 0, b);
      logits_weak = logits.narrow(0, b, u);
      logits_strong = logits.narrow(0, b + u, u);
    } else {
      logits_lab = model()->forward(lab.images);
      {
        torch::NoGradGuard no_grad;  // the weak view only supplies targets
        logits_weak = model()->forward(unl.weak);
      }
      logits_strong = model()->forward(unl.strong);
    }
    // With a task mask, pseudo-labels too are among the current task's classes.
    logits_lab = train_logits(logits_lab, batch.task);
    logits_weak = train_logits(logits_weak, batch.task);
    logits_strong = train_logits(logits_strong, batch.task);
    const auto unsup = fixmatch_loss(logits_weak, logits_strong, options_.threshold);
    return {{"sup", F::cross_entropy(logits_lab, lab.labels)}, {"unsup", options_.lambda_u * unsup.loss}};
  }

 private:
  FixMatchOptions options_;
};

std::unique_ptr<Method> make_fixmatch(const ConfigSection& s) {
  FixMatchOptions o;
  o.threshold = s.get_or("threshold", o.threshold);
  o.lambda_u = s.get_or("lambda_u", o.lambda_u);
  o.concat_forward = s.get_or("concat_forward", o.concat_forward);
  if (o.threshold < 0 || o.threshold > 1) s.fail("threshold", "must be in [0, 1]");
  if (o.lambda_u < 0) s.fail("lambda_u", "must be >= 0");
  return std::make_unique<FixMatch>(o);
}

SSCL_REGISTER(MethodRegistry, "fixmatch", make_fixmatch);

}  // namespace
}  // namespace sscl
