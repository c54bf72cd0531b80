#include "methods/common/replay_buffer.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <utility>

#include "core/error.h"

namespace sscl {

ReplayPolicy parse_replay_policy(const std::string& name) {
  if (name == "reservoir") return ReplayPolicy::kReservoir;
  if (name == "class_balanced") return ReplayPolicy::kClassBalanced;
  throw ConfigError("replay policy '" + name + "': expected reservoir or class_balanced");
}

ReplayBuffer::ReplayBuffer(int64_t capacity, ReplayPolicy policy, ReplayFields fields)
    : capacity_(capacity), policy_(policy), fields_(fields) {
  check<ConfigError>(capacity >= 0, "replay buffer capacity must be >= 0");
}

void ReplayBuffer::allocate(const ReplaySamples& like) {
  auto images_shape = like.images.sizes().vec();
  images_shape[0] = capacity_;
  store_.images = torch::zeros(images_shape, torch::kByte);
  store_.labels = torch::full({capacity_}, -1, torch::kLong);
  store_.tasks = torch::full({capacity_}, -1, torch::kLong);
  store_.ids = torch::full({capacity_}, -1, torch::kLong);
  if (fields_.logits_dim > 0) store_.logits = torch::zeros({capacity_, fields_.logits_dim}, torch::kFloat);
  if (fields_.pseudo_labels) store_.pseudo_labels = torch::full({capacity_}, -1, torch::kLong);
  labels_.assign(static_cast<size_t>(capacity_), -1);
  ids_.assign(static_cast<size_t>(capacity_), -1);
}

void ReplayBuffer::index_slot(int64_t slot, int64_t id) {
  auto& old = ids_[static_cast<size_t>(slot)];
  if (fields_.unique_ids) {
    if (old >= 0) slot_of_id_.erase(old);
    slot_of_id_[id] = slot;
  }
  old = id;
}

void ReplayBuffer::rebuild_index() {
  slot_of_id_.clear();
  if (!fields_.unique_ids) return;
  for (int64_t slot = 0; slot < size_; ++slot) slot_of_id_[ids_[static_cast<size_t>(slot)]] = slot;
}

bool ReplayBuffer::contains(int64_t id) const {
  if (fields_.unique_ids) return slot_of_id_.count(id) > 0;
  return std::find(ids_.begin(), ids_.begin() + size_, id) != ids_.begin() + size_;
}

void ReplayBuffer::write(int64_t slot, const ReplaySamples& s, int64_t row) {
  store_.images[slot].copy_(s.images[row]);
  store_.labels[slot] = s.labels[row];
  store_.tasks[slot] = s.tasks[row];
  store_.ids[slot] = s.ids[row];
  if (fields_.logits_dim > 0) store_.logits[slot].copy_(s.logits[row]);
  if (fields_.pseudo_labels) store_.pseudo_labels[slot] = s.pseudo_labels[row];
  labels_[static_cast<size_t>(slot)] = s.labels[row].item<int64_t>();
  index_slot(slot, s.ids[row].item<int64_t>());
}

int64_t ReplayBuffer::class_balanced_slot(int64_t label, int64_t task, Rng& rng) {
  const auto tasks = store_.tasks.accessor<int64_t, 1>();
  std::map<std::pair<int64_t, int64_t>, int64_t> counts;  // (label, task) -> entries, in order
  for (int64_t slot = 0; slot < size_; ++slot) {
    const int64_t l = labels_[static_cast<size_t>(slot)];
    if (l >= 0) ++counts[{l, tasks[slot]}];
  }
  int64_t largest = 0;
  for (const auto& [group, n] : counts) largest = std::max(largest, n);
  const auto own = counts.find({label, task});
  if (own != counts.end() && own->second >= largest) return -1;  // already among the largest: drop
  std::vector<std::pair<int64_t, int64_t>> largest_groups;       // chosen at random among ties
  for (const auto& [group, n] : counts)
    if (n == largest) largest_groups.push_back(group);
  const auto victim = largest_groups[rng.below(largest_groups.size())];
  std::vector<int64_t> victims;
  for (int64_t slot = 0; slot < size_; ++slot)
    if (labels_[static_cast<size_t>(slot)] == victim.first && tasks[slot] == victim.second) victims.push_back(slot);
  return victims[rng.below(victims.size())];
}

int64_t ReplayBuffer::add(const ReplaySamples& s, Rng& rng, std::vector<int64_t>* evicted_ids) {
  const int64_t n = s.size();
  if (n == 0 || capacity_ == 0) {
    seen_ += n;
    return 0;
  }
  check<Error>(s.images.defined() && s.images.size(0) == n && s.tasks.defined() && s.ids.defined(),
               "replay buffer: images, tasks and ids must have one row per label");
  check<Error>(fields_.logits_dim == 0 || (s.logits.defined() && s.logits.size(1) == fields_.logits_dim),
               "replay buffer: logits of width " + std::to_string(fields_.logits_dim) + " required");
  check<Error>(!fields_.pseudo_labels || s.pseudo_labels.defined(), "replay buffer: pseudo-labels required");
  if (!store_.labels.defined()) allocate(s);
  const ReplaySamples host{s.images.cpu(),
                           s.labels.cpu(),
                           s.tasks.cpu(),
                           s.ids.cpu(),
                           s.logits.defined() ? s.logits.detach().to(torch::kCPU, torch::kFloat) : at::Tensor(),
                           s.pseudo_labels.defined() ? s.pseudo_labels.cpu() : at::Tensor(),
                           {}};
  int64_t stored = 0;
  const auto host_ids = host.ids.to(torch::kLong).contiguous();
  const auto* ids = host_ids.data_ptr<int64_t>();
  for (int64_t row = 0; row < n; ++row) {
    if (fields_.unique_ids && slot_of_id_.count(ids[row]) > 0) continue;
    int64_t slot = -1;
    if (size_ < capacity_) {
      slot = size_++;
    } else if (policy_ == ReplayPolicy::kReservoir) {
      const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(seen_) + 1));
      if (j < capacity_) slot = j;
    } else {
      slot = class_balanced_slot(host.labels[row].item<int64_t>(), host.tasks[row].item<int64_t>(), rng);
    }
    ++seen_;
    if (slot < 0) continue;
    const int64_t previous = ids_[static_cast<size_t>(slot)];  // -1 for a slot never filled
    if (evicted_ids && previous >= 0) evicted_ids->push_back(previous);
    write(slot, host, row);
    ++stored;
  }
  return stored;
}

ReplaySamples ReplayBuffer::at_slots(const at::Tensor& slots) const {
  ReplaySamples out;
  if (!store_.labels.defined()) return out;
  const auto idx = slots.to(torch::kLong).cpu();
  out.images = store_.images.index_select(0, idx);
  out.labels = store_.labels.index_select(0, idx);
  out.tasks = store_.tasks.index_select(0, idx);
  out.ids = store_.ids.index_select(0, idx);
  if (store_.logits.defined()) out.logits = store_.logits.index_select(0, idx);
  if (store_.pseudo_labels.defined()) out.pseudo_labels = store_.pseudo_labels.index_select(0, idx);
  out.slots = idx;
  return out;
}

ReplaySamples ReplayBuffer::sample(int64_t n, Rng& rng) const {
  const auto slots = rng.sample_positions(static_cast<size_t>(size_), static_cast<size_t>(std::max<int64_t>(n, 0)));
  return at_slots(torch::tensor(slots, torch::kLong));
}

ReplaySamples ReplayBuffer::all() const { return at_slots(torch::arange(size_, torch::kLong)); }

void ReplayBuffer::clear() {
  size_ = 0;
  seen_ = 0;
  std::fill(labels_.begin(), labels_.end(), -1);
  std::fill(ids_.begin(), ids_.end(), -1);
  slot_of_id_.clear();
}

void ReplayBuffer::remove_slots(std::vector<int64_t> slots) {
  // Highest first, so that the entry moved into a hole is never one still to remove.
  std::sort(slots.begin(), slots.end(), std::greater<>());
  slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
  for (const int64_t slot : slots) {
    check<Error>(slot >= 0 && slot < size_, "replay buffer: slot " + std::to_string(slot) + " out of range");
    const int64_t last = size_ - 1;
    if (slot != last) {
      for (auto* t :
           {&store_.images, &store_.labels, &store_.tasks, &store_.ids, &store_.logits, &store_.pseudo_labels})
        if (t->defined()) (*t)[slot].copy_((*t)[last]);
      labels_[static_cast<size_t>(slot)] = labels_[static_cast<size_t>(last)];
      ids_[static_cast<size_t>(slot)] = ids_[static_cast<size_t>(last)];
    }
    labels_[static_cast<size_t>(last)] = -1;
    ids_[static_cast<size_t>(last)] = -1;
    store_.ids[last] = -1;
    --size_;
  }
  rebuild_index();
}

std::vector<int64_t> ReplayBuffer::class_counts() const {
  std::vector<int64_t> counts;
  for (int64_t slot = 0; slot < size_; ++slot) {
    const int64_t l = labels_[static_cast<size_t>(slot)];
    if (l >= static_cast<int64_t>(counts.size())) counts.resize(static_cast<size_t>(l) + 1, 0);
    ++counts[static_cast<size_t>(l)];
  }
  return counts;
}

int64_t ReplayBuffer::bytes() const {
  int64_t total = 0;
  for (const auto* t :
       {&store_.images, &store_.labels, &store_.tasks, &store_.ids, &store_.logits, &store_.pseudo_labels})
    if (t->defined()) total += static_cast<int64_t>(t->nbytes());
  return total;
}

void ReplayBuffer::visit_state(StateVisitor& s) {
  s("size", size_);
  s("seen", seen_);
  s("images", store_.images);
  s("labels", store_.labels);
  s("tasks", store_.tasks);
  s("ids", store_.ids);
  s("logits", store_.logits);
  s("pseudo_labels", store_.pseudo_labels);
  if (!s.loading()) return;
  // The host copies and the id index follow the stored fields.
  labels_.clear();
  ids_.clear();
  slot_of_id_.clear();
  if (!store_.labels.defined()) return;
  check<Error>(store_.labels.size(0) == capacity_, "replay buffer: checkpoint capacity differs from the config's");
  const auto labels = store_.labels.contiguous();
  labels_.assign(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + capacity_);
  const auto ids = store_.ids.contiguous();
  ids_.assign(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + capacity_);
  rebuild_index();
}

}  // namespace sscl
