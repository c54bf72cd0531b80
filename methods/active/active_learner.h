// Active learning within each task: the task starts with its seed set (the split's
// data.labels_per_class labeled images per class), the method trains on it for
// `warmup_iters` iterations, then a query strategy chooses unlabeled images of the
// task, an oracle labels them and they join the labeled set; `rounds` rounds,
// `iters_between_rounds` apart, share the task's budget. Training then goes on
// with every label revealed so far.
//
// No peeking: the learner reaches the data through TaskData, which gives the
// unlabeled pool's images and never their labels; the strategies see model
// outputs only; labels come from the Oracle, for the chosen images only.
//
// The query runs inside the iteration at which it happens (before its batch is
// drawn), so its time counts in that iteration's ms (the mean moves, the median
// does not); its total is reported as query_s.
//
// A run has it when its config has an [active] table: the run builder builds the
// SectionHookRegistry entry "active" from that table and the run's HookContext.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/hook.h"
#include "core/method.h"
#include "core/options.h"
#include "methods/active/oracle.h"
#include "methods/active/query_strategies.h"

namespace sscl {

enum class QbcMeasure { kVoteEntropy, kAverageKl };

struct ActiveOptions {
  QueryStrategy strategy = QueryStrategy::kRandom;  // required in [active]
  // The labels queried per task: budget_per_task, or budget_per_class x the task's
  // classes (rounded to the nearest integer); exactly one is given.
  std::optional<int64_t> budget_per_task;
  std::optional<double> budget_per_class;
  int rounds = 1;
  int64_t warmup_iters = 100;          // iterations on the seed set before round 0
  int64_t iters_between_rounds = 100;  // from one round to the next
  int64_t pool_size = 0;               // candidates per round: a seeded random subset; 0 = the whole pool
  // QBC (query by bagging): committee_size copies of the current model, each
  // trained committee_iters SGD steps on a bootstrap resample of the task's labeled
  // images (weak views) before voting.
  int committee_size = 3;
  int64_t committee_iters = 20;
  double committee_lr = 0.01;
  QbcMeasure qbc_measure = QbcMeasure::kVoteEntropy;
  std::string oracle = "ground_truth";  // ground_truth | teacher
  std::string teacher;                  // a finished run directory, for oracle = "teacher"

  // The keys of the [active] table.
  static void declare(OptionSpec<ActiveOptions>& o);
  int64_t budget(int64_t task_classes) const;
  // "4 label(s) per task" or "2.5 label(s) per class on average".
  std::string budget_text() const;
  // Iteration of round r.
  int64_t round_iter(int round) const { return warmup_iters + round * iters_between_rounds; }
};

// One round's query: what was asked and what the oracle answered.
struct QueryRecord {
  int task = 0;
  int round = 0;
  int64_t iter = 0;
  int64_t candidates = 0;
  std::vector<int64_t> ids;     // chosen, in the order the strategy chose them
  std::vector<int64_t> labels;  // the oracle's answers
  std::string oracle;
  bool model_given = false;
  double seconds = 0;  // scoring, choosing and labeling
};

class ActiveLearner : public Hook {
 public:
  // Throws ConfigError (naming the active.* key) when the method cannot take labels
  // mid-task or lacks what the strategy needs, or when a round falls outside a task
  // of `iters_of_task` iterations.
  ActiveLearner(ActiveOptions options, Method& method, TaskData& data, std::unique_ptr<Oracle> oracle,
                const std::vector<int64_t>& iters_of_task);

  std::string hook_name() const override { return "active_learning"; }
  int priority() const override { return kHighest; }
  // Logs describe() (the run's log file is open by then).
  void before_run(const RunState& state) override;
  void before_iter(const RunState& state) override;
  // The rounds' records (the labels themselves live in the task data).
  void visit_state(StateVisitor& s) override;

  // One line for the run's log: strategy, budget, rounds and their iterations, oracle.
  std::string describe() const;

  // One round on `task`: chooses up to `count` images of its unlabeled pool, has
  // the oracle label them and adds them to the task's labeled set.
  QueryRecord query(int task, int round, int64_t count, int64_t iter = 0);
  // The ids a round would choose, without labeling them (the strategy alone).
  std::vector<int64_t> choose(int task, int round, int64_t count);

  const ActiveOptions& options() const { return options_; }
  const Oracle& oracle() const { return *oracle_; }
  const std::vector<QueryRecord>& records() const { return records_; }
  // Labeled images each task started with (its seed set), by task.
  const std::vector<int64_t>& seed_labels() const { return seed_labels_; }

 private:
  // The classes the probabilities are over: the task's (task-IL) or every class
  // seen so far (class-IL).
  std::vector<int64_t> query_classes(int task) const;
  at::Tensor images(const std::vector<int64_t>& ids) const;  // plain views, on the device
  // fn (without gradient) over the plain images of `ids` in chunks, concatenated on the CPU.
  at::Tensor over_chunks(const std::vector<int64_t>& ids, const std::function<at::Tensor(const at::Tensor&)>& fn) const;
  at::Tensor probabilities(const std::vector<int64_t>& ids, int task);
  at::Tensor features(const std::vector<int64_t>& ids);
  at::Tensor committee_probabilities(const std::vector<int64_t>& ids, int task, int round);

  ActiveOptions options_;
  Method& method_;
  TaskData& data_;
  std::unique_ptr<Oracle> oracle_;
  std::vector<int64_t> iters_of_task_;
  std::vector<QueryRecord> records_;
  std::vector<int64_t> seed_labels_;
};

}  // namespace sscl
