#include "methods/common/replay.h"

#include <torch/torch.h>

namespace sscl {

void ReplayOptions::declare(OptionSpec<ReplayOptions>& o) {
  o.key("buffer_size", &ReplayOptions::buffer_size, "replay memory capacity (images)").min(0);
  o.key("minibatch_size", &ReplayOptions::minibatch_size, "replay images per iteration; 0: data.batch_size").min(0);
}

void MemoryOptions::declare(OptionSpec<MemoryOptions>& o) {
  o.key<int64_t>("buffer_size", &MemoryOptions::buffer_size, "memory capacity (images)").min(1);
  o.key<int64_t>("minibatch_size", &MemoryOptions::minibatch_size, "memory images per iteration; 0: data.batch_size")
      .min(0);
}

at::Tensor der_logit_loss(const at::Tensor& replay_logits, const at::Tensor& stored_logits) {
  return torch::mse_loss(replay_logits, stored_logits.to(replay_logits.dtype()));
}

std::vector<std::pair<std::string, double>> replay_stats(const ReplayBuffer& buffer) {
  return {{"buffer_bytes", static_cast<double>(buffer.bytes())},
          {"buffer_size", static_cast<double>(buffer.capacity())},
          {"buffer_entries", static_cast<double>(buffer.size())}};
}

ReplaySamples labeled_offer(const LabeledBatch& batch, int task, const TaskData& data, const at::Tensor& logits) {
  ReplaySamples offer;
  offer.ids = batch.indices.cpu();
  offer.images = data.raw_images(offer.ids);
  offer.labels = batch.labels.cpu();
  offer.tasks = torch::full({offer.ids.size(0)}, task, torch::kLong);
  if (logits.defined()) offer.logits = logits.detach().to(torch::kCPU, torch::kFloat);
  return offer;
}

ReplaySamples global_labeled_offer(World& world, const LabeledBatch& batch, int task, const TaskData& data,
                                   const at::Tensor& logits) {
  if (!world.distributed()) return labeled_offer(batch, task, data, logits);
  LabeledBatch global;
  global.indices = world.gather_rows(batch.indices.cpu());
  global.labels = world.gather_rows(batch.labels.cpu());
  const auto all_logits = logits.defined() ? world.gather_rows(logits.detach().to(torch::kCPU, torch::kFloat)) : logits;
  return labeled_offer(global, task, data, all_logits);
}

ReplayBatch to_replay_batch(const ReplaySamples& samples, const TaskData& data, View view, uint64_t seed,
                            const c10::Device& device, const World* world) {
  ReplayBatch out;
  if (samples.size() == 0) return out;
  auto [begin, end] = world ? world->shard(samples.size()) : std::pair<int64_t, int64_t>{0, samples.size()};
  const auto rows = [&, begin = begin, end = end](const at::Tensor& t) {
    return t.defined() ? t.narrow(0, begin, end - begin) : t;
  };
  out.images = data.views(rows(samples.images), view, seed, begin).to(device);
  out.labels = rows(samples.labels).to(device);
  out.tasks = rows(samples.tasks).to(device);
  if (samples.logits.defined()) out.logits = rows(samples.logits).to(device);
  out.slots = rows(samples.slots);
  if (world && world->distributed()) out.weight = static_cast<double>(world->size() * (end - begin)) / samples.size();
  return out;
}

ReplayBatch draw_replay_batch(const ReplayBuffer& buffer, int64_t n, const TaskData& data, View view, Rng& rng,
                              const c10::Device& device, const World* world) {
  if (buffer.empty() || n <= 0) return {};
  const auto samples = buffer.sample(n, rng);
  return to_replay_batch(samples, data, view, rng.next(), device, world);
}

}  // namespace sscl
