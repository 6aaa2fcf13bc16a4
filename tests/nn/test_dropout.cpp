// dropout and drop_path: the dropped fraction within a binomial bound,
// scaling of the kept values, reproducibility from a seed, whole samples
// dropped by drop_path, gradients equal to the scaled mask, and arguments.
#include <kiln/kiln.h>

#include <cmath>
#include <vector>

#include "autograd/gradcheck_util.h"

using namespace kiln;
using autograd::variable_list;
using kiln::testing::all_close;
using kiln::testing::make;
using kiln::testing::random_leaf;
using kiln::testing::sample;
using kiln::testing::values;
namespace F = kiln::nn::functional;

namespace {

// |observed - expected| within 5 standard deviations of a binomial proportion.
void expect_fraction(double observed, double p, int64_t n) {
  const double sigma = std::sqrt(p * (1 - p) / static_cast<double>(n));
  EXPECT_NEAR(observed, p, 5 * sigma + 1e-12) << "n " << n;
}

double zero_fraction(const std::vector<double>& v) {
  int64_t z = 0;
  for (double x : v) z += x == 0.0;
  return static_cast<double>(z) / static_cast<double>(v.size());
}

}  // namespace

TEST(Dropout, DropsAboutPAndScalesTheRest) {
  const int64_t n = 1 << 20;
  const Tensor x = native::full({n}, 2.0, kFloat32);
  for (double p : {0.1, 0.5, 0.9}) {
    const std::vector<double> y = values(F::dropout(x, p, true));
    expect_fraction(zero_fraction(y), p, n);
    const double kept = static_cast<double>(static_cast<float>(2.0 * static_cast<float>(1.0 / (1.0 - p))));
    for (double v : y) {
      if (v != 0.0) {
        ASSERT_NEAR(v, kept, 1e-6 * kept);
      }
    }
  }
}

TEST(Dropout, ReproducibleFromSeed) {
  const Tensor x = native::ones({1000}, kFloat64);
  manual_seed(123);
  const std::vector<double> a = values(F::dropout(x, 0.3, true));
  const std::vector<double> b = values(F::dropout(x, 0.3, true));
  manual_seed(123);
  const std::vector<double> c = values(F::dropout(x, 0.3, true));
  EXPECT_EQ(a, c);
  EXPECT_NE(a, b);
  Generator g1(7), g2(7);
  EXPECT_EQ(values(F::dropout(x, 0.3, true, &g1)), values(F::dropout(x, 0.3, true, &g2)));
  EXPECT_GT(g1.offset(), 0u);
}

TEST(Dropout, GradientIsTheScaledMask) {
  Tensor x = random_leaf({50, 40}, 0.5, 1.5, 3);
  Tensor y = F::dropout(x, 0.25, true);
  EXPECT_EQ(y.grad_fn()->name(), "MulBackward0");
  y.backward(native::ones({50, 40}, kFloat64));
  const std::vector<double> yv = values(y), xv = values(x), gv = values(x.grad());
  for (size_t i = 0; i < yv.size(); ++i) {
    const double mask = yv[i] == 0.0 ? 0.0 : 1.0 / 0.75;
    ASSERT_DOUBLE_EQ(gv[i], mask);
    ASSERT_DOUBLE_EQ(yv[i], xv[i] * mask);
  }
  // A fixed generator makes the mask a constant, so the op can be checked numerically.
  auto fn = [](const variable_list& in) {
    Generator g(11);
    return F::dropout(in[0], 0.4, true, &g);
  };
  EXPECT_GRADCHECK(fn, {random_leaf({3, 4})});
  EXPECT_GRADGRADCHECK(fn, {random_leaf({3, 4})});
}

TEST(Dropout, EdgeCases) {
  const Tensor x = make({2, 3}, {1, 2, 3, 4, 5, 6}, kFloat32);
  EXPECT_TRUE(F::dropout(x, 0.5, false).is_same(x));  // eval: the input itself
  EXPECT_TRUE(F::dropout(x, 0.0, true).is_same(x));
  EXPECT_EQ(values(F::dropout(x, 1.0, true)), std::vector<double>(6, 0.0));
  EXPECT_EQ(F::dropout(native::empty({0, 3}), 0.5, true).numel(), 0);
  const Tensor h = F::dropout(native::ones({4096}, kBFloat16), 0.5, true);
  EXPECT_EQ(h.dtype(), kBFloat16);
  for (double v : values(h)) ASSERT_TRUE(v == 0.0 || v == 2.0);
  EXPECT_KILN_ERROR(F::dropout(x, 1.5, true), "dropout probability has to be between 0 and 1, but got 1.5");
  EXPECT_KILN_ERROR(F::dropout(x, -0.1, false), "between 0 and 1");
}

TEST(DropPath, DropsWholeSamples) {
  const int64_t n = 4000;
  const Tensor x = native::ones({n, 3, 5}, kFloat32);
  const double p = 0.3;
  const std::vector<double> y = values(F::drop_path(x, p, true));
  int64_t dropped = 0;
  for (int64_t s = 0; s < n; ++s) {
    const double first = y[s * 15];
    ASSERT_TRUE(first == 0.0 || std::fabs(first - 1.0 / 0.7) < 1e-6) << first;
    for (int64_t k = 1; k < 15; ++k) ASSERT_EQ(y[s * 15 + k], first) << "sample " << s;
    dropped += first == 0.0;
  }
  expect_fraction(static_cast<double>(dropped) / n, p, n);
  // Without scale_by_keep kept samples are unchanged.
  for (double v : values(F::drop_path(x, p, true, false))) ASSERT_TRUE(v == 0.0 || v == 1.0);
}

TEST(DropPath, GradientAndEdgeCases) {
  Tensor x = random_leaf({64, 4}, 0.5, 1.5, 5);
  Tensor y = F::drop_path(x, 0.5, true);
  y.backward(native::ones({64, 4}, kFloat64));
  const std::vector<double> yv = values(y), gv = values(x.grad());
  for (size_t i = 0; i < yv.size(); ++i) ASSERT_DOUBLE_EQ(gv[i], yv[i] == 0.0 ? 0.0 : 2.0);
  auto fn = [](const variable_list& in) {
    Generator g(3);
    return F::drop_path(in[0], 0.5, true, true, &g);
  };
  EXPECT_GRADCHECK(fn, {random_leaf({6, 2})});
  EXPECT_GRADGRADCHECK(fn, {random_leaf({6, 2})});
  const Tensor z = native::ones({3, 2});
  EXPECT_TRUE(F::drop_path(z, 0.5, false).is_same(z));
  EXPECT_TRUE(F::drop_path(z, 0.0, true).is_same(z));
  EXPECT_EQ(values(F::drop_path(z, 1.0, true)), std::vector<double>(6, 0.0));  // keep_prob 0: no scaling
  manual_seed(9);
  const std::vector<double> a = values(F::drop_path(native::ones({100, 2}), 0.5, true));
  manual_seed(9);
  EXPECT_EQ(a, values(F::drop_path(native::ones({100, 2}), 0.5, true)));
  EXPECT_KILN_ERROR(F::drop_path(z, 2.0, true), "drop probability has to be between 0 and 1");
  EXPECT_KILN_ERROR(F::drop_path(native::ones({}), 0.5, true), "batch dim");
}
