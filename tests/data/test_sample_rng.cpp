// SampleRng: a pure function of (seed, epoch, index), uniform; and the epoch
// shuffle: a permutation, fixed per (seed, epoch), different across epochs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <vector>

#include "kiln/data/sample_rng.h"
#include "test_util.h"

namespace {

using namespace kiln::data;

std::vector<uint32_t> draws(SampleRng rng, int n) {
  std::vector<uint32_t> out(n);
  for (auto& v : out) v = rng.next_u32();
  return out;
}

TEST(SampleRng, PureFunctionOfSeedEpochIndex) {
  EXPECT_EQ(draws(SampleRng(7, 3, 11), 37), draws(SampleRng(7, 3, 11), 37));
  const auto base = draws(SampleRng(7, 3, 11), 8);
  // Any change of one field gives an unrelated stream, including swapping
  // the fields' values and neighbouring indices.
  std::set<std::vector<uint32_t>> seen = {base};
  for (auto [seed, epoch, index] : std::vector<std::tuple<uint64_t, int64_t, int64_t>>{
           {8, 3, 11}, {7, 4, 11}, {7, 3, 12}, {7, 3, 10}, {7, 11, 3}, {11, 3, 7}, {0, 0, 0}, {7, 3, -1}}) {
    EXPECT_TRUE(seen.insert(draws(SampleRng(seed, epoch, index), 8)).second) << seed << " " << epoch << " " << index;
  }
  // Copies continue the same stream from where they were taken.
  SampleRng a(1, 2, 3);
  a.next_u32();
  SampleRng b = a;
  EXPECT_EQ(draws(a, 9), draws(b, 9));
}

TEST(SampleRng, UniformMomentsAndRange) {
  // Mean 1/2 and variance 1/12, within 6 standard errors over 200k draws.
  const int n = 200000;
  double sum = 0, sum2 = 0, lo = 1, hi = 0;
  SampleRng rng(42, 0, 0);
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u, sum2 += u * u;
    lo = std::min(lo, u), hi = std::max(hi, u);
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.5, 6 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(var, 1.0 / 12, 6 * std::sqrt(1.0 / 180 / n));  // Var(u^2 - ...) ~ 1/180
  EXPECT_LT(lo, 1e-4);
  EXPECT_GT(hi, 1 - 1e-4);
  // uniform(lo, hi) is the affine map of the same draw.
  SampleRng x(5, 5, 5), y(5, 5, 5);
  for (int i = 0; i < 100; ++i) {
    const double u = x.uniform();
    EXPECT_EQ(y.uniform(-3.0, 5.0), -3.0 + 8.0 * u);
  }
}

TEST(SampleRng, RandintInclusiveAndUniform) {
  // Chi-square over 10 bins, 100k draws: 9 degrees of freedom, 99.99th percentile ~ 33.7.
  const int n = 100000;
  std::vector<int> counts(10, 0);
  SampleRng rng(9, 1, 2);
  for (int i = 0; i < n; ++i) {
    const int64_t v = rng.randint(3, 12);
    ASSERT_GE(v, 3);
    ASSERT_LE(v, 12);
    ++counts[v - 3];
  }
  double chi2 = 0;
  for (int c : counts) chi2 += (c - n / 10.0) * (c - n / 10.0) / (n / 10.0);
  EXPECT_LT(chi2, 33.7);
  EXPECT_EQ(SampleRng(1, 1, 1).randint(5, 5), 5);
  SampleRng neg(3, 3, 3);
  std::set<int64_t> values;
  for (int i = 0; i < 200; ++i) values.insert(neg.randint(-2, 1));
  EXPECT_EQ(values, (std::set<int64_t>{-2, -1, 0, 1}));
  // The whole int64 range and a range wider than half of it.
  SampleRng wide(4, 4, 4);
  for (int i = 0; i < 100; ++i) {
    wide.randint(INT64_MIN, INT64_MAX);
    const int64_t v = wide.randint(-(int64_t{1} << 62), int64_t{1} << 62);
    EXPECT_LE(std::llabs(v), int64_t{1} << 62);
  }
  EXPECT_KILN_ERROR(SampleRng(1, 1, 1).randint(2, 1), "empty range");
}

TEST(EpochPermutation, IsAPermutationFixedPerSeedAndEpoch) {
  for (int64_t n : {0, 1, 2, 7, 1000}) {
    auto p = epoch_permutation(n, 123, 4);
    ASSERT_EQ(static_cast<int64_t>(p.size()), n);
    auto sorted = p;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> iota(n);
    std::iota(iota.begin(), iota.end(), 0);
    EXPECT_EQ(sorted, iota) << n;
    EXPECT_EQ(p, epoch_permutation(n, 123, 4));
  }
  const auto e0 = epoch_permutation(1000, 123, 0), e1 = epoch_permutation(1000, 123, 1);
  EXPECT_NE(e0, e1);
  EXPECT_NE(e0, epoch_permutation(1000, 124, 0));
  // Not the identity, and not a rotation or reversal of the previous epoch.
  std::vector<int64_t> iota(1000);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_NE(e0, iota);
  int fixed_points = 0;
  for (int64_t i = 0; i < 1000; ++i) fixed_points += e0[i] == e1[i];
  EXPECT_LT(fixed_points, 10);  // expected 1 for independent permutations
  EXPECT_KILN_ERROR(epoch_permutation(-1, 0, 0), "n must be >= 0");
}

TEST(EpochPermutation, EveryOrderEquallyLikely) {
  // n = 4 over 24000 epochs: each of the 24 orders ~ 1000 times (chi-square,
  // 23 degrees of freedom, 99.99th percentile ~ 56).
  std::map<std::vector<int64_t>, int> counts;
  for (int64_t e = 0; e < 24000; ++e) ++counts[epoch_permutation(4, 77, e)];
  ASSERT_EQ(counts.size(), 24u);
  double chi2 = 0;
  for (const auto& [order, c] : counts) chi2 += (c - 1000.0) * (c - 1000.0) / 1000.0;
  EXPECT_LT(chi2, 56.0);
}

}  // namespace
