// Active-learning query strategies on hand-made probability and feature matrices:
// each picks the indices worked out by hand.
#include "methods/active/query_strategies.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "core/error.h"

namespace sscl {
namespace {

using Rows = std::vector<int64_t>;

void expect_values(const at::Tensor& actual, const std::vector<double>& expected, double tolerance = 1e-5) {
  const auto a = actual.to(torch::kDouble).flatten().contiguous();
  ASSERT_EQ(a.numel(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(a[i].item<double>(), expected[i], tolerance) << "row " << i;
}

// Row 0 is nearly a tie between two classes, row 1 is spread over three, row 2
// is confident: least confidence (1 - max: .50 / .60 / .02) and entropy
// (.742 / 1.089 / .112) rank row 1 first, margin (.01 / .10 / .97) ranks row 0 first.
const at::Tensor kProbs = torch::tensor({{0.50, 0.49, 0.01}, {0.40, 0.30, 0.30}, {0.98, 0.01, 0.01}});

TEST(QueryStrategies, UncertaintyScoresMatchHandComputedValues) {
  expect_values(least_confidence_scores(kProbs), {0.50, 0.60, 0.02});
  expect_values(margin_scores(kProbs), {-0.01, -0.10, -0.97});
  const double h0 = -(0.5 * std::log(0.5) + 0.49 * std::log(0.49) + 0.01 * std::log(0.01));
  const double h1 = -(0.4 * std::log(0.4) + 2 * 0.3 * std::log(0.3));
  const double h2 = -(0.98 * std::log(0.98) + 2 * 0.01 * std::log(0.01));
  expect_values(entropy_scores(kProbs), {h0, h1, h2});
}

TEST(QueryStrategies, EachUncertaintyMeasurePicksItsExpectedRows) {
  EXPECT_EQ(select_top_k(least_confidence_scores(kProbs), 2), (Rows{1, 0}));
  EXPECT_EQ(select_top_k(margin_scores(kProbs), 2), (Rows{0, 1}));
  EXPECT_EQ(select_top_k(entropy_scores(kProbs), 1), (Rows{1}));
  // k is clamped to the candidates; ties go to the lower index.
  EXPECT_EQ(select_top_k(torch::tensor({1.0, 3.0, 3.0, 0.0}), 9), (Rows{1, 2, 0, 3}));
  EXPECT_TRUE(select_top_k(torch::tensor({1.0}), 0).empty());
  // A tie-break orders equal scores (QBC's vote entropy by average KL).
  EXPECT_EQ(select_top_k(torch::tensor({1.0, 1.0, 0.0, 1.0}), 3, torch::tensor({0.0, 5.0, 9.0, 0.0})), (Rows{1, 0, 3}));
}

TEST(QueryStrategies, QbcVoteEntropyAndAverageKl) {
  // Three members, two candidates, two classes: all vote class 0 on row 0;
  // votes 0, 0, 1 on row 1 -> entropy of (2/3, 1/3).
  const auto committee = torch::tensor({{{0.9, 0.1}, {0.6, 0.4}},  //
                                        {{0.8, 0.2}, {0.7, 0.3}},
                                        {{0.7, 0.3}, {0.2, 0.8}}});
  const double h = -(2.0 / 3 * std::log(2.0 / 3) + 1.0 / 3 * std::log(1.0 / 3));
  expect_values(vote_entropy_scores(committee), {0.0, h});
  EXPECT_EQ(select_top_k(vote_entropy_scores(committee), 1), (Rows{1}));

  // Two members (.5, .5) and (.9, .1): consensus (.7, .3);
  // KL_a = .5 ln(.5/.7) + .5 ln(.5/.3), KL_b = .9 ln(.9/.7) + .1 ln(.1/.3).
  const auto pair = torch::tensor({{{0.5, 0.5}, {0.6, 0.4}}, {{0.9, 0.1}, {0.6, 0.4}}});
  const double kl_a = 0.5 * std::log(0.5 / 0.7) + 0.5 * std::log(0.5 / 0.3);
  const double kl_b = 0.9 * std::log(0.9 / 0.7) + 0.1 * std::log(0.1 / 0.3);
  expect_values(average_kl_scores(pair), {(kl_a + kl_b) / 2, 0.0});  // row 1: the members agree
}

TEST(QueryStrategies, CoreSetIsKCenterGreedyFromTheLabeledFeatures) {
  // Points on a line: 0, 1, 10, 11, 5; one labeled image at 0.
  const auto x = torch::tensor({{0.0}, {1.0}, {10.0}, {11.0}, {5.0}});
  // 11 is farthest from 0; then 5 (distance 5 to its nearest centre); then 1 and
  // 10 are both at 1: the lower index.
  EXPECT_EQ(select_k_center_greedy(x, torch::tensor({{0.0}}), 3), (Rows{3, 4, 1}));
  // No labeled features: the first pick is the farthest from the mean (5.4): 11.
  EXPECT_EQ(select_k_center_greedy(x, at::Tensor(), 1), (Rows{3}));
  // Every candidate, each once, even when all coincide.
  const auto same = select_k_center_greedy(torch::zeros({4, 2}), torch::zeros({1, 2}), 10);
  EXPECT_EQ(std::set<int64_t>(same.begin(), same.end()).size(), 4u);
}

TEST(QueryStrategies, BadgeEmbeddingIsTheLastLayerGradientAtThePredictedLabel) {
  // p = (.7, .3), predicted class 0: p - onehot = (-.3, .3), outer h = (1, 2).
  const auto e = badge_embeddings(torch::tensor({{0.7, 0.3}}), torch::tensor({{1.0, 2.0}}));
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{1, 4}));
  expect_values(e, {-0.3, -0.6, 0.3, 0.6});
}

TEST(QueryStrategies, KMeansPlusPlusStartsAtTheLargestAndNeverRepicksAPoint) {
  // Row 1 duplicates row 0 (the largest): at distance 0, it is never drawn while
  // rows 2 and 3 remain.
  const auto x = torch::tensor({{10.0, 0.0}, {10.0, 0.0}, {0.0, 1.0}, {0.0, 1.1}});
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Rng rng(seed);
    const auto rows = select_kmeans_pp(x, 3, rng);
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0], 0);
    EXPECT_EQ(std::set<int64_t>(rows.begin(), rows.end()), (std::set<int64_t>{0, 2, 3}));
  }
}

TEST(QueryStrategies, KMeansPlusPlusDrawsProportionallyToSquaredDistance) {
  // First pick (3, 3) (largest); then (3, 2) at d^2 = 1 and (3, 0) at d^2 = 9:
  // the second pick is (3, 0) with probability 0.9.
  const auto x = torch::tensor({{3.0, 2.0}, {3.0, 3.0}, {3.0, 0.0}});
  int far = 0;
  const int trials = 4000;
  for (int seed = 0; seed < trials; ++seed) {
    Rng rng(static_cast<uint64_t>(seed));
    const auto rows = select_kmeans_pp(x, 2, rng);
    ASSERT_EQ(rows[0], 1);
    far += rows[1] == 2;
  }
  // Binomial(4000, 0.9): standard deviation 19; 5 of them is 95.
  EXPECT_NEAR(far, 3600, 95);
}

TEST(QueryStrategies, RandomPicksDistinctRowsInRange) {
  Rng rng(3);
  const auto rows = select_random(50, 20, rng);
  ASSERT_EQ(rows.size(), 20u);
  EXPECT_EQ(std::set<int64_t>(rows.begin(), rows.end()).size(), 20u);
  for (auto r : rows) EXPECT_TRUE(r >= 0 && r < 50);
  EXPECT_EQ(select_random(3, 10, rng).size(), 3u);
}

TEST(QueryStrategies, NamesRoundTripAndUnknownOnesAreRefusedWithTheList) {
  for (const auto& name : query_strategy_names()) EXPECT_EQ(to_string(parse_query_strategy(name)), name);
  try {
    parse_query_strategy("uncertainty");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("badge"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sscl
