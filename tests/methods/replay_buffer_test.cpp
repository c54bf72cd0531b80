// The replay buffer's policies: reservoir sampling is uniform over everything
// offered (a chi-square test with a fixed seed), the class-balanced policy evens
// classes out as GDumb's greedy sampler does, and bytes are what is allocated.
#include "methods/common/replay_buffer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>
#include <sstream>

#include "methods/common/replay.h"
#include "tests/core/fake_run.h"

namespace sscl {
namespace {

// n samples of 1x1x1 images whose pixel, label and id are first + i.
ReplaySamples stream(int64_t first, int64_t n, int64_t task = 0) {
  ReplaySamples s;
  s.ids = torch::arange(first, first + n, torch::kLong);
  s.labels = s.ids.clone();
  s.tasks = torch::full({n}, task, torch::kLong);
  s.images = s.ids.to(torch::kByte).view({n, 1, 1, 1});
  return s;
}

ReplaySamples labeled(const std::vector<int64_t>& labels) {
  ReplaySamples s = stream(0, static_cast<int64_t>(labels.size()));
  s.labels = torch::tensor(labels, torch::kLong);
  return s;
}

TEST(ReplayBuffer, ReservoirKeepsEveryOfferedSampleWithEqualProbability) {
  constexpr int64_t kCapacity = 5, kStream = 50, kTrials = 1000;
  std::vector<int64_t> kept(kStream, 0);
  Rng rng(1234);
  for (int64_t trial = 0; trial < kTrials; ++trial) {
    ReplayBuffer buffer(kCapacity, ReplayPolicy::kReservoir);
    // Offered in batches of 10, as a training loop would.
    for (int64_t first = 0; first < kStream; first += 10) buffer.add(stream(first, 10), rng);
    ASSERT_EQ(buffer.size(), kCapacity);
    ASSERT_EQ(buffer.seen(), kStream);
    const auto ids = buffer.all().ids;
    for (int64_t i = 0; i < ids.size(0); ++i) ++kept[ids[i].item<int64_t>()];
  }
  // Each sample is expected kTrials * capacity / stream = 100 times. Chi-square
  // with 49 degrees of freedom: 85.35 is the 0.999 quantile.
  const double expected = static_cast<double>(kTrials * kCapacity) / kStream;
  double chi2 = 0;
  for (int64_t k : kept) chi2 += (k - expected) * (k - expected) / expected;
  EXPECT_LT(chi2, 85.35);
  // The first and the last tenth are kept equally often (a biased policy that
  // favours early or late samples fails here).
  int64_t early = 0, late = 0;
  for (int64_t i = 0; i < 5; ++i) early += kept[i], late += kept[kStream - 1 - i];
  EXPECT_NEAR(early, late, 0.25 * expected * 5);
}

TEST(ReplayBuffer, FillsInOrderUntilFullThenNeverExceedsCapacity) {
  ReplayBuffer buffer(4, ReplayPolicy::kReservoir);
  Rng rng(0);
  EXPECT_EQ(buffer.add(stream(0, 3), rng), 3);
  EXPECT_TRUE(torch::equal(buffer.all().ids, torch::tensor({0, 1, 2}, torch::kLong)));
  buffer.add(stream(3, 100), rng);
  EXPECT_EQ(buffer.size(), 4);
  EXPECT_EQ(buffer.seen(), 103);
  // Every field of a slot belongs to the same sample.
  const auto all = buffer.all();
  EXPECT_TRUE(torch::equal(all.labels, all.ids));
  EXPECT_TRUE(torch::equal(all.images.view({-1}).to(torch::kLong), all.ids));
}

TEST(ReplayBuffer, ClassBalancedReplacesFromTheLargestClassAndDropsOverrepresentedOnes) {
  ReplayBuffer buffer(10, ReplayPolicy::kClassBalanced);
  Rng rng(3);
  buffer.add(labeled(std::vector<int64_t>(10, 0)), rng);
  EXPECT_EQ(buffer.class_counts(), (std::vector<int64_t>{10}));
  buffer.add(labeled({1, 1, 1, 1, 1}), rng);  // each replaces a class-0 entry
  EXPECT_EQ(buffer.class_counts(), (std::vector<int64_t>{5, 5}));
  EXPECT_EQ(buffer.add(labeled({0, 0, 1}), rng), 0);  // classes already largest: dropped
  EXPECT_EQ(buffer.class_counts(), (std::vector<int64_t>{5, 5}));
  buffer.add(labeled({2, 2, 2, 2, 2, 2}), rng);
  const auto counts = buffer.class_counts();
  ASSERT_EQ(counts.size(), 3u);
  EXPECT_EQ(counts[0] + counts[1] + counts[2], 10);
  EXPECT_LE(*std::max_element(counts.begin(), counts.end()) - *std::min_element(counts.begin(), counts.end()), 1);
}

TEST(ReplayBuffer, ClassBalancedCountsAClassOfEachTaskApartForDomains) {
  // Domain-IL: task 1 brings classes 0 and 1 again. Balancing by label alone would
  // drop all of task 1 (its classes are already the largest); by (label, task)
  // task 1's classes enter, each taking entries from the largest pairs.
  ReplayBuffer buffer(8, ReplayPolicy::kClassBalanced);
  Rng rng(3);
  buffer.add(labeled({0, 0, 0, 0, 1, 1, 1, 1}), rng);
  auto second = labeled({0, 1, 0, 1, 0, 1, 0, 1});
  second.ids = second.ids + 100;
  second.tasks = torch::ones({8}, torch::kLong);
  const int64_t stored = buffer.add(second, rng);
  EXPECT_GE(stored, 3);
  const auto all = buffer.all();
  EXPECT_EQ(all.tasks.eq(1).sum().item<int64_t>(), stored);
  // Every (label, task) pair has 2 entries: the memory is balanced over the domains.
  for (int64_t label : {0, 1})
    for (int64_t task : {0, 1})
      EXPECT_EQ((all.labels.eq(label) & all.tasks.eq(task)).sum().item<int64_t>(), 2) << label << ", " << task;
}

TEST(ReplayBuffer, BytesAreTheFullAllocationOfEveryStoredField) {
  ReplayBuffer buffer(7, ReplayPolicy::kReservoir, ReplayFields{3, true});
  EXPECT_EQ(buffer.bytes(), 0);  // nothing allocated before the first offer
  auto s = stream(0, 2);
  s.images = torch::zeros({2, 4, 4, 3}, torch::kByte);
  s.logits = torch::zeros({2, 3});
  s.pseudo_labels = torch::zeros({2}, torch::kLong);
  Rng rng(0);
  buffer.add(s, rng);
  // Per slot: 48 image bytes, 3 int64 (label, task, id), 3 float logits, 1 int64 pseudo-label.
  EXPECT_EQ(buffer.bytes(), 7 * (48 + 24 + 12 + 8));
}

TEST(ReplayBuffer, MissingFieldsAreAnErrorNamingThem) {
  ReplayBuffer buffer(4, ReplayPolicy::kReservoir, ReplayFields{5, false});
  Rng rng(0);
  try {
    buffer.add(stream(0, 2), rng);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("logits"), std::string::npos);
  }
  EXPECT_THROW(parse_replay_policy("fifo"), ConfigError);
}

TEST(ReplayBuffer, SampleDrawsDistinctEntries) {
  ReplayBuffer buffer(20, ReplayPolicy::kReservoir);
  Rng rng(5);
  buffer.add(stream(0, 20), rng);
  const auto draw = buffer.sample(8, rng);
  std::set<int64_t> slots;
  for (int64_t i = 0; i < 8; ++i) slots.insert(draw.slots[i].item<int64_t>());
  EXPECT_EQ(slots.size(), 8u);
  EXPECT_TRUE(torch::equal(draw.ids, draw.slots));  // stream(0, 20) filled slot i with id i
  EXPECT_EQ(buffer.sample(50, rng).size(), 20);     // at most what it holds
}

TEST(ReplayBuffer, SaveAndLoadRestoreEveryField) {
  ReplayBuffer buffer(6, ReplayPolicy::kReservoir, ReplayFields{2, false});
  auto s = stream(10, 9);
  s.logits = torch::rand({9, 2});
  Rng rng(8);
  buffer.add(s, rng);
  ReplayBuffer restored(6, ReplayPolicy::kReservoir, ReplayFields{2, false});
  StateVisitor::from_bytes(restored, StateVisitor::to_bytes(buffer), torch::kCPU);
  EXPECT_EQ(restored.size(), 6);
  EXPECT_EQ(restored.seen(), 9);
  EXPECT_TRUE(torch::equal(restored.all().ids, buffer.all().ids));
  EXPECT_TRUE(torch::equal(restored.all().logits, buffer.all().logits));
}

TEST(Replay, OfferStoresTheRawImagesByIdAndDrawsComeBackAsViews) {
  testing::FakeTaskData data;
  LabeledBatch batch;
  batch.indices = torch::tensor({2, 3}, torch::kLong);
  batch.labels = torch::tensor({2, 3}, torch::kLong);
  batch.images = torch::zeros({2, 1, 4, 4});  // augmented views are not what is stored
  const auto offer = labeled_offer(batch, 1, data, torch::ones({2, 4}));
  EXPECT_EQ(offer.images.sizes(), (std::vector<int64_t>{2, 4, 4, 1}));
  EXPECT_EQ(offer.images.sum().item<int64_t>(), 2 * 255);
  EXPECT_TRUE(torch::equal(offer.tasks, torch::tensor({1, 1}, torch::kLong)));
  ReplayBuffer buffer(4, ReplayPolicy::kReservoir, ReplayFields{4, false});
  Rng rng(0);
  buffer.add(offer, rng);
  const auto replay = draw_replay_batch(buffer, 2, data, View::kWeak, rng, torch::kCPU);
  ASSERT_EQ(replay.size(), 2);
  // FakeTaskData's images of class c are 1 at pixel c.
  for (int64_t i = 0; i < 2; ++i)
    EXPECT_EQ(replay.images[i].view({-1})[replay.labels[i].item<int64_t>()].item<float>(), 1.0f);
  EXPECT_TRUE(torch::equal(replay.logits, torch::ones({2, 4})));
}

}  // namespace
}  // namespace sscl
