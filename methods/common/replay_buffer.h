// The replay memory of rehearsal methods (ER, DER, DER++, ER-ACE, A-GEM, iCaRL,
// GDumb, and the tiers of EdgeHML). It stores the images themselves (uint8, as
// the dataset holds them, so the bytes it reports are what a device would keep)
// with whatever a method needs of each: label, logits, task id, pseudo-label and
// the image's id in the training set.
//
// Two insertion policies:
//   - reservoir (Vitter's algorithm R, as ER and DER use it): after n offers each
//     offered sample is in the buffer with probability capacity / n;
//   - class_balanced (GDumb's greedy sampler): while not full every sample is
//     kept; when full, a sample of a class with fewer entries than the largest
//     class replaces a random entry of the largest class, otherwise it is dropped.
//     A "class" is a (label, task) pair: the label alone in class-IL (a label has
//     one task), a class per domain in domain-IL, so later domains still get in.
// Randomness comes from the Rng the caller passes, so a method can seed it by
// (seed, task, iteration) and stay reproducible without storing generator state.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/random.h"
#include "core/state.h"

namespace sscl {

enum class ReplayPolicy { kReservoir, kClassBalanced };
// "reservoir" | "class_balanced"; throws ConfigError otherwise.
ReplayPolicy parse_replay_policy(const std::string& name);

// Which optional fields a buffer stores; images, labels, task ids and image ids
// are always stored. An index holding no image bytes is a buffer offered images
// of shape [N, 0] (EdgeHML's offline tier keeps the bytes on disk).
struct ReplayFields {
  int64_t logits_dim = 0;  // > 0: store logits of this width (DER, DER++)
  bool pseudo_labels = false;
  // At most one entry per image id: an offer of a stored id is skipped (and not
  // counted as seen), and an evicted id leaves the index, so it can come back.
  bool unique_ids = false;
};

// One offer or one draw: rows of the same samples. Optional fields are
// undefined tensors when not stored.
struct ReplaySamples {
  at::Tensor images;         // uint8 [N, H, W, C]
  at::Tensor labels;         // int64 [N]
  at::Tensor tasks;          // int64 [N]
  at::Tensor ids;            // int64 [N], training-set ids
  at::Tensor logits;         // float [N, logits_dim]
  at::Tensor pseudo_labels;  // int64 [N]
  at::Tensor slots;          // int64 [N], buffer slots (in a draw)
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

class ReplayBuffer : public Stateful {
 public:
  ReplayBuffer(int64_t capacity, ReplayPolicy policy, ReplayFields fields = {});

  // Offers every row of `samples` in order. Rows may be stored, replace an
  // entry or be dropped according to the policy. Returns how many were stored;
  // `evicted_ids`, when given, receives the ids of the entries replaced.
  int64_t add(const ReplaySamples& samples, Rng& rng, std::vector<int64_t>* evicted_ids = nullptr);

  // min(n, size()) distinct entries drawn uniformly (CPU tensors).
  ReplaySamples sample(int64_t n, Rng& rng) const;
  // Every stored entry in slot order (for iCaRL, GDumb, A-GEM's full-memory use).
  ReplaySamples all() const;
  // The given slots.
  ReplaySamples at_slots(const at::Tensor& slots) const;

  // Removes every entry (the allocation is kept); `seen` restarts too.
  void clear();
  // Removes the given slots; the last entries move into the holes, so slots
  // taken before the call are stale after it. `seen` is kept.
  void remove_slots(std::vector<int64_t> slots);
  // Whether an entry has this image id (ids are indexed with unique_ids only).
  bool contains(int64_t id) const;

  int64_t size() const { return size_; }
  int64_t capacity() const { return capacity_; }
  int64_t seen() const { return seen_; }  // samples offered so far
  bool empty() const { return size_ == 0; }
  ReplayPolicy policy() const { return policy_; }
  // Entries per label (index = class id), for tests and logs.
  std::vector<int64_t> class_counts() const;

  // Bytes held by the stored fields at full capacity (allocated once, at the
  // first offer), i.e. the memory the buffer really takes.
  int64_t bytes() const;

  // The stored fields and counters (core/state.h).
  void visit_state(StateVisitor& s) override;

 private:
  void allocate(const ReplaySamples& like);
  void write(int64_t slot, const ReplaySamples& samples, int64_t row);
  int64_t class_balanced_slot(int64_t label, int64_t task, Rng& rng);

  int64_t capacity_;
  ReplayPolicy policy_;
  ReplayFields fields_;
  int64_t size_ = 0;
  int64_t seen_ = 0;
  void index_slot(int64_t slot, int64_t id);
  void rebuild_index();

  ReplaySamples store_;                              // [capacity, ...] once allocated
  std::vector<int64_t> labels_;                      // host copy of store_.labels for the class-balanced policy
  std::vector<int64_t> ids_;                         // host copy of store_.ids
  std::unordered_map<int64_t, int64_t> slot_of_id_;  // with unique_ids
};

}  // namespace sscl
