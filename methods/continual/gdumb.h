// GDumb (Prabhu et al., ECCV 2020): a greedy class-balanced memory of the labeled
// images, and a model retrained from scratch on that memory alone for every
// task. The loader's batches are not used for training at all.
#pragma once

#include <cstdint>

#include "core/method.h"
#include "methods/common/replay.h"
#include "methods/common/replay_buffer.h"

namespace sscl {

// buffer_size (> 0) and minibatch_size (0: the data batch size).
using GdumbOptions = ReplayOptions;

// The seed of the re-initialisation before `task`.
uint64_t gdumb_init_seed(uint64_t run_seed, int task);

// A classifier of the same layout as `like` (context.make_backbone, one head or
// one per task), initialised from the CPU generator seeded by `seed`; the
// generator's state is restored afterwards, so the rest of the run is unaffected.
Classifier seeded_fresh_classifier(const Classifier& like, const MethodContext& context, uint64_t seed);

// Copies every parameter and buffer of `from` into `into` (same architecture),
// keeping `into`'s tensors (the optimizer and the context hold them).
void copy_parameters_and_buffers(Classifier& into, const Classifier& from);

class Gdumb : public Method {
 public:
  explicit Gdumb(GdumbOptions options);

  std::string name() const override { return "gdumb"; }
  bool fresh_optimizer_each_task() const override { return true; }
  bool accepts_labels_mid_task() const override { return false; }
  void before_task(const RunState& state) override;
  LossTerms step(const TrainBatch& batch, const RunState& state) override;

  std::vector<std::pair<std::string, double>> stats() const override;
  void save_state(torch::serialize::OutputArchive& archive) const override;
  void load_state(torch::serialize::InputArchive& archive) override;

  const ReplayBuffer& memory() const { return memory_; }

 private:
  GdumbOptions options_;
  ReplayBuffer memory_;
};

}  // namespace sscl
