#include "tools/active_summary.h"

namespace sscl {

nlohmann::json active_learning_json(const ActiveLearner& active, const TaskData& tasks) {
  const ActiveOptions& o = active.options();
  nlohmann::json j;
  j["strategy"] = to_string(o.strategy);
  j["budget"] = o.budget_text();
  j["rounds"] = o.rounds;
  j["warmup_iters"] = o.warmup_iters;
  j["iters_between_rounds"] = o.iters_between_rounds;
  j["pool_size"] = o.pool_size;
  j["oracle"] = active.oracle().name();
  j["model_given"] = active.oracle().model_given();
  j["labels_revealed_by_oracle"] = active.oracle().revealed();

  // The dataset's labels, to count a model-given oracle's mistakes after the run.
  const auto* hidden = dynamic_cast<const HiddenLabels*>(&tasks);
  const at::Tensor truth_labels = hidden ? hidden->hidden_train_labels() : at::Tensor();
  double query_s = 0;
  int64_t wrong_total = 0;
  nlohmann::json queries = nlohmann::json::array();
  std::vector<int64_t> queried(static_cast<size_t>(tasks.num_tasks()), 0);
  for (const QueryRecord& q : active.records()) {
    nlohmann::json entry{
        {"task", q.task},      {"round", q.round},   {"iter", q.iter},     {"candidates", q.candidates},
        {"ids", q.ids},        {"labels", q.labels}, {"oracle", q.oracle}, {"model_given", q.model_given},
        {"seconds", q.seconds}};
    if (q.model_given && truth_labels.defined()) {
      const auto truth = truth_labels.accessor<int64_t, 1>();
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
                        {"labeled", tasks.labeled_set(t).ids.numel()}});
  }
  j["tasks"] = per_task;
  j["queries"] = queries;
  j["query_s"] = query_s;
  if (active.oracle().model_given()) j["wrong_labels"] = wrong_total;
  return j;
}

}  // namespace sscl
