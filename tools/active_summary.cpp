#include "tools/active_summary.h"

#include <fmt/format.h>

namespace sscl {

namespace {

std::string budget_text(const ActiveOptions& o) {
  return o.budget_per_task >= 0 ? fmt::format("{} label(s) per task", o.budget_per_task)
                                : fmt::format("{} label(s) per class on average", o.budget_per_class);
}

}  // namespace

std::string describe(const ActiveLearner& active) {
  const ActiveOptions& o = active.options();
  std::string iters;
  for (int r = 0; r < o.rounds; ++r) iters += (r ? ", " : "") + std::to_string(o.round_iter(r));
  return fmt::format(
      "active learning: {} queries {} in {} round(s) at iteration(s) {} of each task, from {}; "
      "labels by {}",
      to_string(o.strategy), budget_text(o), o.rounds, iters,
      o.pool_size > 0 ? fmt::format("{} random candidates", o.pool_size) : "the whole pool", active.oracle().name());
}

nlohmann::json active_learning_json(const ActiveLearner& active, const SplitSemiTasks& tasks) {
  const ActiveOptions& o = active.options();
  nlohmann::json j;
  j["strategy"] = to_string(o.strategy);
  j["budget"] = budget_text(o);
  j["rounds"] = o.rounds;
  j["warmup_iters"] = o.warmup_iters;
  j["iters_between_rounds"] = o.iters_between_rounds;
  j["pool_size"] = o.pool_size;
  j["oracle"] = active.oracle().name();
  j["model_given"] = active.oracle().model_given();
  j["labels_revealed_by_oracle"] = active.oracle().revealed();

  const auto truth = tasks.data().train->labels.accessor<int64_t, 1>();
  double query_s = 0;
  int64_t wrong_total = 0;
  nlohmann::json queries = nlohmann::json::array();
  std::vector<int64_t> queried(static_cast<size_t>(tasks.num_tasks()), 0);
  for (const QueryRecord& q : active.records()) {
    nlohmann::json entry{
        {"task", q.task},      {"round", q.round},   {"iter", q.iter},     {"candidates", q.candidates},
        {"ids", q.ids},        {"labels", q.labels}, {"oracle", q.oracle}, {"model_given", q.model_given},
        {"seconds", q.seconds}};
    if (q.model_given) {
      int64_t wrong = 0;
      for (size_t i = 0; i < q.ids.size(); ++i) wrong += truth[q.ids[i]] != q.labels[i];
      entry["wrong_labels"] = wrong;
      wrong_total += wrong;
    }
    queries.push_back(entry);
    queried[static_cast<size_t>(q.task)] += static_cast<int64_t>(q.ids.size());
    query_s += q.seconds;
  }
  nlohmann::json per_task = nlohmann::json::array();
  for (int t = 0; t < tasks.num_tasks(); ++t) {
    const auto seed = active.seed_labels().at(static_cast<size_t>(t));
    per_task.push_back({{"task", t},
                        {"seed_labels", seed},
                        {"queried_labels", queried[static_cast<size_t>(t)]},
                        {"labeled", static_cast<int64_t>(tasks.indices(t).labeled.size())}});
  }
  j["tasks"] = per_task;
  j["queries"] = queries;
  j["query_s"] = query_s;
  if (active.oracle().model_given()) j["wrong_labels"] = wrong_total;
  return j;
}

}  // namespace sscl
