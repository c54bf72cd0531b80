#include "methods/continual/gdumb.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include <numeric>

#include "core/error.h"
#include "core/random.h"
#include "methods/common/replay.h"
#include "methods/common/scoped_torch_seed.h"

namespace sscl {

namespace {
constexpr int64_t kOfferChunk = 1024;  // images fetched per offer
}  // namespace

uint64_t gdumb_init_seed(uint64_t run_seed, int task) { return stream_seed(run_seed, "gdumb.init", task); }

Classifier seeded_fresh_classifier(const Classifier& like, const MethodContext& context, uint64_t seed) {
  check<Error>(static_cast<bool>(context.make_backbone), "gdumb: the method context has no backbone factory");
  Classifier fresh{nullptr};
  {
    ScopedTorchSeed seeded(seed);  // backbones are built, hence initialised, on the CPU
    auto backbone = context.make_backbone();
    fresh = like->multi_head() ? Classifier(backbone, like->num_classes(), context.task_classes)
                               : Classifier(backbone, like->num_classes());
  }
  fresh->to(context.device);
  return fresh;
}

void copy_parameters_and_buffers(Classifier& into, const Classifier& from) {
  torch::NoGradGuard no_grad;
  const auto params = from->named_parameters(true);
  for (auto& item : into->named_parameters(true)) item.value().copy_(params[item.key()]);
  const auto buffers = from->named_buffers(true);
  for (auto& item : into->named_buffers(true)) item.value().copy_(buffers[item.key()]);
}

Gdumb::Gdumb(GdumbOptions options) : options_(options), memory_(options.buffer_size, ReplayPolicy::kClassBalanced) {}

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
  for (int64_t start = 0; start < n; start += kOfferChunk) {
    const int64_t len = std::min(kOfferChunk, n - start);
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
  const auto memory = draw_replay_batch(memory_, n, data(), View::kWeak, rng, context().device);
  if (memory.size() == 0)  // a task without labeled images and nothing remembered
    return {{"sup", torch::zeros({}, torch::TensorOptions().device(context().device))}};
  const auto logits = train_logits(model()->forward(memory.images), memory.tasks);
  return {{"sup", torch::nn::functional::cross_entropy(logits, memory.labels)}};
}

std::vector<std::pair<std::string, double>> Gdumb::stats() const { return replay_stats(memory_); }

void Gdumb::save_state(torch::serialize::OutputArchive& archive) const { memory_.save(archive, "gdumb.memory."); }

void Gdumb::load_state(torch::serialize::InputArchive& archive) { memory_.load(archive, "gdumb.memory."); }

namespace {

std::unique_ptr<Method> make_gdumb(const ConfigSection& s) {
  const GdumbOptions o = read_replay_options(s, 1);
  return std::make_unique<Gdumb>(o);
}

SSCL_REGISTER(MethodRegistry, "gdumb", make_gdumb);

}  // namespace
}  // namespace sscl
