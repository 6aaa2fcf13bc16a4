#pragma once
// Helpers shared by the test suites: read a tensor back as host values and
// compare against a reference computed independently (closed form or a
// float64 loop in the test).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "kiln/core/native.h"

namespace kiln::testing {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
inline constexpr double kInf = std::numeric_limits<double>::infinity();

// Fixed pseudo-random float64 values in [lo, hi) (deterministic, no generator state).
inline std::vector<double> sample(int64_t n, double lo = -1.0, double hi = 1.0, unsigned seed = 1) {
  std::vector<double> v(n);
  uint64_t s = 0x9E3779B97F4A7C15ull * (seed + 1);
  for (auto& x : v) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    x = lo + (hi - lo) * static_cast<double>(s >> 11) / static_cast<double>(1ull << 53);
  }
  return v;
}

// Row-major values of t, as doubles, wherever t lives.
inline std::vector<double> values(const Tensor& t) {
  Tensor host = native::contiguous(native::to(native::to(t, Device(kCPU)), kFloat64));
  const double* p = host.data_ptr<double>();
  return std::vector<double>(p, p + host.numel());
}

// A float64 CPU tensor of the given shape holding `vals` row-major.
inline Tensor make(IntArrayRef sizes, const std::vector<double>& vals, DType dtype = kFloat64) {
  Tensor t = native::tensor(vals);
  return native::to(native::reshape(t, sizes), dtype);
}

// f applied elementwise to x's (already rounded) values, as a float64 tensor:
// the reference a kernel's output is compared with.
inline Tensor reference(const Tensor& x, const std::function<double(double)>& f) {
  auto v = values(x);
  for (auto& e : v) e = f(e);
  return make(x.sizes(), v);
}
inline Tensor reference2(const Tensor& a, const Tensor& b, const std::function<double(double, double)>& f) {
  auto va = values(a), vb = values(b);
  std::vector<double> r(va.size());
  for (size_t i = 0; i < va.size(); ++i) r[i] = f(va[i], vb[i]);
  return make(a.sizes(), r);
}

// |a - b| <= atol + rtol * |b| elementwise, same shape; NaNs must match.
inline ::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double rtol = 1e-6,
                                            double atol = 1e-8) {
  if (!actual.sizes().equals(expected.sizes())) {
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " != expected " << expected.sizes();
  }
  auto a = values(actual), b = values(expected);
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (std::isinf(b[i]) && a[i] == b[i]) continue;
    if (!(std::fabs(a[i] - b[i]) <= atol + rtol * std::fabs(b[i]))) {
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs expected " << b[i]
                                           << " (rtol " << rtol << ", atol " << atol << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

// Expects `stmt` to throw kiln::Error whose message contains `fragment`.
#define EXPECT_KILN_ERROR(stmt, fragment)                                                   \
  do {                                                                                      \
    try {                                                                                   \
      stmt;                                                                                 \
      ADD_FAILURE() << "expected kiln::Error containing '" << (fragment) << "'";            \
    } catch (const ::kiln::Error& e) {                                                      \
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();       \
    }                                                                                       \
  } while (0)

}  // namespace kiln::testing
