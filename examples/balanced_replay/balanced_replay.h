// Class-balanced replay, the example of docs/extending.md: ER whose memory keeps
// the classes balanced (the greedy sampler of GDumb; close to the class-balancing
// reservoir of Chrysakis & Moens, ICML 2020) instead of a reservoir sample of the
// stream. Loss = CE(current batch) + weight * CE(a draw of the memory).
#pragma once

#include "core/method.h"
#include "methods/common/replay.h"

namespace example {

struct BalancedReplayOptions {
  int64_t buffer_size = 200;  // images kept
  int64_t replay_batch = 8;   // images replayed per iteration
  double weight = 1.0;        // of the replay term
  static void declare(sscl::OptionSpec<BalancedReplayOptions>& o);
};

class BalancedReplay : public sscl::Method {
 public:
  explicit BalancedReplay(BalancedReplayOptions options);
  std::string name() const override { return "balanced_replay"; }
  sscl::LossTerms step(const sscl::TrainBatch& batch, const sscl::RunState& state) override;
  std::vector<std::pair<std::string, double>> stats() const override;
  // What a resumed run needs: the memory and the count of replayed images.
  void visit_state(sscl::StateVisitor& s) override {
    s("buffer", buffer_);
    s("replayed", replayed_);
  }

 private:
  BalancedReplayOptions options_;
  sscl::ReplayBuffer buffer_;
  int64_t replayed_ = 0;
};

}  // namespace example
