#include "core/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

namespace sscl {
namespace {

// R (after task i, on task j):
//   after T1: 90
//   after T2: 70 80
//   after T3: 60 75 85
AccuracyMatrix example() {
  AccuracyMatrix r(3);
  r.set(0, 0, 90);
  r.set(1, 0, 70);
  r.set(1, 1, 80);
  r.set(2, 0, 60);
  r.set(2, 1, 75);
  r.set(2, 2, 85);
  return r;
}

TEST(Metrics, FinalAverageAccuracy) {
  EXPECT_DOUBLE_EQ(example().average_accuracy(), (60.0 + 75 + 85) / 3);
  EXPECT_DOUBLE_EQ(example().average_accuracy(1), 75.0);
}

TEST(Metrics, MeanAverageAccuracyIsTheMeanOfRowAverages) {
  EXPECT_DOUBLE_EQ(example().mean_average_accuracy(), (90.0 + 75.0 + 220.0 / 3) / 3);
}

TEST(Metrics, ForgettingUsesTheBestEarlierAccuracy) {
  // task 1: max(90, 70) - 60 = 30; task 2: 80 - 75 = 5.
  EXPECT_DOUBLE_EQ(example().forgetting(), 17.5);
  // After T2 only task 1 counts: 90 - 70.
  EXPECT_DOUBLE_EQ(example().forgetting(1), 20.0);
}

TEST(Metrics, BackwardTransferComparesWithJustAfterTraining) {
  EXPECT_DOUBLE_EQ(example().backward_transfer(), ((60.0 - 90) + (75.0 - 80)) / 2);
}

TEST(Metrics, ForgettingCanBeNegativeNeverClampedAndBwtPositive) {
  AccuracyMatrix r(2);
  r.set(0, 0, 50);
  r.set(1, 0, 70);
  r.set(1, 1, 80);
  EXPECT_DOUBLE_EQ(r.forgetting(), -20.0);
  EXPECT_DOUBLE_EQ(r.backward_transfer(), 20.0);
}

TEST(Metrics, SingleTaskHasNoForgetting) {
  AccuracyMatrix r(1);
  r.set(0, 0, 42);
  EXPECT_TRUE(std::isnan(r.forgetting()));
  EXPECT_TRUE(std::isnan(r.backward_transfer()));
  EXPECT_DOUBLE_EQ(r.average_accuracy(), 42);
}

TEST(Metrics, MissingEntryIsAnError) {
  AccuracyMatrix r(2);
  r.set(0, 0, 50);
  r.set(1, 1, 80);
  EXPECT_FALSE(r.has(1, 0));
  EXPECT_THROW(r.average_accuracy(), std::logic_error);
  EXPECT_DOUBLE_EQ(r.average_accuracy(0), 50);
}

}  // namespace
}  // namespace sscl
