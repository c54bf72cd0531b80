#include "tasks/batch_ring.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "core/error.h"

namespace sscl {
namespace {

// A batch that names what built it: labels = [task, iter, version].
TrainBatch make(int task, int64_t iter, int64_t version) {
  TrainBatch batch;
  batch.task = task;
  batch.labeled.labels = torch::tensor({int64_t(task), iter, version});
  return batch;
}

void expect_batch(const TrainBatch& batch, int task, int64_t iter, int64_t version) {
  ASSERT_TRUE(batch.labeled.labels.defined());
  EXPECT_EQ(batch.task, task);
  EXPECT_EQ(batch.labeled.labels[0].item<int64_t>(), task);
  EXPECT_EQ(batch.labeled.labels[1].item<int64_t>(), iter);
  EXPECT_EQ(batch.labeled.labels[2].item<int64_t>(), version);
}

TEST(BatchRing, SequentialTakesReturnEachIterationsBatchFromTheRing) {
  BatchRing ring([](int task, int64_t iter) { return make(task, iter, 0); }, 4);
  for (int64_t i = 0; i < 50; ++i) expect_batch(ring.take(2, i), 2, i, 0);
  // Only the first take is unforeseen; every later one was built ahead.
  EXPECT_EQ(ring.misses(), 1);
  EXPECT_EQ(ring.hits(), 49);
}

TEST(BatchRing, AJumpOrAnotherTaskIsBuiltOnTheCallerAndTheRingFollows) {
  BatchRing ring([](int task, int64_t iter) { return make(task, iter, 0); }, 3);
  expect_batch(ring.take(0, 0), 0, 0, 0);
  expect_batch(ring.take(0, 1), 0, 1, 0);
  expect_batch(ring.take(0, 10), 0, 10, 0);  // a jump (resume)
  expect_batch(ring.take(0, 11), 0, 11, 0);
  expect_batch(ring.take(1, 0), 1, 0, 0);  // the next task
  expect_batch(ring.take(1, 1), 1, 1, 0);
  EXPECT_EQ(ring.misses(), 3);
  EXPECT_EQ(ring.hits(), 3);
}

TEST(BatchRing, AnErrorReachesTheTakerOfThatBatchOnly) {
  BatchRing ring(
      [](int task, int64_t iter) {
        if (iter == 3) throw Error("no image 3");
        return make(task, iter, 0);
      },
      2);
  for (int64_t i = 0; i < 3; ++i) expect_batch(ring.take(0, i), 0, i, 0);
  try {
    ring.take(0, 3);
    FAIL() << "take(0, 3) did not throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "no image 3");
  }
  expect_batch(ring.take(0, 4), 0, 4, 0);
}

TEST(BatchRing, FlushDropsBatchesBuiltFromTheOldData) {
  std::atomic<int64_t> version{0};
  BatchRing ring([&](int task, int64_t iter) { return make(task, iter, version.load()); }, 4);
  expect_batch(ring.take(0, 0), 0, 0, 0);
  // Let the loader fill the ring from version 0, then change the data.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ring.flush();
  version = 1;
  for (int64_t i = 1; i < 10; ++i) expect_batch(ring.take(0, i), 0, i, 1);
}

TEST(BatchRing, DestroysWhileTheLoaderIsBuilding) {
  std::atomic<int> started{0};
  int started_before_destruction = 0;
  {
    BatchRing ring(
        [&](int task, int64_t iter) {
          ++started;
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          return make(task, iter, 0);
        },
        8);
    ring.take(0, 0);
    while (started < 2) std::this_thread::yield();  // the loader is mid-build
    started_before_destruction = started;
  }
  // The destructor waits for the batch in progress, not for a full ring.
  EXPECT_LE(started.load(), started_before_destruction + 1);
}

TEST(BatchRing, RejectsDepthBelowOne) {
  EXPECT_THROW(BatchRing([](int t, int64_t i) { return make(t, i, 0); }, 0), Error);
}

}  // namespace
}  // namespace sscl
