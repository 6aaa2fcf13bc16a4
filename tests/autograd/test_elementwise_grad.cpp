// Gradients of the elementwise functions: gradcheck for every op (broadcast,
// expanded, transposed inputs), closed forms, double backward.
#include <kiln/kiln.h>

#include <cmath>

#include "autograd/gradcheck_util.h"

using namespace kiln;
using autograd::variable_list;
using kiln::testing::all_close;
using kiln::testing::leaf;
using kiln::testing::make;
using kiln::testing::random_leaf;
using kiln::testing::transposed_leaf;
using kiln::testing::sample;
using kiln::testing::values;

namespace {
// Values in [lo, hi] with random signs: away from 0 where an op has a kink or pole.
Tensor signed_leaf(IntArrayRef sizes, double lo, double hi, unsigned seed = 2) {
  std::vector<double> mag = sample(numel_of(sizes), lo, hi, seed);
  std::vector<double> sgn = sample(numel_of(sizes), -1, 1, seed + 100);
  for (size_t i = 0; i < mag.size(); ++i) mag[i] = sgn[i] < 0 ? -mag[i] : mag[i];
  return make(sizes, mag).requires_grad_(true);
}
using Unary = Tensor (*)(const Tensor&);
}  // namespace

TEST(ElementwiseGrad, BinaryArithmeticWithBroadcasting) {
  Tensor a = random_leaf({2, 3}, -1, 1, 1);
  Tensor row = random_leaf({3}, 0.5, 2, 2);      // broadcast along dim 0
  Tensor col = random_leaf({2, 1}, 0.5, 2, 3);   // broadcast along dim 1
  Tensor at = transposed_leaf(2, 3, 0.5, 2);     // non-contiguous
  auto add = [](const variable_list& in) { return kiln::add(in[0], in[1], 2.5); };
  auto sub = [](const variable_list& in) { return kiln::sub(in[0], in[1], -0.5); };
  auto rsub = [](const variable_list& in) { return kiln::rsub(in[0], in[1], 3); };
  auto mul = [](const variable_list& in) { return in[0] * in[1]; };
  auto div = [](const variable_list& in) { return in[0] / in[1]; };
  for (const Tensor& b : {row, col, at}) {
    EXPECT_GRADCHECK(add, {a, b});
    EXPECT_GRADCHECK(sub, {a, b});
    EXPECT_GRADCHECK(rsub, {a, b});
    EXPECT_GRADCHECK(mul, {a, b});
    EXPECT_GRADCHECK(div, {a, b});
    EXPECT_GRADCHECK(div, {b, a.detach() + 3.0});  // constant divisor
  }
  // Both sides broadcast: [2, 1] op [3].
  EXPECT_GRADCHECK(mul, {col, row});
  EXPECT_GRADCHECK(div, {col, row});
  // An input expanded inside the function.
  auto expanded = [](const variable_list& in) { return in[0].expand({2, 3}) * in[1]; };
  EXPECT_GRADCHECK(expanded, {random_leaf({1, 3}), at});
}

TEST(ElementwiseGrad, ScalarOperands) {
  Tensor x = random_leaf({2, 3}, 0.5, 2);
  auto ops = std::vector<std::function<Tensor(const variable_list&)>>{
      [](const variable_list& in) { return in[0] + 2.0; },
      [](const variable_list& in) { return 2 + in[0]; },
      [](const variable_list& in) { return kiln::add(in[0], 2.0, 3); },
      [](const variable_list& in) { return in[0] - 2.0; },
      [](const variable_list& in) { return kiln::sub(in[0], 1, 0.5); },
      [](const variable_list& in) { return 2.0 - in[0]; },
      [](const variable_list& in) { return kiln::rsub(in[0], 1.0, 4); },
      [](const variable_list& in) { return in[0] * 3.0; },
      [](const variable_list& in) { return -1.5 * in[0]; },
      [](const variable_list& in) { return in[0] / 4.0; },
      [](const variable_list& in) { return 2.0 / in[0]; },
      [](const variable_list& in) { return -in[0]; },
  };
  for (auto& op : ops) EXPECT_GRADCHECK(op, {x});
}

TEST(ElementwiseGrad, ScalarOperandClosedForms) {
  Tensor x = leaf({2}, {1, 4});
  kiln::add(x, 1.0, 3).sum().backward();  // x + 3
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1, 1}));
  x.set_grad(Tensor());
  (2.0 / x).sum().backward();  // -2 / x^2
  EXPECT_TRUE(all_close(x.grad(), make({2}, {-2, -0.125}), 1e-12));
  Tensor y = leaf({2}, {1, 2});
  Tensor z = leaf({2}, {3, 5});
  kiln::sub(y, z, 2).sum().backward();
  EXPECT_EQ(values(z.grad()), (std::vector<double>{-2, -2}));
}

TEST(ElementwiseGrad, Pow) {
  Tensor x = random_leaf({2, 3}, 0.5, 2);
  auto pow_int = [](const variable_list& in) { return in[0].pow(3); };
  auto pow_frac = [](const variable_list& in) { return in[0].pow(-1.5); };
  auto pow_zero = [](const variable_list& in) { return in[0].pow(0); };
  auto pow_tensor = [](const variable_list& in) { return in[0].pow(in[1]); };
  auto pow_scalar_base = [](const variable_list& in) { return kiln::pow(2.5, in[0]); };
  auto square = [](const variable_list& in) { return in[0].square(); };
  EXPECT_GRADCHECK(pow_int, {x});
  EXPECT_GRADCHECK(pow_frac, {x});
  EXPECT_GRADCHECK(pow_zero, {x});
  EXPECT_GRADCHECK(pow_tensor, {x, random_leaf({3}, -2, 2, 8)});
  EXPECT_GRADCHECK(pow_tensor, {random_leaf({3}, 0.5, 2, 9), x});
  EXPECT_GRADCHECK(pow_scalar_base, {random_leaf({3}, -2, 2)});
  EXPECT_GRADCHECK(square, {transposed_leaf(2, 3)});
  // torch's conventions at 0: d/dx x^0 = 0, and d/dp 0^p = 0 for p >= 0.
  Tensor zero = leaf({2}, {0, 0});
  Tensor p = leaf({2}, {0, 2});
  zero.pow(p).sum().backward();
  EXPECT_EQ(values(zero.grad()), (std::vector<double>{0, 0}));
  EXPECT_EQ(values(p.grad()), (std::vector<double>{0, 0}));
}

TEST(ElementwiseGrad, MinimumMaximumSplitTies) {
  Tensor a = leaf({3}, {1, 5, 2});
  Tensor b = leaf({3}, {3, 5, 1});
  kiln::maximum(a, b).sum().backward();
  EXPECT_EQ(values(a.grad()), (std::vector<double>{0, 0.5, 1}));
  EXPECT_EQ(values(b.grad()), (std::vector<double>{1, 0.5, 0}));
  a.set_grad(Tensor());
  b.set_grad(Tensor());
  kiln::minimum(a, b).sum().backward();
  EXPECT_EQ(values(a.grad()), (std::vector<double>{1, 0.5, 0}));
  EXPECT_EQ(values(b.grad()), (std::vector<double>{0, 0.5, 1}));
  auto max = [](const variable_list& in) { return kiln::maximum(in[0], in[1]); };
  auto min = [](const variable_list& in) { return in[0].minimum(in[1]); };
  EXPECT_GRADCHECK(max, {random_leaf({2, 3}, -1, 1, 1), random_leaf({3}, -1, 1, 2)});
  EXPECT_GRADCHECK(min, {transposed_leaf(2, 3), random_leaf({2, 1}, -1, 1, 5)});
}

TEST(ElementwiseGrad, UnaryMath) {
  struct Case {
    const char* name;
    Unary op;
    double lo, hi;
    bool any_sign;  // values uniform in [lo, hi]; else magnitudes in [lo, hi] with random signs
  };
  const Case cases[] = {
      {"neg", kiln::neg, -2, 2, true},         {"exp", kiln::exp, -2, 2, true},
      {"log", kiln::log, 0.2, 3, true},       {"log1p", kiln::log1p, -0.5, 2, true},
      {"expm1", kiln::expm1, -2, 2, true},     {"sqrt", kiln::sqrt, 0.2, 3, true},
      {"rsqrt", kiln::rsqrt, 0.2, 3, true},   {"abs", kiln::abs, 0.1, 2, false},
      {"sign", kiln::sign, 0.1, 2, false},     {"tanh", kiln::tanh, -2, 2, true},
      {"sigmoid", kiln::sigmoid, -3, 3, true}, {"relu", kiln::relu, 0.1, 2, false},
      {"silu", kiln::silu, -3, 3, true},       {"sin", kiln::sin, -3, 3, true},
      {"cos", kiln::cos, -3, 3, true},         {"acos", kiln::acos, -0.9, 0.9, true},
      {"erf", kiln::erf, -2, 2, true},         {"reciprocal", kiln::reciprocal, 0.3, 2, false},
      {"square", kiln::square, -2, 2, true},   {"floor", kiln::floor, 0.1, 0.9, false},
      {"ceil", kiln::ceil, 0.1, 0.9, false},   {"round", kiln::round, 0.1, 0.4, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Tensor x = c.any_sign ? random_leaf({2, 3}, c.lo, c.hi) : signed_leaf({2, 3}, c.lo, c.hi);
    Tensor xt = c.any_sign ? transposed_leaf(2, 3, c.lo, c.hi) : native::t(signed_leaf({3, 2}, c.lo, c.hi).detach()).requires_grad_();
    auto f = [&](const variable_list& in) { return c.op(in[0]); };
    EXPECT_GRADCHECK(f, {x});
    EXPECT_GRADCHECK(f, {xt});
  }
}

TEST(ElementwiseGrad, Gelu) {
  Tensor x = random_leaf({2, 3}, -3, 3);
  auto erf_gelu = [](const variable_list& in) { return in[0].gelu(); };
  auto tanh_gelu = [](const variable_list& in) { return kiln::gelu(in[0], "tanh"); };
  EXPECT_GRADCHECK(erf_gelu, {x});
  EXPECT_GRADCHECK(tanh_gelu, {x});
  EXPECT_KILN_ERROR(kiln::gelu(x, "fast"), "approximate");
  // Closed form: d/dx x Phi(x) at x = 1 is Phi(1) + phi(1).
  Tensor one = leaf({1}, {1});
  one.gelu().sum().backward();
  const double expected = 0.5 * (1 + std::erf(1 / std::sqrt(2.0))) + std::exp(-0.5) / std::sqrt(2 * M_PI);
  EXPECT_NEAR(values(one.grad())[0], expected, 1e-12);
}

TEST(ElementwiseGrad, ActivationClosedForms) {
  Tensor x = leaf({4}, {-2, -0.5, 0.5, 2});
  x.sigmoid().sum().backward();
  for (int i = 0; i < 4; ++i) {
    const double v = values(x)[i], s = 1 / (1 + std::exp(-v));
    EXPECT_NEAR(values(x.grad())[i], s * (1 - s), 1e-12);
  }
  x.set_grad(Tensor());
  x.tanh().sum().backward();
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(values(x.grad())[i], 1 - std::pow(std::tanh(values(x)[i]), 2), 1e-12);
  x.set_grad(Tensor());
  x.relu().sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 0, 1, 1}));
  Tensor z = leaf({3}, {-1, 0, 1});
  z.relu().sum().backward();
  EXPECT_EQ(values(z.grad()), (std::vector<double>{0, 0, 1}));  // relu'(0) = 0, as torch
  z.set_grad(Tensor());
  z.abs().sum().backward();
  EXPECT_EQ(values(z.grad()), (std::vector<double>{-1, 0, 1}));
}

TEST(ElementwiseGrad, Float32GradientsMatchFloat64ClosedForm) {
  Tensor x = native::to(make({3}, {-1, 0.5, 2}), kFloat32).requires_grad_();
  (x.exp() * x).sum().backward();
  EXPECT_EQ(x.grad().dtype(), kFloat32);
  EXPECT_TRUE(all_close(x.grad(), make({3}, {0, 1.5 * std::exp(0.5), 3 * std::exp(2.0)}), 1e-6, 1e-6));
}

TEST(ElementwiseGrad, Clamp) {
  Tensor x = leaf({5}, {-2, -1, 0, 1, 2});
  x.clamp(-1, 1).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 1, 1, 1, 0}));  // bounds included, as torch
  auto both = [](const variable_list& in) { return in[0].clamp(-0.5, 0.5); };
  auto lower = [](const variable_list& in) { return in[0].clamp_min(0.1); };
  auto upper = [](const variable_list& in) { return in[0].clamp_max(-0.1); };
  auto only_max = [](const variable_list& in) { return kiln::clamp(in[0], std::nullopt, 0.3); };
  Tensor y = leaf({6}, {-0.9, -0.3, 0.05, 0.2, 0.45, 0.8});
  for (auto f : {+both, +lower, +upper, +only_max}) EXPECT_GRADCHECK(f, {y});
}

TEST(ElementwiseGrad, WhereAndMaskedFill) {
  Tensor cond = native::to(make({2, 3}, {1, 0, 1, 0, 0, 1}), kBool);
  Tensor a = random_leaf({2, 3});
  Tensor b = random_leaf({3}, -1, 1, 4);
  auto where = [&](const variable_list& in) { return kiln::where(cond, in[0], in[1]); };
  auto where_scalar_b = [&](const variable_list& in) { return kiln::where(cond, in[0], 2.0); };
  auto where_scalar_a = [&](const variable_list& in) { return kiln::where(cond, -1.0, in[0]); };
  auto method = [&](const variable_list& in) { return in[0].where(cond, in[1]); };
  EXPECT_GRADCHECK(where, {a, b});
  EXPECT_GRADCHECK(where, {transposed_leaf(2, 3), b});
  EXPECT_GRADCHECK(where_scalar_b, {a});
  EXPECT_GRADCHECK(where_scalar_a, {b});
  EXPECT_GRADCHECK(method, {a, b});
  Tensor mask = native::to(make({3}, {0, 1, 0}), kBool);
  auto fill = [&](const variable_list& in) { return in[0].masked_fill(mask, -5.0); };
  auto fill_tensor = [&](const variable_list& in) { return in[0].masked_fill(mask, in[1]); };
  EXPECT_GRADCHECK(fill, {a});
  EXPECT_GRADCHECK(fill_tensor, {a, leaf({}, {0.7})});
  // Closed form: where sends the gradient to the chosen side.
  (kiln::where(cond, a, b) * 2.0).sum().backward();
  EXPECT_EQ(values(a.grad()), (std::vector<double>{2, 0, 2, 0, 0, 2}));
  EXPECT_EQ(values(b.grad()), (std::vector<double>{2, 4, 0}));
  EXPECT_KILN_ERROR(a.masked_fill(mask, make({1}, {1})), "0-dimensional");
}

TEST(ElementwiseGrad, ComparisonsAndLogicalOpsAreNotDifferentiable) {
  Tensor a = random_leaf({3});
  Tensor b = random_leaf({3}, -1, 1, 2);
  for (const Tensor& r : {a == b, a != b, a < b, a <= b, a > b, a >= b, a == 0.5, a.lt(0.0), a.ge(0.0),
                          kiln::logical_and(a, b), kiln::logical_or(a, b), kiln::logical_xor(a, b), !a,
                          a && b, a || b}) {
    EXPECT_EQ(r.dtype(), kBool);
    EXPECT_FALSE(r.requires_grad());
  }
}

TEST(ElementwiseGrad, DoubleBackward) {
  Tensor x = random_leaf({2, 3}, 0.5, 2);
  Tensor y = random_leaf({3}, 0.5, 2, 6);
  auto mul = [](const variable_list& in) { return in[0] * in[1] * in[0]; };
  auto div = [](const variable_list& in) { return in[0] / in[1]; };
  auto pow = [](const variable_list& in) { return in[0].pow(in[1]); };
  auto pow_scalar = [](const variable_list& in) { return in[0].pow(2.5); };
  auto add_broadcast = [](const variable_list& in) { return (in[0] + in[1]) * in[1]; };
  auto maximum = [](const variable_list& in) { return kiln::maximum(in[0], in[1]) * in[0]; };
  EXPECT_GRADGRADCHECK(mul, {x, y});
  EXPECT_GRADGRADCHECK(div, {x, y});
  EXPECT_GRADGRADCHECK(pow, {x, y});
  EXPECT_GRADGRADCHECK(pow_scalar, {x});
  EXPECT_GRADGRADCHECK(add_broadcast, {x, y});
  EXPECT_GRADGRADCHECK(maximum, {random_leaf({4}, -1, 1, 1), random_leaf({4}, -1, 1, 2)});
  const Unary ops[] = {kiln::exp, kiln::log, kiln::sqrt, kiln::rsqrt, kiln::tanh, kiln::sigmoid, kiln::silu,
                       kiln::sin, kiln::cos, kiln::erf, kiln::reciprocal, kiln::relu, kiln::expm1, kiln::log1p,
                       kiln::abs};
  for (Unary op : ops) {
    auto f = [op](const variable_list& in) { return op(in[0]); };
    EXPECT_GRADGRADCHECK(f, {x});
  }
  auto gelu = [](const variable_list& in) { return in[0].gelu(); };
  auto gelu_tanh = [](const variable_list& in) { return in[0].gelu("tanh"); };
  auto acos = [](const variable_list& in) { return in[0].acos(); };
  EXPECT_GRADGRADCHECK(gelu, {random_leaf({5}, -3, 3)});
  EXPECT_GRADGRADCHECK(gelu_tanh, {random_leaf({5}, -3, 3)});
  EXPECT_GRADGRADCHECK(acos, {random_leaf({5}, -0.9, 0.9)});
  Tensor cond = native::to(make({3}, {1, 0, 1}), kBool);
  auto where = [&](const variable_list& in) { return kiln::where(cond, in[0] * in[0], in[1]); };
  EXPECT_GRADGRADCHECK(where, {y, random_leaf({3})});
}

TEST(ElementwiseGrad, SecondDerivativeClosedForm) {
  // d2/dx2 sigmoid = s (1 - s) (1 - 2 s).
  Tensor x = leaf({3}, {-1, 0.3, 2});
  Tensor g = autograd::grad({x.sigmoid().sum()}, {x}, {}, std::nullopt, true)[0];
  Tensor gg = autograd::grad({g.sum()}, {x})[0];
  for (int i = 0; i < 3; ++i) {
    const double s = 1 / (1 + std::exp(-values(x)[i]));
    EXPECT_NEAR(values(gg)[i], s * (1 - s) * (1 - 2 * s), 1e-12);
  }
}

TEST(ElementwiseGrad, ZeroDimAndEmptyInputs) {
  Tensor s = leaf({}, {1.5});
  Tensor m = random_leaf({2, 3});
  auto mul = [](const variable_list& in) { return in[0] * in[1]; };
  auto div = [](const variable_list& in) { return in[1] / in[0]; };
  EXPECT_GRADCHECK(mul, {s, m});
  EXPECT_GRADCHECK(div, {s, m});
  (s * m).sum().backward();
  EXPECT_EQ(s.grad().dim(), 0);
  EXPECT_NEAR(values(s.grad())[0], values(m.detach().sum())[0], 1e-12);
  Tensor e = kiln::zeros({0, 3}, dtype(kFloat64).requires_grad(true));
  (e.exp() * 2.0).sum().backward();
  EXPECT_EQ(e.grad().sizes(), IntArrayRef({0, 3}));
  Tensor b = random_leaf({3});
  (kiln::zeros({0, 3}, kFloat64) + b).sum().backward();
  EXPECT_EQ(values(b.grad()), (std::vector<double>{0, 0, 0}));  // broadcast over zero rows
}

TEST(ElementwiseGrad, ReducedPrecisionGradients) {
  for (DType dt : {kBFloat16, kFloat16}) {
    Tensor x = native::to(make({3}, {-1, 0.5, 2}), dt).requires_grad_();
    (x * x + x).sum().backward();
    EXPECT_EQ(x.grad().dtype(), dt);
    EXPECT_TRUE(all_close(x.grad(), make({3}, {-1, 2, 5}), 1e-2, 1e-2));
    x.set_grad(Tensor());
    x.sigmoid().sum().backward();
    for (int i = 0; i < 3; ++i) {
      const double v = values(x)[i], sg = 1 / (1 + std::exp(-v));
      EXPECT_NEAR(values(x.grad())[i], sg * (1 - sg), 1e-2);
    }
  }
}
