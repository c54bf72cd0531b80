// Active learning through the learner: no strategy can reach a ground-truth label
// (its choice does not change when every hidden label does), queried images move
// to the labeled set with the oracle's labels, rounds run at their iterations, the
// teacher oracle labels with its own predictions, and bad set-ups are refused.
#include "methods/active/active_learner.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/hook_registry.h"
#include "tests/core/fake_run.h"
#include "tests/methods/method_run_fixture.h"
#include "tests/test_util.h"

namespace sscl {
namespace {

std::vector<int64_t> active_test_values(const at::Tensor& t) {
  const auto c = t.to(torch::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

// 1 label per class: each task starts with 2 labeled images and 38 unlabeled.
class ActiveLearnerTest : public testing::MethodRunFixture {
 protected:
  ActiveLearnerTest() : MethodRunFixture(1, 11) {}

  std::unique_ptr<Method> attached(const std::string& name) {
    auto method = MethodRegistry::get().at(name)(config_.section("method"));
    method->attach(context_);
    return method;
  }
  static ActiveOptions options(QueryStrategy strategy, int64_t budget = 4) {
    ActiveOptions o;
    o.strategy = strategy;
    o.budget_per_task = budget;
    o.warmup_iters = 2;
    o.committee_iters = 3;
    return o;
  }
  std::unique_ptr<ActiveLearner> learner(Method& method, ActiveOptions o) {
    return std::make_unique<ActiveLearner>(o, method, tasks_,
                                           std::make_unique<GroundTruthOracle>(tasks_.data().train->labels),
                                           std::vector<int64_t>{10, 10});
  }
  // Swaps the two classes of each task in the dataset's labels of every image not
  // labeled yet: every hidden label changes, the revealed ones do not.
  void scramble_hidden_labels() {
    auto labels = tasks_.data().train->labels;
    for (int t = 0; t < tasks_.num_tasks(); ++t) {
      const auto& c = tasks_.classes(t);
      for (int64_t id : tasks_.unlabeled_ids(t)) {
        const int64_t y = labels[id].item<int64_t>();
        labels[id] = y == c[0] ? c[1] : c[0];
      }
    }
  }
};

TEST_F(ActiveLearnerTest, NoStrategyCanReachAGroundTruthLabel) {
  auto method = attached("sft");
  for (const auto& name : query_strategy_names()) {
    const auto strategy = parse_query_strategy(name);
    // The same model and seeds before and after every hidden label is changed.
    const auto before = learner(*method, options(strategy))->choose(0, 0, 4);
    const auto truth = tasks_.data().train->labels.clone();
    scramble_hidden_labels();
    ASSERT_FALSE(torch::equal(truth, tasks_.data().train->labels));
    const auto after = learner(*method, options(strategy))->choose(0, 0, 4);
    auto hidden = tasks_.data().train->labels;
    hidden.copy_(truth);
    EXPECT_EQ(before, after) << name;

    ASSERT_EQ(before.size(), 4u) << name;
    const auto pool = tasks_.unlabeled_ids(0);
    for (int64_t id : before) EXPECT_TRUE(std::binary_search(pool.begin(), pool.end(), id)) << name;
    EXPECT_EQ(std::set<int64_t>(before.begin(), before.end()).size(), 4u) << name;
  }
}

TEST_F(ActiveLearnerTest, EntropyPicksTheHighestEntropyCandidatesOfThePool) {
  // Over the pool of 38, the 4 picks are the candidates of highest entropy of the
  // model's probabilities over the task's classes.
  auto method = attached("sft");
  auto active = learner(*method, options(QueryStrategy::kEntropy));
  const auto picks = active->choose(0, 0, 4);
  torch::NoGradGuard no_grad;
  method->model()->eval();
  const auto pool = tasks_.unlabeled_ids(0);
  const auto ids = torch::tensor(pool, torch::kLong);
  const auto classes = torch::tensor(tasks_.classes(0), torch::kLong);
  const auto probs = method->model()
                         ->forward(tasks_.views(tasks_.raw_images(ids), View::kPlain, 0))
                         .index_select(1, classes)
                         .softmax(1);
  std::vector<int64_t> expected;
  for (int64_t row : select_top_k(entropy_scores(probs), 4)) expected.push_back(pool[row]);
  EXPECT_EQ(picks, expected);
}

TEST_F(ActiveLearnerTest, AQueryMovesTheChosenImagesToTheLabeledSetWithTheOraclesLabels) {
  auto method = attached("sft");
  auto active = learner(*method, options(QueryStrategy::kMargin));
  const auto pool_before = tasks_.unlabeled_ids(1);
  const auto record = active->query(1, 0, 5, 7);
  ASSERT_EQ(record.ids.size(), 5u);
  EXPECT_EQ(record.iter, 7);
  EXPECT_EQ(record.candidates, 38);
  EXPECT_EQ(record.oracle, "ground_truth");
  EXPECT_FALSE(record.model_given);
  EXPECT_EQ(active->oracle().revealed(), 5);
  const auto truth = tasks_.data().train->labels;
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(record.labels[i], truth[record.ids[i]].item<int64_t>());

  const auto set = tasks_.labeled_set(1);
  EXPECT_EQ(set.ids.numel(), 7);  // 2 seed + 5 queried
  const auto ids = active_test_values(set.ids), labels = active_test_values(set.labels);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(ids[2 + i], record.ids[i]);
    EXPECT_EQ(labels[2 + i], record.labels[i]);
  }
  EXPECT_EQ(tasks_.unlabeled_ids(1).size(), pool_before.size() - 5);
  // The next batches draw from the 7.
  const auto batch = tasks_.build_batch(1, 3);
  for (int64_t id : active_test_values(batch.labeled.indices)) EXPECT_TRUE(std::count(ids.begin(), ids.end(), id));
  EXPECT_EQ(active->seed_labels(), (std::vector<int64_t>{2, 2}));
}

TEST_F(ActiveLearnerTest, LabelsGivenAreTheOnesBatchesCarryEvenWhenWrong) {
  // An oracle's labels (a teacher's may be wrong) are what training sees.
  const int64_t id = tasks_.unlabeled_ids(0).front();
  const auto& c = tasks_.classes(0);
  const int64_t truth = tasks_.data().train->labels[id].item<int64_t>();
  const int64_t wrong = truth == c[0] ? c[1] : c[0];
  tasks_.add_labels(0, torch::tensor({id}), torch::tensor({wrong}));
  const auto set = tasks_.labeled_set(0);
  EXPECT_EQ(active_test_values(set.labels).back(), wrong);
}

TEST_F(ActiveLearnerTest, ABatchPrefetchedBeforeNewLabelsIsDropped) {
  auto o = MethodRunFixture::options(1);
  o.prefetch = true;
  SplitSemiTasks prefetching(o, testing::synthetic_splits(4, 20, 1, 12), 0);
  prefetching.train_batch(0, 5);  // prepares iteration 6 in the background
  const auto pool = prefetching.unlabeled_ids(0);
  const auto& c = prefetching.classes(0);
  prefetching.add_labels(0, torch::tensor({pool[0], pool[1], pool[2]}), torch::tensor({c[0], c[1], c[0]}));
  const auto served = prefetching.train_batch(0, 6);
  const auto fresh = prefetching.build_batch(0, 6);
  EXPECT_TRUE(torch::equal(served.labeled.indices, fresh.labeled.indices));
  EXPECT_TRUE(torch::equal(served.labeled.labels, fresh.labeled.labels));
}

TEST_F(ActiveLearnerTest, AddLabelsChecksEverythingBeforeMovingAnything) {
  const auto pool = tasks_.unlabeled_ids(0);
  const auto c = tasks_.classes(0);
  const auto other_task_class = tasks_.classes(1)[0];
  auto expect_unchanged = [&] {
    EXPECT_EQ(tasks_.unlabeled_ids(0), pool);
    EXPECT_EQ(tasks_.labeled_set(0).ids.numel(), 2);
  };
  EXPECT_THROW(tasks_.add_labels(0, torch::tensor({pool[0], int64_t{100000}}), torch::tensor({c[0], c[0]})), Error);
  expect_unchanged();
  EXPECT_THROW(tasks_.add_labels(0, torch::tensor({pool[0], pool[1]}), torch::tensor({c[0], other_task_class})), Error);
  expect_unchanged();
  EXPECT_THROW(tasks_.add_labels(0, torch::tensor({pool[0], pool[0]}), torch::tensor({c[0], c[0]})), Error);
  expect_unchanged();
}

TEST_F(ActiveLearnerTest, RoundsRunAtTheirIterationsAndShareTheBudget) {
  auto method = attached("sft");
  auto o = options(QueryStrategy::kLeastConfidence, 5);
  o.rounds = 2;
  o.warmup_iters = 3;
  o.iters_between_rounds = 4;
  auto active = learner(*method, o);
  RunState state;
  state.num_tasks = 2;
  for (int task = 0; task < 2; ++task) {
    state.task = task;
    for (int64_t iter = 0; iter < 10; ++iter) {
      state.iter = iter;
      active->before_iter(state);
    }
  }
  const auto& records = active->records();
  ASSERT_EQ(records.size(), 4u);
  const std::vector<int64_t> iters{3, 7, 3, 7}, sizes{3, 2, 3, 2};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(records[i].task, static_cast<int>(i / 2));
    EXPECT_EQ(records[i].round, static_cast<int>(i % 2));
    EXPECT_EQ(records[i].iter, iters[i]);
    EXPECT_EQ(static_cast<int64_t>(records[i].ids.size()), sizes[i]);
  }
  EXPECT_EQ(tasks_.labeled_set(0).ids.numel(), 7);
  EXPECT_EQ(tasks_.labeled_set(1).ids.numel(), 7);
}

TEST_F(ActiveLearnerTest, ABudgetPerClassIsPerTaskTimesItsClasses) {
  ActiveOptions o;
  o.budget_per_class = 2.5;
  EXPECT_EQ(o.budget(2), 5);
  EXPECT_EQ(o.budget(10), 25);
}

TEST_F(ActiveLearnerTest, PoolSizeLimitsTheCandidatesToASeededSubset) {
  auto method = attached("sft");
  auto o = options(QueryStrategy::kEntropy);
  o.pool_size = 10;
  const auto a = learner(*method, o)->choose(0, 0, 4);
  const auto b = learner(*method, o)->choose(0, 0, 4);
  EXPECT_EQ(a, b);
  // Asking for more than the subset holds gives the subset: 10 of the 38, the 4 among them.
  const auto all = learner(*method, o)->choose(0, 0, 20);
  ASSERT_EQ(all.size(), 10u);
  for (int64_t id : a) EXPECT_TRUE(std::count(all.begin(), all.end(), id)) << id;
  const auto record = learner(*method, o)->query(0, 0, 4);
  EXPECT_EQ(record.candidates, 10);
}

TEST_F(ActiveLearnerTest, MethodsThatCannotTakeTheQueriesAreRefusedByName) {
  auto joint = attached("joint");
  try {
    learner(*joint, options(QueryStrategy::kRandom));
    FAIL() << "joint accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("joint"), std::string::npos) << e.what();
  }
  auto pnn = attached("pnn");
  EXPECT_THROW(learner(*pnn, options(QueryStrategy::kCoreSet)), ConfigError);
  EXPECT_NO_THROW(learner(*pnn, options(QueryStrategy::kEntropy)));
  auto sft = attached("sft");
  auto late = options(QueryStrategy::kRandom);
  late.warmup_iters = 10;  // a task has 10 iterations: 0..9
  try {
    learner(*sft, late);
    FAIL() << "round outside the task accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("active.warmup_iters"), std::string::npos) << e.what();
  }
}

TEST_F(ActiveLearnerTest, TeacherOracleLabelsWithItsOwnArgmaxOverTheTasksClasses) {
  testing::TempDir dir;
  Classifier teacher(backbone(), tasks_.num_classes());
  std::ostringstream weights;
  torch::save(teacher, weights);
  write_file_atomic(dir / "model.pt", weights.str());
  // A teacher's run directory: its config names the architecture.
  testing::write_text(dir / "config.toml", "[model]\nbackbone = \"small_cnn\"\n");
  auto oracle = TeacherOracle::load(dir.path(), tasks_, torch::kCPU);
  EXPECT_TRUE(oracle->model_given());
  const auto pool = tasks_.unlabeled_ids(1);
  const auto ids = torch::tensor(std::vector<int64_t>(pool.begin(), pool.begin() + 6), torch::kLong);
  const auto labels = oracle->annotate(ids, tasks_.classes(1));
  EXPECT_EQ(oracle->revealed(), 6);

  torch::NoGradGuard no_grad;
  teacher->eval();
  const auto classes = torch::tensor(tasks_.classes(1), torch::kLong);
  const auto logits = teacher->forward(tasks_.views(tasks_.raw_images(ids), View::kPlain, 0)).index_select(1, classes);
  EXPECT_EQ(active_test_values(labels), active_test_values(classes.index_select(0, logits.argmax(1))));
}

TEST_F(ActiveLearnerTest, TeacherRunDirectoryWithoutWeightsOrWithOtherWeightsIsAClearError) {
  testing::TempDir dir;
  testing::write_text(dir / "config.toml", "[model]\nbackbone = \"small_cnn\"\n");
  try {
    TeacherOracle::load(dir.path(), tasks_, torch::kCPU);
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("model.pt"), std::string::npos) << e.what();
  }
  // Weights of another architecture (its own config: a config records its readers' defaults).
  const Config mlp_config = Config::from_string("[model]\n", "mlp.toml");
  auto mlp = BackboneRegistry::get().at("mlp")(mlp_config.section("model"), tasks_.input_shape());
  Classifier other(mlp, tasks_.num_classes());
  std::ostringstream weights;
  torch::save(other, weights);
  write_file_atomic(dir / "model.pt", weights.str());
  EXPECT_THROW(TeacherOracle::load(dir.path(), tasks_, torch::kCPU), IoError);
}

TEST_F(ActiveLearnerTest, OptionsNameTheirKeys) {
  auto fails_on = [](const std::string& text, const std::string& key) {
    const Config c = Config::from_string("[active]\n" + text, "active.toml");
    try {
      read_options<ActiveOptions>(c.section("active"));
      ADD_FAILURE() << "no error for: " << text;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  fails_on("budget_per_task = 4", "active.strategy");
  fails_on("strategy = \"entropy\"", "budget_per");
  fails_on("strategy = \"entropy\"\nbudget_per_task = 4\nbudget_per_class = 2", "budget_per");
  fails_on("strategy = \"vote\"\nbudget_per_task = 4", "active.strategy");
  fails_on("strategy = \"qbc\"\nbudget_per_task = 4\ncommittee_size = 1", "active.committee_size");
  fails_on("strategy = \"qbc\"\nbudget_per_task = 4\noracle = \"teacher\"", "active.teacher");
  fails_on("strategy = \"random\"\nbudget_per_task = -1", "active.budget_per_task");
  fails_on("strategy = \"random\"\nbudget_per_task = 4\nteacher = \"run\"", "active.teacher");
  fails_on("strategy = \"random\"\nbudget_per_task = 4\nrounds = 2\niters_between_rounds = 0",
           "active.iters_between_rounds");
  const Config given = Config::from_string(
      "[active]\nstrategy = \"qbc\"\nbudget_per_class = 2.5\nqbc_measure = \"kl\"\n", "active.toml");
  const auto o = read_options<ActiveOptions>(given.section("active"));
  EXPECT_EQ(o.strategy, QueryStrategy::kQbc);
  EXPECT_FALSE(o.budget_per_task.has_value());
  EXPECT_EQ(o.budget_per_class, 2.5);
  EXPECT_EQ(o.qbc_measure, QbcMeasure::kAverageKl);
  EXPECT_EQ(o.oracle, "ground_truth");
}

// The learner as a run builds it: the "active" entry of SectionHookRegistry, from
// the [active] table and the run's context.
class ActiveHookTest : public ActiveLearnerTest {
 protected:
  std::shared_ptr<Hook> built(const std::string& table, Method& method, TaskData& data) {
    const Config config = Config::from_string("[active]\n" + table, "active_hook.toml");
    const HookContext context{{}, &method, &data, torch::kCPU, {10, 10}};
    return SectionHookRegistry::get().at("active")(config.section("active"), context);
  }
};

TEST_F(ActiveHookTest, TheEntryReadsItsTableAndLabelsWithTheHiddenLabels) {
  auto method = attached("sft");
  const auto hook = built(
      "strategy = \"entropy\"\nbudget_per_task = 4\nrounds = 2\nwarmup_iters = 2\n"
      "iters_between_rounds = 3",
      *method, tasks_);
  const auto active = std::dynamic_pointer_cast<ActiveLearner>(hook);
  ASSERT_NE(active, nullptr);
  EXPECT_EQ(active->hook_name(), "active_learning");
  EXPECT_EQ(active->options().strategy, QueryStrategy::kEntropy);
  EXPECT_EQ(active->options().budget_per_task, 4);
  EXPECT_EQ(active->options().round_iter(1), 5);
  EXPECT_EQ(active->oracle().name(), "ground_truth");
  EXPECT_EQ(active->describe(),
            "active learning: entropy queries 4 label(s) per task in 2 round(s) at iteration(s) 2, 5 of each task, "
            "from the whole pool; labels by ground_truth");
  const auto record = active->query(0, 0, 3);
  const auto truth = tasks_.data().train->labels;
  ASSERT_EQ(record.ids.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(record.labels[i], truth[record.ids[i]].item<int64_t>());
}

TEST_F(ActiveHookTest, TheEntryRefusesDataWithoutHiddenLabelsAndMethodsThatCannotTakeThem) {
  auto method = attached("sft");
  testing::FakeTaskData no_hidden_labels;
  try {
    built("strategy = \"random\"\nbudget_per_task = 4\nwarmup_iters = 2", *method, no_hidden_labels);
    FAIL() << "ground_truth oracle without hidden labels accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("active.oracle"), std::string::npos) << e.what();
  }
  auto joint = attached("joint");
  try {
    built("strategy = \"random\"\nbudget_per_task = 4\nwarmup_iters = 2", *joint, tasks_);
    FAIL() << "joint accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("joint"), std::string::npos) << e.what();
  }
  auto pnn = attached("pnn");
  EXPECT_THROW(built("strategy = \"badge\"\nbudget_per_task = 4\nwarmup_iters = 2", *pnn, tasks_), ConfigError);
  EXPECT_THROW(built("strategy = \"random\"\nbudget_per_task = 4\nwarmup_iters = 10", *method, tasks_), ConfigError);
}

TEST_F(ActiveLearnerTest, RecordsSurviveSaveAndLoad) {
  auto method = attached("sft");
  auto active = learner(*method, options(QueryStrategy::kMargin));
  const auto first = active->query(0, 0, 3, 2);
  const auto second = active->query(1, 0, 2, 2);
  const std::string bytes = StateVisitor::to_bytes(*active);
  auto restored = learner(*method, options(QueryStrategy::kMargin));
  StateVisitor::from_bytes(*restored, bytes, torch::kCPU);
  ASSERT_EQ(restored->records().size(), 2u);
  const auto& r = restored->records();
  EXPECT_EQ(r[0].task, 0);
  EXPECT_EQ(r[1].task, 1);
  EXPECT_EQ(r[0].iter, 2);
  EXPECT_EQ(r[0].ids, first.ids);
  EXPECT_EQ(r[0].labels, first.labels);
  EXPECT_EQ(r[1].ids, second.ids);
  EXPECT_EQ(r[1].candidates, second.candidates);
  EXPECT_EQ(r[1].oracle, "ground_truth");
  EXPECT_FALSE(r[1].model_given);
  EXPECT_DOUBLE_EQ(r[1].seconds, second.seconds);
}

}  // namespace
}  // namespace sscl
