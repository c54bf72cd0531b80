#include "methods/active/active_learner.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/hook_registry.h"
#include "core/logging.h"
#include "core/random.h"
#include "methods/common/model_copy.h"
#include "methods/common/scoped_torch_seed.h"

namespace sscl {

namespace {

constexpr int64_t kActiveChunk = 256;

at::Tensor active_ids_tensor(const std::vector<int64_t>& ids) {
  return at::tensor(at::ArrayRef<int64_t>(ids), at::kLong);
}

std::vector<int64_t> active_tensor_values(const at::Tensor& t) {
  const auto c = t.to(at::kLong).cpu().contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

// Eval mode for the scope, then the mode the model had.
class ActiveEvalScope {
 public:
  explicit ActiveEvalScope(Classifier& model) : model_(model), was_training_(model->is_training()) { model_->eval(); }
  ~ActiveEvalScope() { model_->train(was_training_); }

 private:
  Classifier& model_;
  bool was_training_;
};

}  // namespace

void ActiveOptions::declare(OptionSpec<ActiveOptions>& o) {
  o.choice("strategy", &ActiveOptions::strategy, query_strategy_choices(),
           "which images of the task's unlabeled pool get labels (required)");
  o.key("budget_per_task", &ActiveOptions::budget_per_task, "labels queried per task (or budget_per_class)").min(0);
  o.key("budget_per_class", &ActiveOptions::budget_per_class,
        "labels queried per class of the task, rounded per task (or budget_per_task)")
      .min(0);
  o.key("rounds", &ActiveOptions::rounds, "query rounds per task, sharing its budget").above(0);
  o.key("warmup_iters", &ActiveOptions::warmup_iters, "iterations on the seed set before round 0").min(0);
  o.key("iters_between_rounds", &ActiveOptions::iters_between_rounds, "iterations from one round to the next");
  o.key("pool_size", &ActiveOptions::pool_size, "candidates per round, a seeded random subset; 0: the whole pool")
      .min(0);
  o.key("committee_size", &ActiveOptions::committee_size, "qbc: members of the committee")
      .check([](const int& n) { return n >= 2; }, "must be >= 2 (a committee of one cannot disagree)");
  o.key("committee_iters", &ActiveOptions::committee_iters,
        "qbc: SGD steps of each member on its bootstrap resample of the labeled images")
      .min(0);
  o.key("committee_lr", &ActiveOptions::committee_lr, "qbc: the members' learning rate").above(0);
  o.choice("qbc_measure", &ActiveOptions::qbc_measure,
           {{"vote_entropy", QbcMeasure::kVoteEntropy}, {"kl", QbcMeasure::kAverageKl}},
           "qbc: the committee's disagreement, vote entropy (ties broken by the average KL) or the average KL");
  o.key("oracle", &ActiveOptions::oracle,
        "who labels the chosen images: the dataset's labels or a teacher model of a finished run")
      .one_of({"ground_truth", "teacher"});
  o.key("teacher", &ActiveOptions::teacher, "the finished run directory of the teacher (oracle = \"teacher\")");
  o.rule([](const ActiveOptions& v, const ConfigSection& s) {
    if (!s.has("strategy")) {
      std::string all;
      for (const auto& n : query_strategy_names()) all += (all.empty() ? "" : ", ") + n;
      s.fail("strategy", "is required when [active] is given (one of " + all + ")");
    }
    if (v.budget_per_task.has_value() == v.budget_per_class.has_value())
      s.fail("budget_per_task", "give exactly one of budget_per_task and budget_per_class");
    if (v.iters_between_rounds <= 0 && v.rounds > 1) s.fail("iters_between_rounds", "must be > 0 with several rounds");
    if (v.oracle == "teacher" && v.teacher.empty()) s.fail("teacher", "oracle = \"teacher\" needs a run directory");
    if (v.oracle != "teacher" && !v.teacher.empty()) s.fail("teacher", "is only read with oracle = \"teacher\"");
  });
}

int64_t ActiveOptions::budget(int64_t task_classes) const {
  if (budget_per_task) return *budget_per_task;
  return static_cast<int64_t>(std::llround(budget_per_class.value_or(0.0) * static_cast<double>(task_classes)));
}

std::string ActiveOptions::budget_text() const {
  return budget_per_task ? fmt::format("{} label(s) per task", *budget_per_task)
                         : fmt::format("{} label(s) per class on average", budget_per_class.value_or(0.0));
}

ActiveLearner::ActiveLearner(ActiveOptions options, Method& method, TaskData& data, std::unique_ptr<Oracle> oracle,
                             const std::vector<int64_t>& iters_of_task)
    : options_(std::move(options)),
      method_(method),
      data_(data),
      oracle_(std::move(oracle)),
      iters_of_task_(iters_of_task) {
  check<Error>(oracle_ != nullptr, "active learning needs an oracle");
  if (!method_.traits().accepts_labels_mid_task)
    throw ConfigError("active.strategy: method '" + method_.name() +
                      "' gathers each task's labeled images at the task's start, so labels queried during the "
                      "task would never reach it");
  const auto s = options_.strategy;
  if ((s == QueryStrategy::kQbc || s == QueryStrategy::kCoreSet || s == QueryStrategy::kBadge) &&
      !method_.traits().single_network)
    throw ConfigError("active.strategy = \"" + to_string(s) + "\" copies the model or reads its features, but '" +
                      method_.name() +
                      "' predicts with more than the model (use random, least_confidence, margin "
                      "or entropy)");
  const int64_t last = options_.round_iter(options_.rounds - 1);
  for (size_t t = 0; t < iters_of_task_.size(); ++t)
    if (last >= iters_of_task_[t])
      throw ConfigError("active.warmup_iters / iters_between_rounds: the last round would run at iteration " +
                        std::to_string(last) + " but task " + std::to_string(t) + " has " +
                        std::to_string(iters_of_task_[t]) + " iterations");
  for (int t = 0; t < data_.num_tasks(); ++t) seed_labels_.push_back(data_.labeled_set(t).ids.numel());
}

void ActiveLearner::before_run(const RunState&) { get_logger("active")->info("{}", describe()); }

std::string ActiveLearner::describe() const {
  const ActiveOptions& o = options_;
  std::string iters;
  for (int r = 0; r < o.rounds; ++r) iters += (r ? ", " : "") + std::to_string(o.round_iter(r));
  return fmt::format(
      "active learning: {} queries {} in {} round(s) at iteration(s) {} of each task, from {}; "
      "labels by {}",
      to_string(o.strategy), o.budget_text(), o.rounds, iters,
      o.pool_size > 0 ? fmt::format("{} random candidates", o.pool_size) : "the whole pool", oracle_->name());
}

void ActiveLearner::before_iter(const RunState& state) {
  for (int r = 0; r < options_.rounds; ++r) {
    if (state.iter != options_.round_iter(r)) continue;
    const int64_t budget = options_.budget(static_cast<int64_t>(data_.classes(state.task).size()));
    const int64_t share = budget / options_.rounds + (r < budget % options_.rounds ? 1 : 0);
    const auto& record = query(state.task, r, share, state.iter);
    get_logger("active")->info(
        "task {} round {} (iteration {}): {} chose {} of {} candidates, labeled by {} in {:.2f} s", state.task, r,
        state.iter, to_string(options_.strategy), record.ids.size(), record.candidates, record.oracle, record.seconds);
  }
}

void ActiveLearner::visit_state(StateVisitor& s) {
  std::string text;  // the records as JSON
  if (!s.loading()) {
    auto records = nlohmann::json::array();
    for (const auto& r : records_)
      records.push_back({{"task", r.task},
                         {"round", r.round},
                         {"iter", r.iter},
                         {"candidates", r.candidates},
                         {"ids", r.ids},
                         {"labels", r.labels},
                         {"oracle", r.oracle},
                         {"model_given", r.model_given},
                         {"seconds", r.seconds}});
    text = records.dump();
  }
  s("records", text);
  if (!s.loading()) return;
  records_.clear();
  for (const auto& j : nlohmann::json::parse(text)) {
    QueryRecord r;
    r.task = j.at("task");
    r.round = j.at("round");
    r.iter = j.at("iter");
    r.candidates = j.at("candidates");
    r.ids = j.at("ids").get<std::vector<int64_t>>();
    r.labels = j.at("labels").get<std::vector<int64_t>>();
    r.oracle = j.at("oracle");
    r.model_given = j.at("model_given");
    r.seconds = j.at("seconds");
    records_.push_back(std::move(r));
  }
}

QueryRecord ActiveLearner::query(int task, int round, int64_t count, int64_t iter) {
  const auto start = std::chrono::steady_clock::now();
  QueryRecord record;
  record.task = task;
  record.round = round;
  record.iter = iter;
  record.ids = choose(task, round, count);
  const auto pool = static_cast<int64_t>(data_.unlabeled_ids(task).size());
  record.candidates = options_.pool_size > 0 ? std::min(options_.pool_size, pool) : pool;
  auto ids = active_ids_tensor(record.ids);
  auto labels = oracle_->annotate(ids, data_.classes(task)).to(at::kLong).cpu();
  if (World& world = method_.world(); world.distributed()) {
    // Every rank chose and labeled alike; rank 0's ids and labels are taken all
    // the same, so that a rank that rounds differently (another CPU) cannot
    // reveal other labels. The count first: a broadcast needs equal shapes.
    std::vector<at::Tensor> count_of_main{at::full({1}, ids.numel(), at::kLong)};
    world.broadcast(count_of_main, 0);
    check<Error>(count_of_main[0].item<int64_t>() == ids.numel(),
                 "active learning: rank " + std::to_string(world.rank()) + " chose " + std::to_string(ids.numel()) +
                     " image(s) in round " + std::to_string(round) + " of task " + std::to_string(task) + ", rank 0 " +
                     std::to_string(count_of_main[0].item<int64_t>()) + " (their pools differ)");
    std::vector<at::Tensor> chosen{ids, labels};
    world.broadcast(chosen, 0);
    ids = chosen[0];
    labels = chosen[1];
    record.ids = active_tensor_values(ids);
  }
  data_.add_labels(task, ids, labels);
  record.labels = active_tensor_values(labels);
  record.oracle = oracle_->name();
  record.model_given = oracle_->model_given();
  record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  records_.push_back(record);
  return record;
}

std::vector<int64_t> ActiveLearner::choose(int task, int round, int64_t count) {
  const uint64_t seed = method_.context().seed;
  const auto t = static_cast<uint64_t>(task), r = static_cast<uint64_t>(round);
  std::vector<int64_t> candidates = data_.unlabeled_ids(task);
  if (options_.pool_size > 0 && options_.pool_size < static_cast<int64_t>(candidates.size())) {
    Rng rng(stream_seed(seed, "active.candidates", t, r));
    candidates = rng.sample(candidates, static_cast<size_t>(options_.pool_size));
    std::sort(candidates.begin(), candidates.end());
  }
  const auto n = static_cast<int64_t>(candidates.size());
  const int64_t k = std::clamp<int64_t>(count, 0, n);
  if (k == 0) return {};
  Rng rng(stream_seed(seed, "active.choice", t, r));
  std::vector<int64_t> rows;
  switch (options_.strategy) {
    case QueryStrategy::kRandom: rows = select_random(n, k, rng); break;
    case QueryStrategy::kLeastConfidence:
      rows = select_top_k(least_confidence_scores(probabilities(candidates, task)), k);
      break;
    case QueryStrategy::kMargin: rows = select_top_k(margin_scores(probabilities(candidates, task)), k); break;
    case QueryStrategy::kEntropy: rows = select_top_k(entropy_scores(probabilities(candidates, task)), k); break;
    case QueryStrategy::kQbc: {
      const auto committee = committee_probabilities(candidates, task, round);
      // Vote entropy takes few values, so its ties are broken by the average KL.
      const auto kl = average_kl_scores(committee);
      rows = options_.qbc_measure == QbcMeasure::kAverageKl ? select_top_k(kl, k)
                                                            : select_top_k(vote_entropy_scores(committee), k, kl);
      break;
    }
    case QueryStrategy::kCoreSet:
      rows =
          select_k_center_greedy(features(candidates), features(active_tensor_values(data_.labeled_set(task).ids)), k);
      break;
    case QueryStrategy::kBadge:
      rows = select_kmeans_pp(badge_embeddings(probabilities(candidates, task), features(candidates)), k, rng);
      break;
  }
  std::vector<int64_t> out;
  for (int64_t row : rows) out.push_back(candidates[static_cast<size_t>(row)]);
  return out;
}

std::vector<int64_t> ActiveLearner::query_classes(int task) const {
  if (method_.context().scenario == Scenario::kTaskIL) return data_.classes(task);
  // Every class seen so far, once each (in domain-IL every task brings them all again).
  std::vector<int64_t> out;
  for (int t = 0; t <= task; ++t)
    for (int64_t c : data_.classes(t))
      if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
  return out;
}

at::Tensor ActiveLearner::images(const std::vector<int64_t>& ids) const {
  return data_.views(data_.raw_images(active_ids_tensor(ids)), View::kPlain, 0).to(method_.context().device);
}

at::Tensor ActiveLearner::over_chunks(const std::vector<int64_t>& ids,
                                      const std::function<at::Tensor(const at::Tensor&)>& fn) const {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> out;
  for (size_t start = 0; start < ids.size(); start += kActiveChunk) {
    const std::vector<int64_t> chunk(ids.begin() + start, ids.begin() + std::min(ids.size(), start + kActiveChunk));
    out.push_back(fn(images(chunk)).cpu());
  }
  return out.empty() ? at::Tensor() : at::cat(out);
}

at::Tensor ActiveLearner::probabilities(const std::vector<int64_t>& ids, int task) {
  ActiveEvalScope eval(method_.model());
  const auto columns = active_ids_tensor(query_classes(task)).to(method_.context().device);
  return over_chunks(ids, [&](const at::Tensor& x) { return method_.predict(x).index_select(1, columns).softmax(1); });
}

at::Tensor ActiveLearner::features(const std::vector<int64_t>& ids) {
  ActiveEvalScope eval(method_.model());
  return over_chunks(ids, [&](const at::Tensor& x) { return method_.model()->features(x).flatten(1); });
}

at::Tensor ActiveLearner::committee_probabilities(const std::vector<int64_t>& ids, int task, int round) {
  const MethodContext& context = method_.context();
  const auto classes = query_classes(task);
  const auto columns = active_ids_tensor(classes).to(context.device);
  // Position of each global class among the query classes, for the targets.
  auto position = at::full({data_.num_classes()}, -1, at::kLong);
  for (size_t i = 0; i < classes.size(); ++i) position[classes[i]] = static_cast<int64_t>(i);
  const LabeledSet labeled = data_.labeled_set(task);
  check<Error>(labeled.ids.numel() > 0, "qbc: task " + std::to_string(task) + " has no labeled image to train on");
  const int64_t batch = std::max<int64_t>(context.batch_size, 1);

  std::vector<at::Tensor> members;
  const int64_t n = labeled.ids.numel();
  for (int m = 0; m < options_.committee_size; ++m) {
    const auto member_seed = stream_seed(context.seed, "active.committee", task, round, m);
    // Bagging: each member trains on its own bootstrap resample of the labeled set.
    Rng bag_rng(member_seed);
    std::vector<int64_t> bag(static_cast<size_t>(n));
    for (auto& row : bag) row = static_cast<int64_t>(bag_rng.below(static_cast<uint64_t>(n)));
    Classifier member{nullptr};
    {
      ScopedTorchSeed seeded(member_seed);  // the copy's fresh layers draw here, not from the run's generator
      member = trainable_copy(method_.model(), context);
    }
    torch::optim::SGD sgd(member->parameters(), torch::optim::SGDOptions(options_.committee_lr).momentum(0.9));
    for (int64_t it = 0; it < options_.committee_iters; ++it) {
      const uint64_t step_seed = derive_seed(member_seed, {static_cast<uint64_t>(it)});
      Rng rng(step_seed);
      std::vector<int64_t> rows(static_cast<size_t>(batch));
      for (auto& row : rows) row = bag[rng.below(bag.size())];
      const auto picked = active_ids_tensor(rows);
      const auto x =
          data_.views(data_.raw_images(labeled.ids.index_select(0, picked)), View::kWeak, step_seed).to(context.device);
      const auto y = position.index_select(0, labeled.labels.index_select(0, picked).cpu()).to(context.device);
      const auto loss = torch::nn::functional::cross_entropy(member->forward(x).index_select(1, columns), y);
      sgd.zero_grad();
      loss.backward();
      sgd.step();
    }
    member->eval();
    members.push_back(
        over_chunks(ids, [&](const at::Tensor& x) { return member->forward(x).index_select(1, columns).softmax(1); }));
  }
  return at::stack(members);
}

namespace {

// The "active" entry: the oracle (the ground truth, from the task data's hidden
// labels, or a teacher run), then the learner, which refuses what cannot work.
std::shared_ptr<Hook> make_active_learner(const ActiveOptions& o, const HookContext& context) {
  check<Error>(context.method != nullptr && context.data != nullptr,
               "active learning needs the run's method and task data");
  std::unique_ptr<Oracle> oracle;
  if (o.oracle == "teacher") {
    oracle = TeacherOracle::load(o.teacher, *context.data, context.device);
  } else {
    const auto* hidden = dynamic_cast<const HiddenLabels*>(context.data);
    if (hidden == nullptr)
      throw ConfigError(
          "active.oracle = \"ground_truth\": this task sequence keeps no labels of its unlabeled images for an "
          "oracle to reveal; use oracle = \"teacher\"");
    oracle = std::make_unique<GroundTruthOracle>(hidden->hidden_train_labels());
  }
  return std::make_shared<ActiveLearner>(o, *context.method, *context.data, std::move(oracle), context.task_iters);
}

SSCL_REGISTER_OPTIONS(SectionHookRegistry, "active",
                      "Active learning: queries labels for chosen unlabeled images of each task, in rounds",
                      ActiveOptions{}, make_active_learner);

}  // namespace
}  // namespace sscl
