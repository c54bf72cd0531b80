// What results.json and the log say about an active-learning run.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "methods/active/active_learner.h"
#include "tasks/split_semi_tasks.h"

namespace sscl {

// One log line: strategy, budget, rounds and their iterations, oracle.
std::string describe(const ActiveLearner& active);

// results.json's "active_learning": the options, per task the seed set, the queried
// and the total labeled count, every round's chosen ids and the oracle's labels.
// For a model-given oracle it adds how many of its labels were wrong, measured
// against the dataset's labels after the run (an evaluation figure: the learner
// never sees it).
nlohmann::json active_learning_json(const ActiveLearner& active, const SplitSemiTasks& tasks);

}  // namespace sscl
