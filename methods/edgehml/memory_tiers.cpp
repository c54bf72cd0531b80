#include "methods/edgehml/memory_tiers.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/error.h"

namespace sscl {

double edgehml_unsup_weight(int64_t iter, int64_t warmup_iters, int64_t ramp_iters, double lambda_u) {
  if (iter < warmup_iters) return 0.0;
  if (ramp_iters <= 0 || iter >= warmup_iters + ramp_iters) return lambda_u;
  const double progress = static_cast<double>(iter - warmup_iters) / static_cast<double>(ramp_iters);
  return lambda_u * 0.5 * (1.0 - std::cos(M_PI * progress));
}

std::vector<double> edgehml_class_weights(const std::vector<int64_t>& offline_counts,
                                          const std::vector<double>& class_losses, int64_t offline_size) {
  check<Error>(offline_counts.size() == class_losses.size(), "edgehml: one loss per class expected");
  const double loss_sum = std::accumulate(class_losses.begin(), class_losses.end(), 0.0);
  std::vector<double> weights(offline_counts.size());
  for (size_t c = 0; c < weights.size(); ++c) {
    const double rarity =
        static_cast<double>(offline_size) / static_cast<double>(std::max<int64_t>(offline_counts[c], 1));
    weights[c] = loss_sum > 0 ? rarity * class_losses[c] / loss_sum : rarity;
  }
  return weights;
}

std::vector<int64_t> weighted_draw_without_replacement(const std::vector<double>& weights, int64_t k, Rng& rng) {
  // Key log(u) / w: the k largest keys are a draw without replacement with
  // probabilities proportional to w (Efraimidis and Spirakis, 2006).
  std::vector<std::pair<double, int64_t>> keys;
  for (size_t i = 0; i < weights.size(); ++i) {
    const double u = rng.uniform();  // drawn for every item, so the draw does not depend on the zeros
    if (weights[i] > 0) keys.emplace_back(std::log(1.0 - u) / weights[i], static_cast<int64_t>(i));
  }
  const auto n = static_cast<int64_t>(std::min<size_t>(keys.size(), static_cast<size_t>(std::max<int64_t>(k, 0))));
  std::partial_sort(keys.begin(), keys.begin() + n, keys.end(), std::greater<>());
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(keys[static_cast<size_t>(i)].second);
  return out;
}

std::vector<int64_t> online_task_shares(int64_t capacity, const std::vector<int64_t>& available) {
  const auto tasks = static_cast<int64_t>(available.size());
  std::vector<int64_t> shares(available.size(), 0);
  if (tasks == 0 || capacity <= 0) return shares;
  // Even split, then whatever a task cannot use goes to the others, earliest first.
  int64_t left = capacity;
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t even = capacity / tasks + (t < capacity % tasks ? 1 : 0);
    shares[static_cast<size_t>(t)] = std::min(even, available[static_cast<size_t>(t)]);
    left -= shares[static_cast<size_t>(t)];
  }
  for (int64_t t = 0; t < tasks && left > 0; ++t) {
    const int64_t more = std::min(left, available[static_cast<size_t>(t)] - shares[static_cast<size_t>(t)]);
    shares[static_cast<size_t>(t)] += more;
    left -= more;
  }
  return shares;
}

OfflineTier::OfflineTier(int64_t capacity, OfflineStorage storage, const std::filesystem::path& file)
    : index_(capacity, ReplayPolicy::kReservoir, ReplayFields{0, false, true}),
      store_(std::make_unique<OfflineStore>(storage, file)) {}

int64_t OfflineTier::add(const at::Tensor& ids, const at::Tensor& raw_images, const at::Tensor& pseudo_labels, int task,
                         Rng& rng) {
  const int64_t n = ids.size(0);
  if (n == 0) return 0;
  const auto host_ids = ids.to(torch::kCPU, torch::kLong).contiguous();
  const auto images = raw_images.to(torch::kCPU, torch::kByte).contiguous();
  if (image_shape_.empty()) image_shape_ = images.sizes().slice(1).vec();
  ReplaySamples offer;
  offer.ids = host_ids;
  offer.labels = pseudo_labels.to(torch::kCPU, torch::kLong);
  offer.tasks = torch::full({n}, task, torch::kLong);
  offer.images = torch::empty({n, 0}, torch::kByte);
  std::vector<int64_t> evicted;
  const int64_t stored = index_.add(offer, rng, &evicted);
  for (const int64_t id : evicted) store_->erase(id);
  // Rows still indexed after the offer are the ones stored (a row stored and then
  // replaced by a later row of the same offer is gone again).
  const auto* id = host_ids.data_ptr<int64_t>();
  const auto row_bytes = static_cast<size_t>(images.numel() / n);
  for (int64_t row = 0; row < n; ++row)
    if (index_.contains(id[row]) && !store_->contains(id[row]))
      store_->put(id[row], images.data_ptr<uint8_t>() + static_cast<size_t>(row) * row_bytes, row_bytes);
  return stored;
}

at::Tensor OfflineTier::read_images(const at::Tensor& ids) {
  const auto host_ids = ids.to(torch::kCPU, torch::kLong).contiguous();
  std::vector<int64_t> shape{host_ids.size(0)};
  shape.insert(shape.end(), image_shape_.begin(), image_shape_.end());
  auto out = torch::empty(shape, torch::kByte);
  if (host_ids.size(0) == 0) return out;
  const auto row_bytes = static_cast<size_t>(out.numel() / host_ids.size(0));
  for (int64_t row = 0; row < host_ids.size(0); ++row) {
    const auto bytes = store_->get(host_ids[row].item<int64_t>());
    check<Error>(bytes.size() == row_bytes, "edgehml offline tier: record of id " +
                                                std::to_string(host_ids[row].item<int64_t>()) + " has " +
                                                std::to_string(bytes.size()) + " bytes, expected " +
                                                std::to_string(row_bytes) + " (" + store_->path().string() + ")");
    std::memcpy(out.data_ptr<uint8_t>() + static_cast<size_t>(row) * row_bytes, bytes.data(), row_bytes);
  }
  return out;
}

void OfflineTier::visit_state(StateVisitor& s) {
  s("index", index_);
  // An empty tier (e.g. during the warm-up) has no ids tensor yet.
  at::Tensor images;
  if (!s.loading()) images = size() > 0 ? read_images(index_.all().ids) : torch::empty({0}, torch::kByte);
  s("images", images);
  if (!s.loading()) return;
  store_->clear();
  if (size() == 0) return;
  const auto ids = index_.all().ids.contiguous();
  check<Error>(
      images.defined() && images.dim() >= 1 && images.size(0) == ids.size(0) && images.scalar_type() == torch::kByte,
      "edgehml offline tier: the checkpoint's images do not match its index");
  image_shape_ = images.sizes().slice(1).vec();
  const auto rows = images.contiguous();
  const auto row_bytes = static_cast<size_t>(rows.numel() / ids.size(0));
  for (int64_t row = 0; row < ids.size(0); ++row)
    store_->put(ids[row].item<int64_t>(), rows.data_ptr<uint8_t>() + static_cast<size_t>(row) * row_bytes, row_bytes);
}

void OfflineTier::clear() {
  index_.clear();
  store_->clear();
}

}  // namespace sscl
