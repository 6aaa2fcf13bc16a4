#pragma once
// Helpers for the autograd suites: float64 leaves and a gradcheck assertion
// that prints gradcheck's report on failure.
#include <kiln/kiln.h>

#include <string>
#include <vector>

#include "test_util.h"

namespace kiln::testing {

// A float64 leaf that requires grad, holding `vals` row-major in `sizes`.
inline Tensor leaf(IntArrayRef sizes, const std::vector<double>& vals) {
  return make(sizes, vals).requires_grad_(true);
}

// A [rows, cols] float64 leaf whose memory is column-major (a transposed view).
inline Tensor transposed_leaf(int64_t rows, int64_t cols, double lo = -1.0, double hi = 1.0, unsigned seed = 3) {
  Tensor storage = make({cols, rows}, sample(rows * cols, lo, hi, seed));
  return native::t(storage).requires_grad_(true);
}

// A float64 leaf of `sizes` with sample() values.
inline Tensor random_leaf(IntArrayRef sizes, double lo = -1.0, double hi = 1.0, unsigned seed = 1) {
  return leaf(sizes, sample(numel_of(sizes), lo, hi, seed));
}

inline ::testing::AssertionResult gradcheck_ok(const autograd::GradcheckFn& fn, const autograd::variable_list& inputs,
                                               double atol = 1e-5, double rtol = 1e-3) {
  std::string report = autograd::gradcheck_report(fn, inputs, {1e-6, atol, rtol, false});
  if (report.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << report;
}

inline ::testing::AssertionResult gradgradcheck_ok(const autograd::GradcheckFn& fn,
                                                   const autograd::variable_list& inputs, double atol = 1e-5,
                                                   double rtol = 1e-3) {
  std::string report = autograd::gradgradcheck_report(fn, inputs, {}, {1e-6, atol, rtol, false});
  if (report.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << report;
}

// gradcheck of a one-output function.
#define EXPECT_GRADCHECK(fn, ...) \
  EXPECT_TRUE(::kiln::testing::gradcheck_ok([&](const ::kiln::autograd::variable_list& in) { return ::kiln::autograd::variable_list{fn(in)}; }, __VA_ARGS__))
#define EXPECT_GRADGRADCHECK(fn, ...) \
  EXPECT_TRUE(::kiln::testing::gradgradcheck_ok([&](const ::kiln::autograd::variable_list& in) { return ::kiln::autograd::variable_list{fn(in)}; }, __VA_ARGS__))

}  // namespace kiln::testing
