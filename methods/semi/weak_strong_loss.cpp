#include "methods/semi/weak_strong_loss.h"

#include <torch/torch.h>

#include "core/method.h"

namespace sscl {

CurrentBatchOutput WeakStrongLoss::forward(const TrainBatch& batch, const at::Tensor& extra,
                                           const SupervisedLoss& supervised, const RunState& state) {
  Method& m = method();
  const auto& lab = batch.labeled;
  const auto& unl = batch.unlabeled;
  const int64_t b = lab.images.size(0);
  const int64_t e = extra.defined() ? extra.size(0) : 0;
  const auto head = e > 0 ? torch::cat({lab.images, extra}) : lab.images;
  const bool unlabeled = !unl.empty() && active(state);
  const bool strong = !trains_weak_view();

  torch::Tensor head_logits, weak_logits, strong_logits;
  if (!unlabeled) {
    head_logits = m.model()->forward(head);
  } else if (concat_forward_) {
    const int64_t u = unl.weak.size(0);
    const auto logits = m.model()->forward(strong ? torch::cat({head, unl.weak, unl.strong}) : torch::cat({head, unl.weak}));
    head_logits = logits.narrow(0, 0, b + e);
    weak_logits = logits.narrow(0, b + e, u);
    if (strong) strong_logits = logits.narrow(0, b + e + u, u);
  } else {
    head_logits = m.model()->forward(head);
    if (strong) {
      {
        torch::NoGradGuard no_grad;  // the weak view only supplies targets
        weak_logits = m.model()->forward(unl.weak);
      }
      strong_logits = m.model()->forward(unl.strong);
    } else {
      weak_logits = m.model()->forward(unl.weak);
    }
  }

  CurrentBatchOutput out;
  out.labeled_logits = head_logits.narrow(0, 0, b);
  out.extra_logits = head_logits.narrow(0, b, e);
  out.terms = {{"sup", supervised_term(m.train_logits(out.labeled_logits, batch.task), lab.labels, supervised, state)}};
  if (!unlabeled) {
    for (const auto& name : term_names()) out.terms.emplace_back(name, torch::zeros({}, head_logits.options()));
    return out;
  }
  UnlabeledLogits u;
  u.weak = m.train_logits(weak_logits, batch.task);
  if (strong) {
    u.weak = u.weak.detach();
    u.strong = m.train_logits(strong_logits, batch.task);
  }
  u.indices = unl.indices;
  u.task = batch.task;
  for (auto& term : unlabeled_terms(u, state)) out.terms.push_back(std::move(term));
  return out;
}

void WeakStrongLoss::record_mask(const at::Tensor& mask) {
  if (mask.numel() == 0) return;
  const auto sum = mask.detach().to(torch::kDouble).sum();
  mask_sum_ = mask_sum_.defined() ? mask_sum_ + sum : sum;
  mask_count_ += mask.numel();
}

std::vector<std::pair<std::string, double>> WeakStrongLoss::stats() const {
  return {{"mask_rate", mask_count_ > 0 ? mask_sum_.item<double>() / static_cast<double>(mask_count_) : 0.0}};
}

bool read_concat_forward(const ConfigSection& section) { return section.get_or("concat_forward", true); }

}  // namespace sscl
