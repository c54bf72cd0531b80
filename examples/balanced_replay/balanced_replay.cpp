#include "balanced_replay.h"

#include <torch/torch.h>

namespace example {

void BalancedReplayOptions::declare(sscl::OptionSpec<BalancedReplayOptions>& o) {
  o.key("buffer_size", &BalancedReplayOptions::buffer_size, "memory capacity (images)").above(0);
  o.key("replay_batch", &BalancedReplayOptions::replay_batch, "images replayed per iteration").min(0);
  o.key("weight", &BalancedReplayOptions::weight, "weight of the replay term").min(0);
}

BalancedReplay::BalancedReplay(BalancedReplayOptions options)
    : options_(options), buffer_(options.buffer_size, sscl::ReplayPolicy::kClassBalanced) {
  traits_.composes_with_semi = true;  // its current batch goes through forward_current()
}

sscl::LossTerms BalancedReplay::step(const sscl::TrainBatch& batch, const sscl::RunState& state) {
  auto rng = this->rng("balanced_replay.step", batch.task, state.iter);
  sscl::LossTerms terms = forward_current(batch, state).terms;
  const auto draw =
      sscl::draw_replay_batch(buffer_, options_.replay_batch, data(), sscl::View::kWeak, rng, context().device);
  auto replay = torch::zeros({}, torch::TensorOptions().device(context().device));
  if (draw.size() > 0) {
    const auto logits = train_logits(model()->forward(draw.images), draw.tasks);  // each row: its own task's classes
    replay = options_.weight * torch::nn::functional::cross_entropy(logits, draw.labels);
  }
  terms.emplace_back("replay", replay);
  replayed_ += draw.size();
  buffer_.add(sscl::labeled_offer(batch.labeled, batch.task, data()), rng);  // after the draw
  return terms;
}

std::vector<std::pair<std::string, double>> BalancedReplay::stats() const {
  auto out = sscl::replay_stats(buffer_);
  out.emplace_back("replayed_images", static_cast<double>(replayed_));
  return out;
}

SSCL_REGISTER_METHOD("balanced_replay", BalancedReplay, BalancedReplayOptions{},
                     "class-balanced replay (the example plugin): ER with GDumb's class-balanced memory");

}  // namespace example
