// The rehearsal methods' defining maths on hand-computed tensors (DER's logit
// term, DER++'s label term, ER-ACE's asymmetric mask) and their behaviour on the
// fake two-task data: what the buffers hold after steps, per-row task masks on
// replayed images, Joint's draws over every task seen.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include "core/config.h"
#include "methods/common/replay.h"
#include "methods/continual/er.h"
#include "methods/continual/er_ace.h"
#include "methods/continual/joint.h"
#include "tests/core/fake_run.h"

namespace sscl {
namespace {

using testing::FakeTaskData;

MethodContext fake_context(const FakeTaskData& data, bool mask_train_logits = false) {
  MethodContext context;
  context.model = testing::make_tiny_classifier();
  context.task_classes = {{0, 1}, {2, 3}};
  context.data = &data;
  context.batch_size = 2;
  context.seed = 7;
  context.mask_train_logits = mask_train_logits;
  return context;
}

RunState at(int task, int64_t iter) {
  RunState state;
  state.task = task;
  state.iter = iter;
  return state;
}

// Zero weights everywhere and the head's bias = `bias`: every image's logits are `bias`.
void set_constant_logits(Classifier& model, const std::vector<float>& bias) {
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.zero_();
  model->named_parameters()["head.bias"].copy_(torch::tensor(bias));
}

double term(const LossTerms& terms, const std::string& name) {
  for (const auto& [n, value] : terms)
    if (n == name) return value.item<double>();
  ADD_FAILURE() << "no loss term " << name;
  return NAN;
}

std::vector<std::string> names(const LossTerms& terms) {
  std::vector<std::string> out;
  for (const auto& t : terms) out.push_back(t.first);
  return out;
}

// log(e^1 + e^2 + e^3 + e^4): the log-partition of logits [1, 2, 3, 4].
const double kLse1234 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + std::exp(4.0));
// Cross-entropy over logits [a, a + 1] averaged over both labels:
// (log(1 + e) + log(1 + e^-1)) / 2.
const double kPairCe = (std::log(1.0 + std::exp(1.0)) + std::log(1.0 + std::exp(-1.0))) / 2.0;

// DER (alpha 0.3) or DER++ (alpha 0.1, beta 0.5) as the registry builds them: the
// defaults are the paper's.
std::unique_ptr<Method> der_from_registry(bool plus_plus, int64_t buffer_size = 10) {
  const Config config = Config::from_string(
      "[method]\nbuffer_size = " + std::to_string(buffer_size) + "\nminibatch_size = 2\n", "der.toml");
  return MethodRegistry::get().at(plus_plus ? "derpp" : "der")(config.section("method"));
}

const ReplayBuffer& der_buffer(Method& der) { return dynamic_cast<Er&>(der).buffer(); }

// Saves `from`'s state and loads it into `into` through an archive's bytes, as a
// checkpoint does.
void replay_state_round_trip(Stateful& from, Stateful& into) {
  StateVisitor::from_bytes(into, StateVisitor::to_bytes(from), torch::kCPU);
}

TEST(ReplayMethods, DerLogitLossIsTheMeanSquaredErrorOverRowsAndClasses) {
  const auto replay = torch::tensor({{1.0f, 2.0f}, {0.0f, -1.0f}}).set_requires_grad(true);
  const auto stored = torch::tensor({{0.0f, 2.0f}, {1.0f, 1.0f}});
  // Differences 1, 0, -1, -2 -> squares 1, 0, 1, 4 -> mean 6 / 4 = 1.5.
  const auto loss = der_logit_loss(replay, stored);
  EXPECT_NEAR(loss.item<double>(), 1.5, 1e-6);
  // d/dx mean((x - z)^2) = 2 (x - z) / 4; the stored logits are constants.
  loss.backward();
  EXPECT_TRUE(torch::allclose(replay.grad(), torch::tensor({{0.5f, 0.0f}, {-0.5f, -1.0f}})));
}

// Step 1 with logits [1, 2, 3, 4] for every image stores them; step 2 with all
// logits 0 replays them: ||0 - [1, 2, 3, 4]||^2 / 4 = 30 / 4 = 7.5.
LossTerms der_second_step(bool plus_plus) {
  FakeTaskData data;
  auto der = der_from_registry(plus_plus);
  der->attach(fake_context(data));
  set_constant_logits(der->model(), {1, 2, 3, 4});
  const auto first = der->step(data.train_batch(0, 0), at(0, 0));
  // Nothing to replay yet: sup = mean over labels 0, 1 of lse - logit = lse - 1.5.
  EXPECT_NEAR(term(first, "sup"), kLse1234 - 1.5, 1e-5);
  EXPECT_EQ(term(first, "der_mse"), 0.0);
  set_constant_logits(der->model(), {0, 0, 0, 0});
  return der->step(data.train_batch(0, 1), at(0, 1));
}

TEST(ReplayMethods, DerMatchesTheStoredLogitsWeightedByAlpha) {
  const auto terms = der_second_step(false);
  EXPECT_EQ(names(terms), (std::vector<std::string>{"sup", "der_mse"}));
  EXPECT_NEAR(term(terms, "sup"), std::log(4.0), 1e-5);  // uniform over 4 classes
  EXPECT_NEAR(term(terms, "der_mse"), 0.3 * 7.5, 1e-5);  // alpha 0.3
}

TEST(ReplayMethods, DerPlusPlusAddsBetaTimesTheCrossEntropyOnReplayedLabels) {
  const auto terms = der_second_step(true);
  EXPECT_EQ(names(terms), (std::vector<std::string>{"sup", "der_mse", "der_ce"}));
  EXPECT_NEAR(term(terms, "der_mse"), 0.1 * 7.5, 1e-5);           // alpha 0.1
  EXPECT_NEAR(term(terms, "der_ce"), 0.5 * std::log(4.0), 1e-5);  // beta 0.5, uniform logits
}

TEST(ReplayMethods, DerStoresTheRawUnmaskedLogitsOfEachStepsForward) {
  FakeTaskData data;
  auto der = der_from_registry(false, /*buffer_size=*/100);
  der->attach(fake_context(data, /*mask_train_logits=*/true));
  std::vector<torch::Tensor> expected;
  const std::vector<std::pair<int, int64_t>> steps{{0, 0}, {0, 1}, {1, 0}};
  for (const auto& [task, iter] : steps) {
    const auto batch = data.train_batch(task, iter);
    {
      torch::NoGradGuard no_grad;
      der->model()->named_parameters()["head.bias"].add_(1.0);  // each step's model differs
      expected.push_back(der->model()->forward(batch.labeled.images));
    }
    der->step(batch, at(task, iter));
  }
  const auto all = der_buffer(*der).all();
  ASSERT_EQ(all.size(), 6);
  EXPECT_TRUE(torch::allclose(all.logits, torch::cat(expected)));
  EXPECT_TRUE(torch::isfinite(all.logits).all().item<bool>());  // not the task-masked ones
  EXPECT_TRUE(torch::equal(all.labels, torch::tensor({0, 1, 0, 1, 2, 3}, torch::kLong)));
  EXPECT_TRUE(torch::equal(all.tasks, torch::tensor({0, 0, 0, 0, 1, 1}, torch::kLong)));
  EXPECT_TRUE(torch::equal(all.ids, torch::tensor({0, 1, 1, 2, 0, 1}, torch::kLong)));
}

TEST(ReplayMethods, DerStateRoundTripsThroughAnArchive) {
  FakeTaskData data;
  auto der = der_from_registry(true);
  der->attach(fake_context(data));
  der->step(data.train_batch(0, 0), at(0, 0));
  auto restored = der_from_registry(true);
  restored->attach(fake_context(data));
  replay_state_round_trip(*der, *restored);
  EXPECT_EQ(der_buffer(*restored).size(), 2);
  EXPECT_TRUE(torch::equal(der_buffer(*restored).all().logits, der_buffer(*der).all().logits));
}

TEST(ReplayMethods, ErFillsItsBufferWithTheLabeledStreamAndReportsItsBytes) {
  FakeTaskData data;
  Er er(ReplayOptions{100, 2});
  er.attach(fake_context(data));
  const auto first = er.step(data.train_batch(0, 0), at(0, 0));
  EXPECT_EQ(names(first), (std::vector<std::string>{"sup", "replay"}));
  EXPECT_EQ(term(first, "replay"), 0.0);  // empty buffer
  er.step(data.train_batch(0, 1), at(0, 1));
  const auto later = er.step(data.train_batch(1, 0), at(1, 0));
  EXPECT_GT(term(later, "replay"), 0.0);
  const auto all = er.buffer().all();
  ASSERT_EQ(all.size(), 6);
  EXPECT_TRUE(torch::equal(all.labels, torch::tensor({0, 1, 0, 1, 2, 3}, torch::kLong)));
  EXPECT_TRUE(torch::equal(all.tasks, torch::tensor({0, 0, 0, 0, 1, 1}, torch::kLong)));
  EXPECT_TRUE(torch::equal(all.ids, torch::tensor({0, 1, 1, 2, 0, 1}, torch::kLong)));
  EXPECT_TRUE(torch::equal(all.images, data.raw_images(all.ids)));  // raw images by id
  // 100 slots of a 1x4x4 uint8 image and three int64 (label, task, id): 100 * 40.
  const auto stats = er.stats();
  ASSERT_GE(stats.size(), 2u);
  EXPECT_EQ(stats[0], (std::pair<std::string, double>{"buffer_bytes", 4000.0}));
  EXPECT_EQ(stats[1], (std::pair<std::string, double>{"buffer_size", 100.0}));
}

TEST(ReplayMethods, ErMasksEachReplayedRowToItsOwnTasksClasses) {
  // Task-IL mask on; every image's logits are [1, 2, 3, 4]. After one task-0 step
  // the buffer (2 slots) holds labels 0 and 1, both drawn at task 1. Each replayed
  // row keeps its task-0 logits [1, 2] -> mean CE = kPairCe; the current rows keep
  // [3, 4] with labels 2, 3 -> kPairCe too. A current-task mask on the replayed
  // rows would leave their labels at -inf (an infinite loss).
  FakeTaskData data;
  Er er(ReplayOptions{2, 2});
  er.attach(fake_context(data, /*mask_train_logits=*/true));
  set_constant_logits(er.model(), {1, 2, 3, 4});
  er.step(data.train_batch(0, 0), at(0, 0));
  const auto terms = er.step(data.train_batch(1, 0), at(1, 0));
  EXPECT_NEAR(term(terms, "sup"), kPairCe, 1e-5);
  EXPECT_NEAR(term(terms, "replay"), kPairCe, 1e-5);
}

TEST(ReplayMethods, ErReservoirKeepsAtMostItsCapacity) {
  FakeTaskData data;
  Er er(ReplayOptions{3, 0});
  er.attach(fake_context(data));
  for (int64_t iter = 0; iter < 5; ++iter) er.step(data.train_batch(0, iter), at(0, iter));
  EXPECT_EQ(er.buffer().size(), 3);
  EXPECT_EQ(er.buffer().seen(), 10);
}

TEST(ReplayMethods, AceKeepsPresentAndUnseenClassesAndMasksSeenAbsentOnes) {
  // Seen before: {0, 1}; batch labels {1, 2}. Kept: present {1, 2} and never seen
  // {3}; masked: 0 (seen, absent).
  const auto seen = torch::tensor({true, true, false, false});
  const auto labels = torch::tensor({1, 2}, torch::kLong);
  const auto keep = ace_keep_mask(labels, seen);
  EXPECT_TRUE(torch::equal(keep, torch::tensor({false, true, true, true})));
  // Row 0, logits [5, 0, 0, 0], label 1: kept [0, 0, 0] -> CE = log 3 (the 5 on
  // the masked class does not count). Row 1, logits [9, 0, ln 2, 0], label 2: kept
  // [0, ln 2, 0] -> p = 2 / 4 -> CE = log 2. Mean (log 3 + log 2) / 2 = log(6) / 2.
  const auto logits = torch::tensor({{5.0f, 0.0f, 0.0f, 0.0f}, {9.0f, 0.0f, static_cast<float>(std::log(2.0)), 0.0f}});
  EXPECT_NEAR(ace_incoming_loss(logits, labels, keep).item<double>(), std::log(6.0) / 2.0, 1e-5);
}

TEST(ReplayMethods, AceMasksTheCurrentTasksClassesSeenEarlierButAbsentToo) {
  // Six classes, seen {0, 1, 2, 3}, batch {2, 2}: kept 2 and the unseen 4, 5;
  // masked the old 0, 1 and the current task's 3, seen in an earlier batch.
  const auto seen = torch::tensor({true, true, true, true, false, false});
  const auto keep = ace_keep_mask(torch::tensor({2, 2}, torch::kLong), seen);
  EXPECT_TRUE(torch::equal(keep, torch::tensor({false, false, true, false, true, true})));
}

TEST(ReplayMethods, ErAceTrainsTheFirstTaskPlainlyThenAsymmetrically) {
  // Class-IL (no task mask); every image's logits are [1, 2, 3, 4].
  FakeTaskData data;
  ErAce ace(ReplayOptions{10, 2});
  ace.attach(fake_context(data));
  set_constant_logits(ace.model(), {1, 2, 3, 4});
  // Task 0: the plain cross-entropy over all 4 classes, no replay.
  const auto first = ace.step(data.train_batch(0, 0), at(0, 0));
  EXPECT_NEAR(term(first, "sup"), kLse1234 - 1.5, 1e-5);
  EXPECT_EQ(term(first, "replay"), 0.0);
  EXPECT_TRUE(torch::equal(ace.seen_classes(), torch::tensor({true, true, false, false})));
  // Still task 0 with a non-empty buffer: no replay yet (mammoth's er_ace).
  EXPECT_EQ(term(ace.step(data.train_batch(0, 1), at(0, 1)), "replay"), 0.0);
  // Task 1, labels 2, 3: classes 0, 1 (seen, absent) are masked -> logits [3, 4];
  // the replayed task-0 rows (labels 0, 1) use all four logits.
  const auto second = ace.step(data.train_batch(1, 0), at(1, 0));
  EXPECT_NEAR(term(second, "sup"), kPairCe, 1e-5);
  EXPECT_NEAR(term(second, "replay"), kLse1234 - 1.5, 1e-5);
  EXPECT_TRUE(ace.seen_classes().all().item<bool>());
}

TEST(ReplayMethods, ErAceStateRoundTripsItsBufferAndSeenClasses) {
  FakeTaskData data;
  ErAce ace(ReplayOptions{10, 2});
  ace.attach(fake_context(data));
  ace.step(data.train_batch(0, 0), at(0, 0));
  ErAce restored(ReplayOptions{10, 2});
  restored.attach(fake_context(data));
  ASSERT_FALSE(restored.seen_classes().any().item<bool>());
  replay_state_round_trip(ace, restored);
  EXPECT_TRUE(torch::equal(restored.seen_classes(), torch::tensor({true, true, false, false})));
  EXPECT_TRUE(torch::equal(restored.buffer().all().ids, ace.buffer().all().ids));
}

TEST(ReplayMethods, DistinctUniformDrawsDistinctIndicesUniformly) {
  Rng rng(11);
  auto all = distinct_uniform(5, 5, rng);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(distinct_uniform(3, 8, rng).size(), 3u);
  // 3 of 10, 3000 times: each index is expected 900 times (sd ~ 25).
  std::vector<int64_t> counts(10, 0);
  for (int trial = 0; trial < 3000; ++trial) {
    const auto draw = distinct_uniform(10, 3, rng);
    EXPECT_EQ(std::set<int64_t>(draw.begin(), draw.end()).size(), 3u);
    for (int64_t i : draw) ++counts[i];
  }
  for (int64_t c : counts) EXPECT_NEAR(c, 900, 120);
}

TEST(ReplayMethods, JointDrawsFromEveryTaskSeenSoFar) {
  // FakeTaskData's labeled set of task t is ids = labels = its classes.
  FakeTaskData data;
  Joint joint;
  joint.attach(fake_context(data));
  joint.before_task(at(0, 0));
  for (int64_t iter = 0; iter < 20; ++iter)
    EXPECT_TRUE(torch::equal(joint.draw(0, iter).tasks, torch::zeros({2}, torch::kLong)));
  joint.before_task(at(1, 0));
  joint.before_task(at(1, 0));  // a second call (a resumed run) adds nothing
  ASSERT_EQ(joint.store().size(), 4);
  EXPECT_TRUE(torch::equal(joint.store().ids, torch::tensor({0, 1, 2, 3}, torch::kLong)));
  std::set<int64_t> tasks_drawn, ids_drawn;
  for (int64_t iter = 0; iter < 20; ++iter) {
    const auto draw = joint.draw(1, iter);
    ASSERT_EQ(draw.size(), 2);  // context batch_size
    EXPECT_NE(draw.ids[0].item<int64_t>(), draw.ids[1].item<int64_t>());
    EXPECT_TRUE(torch::equal(draw.labels, draw.ids));  // every row is one stored image
    EXPECT_TRUE(torch::equal(draw.images, data.raw_images(draw.ids)));
    for (int64_t i = 0; i < 2; ++i) {
      tasks_drawn.insert(draw.tasks[i].item<int64_t>());
      ids_drawn.insert(draw.ids[i].item<int64_t>());
    }
  }
  EXPECT_EQ(tasks_drawn, (std::set<int64_t>{0, 1}));
  EXPECT_EQ(ids_drawn, (std::set<int64_t>{0, 1, 2, 3}));
  // 4 images of 16 bytes and three int64 each (label, task, id).
  EXPECT_EQ(joint.stats().front(), (std::pair<std::string, double>{"buffer_bytes", 4 * (16 + 24.0)}));
  const auto terms = joint.step(data.train_batch(1, 0), at(1, 0));
  ASSERT_EQ(names(terms), (std::vector<std::string>{"sup"}));
  EXPECT_TRUE(std::isfinite(term(terms, "sup")));
}

TEST(ReplayMethods, JointStoreRoundTripsThroughAnArchive) {
  FakeTaskData data;
  Joint joint;
  joint.attach(fake_context(data));
  joint.before_task(at(0, 0));
  joint.before_task(at(1, 0));
  Joint restored;
  restored.attach(fake_context(data));
  replay_state_round_trip(joint, restored);
  EXPECT_TRUE(torch::equal(restored.store().ids, joint.store().ids));
  EXPECT_TRUE(torch::equal(restored.store().images, joint.store().images));
  restored.before_task(at(1, 0));  // already gathered
  EXPECT_EQ(restored.store().size(), 4);
}

}  // namespace
}  // namespace sscl
