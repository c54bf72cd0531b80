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
  Method::attach(std::move(ctx));
  seen_ = torch::zeros({model()->num_classes()}, torch::TensorOptions(torch::kBool).device(context().device));
}

LossTerms ErAce::step(const TrainBatch& batch, const RunState& state) {
  namespace F = torch::nn::functional;
  const auto& lab = batch.labeled;
  const auto keep = ace_keep_mask(lab.labels, seen_);
  seen_.index_fill_(0, lab.labels.to(seen_.device()), true);
  // As mammoth's er_ace: the first task trains with the plain cross-entropy and no
  // replay (nothing old to protect yet); from the second on, the asymmetric loss.
  const bool after_first_task = batch.task > 0;
  SupervisedLoss incoming;  // cross-entropy on the first task
  if (after_first_task)
    incoming = [&keep](const at::Tensor& logits, const at::Tensor& labels) {
      return ace_incoming_loss(logits, labels, keep);
    };
  auto current = forward_current(batch, state, {}, incoming);
  const auto logits = current.labeled_logits;
  LossTerms terms = std::move(current.terms);
  Rng rng = this->rng("er_ace.replay", batch.task, state.iter);  // the draw and the offer
  ReplayBatch replay;
  if (after_first_task)
    replay = draw_replay_batch(buffer_, minibatch_size(), data(), View::kWeak, rng, context().device);
  if (replay.size() > 0) {
    const auto replay_logits = train_logits(model()->forward(replay.images), replay.tasks);
    terms.emplace_back("replay", F::cross_entropy(replay_logits, replay.labels));
  } else {
    terms.emplace_back("replay", torch::zeros({}, logits.options()));
  }
  offer(batch, rng);
  return terms;
}

void ErAce::save_state(torch::serialize::OutputArchive& archive) const {
  Er::save_state(archive);
  archive.write("er_ace.seen_classes", seen_.cpu());
}

void ErAce::load_state(torch::serialize::InputArchive& archive) {
  Er::load_state(archive);
  at::Tensor seen;
  archive.read("er_ace.seen_classes", seen);
  seen_ = seen.to(context().device);
}

namespace {
SSCL_REGISTER(MethodRegistry, "er_ace",
              [](const ConfigSection& s) { return std::make_unique<ErAce>(read_replay_options(s)); });
}  // namespace

}  // namespace sscl
