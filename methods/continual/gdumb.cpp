#include "methods/continual/gdumb.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include <numeric>

#include "core/random.h"
#include "methods/common/model_copy.h"

namespace sscl {

namespace {
constexpr int64_t kGdumbOfferChunk = 1024;  // images fetched per offer
}  // namespace

uint64_t gdumb_init_seed(uint64_t run_seed, int task) { return stream_seed(run_seed, "gdumb.init", task); }

Gdumb::Gdumb(const ReplayOptions& options)
    : options_(options), memory_(options.buffer_size, ReplayPolicy::kClassBalanced) {
  traits_.fresh_optimizer_each_task = true;  // training restarts at every task
  traits_.accepts_labels_mid_task = false;   // the memory takes a task's labeled set at its start
  // The memory is filled from the labeled set (the same on every rank) in a
  // seeded order, the restart is seeded, and the draws are sharded.
  traits_.distributed = true;
}

void Gdumb::before_task(const RunState& state) {
  const int task = state.task;
  // The greedy sampler sees every labeled image of the task once, in a seeded random order.
  const auto set = data().labeled_set(task);
  const int64_t n = set.ids.numel();
  Rng rng = this->rng("gdumb.offer_order", task);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  rng.shuffle(order);
  const auto perm = torch::tensor(order, torch::kLong);
  const auto ids = set.ids.to(torch::kCPU, torch::kLong).index_select(0, perm);
  const auto labels = set.labels.to(torch::kCPU, torch::kLong).index_select(0, perm);
  for (int64_t start = 0; start < n; start += kGdumbOfferChunk) {
    const int64_t len = std::min(kGdumbOfferChunk, n - start);
    ReplaySamples offer;
    offer.ids = ids.narrow(0, start, len);
    offer.images = data().raw_images(offer.ids);
    offer.labels = labels.narrow(0, start, len);
    offer.tasks = torch::full({len}, task, torch::kLong);
    memory_.add(offer, rng);
  }
  // Retrain from scratch: the model's own tensors get a fresh initialisation
  // (the trainer then builds a fresh optimizer over them).
  copy_parameters_and_buffers(model(),
                              seeded_fresh_classifier(model(), context(), gdumb_init_seed(context().seed, task)));
}

LossTerms Gdumb::step(const TrainBatch& batch, const RunState& state) {
  const int64_t n = options_.minibatch_size > 0 ? options_.minibatch_size : context().batch_size;
  Rng rng = this->rng("gdumb.draw", batch.task, state.iter);
  // Distributed: this rank's slice of the draw, weighted (methods/common/replay.h).
  const auto memory = draw_replay_batch(memory_, n, data(), View::kWeak, rng, context().device, &world());
  if (memory.size() == 0)  // nothing remembered yet, or a slice of a draw smaller than the world
    return {{"sup", zero_term()}};
  const auto logits = train_logits(model()->forward(memory.images), memory.tasks);
  return {{"sup", memory.weight * torch::nn::functional::cross_entropy(logits, memory.labels)}};
}

SSCL_REGISTER_METHOD("gdumb", Gdumb, MemoryOptions{},
                     "GDumb: a class-balanced memory, and a model retrained from scratch on it at every task");

}  // namespace sscl
