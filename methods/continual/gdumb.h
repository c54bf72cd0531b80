// GDumb (Prabhu et al., ECCV 2020): a greedy class-balanced memory of the labeled
// images, and a model retrained from scratch on that memory alone for every
// task. The loader's batches are not used for training at all. Options:
// MemoryOptions (buffer_size >= 1).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/method.h"
#include "methods/common/replay.h"
#include "methods/common/replay_buffer.h"

namespace sscl {

// The seed of the re-initialisation before `task` (seeded_fresh_classifier,
// methods/common/model_copy.h).
uint64_t gdumb_init_seed(uint64_t run_seed, int task);

class Gdumb : public Method {
 public:
  explicit Gdumb(const ReplayOptions& options);

  std::string name() const override { return "gdumb"; }
  void before_task(const RunState& state) override;
  LossTerms step(const TrainBatch& batch, const RunState& state) override;

  std::vector<std::pair<std::string, double>> stats() const override { return replay_stats(memory_); }
  void visit_state(StateVisitor& s) override { s("memory", memory_); }

  const ReplayBuffer& memory() const { return memory_; }

 private:
  ReplayOptions options_;
  ReplayBuffer memory_;
};

}  // namespace sscl
