// The mean of a figure over a run (a mask rate, a confidence) for results.json.
// The sum stays on the device, so recording costs no synchronisation; it is read
// once at the end. Checkpoints carry it, so a resumed run reports the same mean.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "core/state.h"
#include "core/world.h"

namespace sscl {

class RunningMean : public Stateful {
 public:
  // Adds every entry of `values`.
  void add(const at::Tensor& values);
  // Adds every rank's entries (`values` is this rank's): one all-reduce of their
  // sum and count, so that the mean is the same on every rank; add(values) on one process.
  void add(const at::Tensor& values, World& world);
  double mean() const;  // 0 before anything was added

  void visit_state(StateVisitor& s) override {
    s("sum", sum_, Place::kDevice);
    s("count", count_);
  }

 private:
  at::Tensor sum_;  // double scalar on the device of the values
  int64_t count_ = 0;
};

}  // namespace sscl
