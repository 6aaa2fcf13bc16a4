// The CPU kernels' own float math: the vectorised exp/tanh/erf behind the
// float32 transcendentals (checked against float64 libm over the whole range,
// including overflow, subnormal results and specials) and the block-wise
// half <-> float conversions (runs longer than one block, ragged tails).
#include <cmath>
#include <functional>
#include <limits>

#include "kiln/core/native.h"
#include "test_util.h"

using namespace kiln;
using kiln::testing::all_close;
using kiln::testing::make;
using kiln::testing::kInf;
using kiln::testing::kNaN;
using kiln::testing::sample;
using kiln::testing::reference;
using kiln::testing::reference2;
using kiln::testing::values;

namespace {




// A few half-precision ulps: inputs are rounded to float16 first, the kernels
// compute in float and round once.
constexpr double kHalfTol = 2e-3;

}  // namespace

TEST(FloatMath, Float32TranscendentalsAccurateOverTheWholeRange) {
  // float32 runs its own vectorised exp/tanh/erf: compare against float64 libm
  // across the full range, including overflow, subnormal results and specials.
  std::vector<double> xs;
  for (int i = 0; i <= 20000; ++i) xs.push_back(-104 + 193.0 * i / 20000);
  for (double v : {0.0, -0.0, 1e-30, -1e-30, 88.72, 88.73, -87.34, -103.9, kInf, -kInf, kNaN}) xs.push_back(v);
  const int64_t n = static_cast<int64_t>(xs.size());
  Tensor x = make({n}, xs, kFloat32);
  const auto xv = values(x);
  const auto e = values(native::unary(UnaryOp::Exp, x));
  const auto t = values(native::unary(UnaryOp::Tanh, x));
  const auto sg = values(native::unary(UnaryOp::Sigmoid, x));
  const auto er = values(native::unary(UnaryOp::Erf, x));
  const auto ge = values(native::unary(UnaryOp::GeluErf, x));
  const double flt_max = std::numeric_limits<float>::max(), flt_min = std::numeric_limits<float>::min();
  const double denorm = std::numeric_limits<float>::denorm_min();
  for (int64_t i = 0; i < n; ++i) {
    const double v = xv[i];
    if (std::isnan(v)) {
      EXPECT_TRUE(std::isnan(e[i]) && std::isnan(t[i]) && std::isnan(sg[i]) && std::isnan(er[i]) &&
                  std::isnan(ge[i]));
      continue;
    }
    const double ee = std::exp(v);
    if (ee > flt_max) {
      EXPECT_EQ(e[i], kInf) << v;
    } else if (ee < flt_min) {
      EXPECT_NEAR(e[i], ee, 2 * denorm) << v;
    } else {
      EXPECT_NEAR(e[i], ee, 2.4e-7 * ee) << v;  // 2 ulp
    }
    EXPECT_NEAR(t[i], std::tanh(v), 3.6e-7 * std::fabs(std::tanh(v))) << v;  // 3 ulp
    const double s = 1 / (1 + std::exp(-v));
    EXPECT_NEAR(sg[i], s, 3.6e-7 * s + 2 * denorm) << v;
    EXPECT_NEAR(er[i], std::erf(v), 3.6e-7 * std::fabs(std::erf(v))) << v;
    // gelu's cdf is erfc(-x / sqrt 2) / 2 for negative x, accurate in the
    // normal range. Below it (x < -13) the cdf is already subnormal before
    // the x/2 scaling multiplies its rounding error by up to ~10: allow 64
    // denormals there (torch's 1 + erf(x) form gives 0 for x < -5.7).
    const double cdf = 0.5 * std::erfc(-v / std::sqrt(2.0)), g = v * cdf;
    if (std::isfinite(v)) {
      EXPECT_NEAR(ge[i], g, 6e-7 * std::fabs(g) + (cdf < flt_min ? 64 * denorm : 0)) << v;
    }
  }
}

TEST(FloatMath, Float32GeluBackwardAccurateOverTheWholeRange) {
  // Phi(x) + x phi(x), with grads of both signs. Near x = -0.75 the two terms
  // cancel, so the error is measured against the larger term (what float
  // inputs to the sum could give at best); the tail below x = -13 is
  // subnormal, as for the forward.
  std::vector<double> xs, gs;
  for (int i = 0; i <= 20000; ++i) {
    xs.push_back(-104 + 193.0 * i / 20000);
    gs.push_back(i % 3 == 0 ? -1.5 : 1.0);
  }
  for (double v : {0.0, -0.0, 1e-30, -1e-30, 0.7071, -0.7071, 1.4142, -1.4142, -0.7517916, -13.3, -14.1}) {
    xs.push_back(v);
    gs.push_back(1.0);
  }
  xs.push_back(kNaN);
  gs.push_back(1.0);
  const int64_t n = static_cast<int64_t>(xs.size());
  Tensor x = make({n}, xs, kFloat32), g = make({n}, gs, kFloat32);
  const auto xv = values(x), gv = values(g);
  const auto d = values(native::binary(BinaryOp::GeluErfBackward, g, x));
  const double flt_min = std::numeric_limits<float>::min(), denorm = std::numeric_limits<float>::denorm_min();
  for (int64_t i = 0; i < n; ++i) {
    const double v = xv[i];
    if (std::isnan(v)) {
      EXPECT_TRUE(std::isnan(d[i]));
      continue;
    }
    const double cdf = 0.5 * std::erfc(-v / std::sqrt(2.0)), pdf_term = v * std::exp(-v * v / 2) / std::sqrt(2 * M_PI);
    const double scale = std::fabs(gv[i]) * std::max(cdf, std::fabs(pdf_term));
    EXPECT_NEAR(d[i], gv[i] * (cdf + pdf_term), 6e-7 * scale + (scale < flt_min ? 64 * denorm : 0)) << v;
  }
}

TEST(FloatMath, LongHalfRunsAcrossConversionBlocks) {
  // 16-bit runs longer than the kernels' conversion blocks, with a ragged tail.
  const int64_t n = 1000;
  Tensor a = make({n}, sample(n, -3, 3, 23), kFloat16), b = make({n}, sample(n, -3, 3, 24), kFloat16);
  const double t = kHalfTol;
  EXPECT_TRUE(all_close(native::add(a, b), reference2(a, b, [](double x, double y) { return x + y; }), t, t));
  EXPECT_TRUE(all_close(native::binary(BinaryOp::Lt, a, b), reference2(a, b, [](double x, double y) {
                          return double(x < y);
                        }), 0));
  EXPECT_TRUE(all_close(native::mul(a, 0.5), reference(a, [](double x) { return x * 0.5; }), t, t));
  EXPECT_TRUE(all_close(native::binary(BinaryOp::Sub, 2.0, a), reference(a, [](double x) { return 2 - x; }), t, t));
  EXPECT_TRUE(all_close(native::unary(UnaryOp::Exp, a), reference(a, [](double x) { return std::exp(x); }), t, t));
  EXPECT_TRUE(all_close(native::unary(UnaryOp::LogicalNot, a), reference(a, [](double x) { return double(x == 0); }),
                        0));
  double s = 0, m = -kInf;
  for (double v : values(a)) {
    s += v;
    m = std::max(m, v);
  }
  EXPECT_NEAR(native::sum(a, {}, false, kFloat32).item<double>(), s, 1e-6 * n);
  EXPECT_EQ(native::amax(a, {0}).item<double>(), m);
}
