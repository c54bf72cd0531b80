#include "tasks/batch_ring.h"

#include <utility>

#include "core/error.h"

namespace sscl {

namespace {

size_t checked_depth(int depth) {
  check<Error>(depth >= 1, "BatchRing: depth must be at least 1");
  return static_cast<size_t>(depth);
}

}  // namespace

BatchRing::BatchRing(Build build, int depth)
    : build_(std::move(build)), depth_(checked_depth(depth)), low_water_(depth_ / 2), thread_([this] { loop(); }) {}

BatchRing::~BatchRing() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  loader_cv_.notify_one();
  thread_.join();
}

void BatchRing::retarget(int task, int64_t next_iter) {
  ++generation_;
  ready_.clear();
  task_ = task;
  next_ = next_iter;
  if (loader_waiting_ && task >= 0) loader_cv_.notify_one();
}

TrainBatch BatchRing::take(int task, int64_t iter) {
  std::unique_lock lock(mutex_);
  if (task == task_) {
    // The ring ran dry: wait when the loader is building this batch or about to.
    if (ready_.empty() && (iter == next_ || (building_ && iter == next_ - 1))) {
      taker_waiting_ = true;
      taker_cv_.wait(lock, [&] { return !ready_.empty() || stop_; });
      taker_waiting_ = false;
    }
    if (!ready_.empty() && ready_.front().iter == iter) {
      Prepared prepared = std::move(ready_.front());
      ready_.pop_front();
      ++hits_;
      if (loader_waiting_ && ready_.size() <= low_water_) loader_cv_.notify_one();
      lock.unlock();
      if (prepared.error) std::rethrow_exception(prepared.error);
      return std::move(prepared.batch);
    }
  }
  ++misses_;
  retarget(task, iter + 1);
  lock.unlock();
  return build_(task, iter);
}

void BatchRing::flush() {
  std::unique_lock lock(mutex_);
  retarget(-1, 0);
  taker_waiting_ = true;
  taker_cv_.wait(lock, [&] { return !building_; });
  taker_waiting_ = false;
}

void BatchRing::loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    loader_waiting_ = true;
    loader_cv_.wait(lock, [&] { return stop_ || (task_ >= 0 && ready_.size() <= low_water_); });
    loader_waiting_ = false;
    if (stop_) return;
    while (!stop_ && task_ >= 0 && ready_.size() < depth_) {
      const int task = task_;
      const int64_t iter = next_++;
      const uint64_t generation = generation_;
      building_ = true;
      lock.unlock();
      Prepared prepared;
      prepared.iter = iter;
      try {
        prepared.batch = build_(task, iter);
      } catch (...) {
        prepared.error = std::current_exception();
      }
      lock.lock();
      building_ = false;
      if (generation == generation_) ready_.push_back(std::move(prepared));
      if (taker_waiting_) taker_cv_.notify_one();
    }
  }
}

}  // namespace sscl
