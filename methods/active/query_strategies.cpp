#include "methods/active/query_strategies.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace sscl {

namespace {

const std::vector<std::pair<QueryStrategy, std::string>>& strategy_names() {
  static const std::vector<std::pair<QueryStrategy, std::string>> names{
      {QueryStrategy::kRandom, "random"}, {QueryStrategy::kLeastConfidence, "least_confidence"},
      {QueryStrategy::kMargin, "margin"}, {QueryStrategy::kEntropy, "entropy"},
      {QueryStrategy::kQbc, "qbc"},       {QueryStrategy::kCoreSet, "coreset"},
      {QueryStrategy::kBadge, "badge"}};
  return names;
}

void check_probs(const at::Tensor& probs, int64_t dims, const char* what) {
  check<Error>(probs.dim() == dims && probs.size(-1) > 0,
               std::string(what) + ": expected probabilities with " + std::to_string(dims) + " dimensions");
}

// -sum p log p over the last dimension, with 0 log 0 = 0.
at::Tensor strategy_entropy(const at::Tensor& p) { return -(p * at::log(p.clamp_min(1e-12))).sum(-1); }

// Squared Euclidean distances [N, M] between the rows of a [N, D] and b [M, D].
at::Tensor strategy_squared_distances(const at::Tensor& a, const at::Tensor& b) {
  return (a.pow(2).sum(1, true) - 2 * a.matmul(b.t()) + b.pow(2).sum(1).unsqueeze(0)).clamp_min(0);
}

}  // namespace

QueryStrategy parse_query_strategy(const std::string& name) {
  for (const auto& [strategy, text] : strategy_names())
    if (text == name) return strategy;
  std::string all;
  for (const auto& n : query_strategy_names()) all += (all.empty() ? "" : ", ") + n;
  throw ConfigError("unknown query strategy '" + name + "' (known: " + all + ")");
}

std::string to_string(QueryStrategy strategy) {
  for (const auto& [s, text] : strategy_names())
    if (s == strategy) return text;
  return "?";
}

std::vector<std::string> query_strategy_names() {
  std::vector<std::string> out;
  for (const auto& entry : strategy_names()) out.push_back(entry.second);
  return out;
}

std::vector<std::pair<std::string, QueryStrategy>> query_strategy_choices() {
  std::vector<std::pair<std::string, QueryStrategy>> out;
  for (const auto& [strategy, text] : strategy_names()) out.emplace_back(text, strategy);
  return out;
}

std::vector<int64_t> select_random(int64_t n, int64_t k, Rng& rng) {
  std::vector<int64_t> rows(static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::iota(rows.begin(), rows.end(), 0);
  return rng.sample(rows, static_cast<size_t>(std::max<int64_t>(k, 0)));
}

at::Tensor least_confidence_scores(const at::Tensor& probs) {
  check_probs(probs, 2, "least_confidence");
  return 1 - std::get<0>(probs.max(1));
}

at::Tensor margin_scores(const at::Tensor& probs) {
  check_probs(probs, 2, "margin");
  if (probs.size(1) < 2) return at::zeros({probs.size(0)}, probs.options());
  const auto top = std::get<0>(probs.topk(2, 1));
  return -(top.select(1, 0) - top.select(1, 1));
}

at::Tensor entropy_scores(const at::Tensor& probs) {
  check_probs(probs, 2, "entropy");
  return strategy_entropy(probs);
}

at::Tensor vote_entropy_scores(const at::Tensor& committee_probs) {
  check_probs(committee_probs, 3, "qbc vote entropy");
  const int64_t members = committee_probs.size(0), classes = committee_probs.size(2);
  const auto votes = at::one_hot(committee_probs.argmax(2), classes).to(at::kFloat).sum(0);  // [N, C]
  return strategy_entropy(votes / static_cast<double>(members));
}

at::Tensor average_kl_scores(const at::Tensor& committee_probs) {
  check_probs(committee_probs, 3, "qbc average KL");
  const auto p = committee_probs.clamp_min(1e-12);
  const auto consensus = p.mean(0, true);
  return (p * (at::log(p) - at::log(consensus))).sum(2).mean(0);
}

std::vector<int64_t> select_top_k(const at::Tensor& scores, int64_t k, const at::Tensor& tie_break) {
  check<Error>(scores.dim() == 1, "select_top_k: expected one score per candidate");
  const auto s = scores.to(at::kDouble).cpu().contiguous();
  const auto t = tie_break.defined() ? tie_break.to(at::kDouble).cpu().contiguous() : at::zeros_like(s);
  check<Error>(t.sizes() == s.sizes(), "select_top_k: one tie-break value per candidate expected");
  const double* v = s.data_ptr<double>();
  const double* w = t.data_ptr<double>();
  std::vector<int64_t> rows(static_cast<size_t>(s.numel()));
  std::iota(rows.begin(), rows.end(), 0);
  const auto take = static_cast<size_t>(std::clamp<int64_t>(k, 0, s.numel()));
  // Stable: rows equal on both keys keep index order, so they go to the lower index.
  std::stable_sort(rows.begin(), rows.end(),
                   [v, w](int64_t a, int64_t b) { return v[a] > v[b] || (v[a] == v[b] && w[a] > w[b]); });
  rows.resize(take);
  return rows;
}

std::vector<int64_t> select_k_center_greedy(const at::Tensor& candidate_features, const at::Tensor& labeled_features,
                                            int64_t k) {
  check<Error>(candidate_features.dim() == 2, "coreset: expected candidate features [N, D]");
  const auto x = candidate_features.to(at::kDouble).cpu();
  const int64_t n = x.size(0);
  const int64_t take = std::clamp<int64_t>(k, 0, n);
  std::vector<int64_t> out;
  if (take == 0) return out;
  // min_dist[i]: squared distance of candidate i to its nearest centre so far.
  at::Tensor min_dist;
  if (labeled_features.defined() && labeled_features.numel() > 0) {
    check<Error>(labeled_features.dim() == 2 && labeled_features.size(1) == x.size(1),
                 "coreset: labeled features must be [L, D] with the candidates' D");
    min_dist = std::get<0>(strategy_squared_distances(x, labeled_features.to(at::kDouble).cpu()).min(1));
  } else {
    min_dist = strategy_squared_distances(x, x.mean(0, true)).squeeze(1);
  }
  for (int64_t i = 0; i < take; ++i) {
    const int64_t pick = select_top_k(min_dist, 1).front();
    out.push_back(pick);
    min_dist = at::minimum(min_dist, strategy_squared_distances(x, x.narrow(0, pick, 1)).squeeze(1));
    min_dist[pick] = -1.0;  // never again, even when every distance is 0
  }
  return out;
}

at::Tensor badge_embeddings(const at::Tensor& probs, const at::Tensor& features) {
  check_probs(probs, 2, "badge");
  check<Error>(features.dim() == 2 && features.size(0) == probs.size(0),
               "badge: expected features [N, D] with one row per probability row");
  const auto p = probs.to(at::kFloat);
  const auto g = p - at::one_hot(p.argmax(1), p.size(1)).to(at::kFloat);  // [N, C]
  return (g.unsqueeze(2) * features.to(at::kFloat).unsqueeze(1)).reshape({p.size(0), -1});
}

std::vector<int64_t> select_kmeans_pp(const at::Tensor& embeddings, int64_t k, Rng& rng) {
  check<Error>(embeddings.dim() == 2, "badge: expected embeddings [N, E]");
  const auto x = embeddings.to(at::kDouble).cpu();
  const int64_t n = x.size(0);
  const int64_t take = std::clamp<int64_t>(k, 0, n);
  std::vector<int64_t> out;
  if (take == 0) return out;
  std::vector<bool> chosen(static_cast<size_t>(n), false);
  int64_t pick = select_top_k(x.pow(2).sum(1), 1).front();
  at::Tensor d2;
  for (;;) {
    out.push_back(pick);
    chosen[static_cast<size_t>(pick)] = true;
    if (static_cast<int64_t>(out.size()) == take) break;
    const auto to_pick = strategy_squared_distances(x, x.narrow(0, pick, 1)).squeeze(1);
    d2 = d2.defined() ? at::minimum(d2, to_pick) : to_pick;
    const auto w = d2.contiguous();
    const double* dist = w.data_ptr<double>();
    double total = 0;
    for (int64_t i = 0; i < n; ++i)
      if (!chosen[static_cast<size_t>(i)]) total += dist[i];
    pick = -1;
    if (total > 0) {
      double r = rng.uniform() * total;
      for (int64_t i = 0; i < n; ++i) {
        if (chosen[static_cast<size_t>(i)] || dist[i] <= 0) continue;
        pick = i;  // the last positive row catches rounding at the end
        if ((r -= dist[i]) < 0) break;
      }
    } else {
      // Every remaining row coincides with a pick: take them uniformly.
      std::vector<int64_t> rest;
      for (int64_t i = 0; i < n; ++i)
        if (!chosen[static_cast<size_t>(i)]) rest.push_back(i);
      pick = rest[rng.below(rest.size())];
    }
  }
  return out;
}

}  // namespace sscl
