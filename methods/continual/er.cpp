#include "methods/continual/er.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

namespace sscl {

Er::Er(ReplayOptions options, bool store_logits)
    : options_(options), store_logits_(store_logits), buffer_(options.buffer_size, ReplayPolicy::kReservoir) {
  traits_.composes_with_semi = true;
  traits_.distributed = true;
}

void Er::attach(MethodContext context) {
  Method::attach(std::move(context));
  if (store_logits_)
    buffer_ = ReplayBuffer(options_.buffer_size, ReplayPolicy::kReservoir, ReplayFields{model()->num_classes()});
}

int64_t Er::minibatch_size() const {
  return options_.minibatch_size > 0 ? options_.minibatch_size : context().batch_size;
}

ReplayBatch Er::replay_draw(Rng& rng) const {
  return draw_replay_batch(buffer_, minibatch_size(), data(), View::kWeak, rng, context().device, &world());
}

at::Tensor Er::replay_cross_entropy(const ReplayBatch& draw) {
  return draw.weight *
         torch::nn::functional::cross_entropy(train_logits(model()->forward(draw.images), draw.tasks), draw.labels);
}

void Er::offer(const TrainBatch& batch, Rng& rng, const at::Tensor& logits) {
  buffer_.add(global_labeled_offer(world(), batch.labeled, batch.task, data(), logits), rng);
}

LossTerms Er::step(const TrainBatch& batch, const RunState& state) {
  namespace F = torch::nn::functional;
  Rng rng = this->rng("er.replay", batch.task, state.iter);  // the draw and the offer
  const auto replay = replay_draw(rng);
  // One forward over current and replayed images, as mammoth's ER (BatchNorm
  // normalises them together); the two cross-entropies stay separate terms.
  auto current = forward_current(batch, state, replay.size() > 0 ? replay.images : at::Tensor());
  LossTerms terms = std::move(current.terms);
  if (replay.size() > 0) {
    const auto replay_logits = train_logits(current.extra_logits, replay.tasks);
    terms.emplace_back("replay", replay.weight * F::cross_entropy(replay_logits, replay.labels));
  } else {
    terms.emplace_back("replay", torch::zeros({}, current.labeled_logits.options()));
  }
  offer(batch, rng);
  return terms;
}

SSCL_REGISTER_METHOD("er", Er, ReplayOptions{}, "ER: a reservoir buffer of labeled images replayed beside every batch");

}  // namespace sscl
