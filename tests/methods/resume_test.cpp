// Checkpoints hold everything a method needs: for every registered method (and
// DER composed with every semi-supervised loss), a run resumed in fresh objects
// from a checkpoint taken mid-task, at a task end or by a stop request ends with
// the same parameters (bit for bit), accuracies and method figures as the run that
// was never interrupted; and taking checkpoints does not change a run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <csignal>
#include <map>

#include "core/error.h"
#include "core/method.h"
#include "core/stop_request.h"
#include "methods/active/active_learner.h"
#include "tests/methods/built_run.h"

namespace sscl {
namespace {

constexpr int64_t kIters = 12;  // per task, 2 tasks
constexpr int64_t kInterval = 5;

// Options that make each method's state non-trivial within 12 iterations.
std::string method_toml(const std::string& name, const std::string& semi) {
  static const std::map<std::string, std::string> extra{
      {"edgehml",
       "unsup_warmup_iters = 0\nunsup_ramp_iters = 0\nthreshold = 0.0\nsup_replay_start_iter = 0\n"
       "unsup_replay_start_iter = 0\n"},
      {"flexmatch", "threshold = 0.3\n"},
  };
  const auto it = extra.find(name);
  return "[method]\nname = \"" + name + "\"\n" + (semi.empty() ? "" : "semi = \"" + semi + "\"\n") +
         (it == extra.end() ? "" : it->second) + "[model]\n";
}

struct Outcome {
  RunState state;
  std::vector<std::pair<std::string, double>> stats;
  std::vector<torch::Tensor> parameters;
  std::vector<std::pair<CheckpointPosition, std::string>> checkpoints;
  std::vector<LabeledSet> labeled;   // of each task at the end
  std::vector<QueryRecord> queries;  // with an active learner
};

// One run in fresh objects: trained from scratch (optionally taking checkpoints,
// optionally stopped by a request at global iteration `stop_at`) or resumed.
class StopAt : public Hook {
 public:
  explicit StopAt(int64_t at) : at_(at) {}
  std::string hook_name() const override { return "stop_at"; }
  void after_iter(const RunState& s) override {
    if (s.global_iter + 1 == at_) request_stop(SIGTERM);
  }

 private:
  int64_t at_;
};

// `active`: an [active] section (queries at iteration 2 of each task). The run is
// built by the RunBuilder, as the tools build it.
Outcome train(const std::string& method_name, const std::string& semi, bool checkpoints, const std::string* resume,
              int64_t stop_at = -1, const std::string& active = "") {
  std::string toml = method_toml(method_name, semi);
  toml += active + "[train]\nseed = 7\niters_per_task = " + std::to_string(kIters) +
          "\niters_per_virtual_epoch = 4\n[lr_schedule]\npolicy = \"cosine\"\n"  // the lr depends on the position
          "[checkpoint]\nenabled = " +
          (checkpoints ? "true" : "false") + "\ninterval = " + std::to_string(kInterval) + "\n";
  const Config config = Config::from_string(toml, "resume_test.toml");
  Outcome out;
  testing::TempDir dir;
  auto run = testing::build_run(config, dir, testing::small_split(3, 2),
                                [&out](const std::string& bytes, const CheckpointPosition& p) {
                                  out.checkpoints.emplace_back(p, bytes);
                                  return std::string("memory");
                                });
  if (stop_at >= 0) run->hooks.add(std::make_shared<StopAt>(stop_at));
  clear_stop_request();
  try {
    out.state = resume ? run->trainer->resume(*resume) : run->trainer->run();
  } catch (const Interrupted&) {
    clear_stop_request();
    return out;
  }
  for (const auto& [key, value] : run->method->all_stats())
    if (key.size() < 2 || key.compare(key.size() - 2, 2, "_s") != 0)
      out.stats.emplace_back(key, value);  // not wall times
  for (const auto& p : run->method->trainable_parameters()) out.parameters.push_back(p.detach().clone());
  for (const auto& b : run->method->model()->buffers()) out.parameters.push_back(b.detach().clone());
  for (int t = 0; t < run->data->num_tasks(); ++t) out.labeled.push_back(run->data->labeled_set(t));
  for (const auto& hook : run->hooks.hooks())
    if (const auto* learner = dynamic_cast<const ActiveLearner*>(hook.get())) out.queries = learner->records();
  return out;
}

// Equal entries, NaN (not evaluated) matching NaN.
bool same_matrix(const AccuracyMatrix& a, const AccuracyMatrix& b) {
  if (a.num_tasks() != b.num_tasks()) return false;
  for (int i = 0; i < a.num_tasks(); ++i)
    for (int j = 0; j < a.num_tasks(); ++j)
      if (a.has(i, j) != b.has(i, j) || (a.has(i, j) && a.at(i, j) != b.at(i, j))) return false;
  return true;
}

void expect_same(const Outcome& a, const Outcome& b, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_TRUE(same_matrix(a.state.task_il, b.state.task_il));
  EXPECT_TRUE(same_matrix(a.state.class_il, b.state.class_il));
  EXPECT_EQ(a.state.global_iter, b.state.global_iter);
  EXPECT_EQ(a.stats, b.stats);
  ASSERT_EQ(a.parameters.size(), b.parameters.size());
  for (size_t i = 0; i < a.parameters.size(); ++i)
    EXPECT_TRUE(a.parameters[i].equal(b.parameters[i])) << "parameter or buffer " << i << " differs";
  ASSERT_EQ(a.labeled.size(), b.labeled.size());
  for (size_t t = 0; t < a.labeled.size(); ++t) {
    EXPECT_TRUE(a.labeled[t].ids.equal(b.labeled[t].ids)) << "task " << t;
    EXPECT_TRUE(a.labeled[t].labels.equal(b.labeled[t].labels)) << "task " << t;
  }
  ASSERT_EQ(a.queries.size(), b.queries.size());
  for (size_t i = 0; i < a.queries.size(); ++i) {
    EXPECT_EQ(a.queries[i].ids, b.queries[i].ids);
    EXPECT_EQ(a.queries[i].labels, b.queries[i].labels);
    EXPECT_EQ(a.queries[i].task, b.queries[i].task);
  }
}

void check_resumes(const std::string& method, const std::string& semi = "") {
  const Outcome plain = train(method, semi, false, nullptr);
  const Outcome with = train(method, semi, true, nullptr);
  expect_same(plain, with, "taking checkpoints changed the run");
  // 5, 10 (task 0), 12 (task 0 end), 15, 20 (task 1), 24 (task 1 end).
  ASSERT_EQ(with.checkpoints.size(), 6u);
  for (size_t i : {1u, 2u, 3u}) {
    const auto& [position, bytes] = with.checkpoints[i];
    const Outcome resumed = train(method, semi, false, &bytes);
    expect_same(plain, resumed,
                "resumed at task " + std::to_string(position.task) + " iteration " +
                    std::to_string(position.next_iter) + (position.evaluated ? " (task end)" : ""));
  }
  // A stop request: the checkpoint it writes resumes to the same end.
  const Outcome stopped = train(method, semi, true, nullptr, 17);
  ASSERT_FALSE(stopped.checkpoints.empty());
  const auto& [position, bytes] = stopped.checkpoints.back();
  EXPECT_EQ(position.task, 1);
  EXPECT_EQ(position.next_iter, 5);
  expect_same(plain, train(method, semi, false, &bytes), "resumed after a stop request");
}

class ResumeEveryMethod : public ::testing::TestWithParam<std::string> {};

TEST_P(ResumeEveryMethod, ResumedRunEndsExactlyAsTheUninterruptedOne) { check_resumes(GetParam()); }

INSTANTIATE_TEST_SUITE_P(AllRegistered, ResumeEveryMethod, ::testing::ValuesIn(MethodRegistry::get().names()));

class ResumeDerWithEveryLoss : public ::testing::TestWithParam<std::string> {};

TEST_P(ResumeDerWithEveryLoss, ResumedRunEndsExactlyAsTheUninterruptedOne) { check_resumes("der", GetParam()); }

INSTANTIATE_TEST_SUITE_P(AllLosses, ResumeDerWithEveryLoss, ::testing::ValuesIn(SemiLossRegistry::get().names()));

// Active learning: the labels revealed before the checkpoint and the rounds'
// records come back; the rounds after it run as they would have.
TEST(Resume, QueriedLabelsAndRoundRecordsSurviveAResume) {
  const std::string active = "[active]\nstrategy = \"entropy\"\nbudget_per_task = 3\nwarmup_iters = 2\n";
  const Outcome plain = train("der", "", false, nullptr, -1, active);
  ASSERT_EQ(plain.queries.size(), 2u);
  const Outcome with = train("der", "", true, nullptr, -1, active);
  expect_same(plain, with, "taking checkpoints changed the run");
  for (size_t i : {0u, 2u, 3u}) {  // before task 0's round; after it; after task 1's round
    const Outcome resumed = train("der", "", false, &with.checkpoints.at(i).second, -1, active);
    expect_same(plain, resumed, "resumed from checkpoint " + std::to_string(i));
  }
}

TEST(Resume, DamagedOrForeignCheckpointsAreIoErrors) {
  const Outcome with = train("der", "", true, nullptr);
  ASSERT_FALSE(with.checkpoints.empty());
  std::string damaged = with.checkpoints.front().second;
  damaged.resize(damaged.size() / 2);
  EXPECT_THROW(train("der", "", false, &damaged), IoError);
  try {
    train("er", "", false, &with.checkpoints.front().second);
    ADD_FAILURE() << "a DER checkpoint was taken by ER";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("of method 'der', this run's is 'er'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sscl
