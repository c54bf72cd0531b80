// What results.json says about an active-learning run (the log line is the
// learner's own, ActiveLearner::describe).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/task_data.h"
#include "methods/active/active_learner.h"

namespace sscl {

// results.json's "active_learning": the options, per task the seed set, the queried
// and the total labeled count, every round's chosen ids and the oracle's labels.
// For a model-given oracle it adds how many of its labels were wrong, measured
// against the dataset's labels after the run (an evaluation figure: the learner
// never sees it).
nlohmann::json active_learning_json(const ActiveLearner& active, const TaskData& data);

}  // namespace sscl
