// ER, experience replay (Chaudhry et al. 2019, "On Tiny Episodic Memories in
// Continual Learning"): a reservoir buffer of the labeled stream, replayed next to
// every current batch. Loss = CE(current batch) + CE(replay draw of minibatch_size),
// two means kept as separate terms ("sup", "replay") so that a semi-supervised
// term can later replace or join "sup"; mammoth's ER takes one mean over the
// concatenation instead, i.e. half of each term when both batches are the same
// size. ER-ACE (er_ace.h) and DER (der.h) reuse its buffer and bookkeeping.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/method.h"
#include "core/random.h"
#include "methods/common/replay.h"
#include "methods/common/replay_buffer.h"

namespace sscl {

class Er : public Method {
 public:
  explicit Er(ReplayOptions options);

  std::string name() const override { return "er"; }
  bool composes_with_semi() const override { return true; }
  LossTerms step(const TrainBatch& batch, const RunState& state) override;

  std::vector<std::pair<std::string, double>> stats() const override { return replay_stats(buffer_); }
  void save_state(torch::serialize::OutputArchive& archive) const override;
  void load_state(torch::serialize::InputArchive& archive) override;

  const ReplayBuffer& buffer() const { return buffer_; }

 protected:
  // The replay batch size: minibatch_size, or the labeled batch size when 0.
  int64_t minibatch_size() const;
  // Offers the labeled batch to the reservoir. Called at the end of step(), after
  // the replay draw: a sample never replays in the iteration it arrives (mammoth
  // adds it after the optimizer step; the stored fields do not depend on the
  // update, so the order is the same), and a checkpoint written by an after_iter
  // hook already holds it.
  void offer(const TrainBatch& batch, Rng& rng, const at::Tensor& logits = {});

  ReplayOptions options_;
  ReplayBuffer buffer_;
};

}  // namespace sscl
