// kiln::nn::init: gains and fans against torch's table and formulas, and each
// random initialiser's samples against the exact distribution it promises
// (moments and interval frequencies within binomial/normal bounds on large
// tensors; trunc_normal_ against the truncated normal's closed-form moments),
// plus generator handling, in-place semantics and errors.
#include <kiln/kiln.h>

#include <cmath>
#include <tuple>

#include "nn/stats_util.h"
#include "test_util.h"

using namespace kiln;
namespace init = kiln::nn::init;
using kiln::testing::expect_frequency;
using kiln::testing::expect_normal;
using kiln::testing::expect_uniform;
using kiln::testing::kSigmas;
using kiln::testing::Sample;
using kiln::testing::values;

namespace {
double phi(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI); }
double cdf(double x) { return 0.5 * (1 + std::erf(x / std::sqrt(2.0))); }

// Checks samples of N(mean, std^2) truncated to [a, b].
void expect_truncated_normal(const Tensor& t, double mean, double std, double a, double b) {
  Sample s(t);
  EXPECT_GE(s.min, a);
  EXPECT_LE(s.max, b);
  const double al = (a - mean) / std, be = (b - mean) / std;
  const double z = cdf(be) - cdf(al);
  const double m = mean + std * (phi(al) - phi(be)) / z;
  const double r = (phi(al) - phi(be)) / z;
  const double v = std * std * (1 + (al * phi(al) - be * phi(be)) / z - r * r);
  EXPECT_NEAR(s.mean, m, kSigmas * std::sqrt(v / s.n())) << "mean";
  // A truncated normal's kurtosis is at most 3, so Var(s^2) <= 2 v^2 / n.
  EXPECT_NEAR(s.var, v, kSigmas * v * std::sqrt(2 / s.n())) << "variance";
  const double c = (a + b) / 2;
  expect_frequency(s.fraction(a, c), (cdf((c - mean) / std) - cdf(al)) / z, s.n(), "lower half of [a, b]");
}
}  // namespace

TEST(Init, CalculateGainAsTorch) {
  for (auto nl : {init::kLinear, init::kConv1D, init::kConv2D, init::kConv3D, init::kConvTranspose1D,
                  init::kConvTranspose2D, init::kConvTranspose3D, init::kSigmoid}) {
    EXPECT_EQ(init::calculate_gain(nl), 1.0);
  }
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::kTanh), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::kReLU), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::kLeakyReLU), std::sqrt(2.0 / (1 + 0.01 * 0.01)));
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::kLeakyReLU, 0.2), std::sqrt(2.0 / 1.04));
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::kLeakyReLU, 0.0), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::kSELU), 0.75);
  // The parameter only matters for leaky relu.
  EXPECT_DOUBLE_EQ(init::calculate_gain(init::kReLU, 0.5), std::sqrt(2.0));
}

TEST(Init, FanInAndFanOut) {
  EXPECT_EQ(init::calculate_fan_in_and_fan_out(kiln::empty({5, 3})), std::make_tuple(int64_t{3}, int64_t{5}));
  // Conv weights [out, in, kh, kw]: the receptive field multiplies both.
  EXPECT_EQ(init::calculate_fan_in_and_fan_out(kiln::empty({16, 4, 3, 5})),
            std::make_tuple(int64_t{4 * 15}, int64_t{16 * 15}));
  EXPECT_EQ(init::_calculate_fan_in_and_fan_out(kiln::empty({2, 3, 4})), std::make_tuple(int64_t{12}, int64_t{8}));
  EXPECT_KILN_ERROR(init::calculate_fan_in_and_fan_out(kiln::empty({7})), "fewer than 2 dimensions");
  EXPECT_KILN_ERROR(init::calculate_fan_in_and_fan_out(kiln::empty({})), "fewer than 2 dimensions");
}

TEST(Init, UniformAndNormalDistributions) {
  Generator gen(11);
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor u = kiln::empty({1000, 1000}, dt);
    init::uniform_(u, -0.3, 0.7, &gen);
    expect_uniform(u, -0.3, 0.7);
    Tensor n = kiln::empty({1000, 1000}, dt);
    init::normal_(n, 1.5, 0.5, &gen);
    expect_normal(n, 1.5, 0.5);
  }
  // Defaults: U(0, 1), N(0, 1).
  expect_uniform(init::uniform_(kiln::empty({200000}), 0, 1, &gen), 0.0, 1.0);
  expect_normal(init::normal_(kiln::empty({200000}), 0, 1, &gen), 0.0, 1.0);
}

TEST(Init, GeneratorsAreReproducibleAndIndependent) {
  Generator g1(5), g2(5);
  Tensor a = init::normal_(kiln::empty({64}), 0, 1, &g1);
  Tensor b = init::normal_(kiln::empty({64}), 0, 1, &g2);
  EXPECT_EQ(values(a), values(b));
  // A given generator leaves the default one alone.
  const uint64_t offset = default_generator().offset();
  init::kaiming_uniform_(kiln::empty({8, 8}), 0, init::kFanIn, init::kLeakyReLU, &g1);
  init::trunc_normal_(kiln::empty({8, 8}), 0, 1, -2, 2, &g1);
  EXPECT_EQ(default_generator().offset(), offset);
  // Without one, the default generator is used (and advances).
  init::normal_(kiln::empty({8}));
  EXPECT_GT(default_generator().offset(), offset);
}

TEST(Init, InPlaceOnParametersWithoutRecording) {
  Tensor w = kiln::zeros({30, 40}, kiln::requires_grad());
  const uint32_t version = w._version();
  const TensorImpl* impl = w.impl();
  Tensor r = init::normal_(w, 0, 1);
  EXPECT_TRUE(r.is_same(w));
  EXPECT_EQ(w.impl(), impl);
  EXPECT_TRUE(w.is_leaf());
  EXPECT_TRUE(w.requires_grad());
  EXPECT_EQ(w.grad_fn(), nullptr);
  EXPECT_GT(w._version(), version);
  EXPECT_TRUE(GradMode::is_enabled());
  for (auto fn : {+[](Tensor t) { return init::uniform_(t); }, +[](Tensor t) { return init::trunc_normal_(t); },
                  +[](Tensor t) { return init::xavier_uniform_(t); }, +[](Tensor t) { return init::kaiming_normal_(t); },
                  +[](Tensor t) { return init::ones_(t); }}) {
    fn(w);
    EXPECT_TRUE(w.is_leaf());
    EXPECT_EQ(w.grad_fn(), nullptr);
  }
}

TEST(Init, FillsNonContiguousViews) {
  Generator gen(3);
  Tensor base = kiln::zeros({300, 400});
  Tensor view = base.t();  // [400, 300], column-major
  init::uniform_(view, 1.0, 2.0, &gen);
  Sample s(base);
  EXPECT_GE(s.min, 1.0);  // every element written
  expect_uniform(base, 1.0, 2.0);
  Tensor strided = kiln::zeros({100, 200});
  init::normal_(strided.slice(1, 0, 200, 2), 0, 1, &gen);
  auto v = values(strided);
  for (int64_t i = 0; i < 100; ++i)
    for (int64_t j = 1; j < 200; j += 2) ASSERT_EQ(v[i * 200 + j], 0.0);
  expect_normal(strided.slice(1, 0, 200, 2), 0, 1);
}

TEST(Init, TruncNormalMatchesTheTruncatedDistribution) {
  Generator gen(7);
  // Most of the mass inside (redraws of the outliers).
  expect_truncated_normal(init::trunc_normal_(kiln::empty({500000}), 0, 1, -2, 2, &gen), 0, 1, -2, 2);
  expect_truncated_normal(init::trunc_normal_(kiln::empty({500000}, kFloat64), 0.5, 2, -1, 3, &gen), 0.5, 2, -1, 3);
  // Little of the mass inside (uniform proposals with acceptance).
  expect_truncated_normal(init::trunc_normal_(kiln::empty({500000}), 0, 1, 1, 1.5, &gen), 0, 1, 1, 1.5);
  expect_truncated_normal(init::trunc_normal_(kiln::empty({200000}), 0, 1, 4, 6, &gen), 0, 1, 4, 6);
  // timm's use: bounds are absolute, so std 0.02 with [-2, 2] is a plain normal.
  Tensor w = init::trunc_normal_(kiln::empty({768, 768}), 0, 0.02, -2, 2, &gen);
  expect_normal(w, 0, 0.02);
  // Reduced precision: bounds hold in the tensor's dtype.
  const double lo = native::scalar_tensor(-0.3, kBFloat16).item<double>();
  const double hi = native::scalar_tensor(0.3, kBFloat16).item<double>();
  for (double a : {-0.3, -3.0}) {  // the uniform-proposal and the redraw branch
    Sample sh(init::trunc_normal_(kiln::empty({100000}, kBFloat16), 0, 1, a, 0.3, &gen));
    EXPECT_GE(sh.min, a == -0.3 ? lo : a);
    EXPECT_LE(sh.max, hi);
  }
  // Degenerate cases.
  EXPECT_EQ(values(init::trunc_normal_(kiln::empty({4}), 5, 0, -2, 2, &gen)), std::vector<double>(4, 2.0));
  EXPECT_EQ(init::trunc_normal_(kiln::empty({0, 3}), 0, 1, -2, 2, &gen).numel(), 0);
}

TEST(Init, ConstantsAnyDtype) {
  Tensor f = init::constant_(kiln::empty({2, 3}), 0.25);
  EXPECT_EQ(values(f), std::vector<double>(6, 0.25));
  Tensor i = init::constant_(kiln::empty({3}, kInt64), 7);
  EXPECT_EQ(values(i), std::vector<double>(3, 7.0));
  EXPECT_EQ(values(init::zeros_(kiln::ones({4}))), std::vector<double>(4, 0.0));
  EXPECT_EQ(values(init::ones_(kiln::zeros({2, 2}, kFloat16))), std::vector<double>(4, 1.0));
  EXPECT_EQ(values(init::ones_(kiln::zeros({2}, kBool))), std::vector<double>(2, 1.0));
}

TEST(Init, KaimingStdFromTheFormula) {
  Generator gen(21);
  Tensor w = kiln::empty({256, 128, 3, 3});  // fan_in 1152, fan_out 2304
  // Defaults: a = 0, fan_in, leaky_relu -> gain sqrt(2).
  init::kaiming_uniform_(w, 0, init::kFanIn, init::kLeakyReLU, &gen);
  const double b_in = std::sqrt(3.0) * std::sqrt(2.0) / std::sqrt(1152.0);
  expect_uniform(w, -b_in, b_in);
  init::kaiming_normal_(w, 0, init::kFanOut, init::kReLU, &gen);
  expect_normal(w, 0, std::sqrt(2.0) / std::sqrt(2304.0));
  // a = sqrt(5): PyTorch's Linear/Conv default, bound 1/sqrt(fan_in).
  init::kaiming_uniform_(w, std::sqrt(5.0), init::kFanIn, init::kLeakyReLU, &gen);
  expect_uniform(w, -1 / std::sqrt(1152.0), 1 / std::sqrt(1152.0));
  init::kaiming_normal_(w, 0, init::kFanIn, init::kTanh, &gen);
  expect_normal(w, 0, (5.0 / 3.0) / std::sqrt(1152.0));
  // Zero elements: untouched, no error (torch only warns).
  Tensor empty = kiln::empty({0, 4});
  EXPECT_TRUE(init::kaiming_uniform_(empty).is_same(empty));
  EXPECT_KILN_ERROR(init::kaiming_normal_(kiln::empty({5})), "fewer than 2 dimensions");
}

TEST(Init, XavierStdFromTheFormula) {
  Generator gen(33);
  Tensor w = kiln::empty({300, 500}, kFloat64);
  init::xavier_normal_(w, 2.0, &gen);
  expect_normal(w, 0, 2.0 * std::sqrt(2.0 / 800));
  init::xavier_uniform_(w, 1.0, &gen);
  const double b = std::sqrt(3.0) * std::sqrt(2.0 / 800);
  expect_uniform(w, -b, b);
  Tensor conv = kiln::empty({64, 32, 5, 5});
  init::xavier_uniform_(conv, init::calculate_gain(init::kReLU), &gen);
  const double bc = std::sqrt(2.0) * std::sqrt(6.0 / ((32 + 64) * 25));
  expect_uniform(conv, -bc, bc);
  EXPECT_KILN_ERROR(init::xavier_uniform_(kiln::empty({5})), "fewer than 2 dimensions");
}

TEST(Init, Errors) {
  EXPECT_KILN_ERROR(init::uniform_(kiln::empty({2}, kInt64)), "expected a floating-point tensor");
  EXPECT_KILN_ERROR(init::uniform_(kiln::empty({2}), 1.0, 0.0), "low <= high");
  EXPECT_KILN_ERROR(init::normal_(kiln::empty({2}), 0.0, -1.0), "std >= 0.0");
  EXPECT_KILN_ERROR(init::normal_(kiln::empty({2}, kInt32)), "expected a floating-point tensor");
  EXPECT_KILN_ERROR(init::trunc_normal_(kiln::empty({2}), 0, 1, 2, -2), "a <= b");
  EXPECT_KILN_ERROR(init::trunc_normal_(kiln::empty({2}), 0, -1), "std >= 0.0");
  EXPECT_KILN_ERROR(init::trunc_normal_(kiln::empty({2}), 0, 1, 5, INFINITY), "give finite bounds");
  EXPECT_KILN_ERROR(init::kaiming_uniform_(kiln::empty({2, 2}, kInt64)), "expected a floating-point tensor");
  EXPECT_KILN_ERROR(init::constant_(Tensor(), 1), "undefined");
}
