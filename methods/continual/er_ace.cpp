#include "methods/continual/er_ace.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include <limits>

namespace sscl {

at::Tensor ace_keep_mask(const at::Tensor& labels, const at::Tensor& seen) {
  auto present = torch::zeros_like(seen).index_fill_(0, labels.to(seen.device()), true);
  return present | ~seen;
}

at::Tensor ace_incoming_loss(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& keep) {
  const auto masked = logits.masked_fill(~keep, -std::numeric_limits<float>::infinity());
  return torch::nn::functional::cross_entropy(masked, labels);
}

void ErAce::attach(MethodContext ctx) {
  Er::attach(std::move(ctx));
  seen_ = torch::zeros({model()->num_classes()}, torch::TensorOptions(torch::kBool).device(context().device));
}

LossTerms ErAce::step(const TrainBatch& batch, const RunState& state) {
  const auto& lab = batch.labeled;
  // The classes present in the whole global batch, not only this rank's slice:
  // every rank masks the same logits and keeps the same seen set.
  const auto batch_labels = gather_rows(lab.labels);
  const auto keep = ace_keep_mask(batch_labels, seen_);
  seen_.index_fill_(0, batch_labels.to(seen_.device()), true);
  // As mammoth's er_ace: the first task trains with the plain cross-entropy and no
  // replay (nothing old to protect yet); from the second on, the asymmetric loss.
  const bool after_first_task = batch.task > 0;
  SupervisedLoss incoming;  // cross-entropy on the first task
  if (after_first_task)
    incoming = [&keep](const at::Tensor& logits, const at::Tensor& labels) {
      return ace_incoming_loss(logits, labels, keep);
    };
  auto current = forward_current(batch, state, {}, incoming);
  LossTerms terms = std::move(current.terms);
  Rng rng = this->rng("er_ace.replay", batch.task, state.iter);  // the draw and the offer
  const auto replay = after_first_task ? replay_draw(rng) : ReplayBatch{};
  terms.emplace_back(
      "replay", replay.size() > 0 ? replay_cross_entropy(replay) : torch::zeros({}, current.labeled_logits.options()));
  offer(batch, rng);
  return terms;
}

SSCL_REGISTER_METHOD("er_ace", ErAce, ReplayOptions{},
                     "ER-ACE: ER whose incoming cross-entropy leaves out seen classes absent from the batch");

}  // namespace sscl
