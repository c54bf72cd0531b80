// ER, experience replay (Chaudhry et al. 2019, "On Tiny Episodic Memories in
// Continual Learning"): a reservoir buffer of the labeled stream, replayed next to
// every current batch. Loss = CE(current batch) + CE(replay draw of minibatch_size),
// two means kept as separate terms ("sup", "replay") so that a semi-supervised
// term can later replace or join "sup"; mammoth's ER takes one mean over the
// concatenation instead, i.e. half of each term when both batches are the same
// size. The base of DER, ER-ACE and EdgeHML: its buffer, draws and offers.
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
  // `store_logits`: the buffer keeps each image's logits over every class (DER).
  explicit Er(ReplayOptions options, bool store_logits = false);

  std::string name() const override { return "er"; }
  void attach(MethodContext context) override;
  LossTerms step(const TrainBatch& batch, const RunState& state) override;

  std::vector<std::pair<std::string, double>> stats() const override { return replay_stats(buffer_); }
  void visit_state(StateVisitor& s) override { s("buffer", buffer_); }

  const ReplayBuffer& buffer() const { return buffer_; }

 protected:
  // The replay batch size: minibatch_size, or the labeled batch size when 0.
  int64_t minibatch_size() const;
  // minibatch_size() entries of the buffer as weak views on the device; empty
  // while the buffer is.
  ReplayBatch replay_draw(Rng& rng) const;
  // Cross-entropy of the model on a draw, each row masked to its own task's
  // classes when the task mask is on.
  at::Tensor replay_cross_entropy(const ReplayBatch& draw);
  // Offers the labeled batch to the reservoir. Called at the end of step(), after
  // the replay draw: a sample never replays in the iteration it arrives (mammoth
  // adds it after the optimizer step; the stored fields do not depend on the
  // update, so the order is the same), and a checkpoint written between
  // iterations already holds it.
  void offer(const TrainBatch& batch, Rng& rng, const at::Tensor& logits = {});

  ReplayOptions options_;
  bool store_logits_;
  ReplayBuffer buffer_;
};

}  // namespace sscl
