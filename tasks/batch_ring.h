// The loader's hand-off to the trainer: one long-lived thread builds the batches
// of the coming iterations into a bounded ring, `depth` ahead of the trainer. The
// trainer takes a prepared batch under a mutex and wakes the loader only when the
// ring has drained to half its depth, so neither side wakes the other once per
// batch (a thread started per batch cost more than building a small batch).
//
// A batch is a function of (task, iteration) alone, so which thread built it does
// not change it: a batch the ring did not foresee (a jump, another task) is built
// on the caller's thread and the ring goes on from the iteration after it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "core/batch.h"

namespace sscl {

class BatchRing {
 public:
  using Build = std::function<TrainBatch(int task, int64_t iter)>;

  // depth >= 1: batches prepared ahead of the one taken.
  BatchRing(Build build, int depth);
  ~BatchRing();
  BatchRing(const BatchRing&) = delete;
  BatchRing& operator=(const BatchRing&) = delete;

  // The batch of (task, iter); rethrows what building it threw.
  TrainBatch take(int task, int64_t iter);
  // Drops every prepared batch and waits for the one being built: the data the
  // batches are drawn from is about to change. The next take builds afresh.
  void flush();

  // Batches taken from the ring and batches built on the caller's thread.
  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }

 private:
  struct Prepared {
    int64_t iter = 0;
    TrainBatch batch;
    std::exception_ptr error;
  };
  void loop();
  void retarget(int task, int64_t next_iter);  // under mutex_

  Build build_;
  size_t depth_, low_water_;
  std::mutex mutex_;
  std::condition_variable loader_cv_, taker_cv_;
  std::deque<Prepared> ready_;  // consecutive iterations of task_, oldest first
  int task_ = -1;               // -1: nothing to prepare
  int64_t next_ = 0;            // the iteration the loader builds next
  uint64_t generation_ = 0;     // bumped when the target changes: a batch of an older one is dropped
  bool building_ = false, loader_waiting_ = false, taker_waiting_ = false, stop_ = false;
  int64_t hits_ = 0, misses_ = 0;
  std::thread thread_;  // last: starts when everything above exists
};

}  // namespace sscl
