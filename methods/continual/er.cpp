#include "methods/continual/er.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

namespace sscl {

Er::Er(ReplayOptions options) : options_(options), buffer_(options.buffer_size, ReplayPolicy::kReservoir) {}

int64_t Er::minibatch_size() const {
  return options_.minibatch_size > 0 ? options_.minibatch_size : context().batch_size;
}

void Er::offer(const TrainBatch& batch, Rng& rng, const at::Tensor& logits) {
  buffer_.add(labeled_offer(batch.labeled, batch.task, data(), logits), rng);
}

LossTerms Er::step(const TrainBatch& batch, const RunState& state) {
  namespace F = torch::nn::functional;
  Rng rng = this->rng("er.replay", batch.task, state.iter);  // the draw and the offer
  const auto replay = draw_replay_batch(buffer_, minibatch_size(), data(), View::kWeak, rng, context().device);
  // One forward over current and replayed images, as mammoth's ER (BatchNorm
  // normalises them together); the two cross-entropies stay separate terms.
  auto current = forward_current(batch, state, replay.size() > 0 ? replay.images : at::Tensor());
  LossTerms terms = std::move(current.terms);
  if (replay.size() > 0) {
    const auto replay_logits = train_logits(current.extra_logits, replay.tasks);
    terms.emplace_back("replay", F::cross_entropy(replay_logits, replay.labels));
  } else {
    terms.emplace_back("replay", torch::zeros({}, current.labeled_logits.options()));
  }
  offer(batch, rng);
  return terms;
}

void Er::save_state(torch::serialize::OutputArchive& archive) const { buffer_.save(archive, name() + ".buffer."); }

void Er::load_state(torch::serialize::InputArchive& archive) { buffer_.load(archive, name() + ".buffer."); }

namespace {
SSCL_REGISTER(MethodRegistry, "er",
              [](const ConfigSection& s) { return std::make_unique<Er>(read_replay_options(s)); });
}  // namespace

}  // namespace sscl
