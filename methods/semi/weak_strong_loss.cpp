#include "methods/semi/weak_strong_loss.h"

#include <torch/torch.h>

#include "core/method.h"

namespace sscl {

CurrentBatchOutput WeakStrongLoss::forward(const TrainBatch& batch, const at::Tensor& extra,
                                           const SupervisedLoss& supervised, const RunState& state) {
  Method& m = method();
  const auto& unl = batch.unlabeled;
  const HeadImages head(batch, extra);
  const bool unlabeled = !unl.empty() && active(state);
  const bool strong = !trains_weak_view();

  torch::Tensor head_logits, weak_logits, strong_logits;
  if (!unlabeled) {
    head_logits = m.model()->forward(head.images);
  } else if (concat_forward_) {
    std::vector<at::Tensor> parts{head.images, unl.weak};
    if (strong) parts.push_back(unl.strong);
    const auto logits = forward_concat(m.model(), parts);
    head_logits = logits[0];
    weak_logits = logits[1];
    if (strong) strong_logits = logits[2];
  } else {
    head_logits = m.model()->forward(head.images);
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
  head.split(head_logits, out);
  out.terms = {{"sup", supervised_term(m.train_logits(out.labeled_logits, batch.task), batch.labeled.labels, supervised,
                                       state)}};
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

HeadImages::HeadImages(const TrainBatch& batch, const at::Tensor& extra_images)
    : labeled(batch.labeled.images.size(0)), extra(extra_images.defined() ? extra_images.size(0) : 0) {
  images = extra > 0 ? torch::cat({batch.labeled.images, extra_images}) : batch.labeled.images;
}

void HeadImages::split(const at::Tensor& logits, CurrentBatchOutput& out) const {
  out.labeled_logits = logits.narrow(0, 0, labeled);
  out.extra_logits = logits.narrow(0, labeled, extra);
}

std::vector<at::Tensor> forward_concat(Classifier& model, const std::vector<at::Tensor>& parts) {
  const auto logits = model->forward(torch::cat(parts));
  std::vector<at::Tensor> out;
  int64_t start = 0;
  for (const auto& part : parts) {
    out.push_back(logits.narrow(0, start, part.size(0)));
    start += part.size(0);
  }
  return out;
}

void WeakStrongLoss::record_mask(const at::Tensor& mask) { mask_rate_.add(mask, method().world()); }

std::vector<std::pair<std::string, double>> WeakStrongLoss::stats() const { return {{"mask_rate", mask_rate_.mean()}}; }

}  // namespace sscl
