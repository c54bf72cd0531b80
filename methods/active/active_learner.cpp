#include "methods/active/active_learner.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/logging.h"
#include "core/random.h"
#include "methods/common/model_copy.h"
#include "methods/common/scoped_torch_seed.h"

namespace sscl {

namespace {

constexpr int64_t kChunk = 256;

at::Tensor ids_tensor(const std::vector<int64_t>& ids) { return at::tensor(at::ArrayRef<int64_t>(ids), at::kLong); }

std::vector<int64_t> tensor_values(const at::Tensor& t) {
  const auto c = t.to(at::kLong).cpu().contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

// Eval mode for the scope, then the mode the model had.
class EvalScope {
 public:
  explicit EvalScope(Classifier& model) : model_(model), was_training_(model->is_training()) { model_->eval(); }
  ~EvalScope() { model_->train(was_training_); }

 private:
  Classifier& model_;
  bool was_training_;
};

}  // namespace

ActiveOptions ActiveOptions::from_config(const ConfigSection& s) {
  ActiveOptions o;
  const auto names = query_strategy_names();
  if (!s.has("strategy")) {
    std::string all;
    for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
    s.fail("strategy", "is required when [active] is given (one of " + all + ")");
  }
  o.strategy = parse_query_strategy(s.get_choice("strategy", "random", names));
  const bool per_task = s.has("budget_per_task"), per_class = s.has("budget_per_class");
  if (per_task == per_class) s.fail("budget_per_task", "give exactly one of budget_per_task and budget_per_class");
  if (per_task) o.budget_per_task = s.get<int64_t>("budget_per_task");
  if (per_class) o.budget_per_class = s.get<double>("budget_per_class");
  if (per_task && o.budget_per_task < 0) s.fail("budget_per_task", "must be >= 0");
  if (per_class && !(o.budget_per_class >= 0)) s.fail("budget_per_class", "must be >= 0");
  o.rounds = s.get_or("rounds", o.rounds);
  o.warmup_iters = s.get_or("warmup_iters", o.warmup_iters);
  o.iters_between_rounds = s.get_or("iters_between_rounds", o.iters_between_rounds);
  o.pool_size = s.get_or("pool_size", o.pool_size);
  o.committee_size = s.get_or("committee_size", o.committee_size);
  o.committee_iters = s.get_or("committee_iters", o.committee_iters);
  o.committee_lr = s.get_or("committee_lr", o.committee_lr);
  const auto measure = s.get_choice("qbc_measure", "vote_entropy", {"vote_entropy", "kl"});
  o.qbc_measure = measure == "kl" ? QbcMeasure::kAverageKl : QbcMeasure::kVoteEntropy;
  o.oracle = s.get_choice("oracle", o.oracle, {"ground_truth", "teacher"});
  o.teacher = s.get_or("teacher", o.teacher);
  if (o.rounds <= 0) s.fail("rounds", "must be > 0");
  if (o.warmup_iters < 0) s.fail("warmup_iters", "must be >= 0");
  if (o.iters_between_rounds <= 0 && o.rounds > 1) s.fail("iters_between_rounds", "must be > 0 with several rounds");
  if (o.pool_size < 0) s.fail("pool_size", "must be >= 0 (0: the whole pool)");
  if (o.committee_size < 2) s.fail("committee_size", "must be >= 2 (a committee of one cannot disagree)");
  if (o.committee_iters < 0) s.fail("committee_iters", "must be >= 0");
  if (!(o.committee_lr > 0)) s.fail("committee_lr", "must be > 0");
  if (o.oracle == "teacher" && o.teacher.empty()) s.fail("teacher", "oracle = \"teacher\" needs a run directory");
  if (o.oracle != "teacher" && !o.teacher.empty()) s.fail("teacher", "is only read with oracle = \"teacher\"");
  return o;
}

int64_t ActiveOptions::budget(int64_t task_classes) const {
  if (budget_per_task >= 0) return budget_per_task;
  return static_cast<int64_t>(std::llround(budget_per_class * static_cast<double>(task_classes)));
}

ActiveLearner::ActiveLearner(ActiveOptions options, Method& method, TaskData& data, std::unique_ptr<Oracle> oracle,
                             const std::vector<int64_t>& iters_of_task)
    : options_(std::move(options)),
      method_(method),
      data_(data),
      oracle_(std::move(oracle)),
      iters_of_task_(iters_of_task) {
  check<Error>(oracle_ != nullptr, "active learning needs an oracle");
  if (!method_.accepts_labels_mid_task())
    throw ConfigError("active.strategy: method '" + method_.name() +
                      "' gathers each task's labeled images at the task's start, so labels queried during the "
                      "task would never reach it");
  const auto s = options_.strategy;
  if ((s == QueryStrategy::kQbc || s == QueryStrategy::kCoreSet || s == QueryStrategy::kBadge) &&
      !method_.single_network())
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

void ActiveLearner::save_state(torch::serialize::OutputArchive& archive) const {
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
  archive.write("records", c10::IValue(records.dump()));
}

void ActiveLearner::load_state(torch::serialize::InputArchive& archive) {
  c10::IValue text;
  archive.read("records", text);
  records_.clear();
  for (const auto& j : nlohmann::json::parse(text.toStringRef())) {
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
  const auto ids = ids_tensor(record.ids);
  const auto labels = oracle_->annotate(ids, data_.classes(task));
  data_.add_labels(task, ids, labels);
  record.labels = tensor_values(labels);
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
      rows = select_k_center_greedy(features(candidates), features(tensor_values(data_.labeled_set(task).ids)), k);
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
  std::vector<int64_t> out;
  for (int t = 0; t <= task; ++t) out.insert(out.end(), data_.classes(t).begin(), data_.classes(t).end());
  return out;
}

at::Tensor ActiveLearner::images(const std::vector<int64_t>& ids) const {
  return data_.views(data_.raw_images(ids_tensor(ids)), View::kPlain, 0).to(method_.context().device);
}

at::Tensor ActiveLearner::over_chunks(const std::vector<int64_t>& ids,
                                      const std::function<at::Tensor(const at::Tensor&)>& fn) const {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> out;
  for (size_t start = 0; start < ids.size(); start += kChunk) {
    const std::vector<int64_t> chunk(ids.begin() + start, ids.begin() + std::min(ids.size(), start + kChunk));
    out.push_back(fn(images(chunk)).cpu());
  }
  return out.empty() ? at::Tensor() : at::cat(out);
}

at::Tensor ActiveLearner::probabilities(const std::vector<int64_t>& ids, int task) {
  EvalScope eval(method_.model());
  const auto columns = ids_tensor(query_classes(task)).to(method_.context().device);
  return over_chunks(ids, [&](const at::Tensor& x) { return method_.predict(x).index_select(1, columns).softmax(1); });
}

at::Tensor ActiveLearner::features(const std::vector<int64_t>& ids) {
  EvalScope eval(method_.model());
  return over_chunks(ids, [&](const at::Tensor& x) { return method_.model()->features(x).flatten(1); });
}

at::Tensor ActiveLearner::committee_probabilities(const std::vector<int64_t>& ids, int task, int round) {
  const MethodContext& context = method_.context();
  const auto classes = query_classes(task);
  const auto columns = ids_tensor(classes).to(context.device);
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
      const auto picked = ids_tensor(rows);
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

}  // namespace sscl
