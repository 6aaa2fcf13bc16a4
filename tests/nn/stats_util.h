#pragma once
// Statistical checks for random initialisers: sample moments and interval
// frequencies against the distribution's exact values, within 5 standard
// errors (normal bounds for the mean and variance, binomial bounds for
// frequencies), on tensors large enough that these bounds are tight.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "test_util.h"

namespace kiln::testing {

inline constexpr double kSigmas = 5.0;

struct Sample {
  std::vector<double> v;
  double mean = 0, var = 0, min = 0, max = 0;
  explicit Sample(const Tensor& t) : v(values(t)) {
    double s = 0;
    for (double x : v) s += x;
    mean = s / static_cast<double>(v.size());
    double ss = 0;
    for (double x : v) ss += (x - mean) * (x - mean);
    var = ss / static_cast<double>(v.size() - 1);
    min = *std::min_element(v.begin(), v.end());
    max = *std::max_element(v.begin(), v.end());
  }
  double n() const { return static_cast<double>(v.size()); }
  double fraction(double lo, double hi) const {
    double c = 0;
    for (double x : v) c += (x >= lo && x < hi) ? 1 : 0;
    return c / n();
  }
};

// The observed frequency of an event of probability p, within binomial bounds.
inline void expect_frequency(double observed, double p, double n, const char* what) {
  const double se = std::sqrt(p * (1 - p) / n);
  EXPECT_NEAR(observed, p, kSigmas * se) << what;
}

// U(lo, hi): every value inside, mean, variance and the lower-quarter frequency.
inline void expect_uniform(const Tensor& t, double lo, double hi) {
  Sample s(t);
  const double w = hi - lo;
  EXPECT_GE(s.min, lo);
  EXPECT_LE(s.max, hi);
  // The extremes come close to the bounds (the chance a gap of 20 w / n is
  // left at one end is e^-20).
  EXPECT_LT(s.min, lo + 20 * w / s.n());
  EXPECT_GT(s.max, hi - 20 * w / s.n());
  EXPECT_NEAR(s.mean, (lo + hi) / 2, kSigmas * w / std::sqrt(12 * s.n())) << "mean";
  EXPECT_NEAR(s.var, w * w / 12, kSigmas * w * w / std::sqrt(180 * s.n())) << "variance";
  expect_frequency(s.fraction(lo, lo + w / 4), 0.25, s.n(), "lower quarter");
}

// N(mean, std^2): mean, variance and the frequency within one std.
inline void expect_normal(const Tensor& t, double mean, double std) {
  Sample s(t);
  EXPECT_NEAR(s.mean, mean, kSigmas * std / std::sqrt(s.n())) << "mean";
  EXPECT_NEAR(s.var, std * std, kSigmas * std * std * std::sqrt(2 / (s.n() - 1))) << "variance";
  expect_frequency(s.fraction(mean - std, mean + std), 0.682689492137086, s.n(), "within one std");
}

}  // namespace kiln::testing
