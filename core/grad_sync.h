// Gradient averaging of a distributed run (DDP's Reducer, in our own code: its
// C++ class needs a LibTorch header Debian does not ship). Parameters are grouped
// into buckets of about train.dist_bucket_mb in reverse order (the order backward
// reaches them); a hook after each parameter's gradient accumulation marks it
// ready, and a bucket whose parameters are all ready starts its all-reduce while
// backward goes on. finish() starts what is left (parameters no loss reached),
// waits, and writes the averages back.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

#include "core/world.h"

namespace sscl {

class GradSync {
 public:
  GradSync(World& world, std::vector<at::Tensor> params, double bucket_mb);
  ~GradSync();
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  // Before backward: the hooks start buckets from now on.
  void arm();
  // After backward: every gradient is the mean over the ranks. Returns the
  // milliseconds spent waiting for the reductions (communication not hidden).
  double finish();

  size_t num_buckets() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace sscl
