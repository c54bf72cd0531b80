#include "core/random.h"

#include <gtest/gtest.h>

#include <cmath>

namespace sscl {
namespace {

TEST(Random, SameSeedAndPathGiveTheSameStream) {
  Rng a(derive_seed(7, {1, 2, 3})), b(derive_seed(7, {1, 2, 3})), c(derive_seed(7, {1, 2, 4}));
  EXPECT_EQ(a.next(), b.next());
  Rng a2(derive_seed(7, {1, 2, 3}));
  EXPECT_NE(a2.next(), c.next());
}

TEST(Random, BelowIsUniform) {
  // Chi-square over 10 bins with 100000 draws; 9 dof, the 0.999 quantile is 27.9.
  Rng rng(123);
  std::vector<int> counts(10, 0);
  const int n = 100000;
  for (int i = 0; i < n; ++i) ++counts[rng.below(10)];
  double chi2 = 0;
  for (int c : counts) chi2 += (c - n / 10.0) * (c - n / 10.0) / (n / 10.0);
  EXPECT_LT(chi2, 27.9);
}

TEST(Random, SampleGivesDistinctElements) {
  Rng rng(5);
  std::vector<int> v(100);
  for (int i = 0; i < 100; ++i) v[i] = i;
  auto s = rng.sample(v, 30);
  std::sort(s.begin(), s.end());
  EXPECT_EQ(std::unique(s.begin(), s.end()), s.end());
  EXPECT_EQ(s.size(), 30u);
}

TEST(Random, SamplePositionsPickWhatSampleReturns) {
  std::vector<int64_t> pool(1000);
  for (int i = 0; i < 1000; ++i) pool[i] = 3 * i + 1;
  for (const size_t k : {0u, 1u, 7u, 70u, 124u, 125u, 400u, 1000u, 1200u}) {
    Rng a(17), b(17);
    std::vector<int64_t> picked;  // the pool's entries at the drawn positions
    for (const int64_t p : a.sample_positions(pool.size(), k)) picked.push_back(pool[static_cast<size_t>(p)]);
    EXPECT_EQ(picked, b.sample(pool, k)) << "k = " << k;
    EXPECT_EQ(a.next(), b.next()) << "k = " << k;  // the same numbers consumed
  }
  std::vector<int64_t> iota(50);
  for (int i = 0; i < 50; ++i) iota[i] = i;
  Rng a(3), b(3);
  EXPECT_EQ(a.sample_positions(50, 20), b.sample(iota, 20));
}

TEST(Random, NormalHasUnitVariance) {
  Rng rng(9);
  double sum = 0, sq = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double x = rng.normal();
    sum += x;
    sq += x * x;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sq / n, 1.0, 0.02);
}

TEST(Random, NamedStreamsAreTheFnv1aHashOfTheirName) {
  // FNV-1a 64 of "" and "a" (the published test vectors).
  static_assert(stream("") == 0xcbf29ce484222325ULL);
  static_assert(stream("a") == 0xaf63dc4c8601ec8cULL);
  EXPECT_NE(stream("der.replay"), stream("er.replay"));
  EXPECT_EQ(stream_seed(7, "der.replay", 1, int64_t{5}), derive_seed(7, {stream("der.replay"), 1, 5}));
  EXPECT_NE(stream_seed(7, "der.replay", 1, 5), stream_seed(7, "der.replay", 5, 1));
}

}  // namespace
}  // namespace sscl
