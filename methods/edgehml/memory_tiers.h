// EdgeHML's hierarchical memory pool (Wang et al., "EdgeHML"), below the method:
//   - labeled tier: a ReplayBuffer with one entry per image id (method's own);
//   - offline tier (here): confident pseudo-labeled images of the current task,
//     reservoir-sampled by id; the index lives in RAM, the image bytes in an
//     OfflineStore (disk by default);
//   - online tier: a ReplayBuffer refilled at each task end by the class-weighted
//     draw below, for unlabeled replay.
// The pure pieces (schedule, class weights, weighted draw, per-task shares) are
// free functions so that tests can check them on hand-made numbers.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/random.h"
#include "core/state.h"
#include "methods/common/replay_buffer.h"
#include "methods/edgehml/offline_store.h"

namespace sscl {

// The progressive schedule's unlabeled weight at iteration `iter` of a task:
// 0 while iter < warmup_iters, then a cosine ramp from 0 to lambda_u over
// ramp_iters iterations (none when 0), then lambda_u.
double edgehml_unsup_weight(int64_t iter, int64_t warmup_iters, int64_t ramp_iters, double lambda_u);

// The task-end class weights: for class c with offline count n_c and mean
// labeled-tier loss l_c, w_c = (offline_size / max(n_c, 1)) * l_c / sum(l).
// Rare classes and classes the model still gets wrong are drawn more. All
// losses zero: every class weighs offline_size / max(n_c, 1).
std::vector<double> edgehml_class_weights(const std::vector<int64_t>& offline_counts,
                                          const std::vector<double>& class_losses, int64_t offline_size);

// min(k, #positive weights) distinct indices, drawn without replacement with
// probability proportional to `weights` (Efraimidis-Spirakis keys u^(1/w), the
// sequential draw's distribution); zero weights are never drawn.
std::vector<int64_t> weighted_draw_without_replacement(const std::vector<double>& weights, int64_t k, Rng& rng);

// How many online-tier entries each task keeps: `capacity` split evenly over the
// tasks (the earliest get the remainder), each capped by what it has; the
// newest task's count may then take what the others leave.
std::vector<int64_t> online_task_shares(int64_t capacity, const std::vector<int64_t>& available);

class OfflineTier : public Stateful {
 public:
  OfflineTier(int64_t capacity, OfflineStorage storage, const std::filesystem::path& file);

  // Offers confident images of `task`: ids [N], raw images uint8 [N, H, W, C],
  // pseudo-labels [N] (CPU). Reservoir over ids; an evicted id leaves the store's
  // index too. Returns how many were stored.
  int64_t add(const at::Tensor& ids, const at::Tensor& raw_images, const at::Tensor& pseudo_labels, int task, Rng& rng);
  // Every entry's index fields (labels = the pseudo-labels), images not read.
  ReplaySamples entries() const { return index_.all(); }
  // The index fields of the given slots (positions in entries()).
  ReplaySamples index_at(const at::Tensor& slots) const { return index_.at_slots(slots); }
  // The images of `ids` read back from the store: uint8 [N, H, W, C].
  at::Tensor read_images(const at::Tensor& ids);
  // Empties the tier and its store (a new task begins).
  void clear();

  // The index and the images (read back from the store, which waits for its
  // queued writes) for checkpoints; loading replaces both, rewriting the store.
  void visit_state(StateVisitor& s) override;

  int64_t size() const { return index_.size(); }
  int64_t capacity() const { return index_.capacity(); }
  int64_t seen() const { return index_.seen(); }
  std::vector<int64_t> class_counts() const { return index_.class_counts(); }
  int64_t bytes_on_disk() const { return store_->bytes_on_disk(); }
  // The index and the store's RAM (queued writes, or every payload in RAM mode).
  int64_t bytes_in_ram() const { return index_.bytes() + store_->bytes_in_ram(); }
  OfflineStore& store() { return *store_; }

 private:
  ReplayBuffer index_;  // images of zero bytes: ids, pseudo-labels, tasks
  std::unique_ptr<OfflineStore> store_;
  std::vector<int64_t> image_shape_;  // [H, W, C] of the stored images
};

}  // namespace sscl
