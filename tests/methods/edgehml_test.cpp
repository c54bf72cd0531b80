// EdgeHML: the memory pool's invariants under long random offer sequences, the
// progressive schedule, the task-end class weights and draw on hand-made numbers
// and pools, and a short end-to-end run through the trainer.
#include "methods/edgehml/edgehml.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/state.h"
#include "core/trainer.h"
#include "methods/edgehml/memory_tiers.h"
#include "tests/core/fake_run.h"
#include "tests/methods/method_run_fixture.h"

namespace sscl {
namespace {

// Rows of 2x2x1 images whose bytes are derived from the id (so a read-back can be checked).
at::Tensor images_of(const at::Tensor& ids) {
  return (ids.view({-1, 1, 1, 1}) * 7 + torch::arange(4).view({1, 2, 2, 1})).remainder(251).to(torch::kByte);
}

ReplaySamples offer_of(const std::vector<int64_t>& ids, int64_t task = 0) {
  ReplaySamples s;
  s.ids = torch::tensor(ids, torch::kLong);
  s.labels = s.ids.remainder(3);
  s.tasks = torch::full({s.ids.size(0)}, task, torch::kLong);
  s.images = images_of(s.ids);
  return s;
}

std::vector<int64_t> ids_of(const ReplaySamples& s) {
  const auto ids = s.ids.contiguous();
  return {ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel()};
}

TEST(EdgeHmlPool, UniqueIdReservoirKeepsItsInvariantsOverLongRandomOffers) {
  constexpr int64_t kCapacity = 16;
  ReplayBuffer buffer(kCapacity, ReplayPolicy::kReservoir, ReplayFields{0, false, true});
  Rng rng(7), ids_rng(8);
  std::set<int64_t> evicted_ever;
  bool came_back = false;
  for (int step = 0; step < 3000; ++step) {
    std::vector<int64_t> ids;
    for (int i = 0; i < 5; ++i)
      ids.push_back(static_cast<int64_t>(ids_rng.below(60)));  // repeats within and across offers
    std::vector<int64_t> evicted;
    buffer.add(offer_of(ids), rng, &evicted);
    ASSERT_LE(buffer.size(), kCapacity);
    const auto stored = ids_of(buffer.all());
    const std::set<int64_t> unique(stored.begin(), stored.end());
    ASSERT_EQ(unique.size(), stored.size()) << "duplicate id at step " << step;
    for (const int64_t id : stored) {
      ASSERT_TRUE(buffer.contains(id));
      if (evicted_ever.count(id)) came_back = true;
    }
    for (const int64_t id : evicted) {
      evicted_ever.insert(id);
      // Gone from the index unless a later row of the same offer brought it back.
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
        ASSERT_FALSE(buffer.contains(id));
      }
    }
    // Every stored image is still the one of its id.
    const auto all = buffer.all();
    ASSERT_TRUE(torch::equal(all.images, images_of(all.ids)));
  }
  EXPECT_EQ(buffer.size(), kCapacity);
  EXPECT_FALSE(evicted_ever.empty());
  EXPECT_TRUE(came_back) << "an evicted id must be able to enter again";
}

TEST(EdgeHmlPool, AnOfferOfAStoredIdIsSkippedAndNotCountedAsSeen) {
  ReplayBuffer buffer(4, ReplayPolicy::kReservoir, ReplayFields{0, false, true});
  Rng rng(1);
  EXPECT_EQ(buffer.add(offer_of({1, 2, 1, 2}), rng), 2);
  EXPECT_EQ(buffer.size(), 2);
  EXPECT_EQ(buffer.seen(), 2);
}

TEST(EdgeHmlPool, RemovingSlotsKeepsTheOtherEntriesAndTheIndex) {
  ReplayBuffer buffer(6, ReplayPolicy::kReservoir, ReplayFields{0, false, true});
  Rng rng(1);
  buffer.add(offer_of({10, 11, 12, 13, 14, 15}), rng);
  buffer.remove_slots({1, 4, 1});
  const auto left = ids_of(buffer.all());
  EXPECT_EQ(std::set<int64_t>(left.begin(), left.end()), (std::set<int64_t>{10, 12, 13, 15}));
  EXPECT_FALSE(buffer.contains(11));
  EXPECT_FALSE(buffer.contains(14));
  const auto all = buffer.all();
  EXPECT_TRUE(torch::equal(all.images, images_of(all.ids)));
  EXPECT_TRUE(torch::equal(all.labels, all.ids.remainder(3)));
  buffer.add(offer_of({11}), rng);  // a removed id can come back
  EXPECT_TRUE(buffer.contains(11));
  EXPECT_THROW(buffer.remove_slots({9}), Error);
}

class OfflineTierTest : public ::testing::TestWithParam<OfflineStorage> {};

TEST_P(OfflineTierTest, KeepsOneEntryPerIdWithinCapacityAndReadsBackTheImages) {
  const auto dir = std::filesystem::temp_directory_path() / ("sscl_offline_tier_test_" + std::to_string(::getpid()));
  {
    OfflineTier tier(12, GetParam(), dir / "tier.bin");
    Rng rng(3), ids_rng(4);
    for (int step = 0; step < 400; ++step) {
      std::vector<int64_t> ids;
      for (int i = 0; i < 6; ++i) ids.push_back(static_cast<int64_t>(ids_rng.below(40)));
      const auto t = torch::tensor(ids, torch::kLong);
      tier.add(t, images_of(t), t.remainder(2), 0, rng);
      ASSERT_LE(tier.size(), 12);
      // The store holds exactly the indexed ids: evictions left it too.
      ASSERT_EQ(tier.store().size(), static_cast<size_t>(tier.size()));
    }
    const auto entries = tier.entries();
    const auto stored = ids_of(entries);
    EXPECT_EQ(std::set<int64_t>(stored.begin(), stored.end()).size(), stored.size());
    EXPECT_TRUE(torch::equal(tier.read_images(entries.ids), images_of(entries.ids)));
    EXPECT_TRUE(torch::equal(entries.labels, entries.ids.remainder(2)));
    tier.store().flush();
    if (GetParam() == OfflineStorage::kDisk) {
      EXPECT_GT(tier.bytes_on_disk(), 0);
      EXPECT_EQ(tier.bytes_on_disk(), static_cast<int64_t>(std::filesystem::file_size(dir / "tier.bin")));
    } else {
      EXPECT_EQ(tier.bytes_on_disk(), 0);
      EXPECT_GT(tier.bytes_in_ram(), 12 * 4);
    }
    tier.clear();
    EXPECT_EQ(tier.size(), 0);
    EXPECT_EQ(tier.bytes_on_disk(), 0);
  }
  std::filesystem::remove_all(dir);
}

TEST_P(OfflineTierTest, ACheckpointRestoresTheIndexAndRewritesTheStore) {
  const auto dir = std::filesystem::temp_directory_path() / ("sscl_offline_tier_state_" + std::to_string(::getpid()));
  std::string bytes;
  std::vector<int64_t> saved_ids;
  {
    OfflineTier tier(12, GetParam(), dir / "saved.bin");
    Rng rng(5);
    const auto ids = torch::arange(100, 120, torch::kLong);
    tier.add(ids, images_of(ids), ids.remainder(2), 1, rng);
    saved_ids = ids_of(tier.entries());
    bytes = StateVisitor::to_bytes(tier);
  }
  // Another tier, whose store holds other images, takes the checkpoint's entries and images.
  OfflineTier restored(12, GetParam(), dir / "restored.bin");
  Rng rng(6);
  const auto other = torch::arange(0, 5, torch::kLong);
  restored.add(other, images_of(other), other.remainder(2), 0, rng);
  StateVisitor::from_bytes(restored, bytes, torch::kCPU);
  const auto entries = restored.entries();
  EXPECT_EQ(ids_of(entries), saved_ids);
  EXPECT_EQ(restored.store().size(), saved_ids.size());
  EXPECT_TRUE(torch::equal(restored.read_images(entries.ids), images_of(entries.ids)));
  EXPECT_TRUE(torch::equal(entries.labels, entries.ids.remainder(2)));
  EXPECT_TRUE(torch::equal(entries.tasks, torch::ones({12}, torch::kLong)));
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Storage, OfflineTierTest, ::testing::Values(OfflineStorage::kDisk, OfflineStorage::kRam));

TEST(EdgeHmlSchedule, WarmUpThenOptionalCosineRamp) {
  EXPECT_EQ(edgehml_unsup_weight(0, 200, 0, 1.0), 0.0);
  EXPECT_EQ(edgehml_unsup_weight(199, 200, 0, 1.0), 0.0);
  EXPECT_EQ(edgehml_unsup_weight(200, 200, 0, 1.0), 1.0);
  EXPECT_EQ(edgehml_unsup_weight(999, 200, 0, 2.5), 2.5);
  // Ramp of 100: 0.5 * (1 - cos(pi * (t - 200) / 100)).
  EXPECT_EQ(edgehml_unsup_weight(200, 200, 100, 1.0), 0.0);
  EXPECT_NEAR(edgehml_unsup_weight(225, 200, 100, 1.0), 0.1464466, 1e-6);
  EXPECT_NEAR(edgehml_unsup_weight(250, 200, 100, 2.0), 1.0, 1e-12);
  EXPECT_EQ(edgehml_unsup_weight(300, 200, 100, 2.0), 2.0);
  EXPECT_EQ(edgehml_unsup_weight(0, 0, 0, 1.0), 1.0);  // no warm-up
}

TEST(EdgeHmlTaskEnd, ClassWeightsFavourRareAndPoorlyLearnedClasses) {
  // |offline| 40: class 0 has 30 entries and loss 1, class 1 has 10 and loss 3.
  // w_0 = 40/30 * 1/4 = 1/3, w_1 = 40/10 * 3/4 = 3.
  const auto w = edgehml_class_weights({30, 10}, {1.0, 3.0}, 40);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NEAR(w[0], 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(w[1], 3.0, 1e-12);
  // No loss information: rarity alone; an absent class counts as 1.
  const auto rarity = edgehml_class_weights({30, 0}, {0.0, 0.0}, 30);
  EXPECT_NEAR(rarity[0], 1.0, 1e-12);
  EXPECT_NEAR(rarity[1], 30.0, 1e-12);
}

TEST(EdgeHmlTaskEnd, WeightedDrawIsWithoutReplacementAndProportional) {
  Rng rng(11);
  const auto all = weighted_draw_without_replacement({1.0, 0.0, 2.0, 5.0}, 10, rng);
  EXPECT_EQ(std::set<int64_t>(all.begin(), all.end()), (std::set<int64_t>{0, 2, 3}));  // zero weight never
  // First pick of {1, 3}: item 1 with probability 3/4.
  int ones = 0;
  constexpr int kTrials = 4000;
  for (int i = 0; i < kTrials; ++i) ones += weighted_draw_without_replacement({1.0, 3.0}, 1, rng).at(0) == 1;
  EXPECT_NEAR(static_cast<double>(ones) / kTrials, 0.75, 0.03);
  // Two of {1, 1, 2}: P(item 2 among them) = 1/2 + 2 * 1/4 * 2/3 = 5/6.
  int with_two = 0;
  for (int i = 0; i < kTrials; ++i) {
    const auto d = weighted_draw_without_replacement({1.0, 1.0, 2.0}, 2, rng);
    with_two += std::find(d.begin(), d.end(), 2) != d.end();
  }
  EXPECT_NEAR(static_cast<double>(with_two) / kTrials, 5.0 / 6.0, 0.03);
}

TEST(EdgeHmlTaskEnd, OnlineSharesSplitTheBudgetEvenlyAndPassOnWhatATaskCannotUse) {
  EXPECT_EQ(online_task_shares(90, {500}), (std::vector<int64_t>{90}));
  EXPECT_EQ(online_task_shares(90, {50, 500}), (std::vector<int64_t>{45, 45}));
  // Even 34/33/33; task 1 has 10, so 23 are passed on, earliest first.
  EXPECT_EQ(online_task_shares(100, {50, 10, 500}), (std::vector<int64_t>{50, 10, 40}));
  EXPECT_EQ(online_task_shares(100, {5, 5, 5}), (std::vector<int64_t>{5, 5, 5}));
  EXPECT_EQ(online_task_shares(0, {5, 5}), (std::vector<int64_t>{0, 0}));
}

// A method attached to the 4-class, 2-task synthetic run of the fixture.
class EdgeHmlRun : public testing::MethodRunFixture {
 protected:
  EdgeHmlRun() : MethodRunFixture(3, 5) {}
  std::unique_ptr<EdgeHml> make(const std::string& options) {
    config_ = Config::from_string("[method]\nname = \"edgehml\"\n" + options + "\n[model]\n", "edgehml_test.toml");
    auto method = MethodRegistry::get().at("edgehml")(config_.section("method"));
    auto* edge = dynamic_cast<EdgeHml*>(method.release());
    edge->attach(context_);
    return std::unique_ptr<EdgeHml>(edge);
  }
  // n offline entries of `label` with ids first..first+n-1.
  static void fill_offline(EdgeHml& m, int64_t first, int64_t n, int64_t label, int task, Rng& rng) {
    const auto ids = torch::arange(first, first + n, torch::kLong);
    m.offline_tier().add(ids, images_of(ids), torch::full({n}, label, torch::kLong), task, rng);
  }
  // Task 0 of 2 offers 30 offline entries of its first class (ids 0..29) and 10 of
  // its second (ids 1000..1009), then ends, which draws the online tier.
  void run_first_task_with_a_rare_class(EdgeHml& m, RunState& state, Rng& rng) {
    state.num_tasks = 2;
    state.task = 0;
    m.before_task(state);
    fill_offline(m, 0, 30, tasks_.classes(0)[0], 0, rng);
    fill_offline(m, 1000, 10, tasks_.classes(0)[1], 0, rng);
    m.after_task(state);
  }
};

// Equal class mass (40 each) makes the rare class (10 of 40 entries) far more
// than its share of a uniform draw (5 of 20): a weighted draw without
// replacement gives 7.9 on average (std 1.2, simulated), so one draw is below 8
// a third of the time; the mean over 20 seeds is below 7 with p < 0.001, and a
// uniform draw's mean (5, std 0.31) never reaches it.
TEST_F(EdgeHmlRun, TaskEndDrawFavoursTheRareClassOverSeeds) {
  double rare = 0;
  const int seeds = 20;
  for (int seed = 0; seed < seeds; ++seed) {
    context_.seed = static_cast<uint64_t>(seed);
    auto m = make("pool_sizes = [20, 100]");
    Rng rng(2);
    RunState state;
    run_first_task_with_a_rare_class(*m, state, rng);
    const auto online = m->online_tier().all();
    ASSERT_EQ(online.size(), 20);
    rare += static_cast<double>((online.ids >= 1000).sum().item<int64_t>());
  }
  EXPECT_GE(rare / seeds, 7.0);
}

TEST_F(EdgeHmlRun, TaskEndDrawsTheBudgetByClassWeightAndSplitsItOverTasks) {
  // S_sup 20 and an empty labeled tier: a budget of 20; no labeled losses, so
  // the weights are rarity alone: class 0 (30 entries) 40/30, class 1 (10) 4.
  auto m = make("pool_sizes = [20, 100]");
  Rng rng(2);
  RunState state;
  run_first_task_with_a_rare_class(*m, state, rng);
  EXPECT_EQ(m->offline_tier().size(), 0);  // read, then emptied
  const auto online = m->online_tier().all();
  ASSERT_EQ(online.size(), 20);
  const auto ids = ids_of(online);
  EXPECT_EQ(std::set<int64_t>(ids.begin(), ids.end()).size(), 20u);
  EXPECT_TRUE(torch::equal(online.images, images_of(online.ids)));  // read back from disk
  EXPECT_TRUE(torch::equal(online.tasks, torch::zeros({20}, torch::kLong)));

  // Task 2 brings 50 entries: the 20 are split 10/10 between the tasks.
  state.task = 1;
  m->before_task(state);
  fill_offline(*m, 2000, 50, tasks_.classes(1)[0], 1, rng);
  m->after_task(state);
  const auto both = m->online_tier().all();
  ASSERT_EQ(both.size(), 20);
  EXPECT_EQ((both.tasks == 0).sum().item<int64_t>(), 10);
  EXPECT_EQ((both.tasks == 1).sum().item<int64_t>(), 10);
  EXPECT_TRUE(torch::equal(both.images, images_of(both.ids)));
}

TEST_F(EdgeHmlRun, IncludeHarddiskReadTimeMovesTheRefillIntoTheNextStep) {
  // No unlabeled replay: the hand-made images are not of the data's shape.
  auto m = make("pool_sizes = [20, 100]\ninclude_harddisk_read_time = true\nneed_unsup_replay = false");
  Rng rng(2);
  RunState state;
  state.num_tasks = 2;
  state.task = 0;
  m->before_task(state);
  fill_offline(*m, 0, 30, tasks_.classes(0)[0], 0, rng);
  m->after_task(state);
  EXPECT_EQ(m->online_tier().size(), 0);  // not yet: the next timed step does it
  EXPECT_EQ(m->offline_tier().size(), 30);
  state.task = 1;
  state.iter = 0;
  m->before_task(state);  // must not empty the tier before the pending refill
  m->model()->train();
  m->step(tasks_.train_batch(1, 0), state);
  EXPECT_EQ(m->online_tier().size(), 20);
  EXPECT_EQ(m->offline_tier().size(), 0);
}

// Records each iteration's "unsup" term.
class UnsupTermHook : public Hook {
 public:
  std::string hook_name() const override { return "unsup_term"; }
  void after_iter(const RunState& s) override {
    for (const auto& [name, value] : s.losses)
      if (name == "unsup") values.push_back(value);
  }
  std::vector<double> values;
};

TEST_F(EdgeHmlRun, TrainsEndToEndWithWarmUpOfflineTierOnDiskAndUnlabeledReplay) {
  const auto dir = std::filesystem::temp_directory_path() / ("sscl_edgehml_run_" + std::to_string(::getpid()));
  context_.run_dir = dir;
  // Threshold 0: every weak view is confident, so the tiers fill in a few iterations.
  auto m = make("pool_sizes = [20, 30]\nunsup_warmup_iters = 3\nthreshold = 0.0\nlambda_ur = 0.5");
  HookDispatcher hooks;
  auto unsup = std::make_shared<UnsupTermHook>();
  hooks.add(unsup);
  TrainerOptions options;
  options.iters_per_task = 6;
  const Optimizer optimizer = testing::optimizer_of("");
  Trainer trainer(options, *m, tasks_, hooks, optimizer, testing::schedule_of("", optimizer.lr), testing::evaluator(),
                  torch::kCPU);
  const RunState& state = trainer.run();
  ASSERT_EQ(unsup->values.size(), 12u);
  for (int task = 0; task < 2; ++task)
    for (int i = 0; i < 6; ++i) {
      const double v = unsup->values[static_cast<size_t>(task * 6 + i)];
      if (i < 3)
        EXPECT_EQ(v, 0.0) << "warm-up";
      else
        EXPECT_GT(v, 0.0) << "task " << task << " iter " << i;
      EXPECT_TRUE(std::isfinite(v));
    }
  EXPECT_TRUE(state.task_il.has(1, 0));
  std::map<std::string, double> stats;
  for (const auto& [k, v] : m->all_stats()) stats[k] = v;
  EXPECT_GT(stats.at("offline_tier_stored"), 0);
  EXPECT_GT(stats.at("offline_tier_peak_disk_bytes"), 0);
  EXPECT_GT(stats.at("online_tier_entries"), 0);
  EXPECT_LE(stats.at("online_tier_entries"), 20 - stats.at("labeled_tier_entries") + 1e-9);
  EXPECT_GT(stats.at("labeled_tier_entries"), 0);
  EXPECT_NEAR(stats.at("mask_rate"), 1.0, 1e-12);
  EXPECT_TRUE(std::filesystem::exists(dir / "edgehml_offline_tier.bin"));
  m.reset();
  std::filesystem::remove_all(dir);
}

TEST_F(EdgeHmlRun, BadKeysAreNamed) {
  const auto expect_error = [this](const std::string& options, const std::string& key) {
    try {
      make(options);
      FAIL() << "no error for " << options;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  expect_error("pool_sizes = [200]", "method.pool_sizes");
  expect_error("lambda_unsup_replay = -1.0", "method.lambda_unsup_replay");
  expect_error("lambda_ur = 0.1\nlambda_unsup_replay = 0.1", "method.lambda_ur");
  expect_error("offline_storage = \"tape\"", "method.offline_storage");
  expect_error("minibatch_size_unsup = 56", "method.minibatch_size_unsup");
  // The reference's spellings are accepted.
  auto m = make("unsup_iter_threshold = 50\nlambda_unsup_replay = 0.5\nthreshold_length = 10");
  EXPECT_EQ(m->options().unsup_warmup_iters, 50);
  EXPECT_EQ(m->options().lambda_ur, 0.5);
  EXPECT_EQ(m->options().unsup_ramp_iters, 10);
}

}  // namespace
}  // namespace sscl
