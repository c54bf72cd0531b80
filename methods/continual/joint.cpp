#include "methods/continual/joint.h"

#include <torch/nn/functional/loss.h>
#include <torch/torch.h>

#include <algorithm>
#include <unordered_set>

#include "core/error.h"
#include "methods/common/replay.h"

namespace sscl {

std::vector<int64_t> distinct_uniform(int64_t n, int64_t k, Rng& rng) {
  k = std::min(k, n);
  std::vector<int64_t> out;
  std::unordered_set<int64_t> chosen;
  for (int64_t j = n - k; j < n; ++j) {
    const auto t = static_cast<int64_t>(rng.below(static_cast<uint64_t>(j) + 1));
    const int64_t pick = chosen.count(t) ? j : t;
    chosen.insert(pick);
    out.push_back(pick);
  }
  return out;
}

void Joint::before_task(const RunState& state) {
  const int64_t task = state.task;
  if (std::find(gathered_.begin(), gathered_.end(), task) != gathered_.end()) return;
  const LabeledSet set = data().labeled_set(state.task);
  ReplaySamples add;
  add.ids = set.ids.to(torch::kLong).cpu();
  add.images = data().raw_images(add.ids);
  add.labels = set.labels.to(torch::kLong).cpu();
  add.tasks = torch::full({add.ids.size(0)}, task, torch::kLong);
  if (!store_.labels.defined()) {
    store_ = add;
  } else {
    store_.ids = torch::cat({store_.ids, add.ids});
    store_.images = torch::cat({store_.images, add.images});
    store_.labels = torch::cat({store_.labels, add.labels});
    store_.tasks = torch::cat({store_.tasks, add.tasks});
  }
  gathered_.push_back(task);
}

ReplaySamples Joint::draw(int task, int64_t iter) const {
  check<TrainingError>(store_.size() > 0, "joint: no labeled images gathered before task " + std::to_string(task));
  Rng rng = this->rng("joint.draw", task, iter);
  const auto rows = torch::tensor(distinct_uniform(store_.size(), context().batch_size, rng), torch::kLong);
  ReplaySamples out;
  out.images = store_.images.index_select(0, rows);
  out.labels = store_.labels.index_select(0, rows);
  out.tasks = store_.tasks.index_select(0, rows);
  out.ids = store_.ids.index_select(0, rows);
  out.slots = rows;
  return out;
}

LossTerms Joint::step(const TrainBatch& batch, const RunState& state) {
  check<Error>(context().batch_size > 0, "joint: the context's batch_size must be > 0");
  const auto samples = draw(batch.task, state.iter);
  const uint64_t view_seed = stream_seed(context().seed, "joint.view", batch.task, state.iter);
  // Every rank draws the same rows; each trains its slice of them, weighted so
  // that the averaged gradient is the whole draw's.
  const auto images = to_replay_batch(samples, data(), View::kWeak, view_seed, context().device, &world());
  if (images.size() == 0) return {{"sup", zero_term()}};
  // Each image trains its own task's classes when the task mask is on.
  const auto logits = train_logits(model()->forward(images.images), images.tasks);
  return {{"sup", images.weight * torch::nn::functional::cross_entropy(logits, images.labels)}};
}

int64_t Joint::bytes() const {
  int64_t total = 0;
  for (const auto* t : {&store_.images, &store_.labels, &store_.tasks, &store_.ids})
    if (t->defined()) total += static_cast<int64_t>(t->nbytes());
  return total;
}

std::vector<std::pair<std::string, double>> Joint::stats() const {
  return {{"buffer_bytes", static_cast<double>(bytes())}, {"buffer_size", static_cast<double>(store_.size())}};
}

SSCL_REGISTER_METHOD("joint", Joint, NoOptions{},
                     "Joint: trains on the labeled images of every task so far together (the upper bound)");

}  // namespace sscl
