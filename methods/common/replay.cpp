#include "methods/common/replay.h"

#include <torch/torch.h>

namespace sscl {

ReplayOptions read_replay_options(const ConfigSection& s, int64_t min_buffer_size) {
  ReplayOptions o;
  o.buffer_size = s.get_or("buffer_size", o.buffer_size);
  o.minibatch_size = s.get_or("minibatch_size", o.minibatch_size);
  if (o.buffer_size < min_buffer_size) s.fail("buffer_size", "must be >= " + std::to_string(min_buffer_size));
  if (o.minibatch_size < 0) s.fail("minibatch_size", "must be >= 0 (0: data.batch_size)");
  return o;
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

ReplayBatch to_replay_batch(const ReplaySamples& samples, const TaskData& data, View view, uint64_t seed,
                            const c10::Device& device) {
  ReplayBatch out;
  if (samples.size() == 0) return out;
  out.images = data.views(samples.images, view, seed).to(device);
  out.labels = samples.labels.to(device);
  out.tasks = samples.tasks.to(device);
  if (samples.logits.defined()) out.logits = samples.logits.to(device);
  out.slots = samples.slots;
  return out;
}

ReplayBatch draw_replay_batch(const ReplayBuffer& buffer, int64_t n, const TaskData& data, View view, Rng& rng,
                              const c10::Device& device) {
  if (buffer.empty() || n <= 0) return {};
  const auto samples = buffer.sample(n, rng);
  return to_replay_batch(samples, data, view, rng.next(), device);
}

}  // namespace sscl
