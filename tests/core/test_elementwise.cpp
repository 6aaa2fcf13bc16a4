// Pointwise ops against float64 loops written here: every UnaryOp and
// BinaryOp on every floating dtype, integer behaviour, broadcasting, strided
// inputs, the fused backward formulas against central differences, where,
// masked_fill, clamp and the in-place forms.
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



// Error allowed after rounding the inputs to `d`: a few units in the last
// place of the result's dtype (16-bit floats compute in float, then round once).
double tol(DType d) {
  switch (d) {
    case kFloat64: return 1e-12;
    case kFloat32: return 1e-6;
    case kFloat16: return 2e-3;
    case kBFloat16: return 1.6e-2;
    default: return 0;
  }
}


double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }
double gelu(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
double gelu_tanh(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}
double silu(double x) { return x * sigmoid(x); }

struct UnaryCase {
  UnaryOp op;
  double (*ref)(double);
  double lo, hi;  // input range inside the op's domain
};

const std::vector<UnaryCase>& unary_cases() {
  static const std::vector<UnaryCase> cases = {
      {UnaryOp::Neg, [](double x) { return -x; }, -3, 3},
      {UnaryOp::Exp, [](double x) { return std::exp(x); }, -3, 3},
      {UnaryOp::Log, [](double x) { return std::log(x); }, 0.05, 5},
      {UnaryOp::Log1p, [](double x) { return std::log1p(x); }, -0.9, 3},
      {UnaryOp::Expm1, [](double x) { return std::expm1(x); }, -2, 2},
      {UnaryOp::Sqrt, [](double x) { return std::sqrt(x); }, 0, 9},
      {UnaryOp::Rsqrt, [](double x) { return 1 / std::sqrt(x); }, 0.1, 9},
      {UnaryOp::Abs, [](double x) { return std::fabs(x); }, -3, 3},
      {UnaryOp::Sign, [](double x) { return double((x > 0) - (x < 0)); }, -3, 3},
      {UnaryOp::Tanh, [](double x) { return std::tanh(x); }, -3, 3},
      {UnaryOp::Sigmoid, sigmoid, -6, 6},
      {UnaryOp::Relu, [](double x) { return x < 0 ? 0.0 : x; }, -3, 3},
      {UnaryOp::GeluErf, gelu, -3, 3},
      {UnaryOp::GeluTanh, gelu_tanh, -3, 3},
      {UnaryOp::Silu, silu, -6, 6},
      {UnaryOp::Sin, [](double x) { return std::sin(x); }, -3, 3},
      {UnaryOp::Cos, [](double x) { return std::cos(x); }, -3, 3},
      {UnaryOp::Acos, [](double x) { return std::acos(x); }, -0.99, 0.99},
      {UnaryOp::Erf, [](double x) { return std::erf(x); }, -3, 3},
      {UnaryOp::Reciprocal, [](double x) { return 1 / x; }, 0.2, 4},
      {UnaryOp::Floor, [](double x) { return std::floor(x); }, -5, 5},
      {UnaryOp::Ceil, [](double x) { return std::ceil(x); }, -5, 5},
      {UnaryOp::Round, [](double x) { return std::nearbyint(x); }, -5, 5},
  };
  return cases;
}

const DType kFloats[] = {kFloat64, kFloat32, kFloat16, kBFloat16};

}  // namespace

TEST(Unary, EveryOpEveryFloatDtypeMatchesFloat64Loop) {
  for (const auto& c : unary_cases()) {
    for (DType d : kFloats) {
      // [6, 7] contiguous and its transpose (a non-contiguous input).
      Tensor x = make({6, 7}, sample(42, c.lo, c.hi, static_cast<uint32_t>(c.op) + 3), d);
      for (const Tensor& in : {x, native::transpose(x, 0, 1)}) {
        Tensor y = native::unary(c.op, in);
        EXPECT_EQ(y.dtype(), d) << op_name(c.op);
        EXPECT_TRUE(all_close(y, reference(in, c.ref), tol(d), tol(d)))
            << op_name(c.op) << " " << dtype_name(d);
      }
    }
  }
}

TEST(Unary, RoundIsHalfToEvenAndSignOfNaNIsZero) {
  Tensor x = make({6}, {0.5, 1.5, 2.5, -0.5, -2.5, 2.4});
  EXPECT_EQ(values(native::unary(UnaryOp::Round, x)), (std::vector<double>{0, 2, 2, -0, -2, 2}));
  Tensor s = native::unary(UnaryOp::Sign, make({3}, {kNaN, -2, 0}));
  EXPECT_EQ(values(s), (std::vector<double>{0, -1, 0}));
  // relu lets NaN through (torch.relu(nan) is nan).
  EXPECT_TRUE(std::isnan(values(native::unary(UnaryOp::Relu, make({1}, {kNaN})))[0]));
}

TEST(Unary, IntegerInputs) {
  Tensor x = make({5}, {-3, -1, 0, 2, 7}, kInt32);
  for (UnaryOp op : {UnaryOp::Neg, UnaryOp::Abs, UnaryOp::Sign, UnaryOp::Relu, UnaryOp::Floor, UnaryOp::Ceil,
                     UnaryOp::Round}) {
    EXPECT_EQ(native::unary(op, x).dtype(), kInt32) << op_name(op);
  }
  EXPECT_EQ(values(native::unary(UnaryOp::Neg, x)), (std::vector<double>{3, 1, 0, -2, -7}));
  EXPECT_EQ(values(native::unary(UnaryOp::Abs, x)), (std::vector<double>{3, 1, 0, 2, 7}));
  EXPECT_EQ(values(native::unary(UnaryOp::Sign, x)), (std::vector<double>{-1, -1, 0, 1, 1}));
  EXPECT_EQ(values(native::unary(UnaryOp::Relu, x)), (std::vector<double>{0, 0, 0, 2, 7}));
  // Float ops compute integer inputs in the default dtype, as torch.exp(int tensor).
  Tensor e = native::unary(UnaryOp::Exp, make({3}, {0, 1, 2}, kInt64));
  EXPECT_EQ(e.dtype(), kFloat32);
  EXPECT_TRUE(all_close(e, make({3}, {1, std::exp(1.0), std::exp(2.0)}), 1e-6));
  Tensor sq = native::unary(UnaryOp::Sqrt, make({2}, {1, 0}, kBool));
  EXPECT_EQ(sq.dtype(), kFloat32);
  EXPECT_EQ(values(sq), (std::vector<double>{1, 0}));
  // uint8 negation wraps.
  EXPECT_EQ(values(native::unary(UnaryOp::Neg, make({2}, {1, 0}, kUInt8))), (std::vector<double>{255, 0}));
  // The kernels themselves refuse float ops on integers (the native layer promotes first).
  Tensor ii = make({2}, {1, 2}, kInt64);
  EXPECT_KILN_ERROR(backend_of(ii).unary(UnaryOp::Exp, ii, ii), "int64");
  EXPECT_KILN_ERROR(backend_of(ii).binary(BinaryOp::Div, ii, ii, ii), "int64");
  Tensor i64 = make({1}, {0}, kInt64);
  native::fill_(i64, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(native::unary(UnaryOp::Neg, i64).item<int64_t>(), std::numeric_limits<int64_t>::min());
}

TEST(Unary, LogicalNotGivesBoolForEveryDtype) {
  for (DType d : {kFloat64, kFloat32, kFloat16, kBFloat16, kInt64, kInt32, kUInt8, kBool}) {
    Tensor y = native::unary(UnaryOp::LogicalNot, make({3}, {0, 1, 0}, d));
    EXPECT_EQ(y.dtype(), kBool);
    EXPECT_EQ(values(y), (std::vector<double>{1, 0, 1})) << dtype_name(d);
  }
  EXPECT_EQ(values(native::unary(UnaryOp::LogicalNot, make({2}, {kNaN, -0.0}))), (std::vector<double>{0, 1}));
}

TEST(Unary, NegOfBoolIsAnError) {
  EXPECT_KILN_ERROR(native::unary(UnaryOp::Neg, make({2}, {1, 0}, kBool)), "Negation");
}

TEST(Unary, InPlace) {
  Tensor x = make({2, 3}, {-1, 2, -3, 4, -5, 6}, kFloat32);
  Tensor xt = native::transpose(x, 0, 1);  // writes through a non-contiguous view
  const auto v0 = x._version();
  native::unary_(UnaryOp::Relu, xt);
  EXPECT_EQ(values(x), (std::vector<double>{0, 2, 0, 4, 0, 6}));
  EXPECT_GT(x._version(), v0);
  Tensor i = make({2}, {1, 2}, kInt64);
  EXPECT_KILN_ERROR(native::unary_(UnaryOp::Exp, i), "can't be cast");
  native::unary_(UnaryOp::LogicalNot, i);  // keeps int64, writes 0/1
  EXPECT_EQ(i.dtype(), kInt64);
  EXPECT_EQ(values(i), (std::vector<double>{0, 0}));
  Tensor e = native::expand(make({1}, {1}), {3});
  EXPECT_KILN_ERROR(native::unary_(UnaryOp::Exp, e), "single memory location");
}

namespace {
struct BinaryCase {
  BinaryOp op;
  double (*ref)(double, double);
  double alo, ahi, blo, bhi;
};

double nan_min(double a, double b) { return std::isnan(a) || std::isnan(b) ? kNaN : std::min(a, b); }
double nan_max(double a, double b) { return std::isnan(a) || std::isnan(b) ? kNaN : std::max(a, b); }

const std::vector<BinaryCase>& binary_cases() {
  static const std::vector<BinaryCase> cases = {
      {BinaryOp::Add, [](double a, double b) { return a + b; }, -3, 3, -3, 3},
      {BinaryOp::Sub, [](double a, double b) { return a - b; }, -3, 3, -3, 3},
      {BinaryOp::Mul, [](double a, double b) { return a * b; }, -3, 3, -3, 3},
      {BinaryOp::Div, [](double a, double b) { return a / b; }, -3, 3, 0.5, 3},
      {BinaryOp::Pow, [](double a, double b) { return std::pow(a, b); }, 0.1, 3, -2, 2},
      {BinaryOp::Minimum, nan_min, -3, 3, -3, 3},
      {BinaryOp::Maximum, nan_max, -3, 3, -3, 3},
      {BinaryOp::Eq, [](double a, double b) { return double(a == b); }, -2, 2, -2, 2},
      {BinaryOp::Ne, [](double a, double b) { return double(a != b); }, -2, 2, -2, 2},
      {BinaryOp::Lt, [](double a, double b) { return double(a < b); }, -3, 3, -3, 3},
      {BinaryOp::Le, [](double a, double b) { return double(a <= b); }, -3, 3, -3, 3},
      {BinaryOp::Gt, [](double a, double b) { return double(a > b); }, -3, 3, -3, 3},
      {BinaryOp::Ge, [](double a, double b) { return double(a >= b); }, -3, 3, -3, 3},
      {BinaryOp::LogicalAnd, [](double a, double b) { return double(a != 0 && b != 0); }, -1, 2, -1, 2},
      {BinaryOp::LogicalOr, [](double a, double b) { return double(a != 0 || b != 0); }, -1, 2, -1, 2},
      {BinaryOp::LogicalXor, [](double a, double b) { return double((a != 0) != (b != 0)); }, -1, 2, -1, 2},
      // Fused backwards, closed form in float64 (b = y for relu/sigmoid/tanh, x otherwise).
      {BinaryOp::ReluBackward, [](double g, double y) { return y <= 0 ? 0.0 : g; }, -2, 2, -1, 1},
      {BinaryOp::SigmoidBackward, [](double g, double y) { return g * y * (1 - y); }, -2, 2, 0, 1},
      {BinaryOp::TanhBackward, [](double g, double y) { return g * (1 - y * y); }, -2, 2, -1, 1},
      {BinaryOp::GeluErfBackward,
       [](double g, double x) {
         return g * (0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-x * x / 2) / std::sqrt(2 * M_PI));
       },
       -2, 2, -3, 3},
      {BinaryOp::GeluTanhBackward,
       [](double g, double x) {
         const double k = std::sqrt(2 / M_PI), t = std::tanh(k * (x + 0.044715 * x * x * x));
         return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x));
       },
       -2, 2, -3, 3},
      {BinaryOp::SiluBackward,
       [](double g, double x) { return g * sigmoid(x) * (1 + x * (1 - sigmoid(x))); }, -2, 2, -6, 6},
  };
  return cases;
}
}  // namespace

TEST(Binary, EveryOpEveryFloatDtypeMatchesFloat64Loop) {
  for (const auto& c : binary_cases()) {
    for (DType d : kFloats) {
      const auto seed = static_cast<uint32_t>(c.op) * 7 + 1;
      Tensor a = make({5, 6}, sample(30, c.alo, c.ahi, seed), d);
      Tensor b = make({5, 6}, sample(30, c.blo, c.bhi, seed + 1), d);
      if (c.op == BinaryOp::Eq || c.op == BinaryOp::Ne) b = native::where(native::binary(BinaryOp::Lt, a, 0.0), a, b);
      // Contiguous, then transposed a with sliced b of the same shape.
      Tensor bs = native::slice(make({5, 12}, sample(60, c.blo, c.bhi, seed + 2), d), 1, 0, 12, 2);
      Tensor at = native::transpose(make({6, 5}, sample(30, c.alo, c.ahi, seed + 3), d), 0, 1);
      for (auto [x, y] : {std::pair{a, b}, std::pair{at, bs}}) {
        Tensor out = native::binary(c.op, x, y);
        EXPECT_EQ(out.dtype(), produces_bool(c.op) ? kBool : d);
        EXPECT_TRUE(all_close(out, reference2(x, y, c.ref), tol(d), tol(d))) << op_name(c.op) << " "
                                                                              << dtype_name(d);
      }
    }
  }
}

namespace {
// Central difference of f at x in float64.
double derivative(double (*f)(double), double x) {
  const double h = 1e-6;
  return (f(x + h) - f(x - h)) / (2 * h);
}
}  // namespace

TEST(Binary, FusedBackwardsMatchCentralDifferences) {
  struct Case {
    BinaryOp op;
    double (*f)(double);
    bool takes_output;
  };
  const Case cases[] = {
      {BinaryOp::SigmoidBackward, sigmoid, true},
      {BinaryOp::TanhBackward, [](double x) { return std::tanh(x); }, true},
      {BinaryOp::ReluBackward, [](double x) { return x < 0 ? 0.0 : x; }, true},
      {BinaryOp::GeluErfBackward, gelu, false},
      {BinaryOp::GeluTanhBackward, gelu_tanh, false},
      {BinaryOp::SiluBackward, silu, false},
  };
  // Points away from relu's kink.
  std::vector<double> xs = {-2.7, -1.3, -0.6, -0.05, 0.07, 0.4, 1.1, 2.9};
  std::vector<double> gs = {0.5, -1.5, 2.0, 1.0, -0.25, 3.0, 1.0, -2.0};
  for (const auto& c : cases) {
    std::vector<double> b(xs.size()), expect(xs.size());
    for (size_t i = 0; i < xs.size(); ++i) {
      b[i] = c.takes_output ? c.f(xs[i]) : xs[i];
      expect[i] = gs[i] * derivative(c.f, xs[i]);
    }
    Tensor out = native::binary(c.op, make({8}, gs), make({8}, b));
    EXPECT_TRUE(all_close(out, make({8}, expect), 1e-7, 1e-8)) << op_name(c.op);
  }
}

TEST(Binary, IntegerArithmetic) {
  Tensor a = make({5}, {7, -7, 3, 0, 100}, kInt32), b = make({5}, {2, 2, -4, 5, 3}, kInt32);
  EXPECT_EQ(values(native::add(a, b)), (std::vector<double>{9, -5, -1, 5, 103}));
  EXPECT_EQ(values(native::sub(a, b)), (std::vector<double>{5, -9, 7, -5, 97}));
  EXPECT_EQ(values(native::mul(a, b)), (std::vector<double>{14, -14, -12, 0, 300}));
  EXPECT_EQ(native::add(a, b).dtype(), kInt32);
  // Integer division is true division into the default float dtype.
  Tensor q = native::div(a, b);
  EXPECT_EQ(q.dtype(), kFloat32);
  EXPECT_TRUE(all_close(q, make({5}, {3.5, -3.5, -0.75, 0, 100.0 / 3})));
  EXPECT_EQ(values(native::binary(BinaryOp::Maximum, a, b)), (std::vector<double>{7, 2, 3, 5, 100}));
  EXPECT_EQ(values(native::binary(BinaryOp::Minimum, a, b)), (std::vector<double>{2, -7, -4, 0, 3}));
  // uint8 wraps.
  Tensor u = make({2}, {250, 3}, kUInt8);
  EXPECT_EQ(values(native::add(u, make({2}, {10, 3}, kUInt8))), (std::vector<double>{4, 6}));
  // alpha scales the second operand.
  EXPECT_EQ(values(native::add(a, b, 3)), (std::vector<double>{13, -1, -9, 15, 109}));
  EXPECT_EQ(values(native::sub(a, b, 2)), (std::vector<double>{3, -11, 11, -10, 94}));
  EXPECT_KILN_ERROR(native::add(a, b, 0.5), "alpha");
}

TEST(Binary, IntegerPow) {
  Tensor a = make({6}, {2, -3, 5, 1, -1, 0}, kInt64);
  EXPECT_EQ(values(native::pow(a, 3)), (std::vector<double>{8, -27, 125, 1, -1, 0}));
  EXPECT_EQ(native::pow(a, 3).dtype(), kInt64);
  EXPECT_EQ(values(native::pow(a, 0)), (std::vector<double>{1, 1, 1, 1, 1, 1}));
  // Tensor exponents may be negative: 1 and -1 keep magnitude 1, others give 0.
  Tensor e = make({6}, {-1, -2, 2, -5, -3, 4}, kInt64);
  EXPECT_EQ(values(native::pow(a, e)), (std::vector<double>{0, 0, 25, 1, -1, 0}));
  EXPECT_KILN_ERROR(native::pow(a, -1), "negative integer powers");
  // An integer tensor to a float power is a float.
  Tensor f = native::pow(make({2}, {4, 9}, kInt32), 0.5);
  EXPECT_EQ(f.dtype(), kFloat32);
  EXPECT_EQ(values(f), (std::vector<double>{2, 3}));
}

TEST(Binary, PowWithConstantExponentMatchesStdPow) {
  for (DType d : {kFloat64, kFloat32, kFloat16}) {
    Tensor x = make({4, 9}, sample(36, 0.1, 4, 5), d);
    for (double e : {2.0, 0.5, 1.0, 3.0, -1.0, -2.0, -0.5, 1.7, 0.0}) {
      Tensor y = native::pow(x, e);
      EXPECT_TRUE(all_close(y, reference(x, [e](double v) { return std::pow(v, e); }), tol(d), tol(d)))
          << e << " " << dtype_name(d);
      // Same through a transposed input (the strided path).
      Tensor yt = native::pow(native::transpose(x, 0, 1), e);
      EXPECT_TRUE(all_close(yt, native::transpose(y, 0, 1), tol(d), tol(d)));
    }
  }
}

TEST(Binary, SixteenBitTensorsApplyNumbersInFloat) {
  // torch computes x * 0.1 for a half tensor as float(x) * 0.1f, rounded once.
  for (DType d : {kFloat16, kBFloat16}) {
    auto round_to = [d](float v) {
      return d == kFloat16 ? double(float(Half(v))) : double(float(BFloat16(v)));
    };
    Tensor x = make({64}, sample(64, -4, 4, 17), d);
    const auto xv = values(x);
    std::vector<double> mul(64), rsub(64);
    for (int i = 0; i < 64; ++i) {
      mul[i] = round_to(float(xv[i]) * 0.1f);
      rsub[i] = round_to(float(1.0 / 3) - float(xv[i]));
    }
    EXPECT_EQ(values(native::mul(x, 0.1)), mul) << dtype_name(d);
    EXPECT_EQ(native::mul(x, 0.1).dtype(), d);
    EXPECT_EQ(values(native::binary(BinaryOp::Sub, 1.0 / 3, x)), rsub);
    Tensor y = native::clone(x);
    native::binary_(BinaryOp::Mul, y, 0.1);
    EXPECT_EQ(values(y), mul);
    // The number is not rounded to the tensor's dtype first.
    Tensor p = make({1}, {0.1}, d);
    EXPECT_FALSE(native::binary(BinaryOp::Eq, p, 0.1).item<bool>());
    EXPECT_TRUE(native::binary(BinaryOp::Eq, p, values(p)[0]).item<bool>());
  }
}

TEST(Binary, MinimumMaximumPropagateNaN) {
  Tensor a = make({4}, {kNaN, 1, 2, kNaN}), b = make({4}, {1, kNaN, 3, kNaN});
  for (DType d : kFloats) {
    auto mn = values(native::binary(BinaryOp::Minimum, native::to(a, d), native::to(b, d)));
    auto mx = values(native::binary(BinaryOp::Maximum, native::to(a, d), native::to(b, d)));
    EXPECT_TRUE(std::isnan(mn[0]) && std::isnan(mn[1]) && std::isnan(mn[3]));
    EXPECT_TRUE(std::isnan(mx[0]) && std::isnan(mx[1]) && std::isnan(mx[3]));
    EXPECT_EQ(mn[2], 2);
    EXPECT_EQ(mx[2], 3);
  }
}

TEST(Binary, BoolOps) {
  Tensor a = make({4}, {0, 0, 1, 1}, kBool), b = make({4}, {0, 1, 0, 1}, kBool);
  // add of bools is logical or, mul is logical and, both staying bool (torch).
  EXPECT_EQ(native::add(a, b).dtype(), kBool);
  EXPECT_EQ(values(native::add(a, b)), (std::vector<double>{0, 1, 1, 1}));
  EXPECT_EQ(values(native::mul(a, b)), (std::vector<double>{0, 0, 0, 1}));
  EXPECT_EQ(values(native::binary(BinaryOp::LogicalXor, a, b)), (std::vector<double>{0, 1, 1, 0}));
  EXPECT_KILN_ERROR(native::sub(a, b), "Subtraction");
  // Comparisons of mixed dtypes promote first: 1 (int) == 1.0 (float).
  Tensor eq = native::binary(BinaryOp::Eq, make({2}, {1, 2}, kInt64), make({2}, {1.0, 2.5}, kFloat32));
  EXPECT_EQ(eq.dtype(), kBool);
  EXPECT_EQ(values(eq), (std::vector<double>{1, 0}));
}

TEST(Broadcast, ShapesAndValues) {
  Tensor col = make({3, 1}, {1, 2, 3}), row = make({1, 4}, {10, 20, 30, 40});
  Tensor s = native::add(col, row);
  EXPECT_EQ(s.sizes(), IntArrayRef({3, 4}));
  EXPECT_EQ(values(s), (std::vector<double>{11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43}));
  // Rank extension: [2, 3, 4] * [4].
  Tensor x = make({2, 3, 4}, sample(24, -1, 1)), v = make({4}, {1, -2, 3, -4});
  Tensor p = native::mul(x, v);
  EXPECT_TRUE(all_close(p, reference2(x, native::contiguous(native::expand(v, {2, 3, 4})),
                                      [](double a, double b) { return a * b; })));
  // [5, 1, 3] - [4, 1] -> [5, 4, 3].
  Tensor m = native::sub(make({5, 1, 3}, sample(15, -1, 1)), make({4, 1}, sample(4, -1, 1, 2)));
  EXPECT_EQ(m.sizes(), IntArrayRef({5, 4, 3}));
  // Scalars and 0-dim tensors.
  Tensor y = native::mul(make({2, 2}, {1, 2, 3, 4}), 2.5);
  EXPECT_EQ(values(y), (std::vector<double>{2.5, 5, 7.5, 10}));
  Tensor z = native::binary(BinaryOp::Sub, 10, make({3}, {1, 2, 3}, kInt32));
  EXPECT_EQ(z.dtype(), kInt32);
  EXPECT_EQ(values(z), (std::vector<double>{9, 8, 7}));
  Tensor zero_dim = native::scalar_tensor(4.0, dtype(kFloat64));
  Tensor w = native::div(make({2}, {2, 8}), zero_dim);
  EXPECT_EQ(values(w), (std::vector<double>{0.5, 2}));
  Tensor both0 = native::add(zero_dim, zero_dim);
  EXPECT_EQ(both0.dim(), 0);
  EXPECT_EQ(both0.item<double>(), 8);
  // Empty tensors broadcast like any other.
  Tensor e = native::add(native::empty({0, 3}, dtype(kFloat32)), make({3}, {1, 2, 3}, kFloat32));
  EXPECT_EQ(e.sizes(), IntArrayRef({0, 3}));
}

TEST(Broadcast, NonBroadcastableShapesNameBoth) {
  Tensor a = native::zeros({2, 3}), b = native::zeros({4});
  EXPECT_KILN_ERROR(native::add(a, b), "[2, 3]");
  EXPECT_KILN_ERROR(native::add(a, b), "[4]");
  EXPECT_KILN_ERROR(native::binary(BinaryOp::Lt, a, b), "lt");
}

TEST(Broadcast, LargeParallelRunsMatchSerialReference) {
  // Big enough for several threads; b broadcast along rows (stride 0).
  Tensor a = make({300, 257}, sample(300 * 257, -2, 2, 9), kFloat32);
  Tensor b = make({257}, sample(257, -2, 2, 10), kFloat32);
  Tensor out = native::binary(BinaryOp::Mul, a, b);
  EXPECT_TRUE(all_close(out, reference2(a, native::contiguous(native::expand(b, {300, 257})),
                                        [](double x, double y) { return x * y; }),
                        1e-6, 1e-7));
  Tensor out2 = native::binary(BinaryOp::Add, 1.5, a);
  EXPECT_TRUE(all_close(out2, reference(a, [](double x) { return 1.5 + x; }), 1e-6, 1e-6));
}

TEST(InPlace, BinaryWritesIntoOutAndBumpsVersion) {
  Tensor x = make({2, 3}, {1, 2, 3, 4, 5, 6}, kFloat32);
  const auto v0 = x._version();
  native::binary_(BinaryOp::Mul, x, make({3}, {1, 10, 100}, kInt64));
  EXPECT_EQ(values(x), (std::vector<double>{1, 20, 300, 4, 50, 600}));
  EXPECT_EQ(x.dtype(), kFloat32);
  EXPECT_GT(x._version(), v0);
  native::binary_(BinaryOp::Add, x, 0.5);
  EXPECT_EQ(values(x), (std::vector<double>{1.5, 20.5, 300.5, 4.5, 50.5, 600.5}));
  // Comparisons in place keep the dtype, writing 0/1.
  native::binary_(BinaryOp::Gt, x, 10.0);
  EXPECT_EQ(values(x), (std::vector<double>{0, 1, 1, 0, 1, 1}));
}

TEST(InPlace, DtypeAndShapeErrors) {
  Tensor i = make({3}, {1, 2, 3}, kInt64);
  EXPECT_KILN_ERROR(native::binary_(BinaryOp::Add, i, 2.5), "can't be cast");
  EXPECT_KILN_ERROR(native::binary_(BinaryOp::Div, i, 2), "can't be cast");
  EXPECT_KILN_ERROR(native::binary_(BinaryOp::Add, i, make({3}, {1, 2, 3}, kFloat32)), "int64");
  Tensor bo = make({2}, {1, 0}, kBool);
  EXPECT_KILN_ERROR(native::binary_(BinaryOp::Add, bo, make({2}, {1, 1}, kInt32)), "can't be cast");
  // int32 += int64 computes in int64, then casts back: allowed.
  Tensor i32 = make({2}, {1, 2}, kInt32);
  native::binary_(BinaryOp::Add, i32, make({2}, {5, 6}, kInt64));
  EXPECT_EQ(i32.dtype(), kInt32);
  EXPECT_EQ(values(i32), (std::vector<double>{6, 8}));
  // The broadcast shape must be the output's own.
  Tensor small = make({3}, {1, 2, 3});
  EXPECT_KILN_ERROR(native::binary_(BinaryOp::Add, small, make({2, 3}, sample(6, 0, 1))), "[2, 3]");
  EXPECT_KILN_ERROR(native::binary_(BinaryOp::Add, native::expand(make({1}, {1}), {3}), small),
                    "single memory location");
}

TEST(InPlace, OverlappingOperandReadsOriginalValues) {
  // x += x^T must use the values before the write, as if x^T were a copy.
  Tensor x = make({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  native::binary_(BinaryOp::Add, x, native::transpose(x, 0, 1));
  EXPECT_EQ(values(x), (std::vector<double>{2, 6, 10, 6, 10, 14, 10, 14, 18}));
  Tensor y = make({3}, {1, 2, 3});
  native::binary_(BinaryOp::Mul, y, y);
  EXPECT_EQ(values(y), (std::vector<double>{1, 4, 9}));
}

TEST(Where, PromotesAndBroadcasts) {
  Tensor c = make({2, 1}, {1, 0}, kBool);
  Tensor a = make({3}, {1, 2, 3}, kInt64), b = make({2, 3}, {-1, -2, -3, -4, -5, -6}, kFloat32);
  Tensor w = native::where(c, a, b);
  EXPECT_EQ(w.dtype(), kFloat32);
  EXPECT_EQ(values(w), (std::vector<double>{1, 2, 3, -4, -5, -6}));
  Tensor ws = native::where(make({3}, {1, 0, 1}, kBool), make({3}, {1, 2, 3}, kInt32), 0.5);
  EXPECT_EQ(ws.dtype(), kFloat32);
  EXPECT_EQ(values(ws), (std::vector<double>{1, 0.5, 3}));
  Tensor wl = native::where(make({3}, {1, 0, 1}, kBool), 7, make({3}, {1, 2, 3}, kFloat64));
  EXPECT_EQ(wl.dtype(), kFloat64);
  EXPECT_EQ(values(wl), (std::vector<double>{7, 2, 7}));
  for (DType d : {kFloat16, kUInt8, kInt64}) {  // every element size
    Tensor r = native::where(make({2}, {0, 1}, kBool), make({2}, {1, 2}, d), make({2}, {3, 4}, d));
    EXPECT_EQ(values(r), (std::vector<double>{3, 2}));
  }
  EXPECT_KILN_ERROR(native::where(make({2}, {1, 0}), a, a), "boolean");
}

TEST(MaskedFill, CastsValueAndBroadcastsMask) {
  Tensor t = make({2, 3}, {1, 2, 3, 4, 5, 6}, kInt32);
  Tensor m = make({3}, {1, 0, 1}, kBool);
  Tensor r = native::masked_fill(t, m, 2.7);
  EXPECT_EQ(r.dtype(), kInt32);
  EXPECT_EQ(values(r), (std::vector<double>{2, 2, 2, 2, 5, 2}));
  Tensor f = native::masked_fill(make({2, 2}, {1, 2, 3, 4}), make({2, 1}, {0, 1}, kBool), -kInf);
  EXPECT_EQ(values(f), (std::vector<double>{1, 2, -kInf, -kInf}));
  EXPECT_KILN_ERROR(native::masked_fill(t, make({3}, {1, 0, 1}, kUInt8), 0), "boolean");
  EXPECT_KILN_ERROR(native::masked_fill(t, make({2}, {1, 0}, kBool), 0), "[2, 3]");
}

TEST(Clamp, BoundsNaNAndPromotion) {
  Tensor x = make({6}, {-2, -0.5, 0.3, 0.9, 3, kNaN});
  EXPECT_TRUE(all_close(native::clamp(x, -1.0, 1.0), make({6}, {-1, -0.5, 0.3, 0.9, 1, kNaN})));
  EXPECT_TRUE(all_close(native::clamp(x, 0.0, std::nullopt), make({6}, {0, 0, 0.3, 0.9, 3, kNaN})));
  EXPECT_TRUE(all_close(native::clamp(x, std::nullopt, 0.5), make({6}, {-2, -0.5, 0.3, 0.5, 0.5, kNaN})));
  // min > max gives max everywhere (NaN stays NaN).
  EXPECT_TRUE(all_close(native::clamp(x, 2.0, 1.0), make({6}, {1, 1, 1, 1, 1, kNaN})));
  for (DType d : kFloats) {
    Tensor y = native::clamp(native::to(x, d), -1.0, 1.0);
    EXPECT_EQ(y.dtype(), d);
  }
  // An integer tensor clamped with a float bound becomes float (torch >= 1.13).
  Tensor i = make({3}, {1, 2, 3}, kInt64);
  Tensor c = native::clamp(i, 1.5, std::nullopt);
  EXPECT_EQ(c.dtype(), kFloat32);
  EXPECT_EQ(values(c), (std::vector<double>{1.5, 2, 3}));
  EXPECT_EQ(native::clamp(i, 2, std::nullopt).dtype(), kInt64);
  EXPECT_EQ(values(native::clamp(i, 2, 2)), (std::vector<double>{2, 2, 2}));
  EXPECT_KILN_ERROR(native::clamp(i, std::nullopt, std::nullopt), "At least one");
  EXPECT_KILN_ERROR(native::clamp_(i, 1.5, std::nullopt), "can't be cast");
  Tensor xt = native::transpose(make({2, 2}, {-5, 5, 0.5, -0.5}), 0, 1);
  native::clamp_(xt, -1.0, 1.0);
  EXPECT_EQ(values(xt), (std::vector<double>{-1, 0.5, 1, -0.5}));
}

TEST(Fill, WritesAndBumpsVersion) {
  Tensor x = native::empty({2, 3}, dtype(kFloat16));
  const auto v0 = x._version();
  native::fill_(native::select(x, 0, 1), 2.5);
  native::fill_(native::select(x, 0, 0), -1);
  EXPECT_EQ(values(x), (std::vector<double>{-1, -1, -1, 2.5, 2.5, 2.5}));
  EXPECT_GT(x._version(), v0);
}
