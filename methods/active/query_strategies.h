// Active-learning query strategies: which candidates of a task's unlabeled pool get
// labels. Pure functions of model outputs (probabilities, features) and a seeded
// Rng; none of them is given a label, so none can leak one (the reference groups
// candidates by their ground-truth class; see methods/active/active_learner.h).
//
// Every `select_*` returns k distinct row indices into the candidates (k is clamped
// to the number of candidates), ordered as chosen; ties go to the lower index.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"

namespace sscl {

enum class QueryStrategy { kRandom, kLeastConfidence, kMargin, kEntropy, kQbc, kCoreSet, kBadge };

// "random" | "least_confidence" | "margin" | "entropy" | "qbc" | "coreset" | "badge".
QueryStrategy parse_query_strategy(const std::string& name);
std::string to_string(QueryStrategy strategy);
std::vector<std::string> query_strategy_names();
// The names and their strategies, for an options choice (core/options.h).
std::vector<std::pair<std::string, QueryStrategy>> query_strategy_choices();

// k distinct rows of n, uniformly.
std::vector<int64_t> select_random(int64_t n, int64_t k, Rng& rng);

// Uncertainty of each row of softmax probabilities [N, C] (higher = more uncertain):
//   least confidence: 1 - max_c p;  margin: -(p_(1) - p_(2));  entropy: -sum p log p.
at::Tensor least_confidence_scores(const at::Tensor& probs);
at::Tensor margin_scores(const at::Tensor& probs);
at::Tensor entropy_scores(const at::Tensor& probs);

// QBC disagreement of a committee's probabilities [M, N, C]:
//   vote entropy: the entropy of the members' argmax votes, -sum_c (v_c/M) log(v_c/M);
//   average KL: mean_m KL(p_m || mean_m p_m).
at::Tensor vote_entropy_scores(const at::Tensor& committee_probs);
at::Tensor average_kl_scores(const at::Tensor& committee_probs);

// The k rows with the highest scores; equal scores are ordered by `tie_break`
// (higher first) when given, then by index.
std::vector<int64_t> select_top_k(const at::Tensor& scores, int64_t k, const at::Tensor& tie_break = {});

// Core-set (Sener & Savarese, 2018) by k-center greedy: repeatedly the candidate
// farthest (Euclidean) from its nearest centre, starting from the labeled images'
// features [L, D]. With no labeled features the first pick is the candidate
// farthest from the candidates' mean.
std::vector<int64_t> select_k_center_greedy(const at::Tensor& candidate_features, const at::Tensor& labeled_features,
                                            int64_t k);

// BADGE (Ash et al., 2020): the gradient embedding of each candidate,
// (p - onehot(argmax p)) outer h, [N, C * D], from probabilities [N, C] and
// penultimate features [N, D] ...
at::Tensor badge_embeddings(const at::Tensor& probs, const at::Tensor& features);
// ... and k-means++ seeding on it: the first pick is the largest embedding, each
// next one is drawn with probability proportional to its squared distance to the
// nearest pick (rows already at distance 0 are never drawn while others remain).
std::vector<int64_t> select_kmeans_pp(const at::Tensor& embeddings, int64_t k, Rng& rng);

}  // namespace sscl
