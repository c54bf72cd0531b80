// Joint training, the upper bound of continual learning: at task t the model
// trains on the labeled images of tasks 0..t together. before_task adds the new
// task's labeled images (raw, as the dataset stores them) to a store; every
// iteration draws data.batch_size distinct images uniformly from the whole store
// instead of the loader's current-task batch. In the fully supervised setting
// (data.labels_per_class = -1) the store ends up holding the whole training set
// (60000 images, 47 MB, for Fashion-MNIST).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/method.h"
#include "core/random.h"
#include "methods/common/replay_buffer.h"

namespace sscl {

// k distinct integers of [0, n) chosen uniformly (Floyd's algorithm: O(k) draws
// and memory, whatever n); min(k, n) of them when k > n.
std::vector<int64_t> distinct_uniform(int64_t n, int64_t k, Rng& rng);

class Joint : public Method {
 public:
  explicit Joint(const NoOptions& = {}) {
    traits_.accepts_labels_mid_task = false;  // a task's labeled images are gathered at its start
    traits_.distributed = true;  // the store is the labeled sets, the same on every rank; draws are sharded
  }

  std::string name() const override { return "joint"; }

  // Adds the labeled images of state.task to the store (once per task, so a
  // resumed run does not add them twice).
  void before_task(const RunState& state) override;
  LossTerms step(const TrainBatch& batch, const RunState& state) override;

  std::vector<std::pair<std::string, double>> stats() const override;
  void visit_state(StateVisitor& s) override {
    s("gathered", gathered_);
    s("images", store_.images);
    s("labels", store_.labels);
    s("tasks", store_.tasks);
    s("ids", store_.ids);
  }

  // The rows of the store drawn at (task, iter): images, labels, tasks, ids.
  ReplaySamples draw(int task, int64_t iter) const;
  // Every labeled image gathered so far.
  const ReplaySamples& store() const { return store_; }
  int64_t bytes() const;

 private:
  ReplaySamples store_;
  std::vector<int64_t> gathered_;  // tasks whose images are in the store
};

}  // namespace sscl
