// Glue between a ReplayBuffer and a training iteration: the offer built from a
// labeled batch (the stored images are the raw ones, fetched by id, not the
// augmented views) and a replay draw turned into augmented float images on the
// training device.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/batch.h"
#include "core/options.h"
#include "core/task_data.h"
#include "core/world.h"
#include "methods/common/replay_buffer.h"

namespace sscl {

// The options every replay method shares (mammoth's names).
struct ReplayOptions {
  int64_t buffer_size = 200;
  int64_t minibatch_size = 0;  // replay images per iteration; 0: data.batch_size
  static void declare(OptionSpec<ReplayOptions>& o);
};
// The same keys for the methods that train on their memory (A-GEM's reference
// gradient, GDumb, iCaRL): buffer_size >= 1.
struct MemoryOptions : ReplayOptions {
  static void declare(OptionSpec<MemoryOptions>& o);
};

// DER's logit matching: the mean squared error between the logits of replayed
// images and the stored ones (mammoth's F.mse_loss, no task mask).
at::Tensor der_logit_loss(const at::Tensor& replay_logits, const at::Tensor& stored_logits);

// The buffer's figures for results.json: bytes held, capacity and entries.
std::vector<std::pair<std::string, double>> replay_stats(const ReplayBuffer& buffer);

struct ReplayBatch {
  at::Tensor images;  // float [N, C, H, W] on the device
  at::Tensor labels;  // int64 [N] on the device
  at::Tensor tasks;   // int64 [N] on the device
  at::Tensor logits;  // float [N, K] on the device when stored
  at::Tensor slots;   // int64 [N] on the CPU
  // A rank's slice of a distributed draw: world size * rows here / rows drawn.
  // A mean over these rows times `weight`, averaged over the ranks as gradients
  // are, is the mean over the whole draw, even when the slices differ in size.
  double weight = 1;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

// The labeled batch as an offer: raw images by id, labels, the task id of every
// row, and `logits` (detached) when given.
ReplaySamples labeled_offer(const LabeledBatch& batch, int task, const TaskData& data, const at::Tensor& logits = {});
// The same for the whole global batch of a distributed run: every rank's ids,
// labels and logits gathered in rank order (the batch itself on one process).
ReplaySamples global_labeled_offer(World& world, const LabeledBatch& batch, int task, const TaskData& data,
                                   const at::Tensor& logits = {});

// Entries as images through `view`, on `device`; the augmentation is seeded by `seed`.
// With `world` (a distributed run), only this rank's rows of the entries, each
// augmented as on one process.
ReplayBatch to_replay_batch(const ReplaySamples& samples, const TaskData& data, View view, uint64_t seed,
                            const c10::Device& device, const World* world = nullptr);

// min(n, size) entries drawn uniformly and prepared as above; empty when the buffer is.
ReplayBatch draw_replay_batch(const ReplayBuffer& buffer, int64_t n, const TaskData& data, View view, Rng& rng,
                              const c10::Device& device, const World* world = nullptr);

}  // namespace sscl
