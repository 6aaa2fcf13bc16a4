// Differentiable unary math and activations, and their in-place forms.
//
// Activations whose backward has a fused kernel (BinaryOp::*Backward) use it
// in a plain backward; under create_graph (grad mode on inside the formula)
// they use the composite formula so the gradient is itself differentiable.
#include <cmath>

#include "kiln/autograd/function.h"
#include "kiln/autograd/functions.h"
#include "kiln/core/native.h"

namespace kiln {

using autograd::check_inplace;
using autograd::FunctionNode;
using autograd::record;
using autograd::should_record;
using autograd::variable_list;

namespace {

constexpr double kTwoOverSqrtPi = 1.12837916709551257390;  // 2 / sqrt(pi)
constexpr double kSqrtHalf = 0.70710678118654752440;       // 1 / sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;     // 1 / sqrt(2 pi)
constexpr double kSqrt2OverPi = 0.79788456080286535588;    // sqrt(2 / pi)
constexpr double kGeluTanhCoeff = 0.044715;

bool create_graph() { return GradMode::is_enabled(); }

// A unary op whose gradient is g * f(saved): `formula(c, g)` returns the single gradient.
template <typename F>
Tensor unary_op(const char* name, UnaryOp op, const Tensor& x, F formula, bool save_input, bool save_result) {
  return record(name, native::unary(op, x), {x}, {save_input ? x : Tensor()},
                [formula](FunctionNode& c, const Tensor& g) -> variable_list { return {c.reduce(0, formula(c, g))}; },
                save_result);
}

// Formulas. `c.saved(0)` is the input x, `c.result()` the output y.
Tensor exp_grad(FunctionNode& c, const Tensor& g) { return g * c.result(); }
Tensor sqrt_grad(FunctionNode& c, const Tensor& g) { return g / (c.result() * 2.0); }
Tensor neg_grad(FunctionNode&, const Tensor& g) { return -g; }
Tensor tanh_grad(FunctionNode& c, const Tensor& g) {
  Tensor y = c.result();
  if (create_graph()) return g * (1.0 - y * y);
  return native::binary(BinaryOp::TanhBackward, g, y);
}
Tensor sigmoid_grad(FunctionNode& c, const Tensor& g) {
  Tensor y = c.result();
  if (create_graph()) return g * y * (1.0 - y);
  return native::binary(BinaryOp::SigmoidBackward, g, y);
}
Tensor relu_grad(FunctionNode& c, const Tensor& g) {
  Tensor y = c.result();
  if (create_graph()) return g * (y > 0.0);
  return native::binary(BinaryOp::ReluBackward, g, y);
}
Tensor zero_grad(FunctionNode&, const Tensor& g) { return kiln::zeros_like(g); }

// clamp's gradient flows where min <= x <= max (bounds included, as torch).
auto clamp_grad(std::optional<Scalar> min, std::optional<Scalar> max) {
  return [min, max](FunctionNode& c, const Tensor& g) -> Tensor {
    Tensor x = c.saved(0);
    Tensor inside;
    if (min) inside = x >= *min;
    if (max) inside = inside.defined() ? kiln::logical_and(inside, x <= *max) : x <= *max;
    return kiln::where(inside, g, 0.0);
  };
}

}  // namespace

Tensor neg(const Tensor& t) {
  KILN_CHECK(t.dtype() != kBool, "neg: negation, the `-` operator, on a bool tensor is not supported; use logical_not");
  return unary_op("NegBackward0", UnaryOp::Neg, t, neg_grad, false, false);
}
Tensor exp(const Tensor& t) { return unary_op("ExpBackward0", UnaryOp::Exp, t, exp_grad, false, true); }
Tensor log(const Tensor& t) {
  return unary_op("LogBackward0", UnaryOp::Log, t, [](FunctionNode& c, const Tensor& g) { return g / c.saved(0); },
                  true, false);
}
Tensor log1p(const Tensor& t) {
  return unary_op("Log1PBackward0", UnaryOp::Log1p, t,
                  [](FunctionNode& c, const Tensor& g) { return g / (c.saved(0) + 1.0); }, true, false);
}
Tensor expm1(const Tensor& t) {
  return unary_op("Expm1Backward0", UnaryOp::Expm1, t,
                  [](FunctionNode& c, const Tensor& g) { return g * (c.result() + 1.0); }, false, true);
}
Tensor sqrt(const Tensor& t) { return unary_op("SqrtBackward0", UnaryOp::Sqrt, t, sqrt_grad, false, true); }
Tensor rsqrt(const Tensor& t) {
  return unary_op("RsqrtBackward0", UnaryOp::Rsqrt, t,
                  [](FunctionNode& c, const Tensor& g) { return g * kiln::pow(c.result(), 3.0) * -0.5; }, false, true);
}
Tensor abs(const Tensor& t) {
  return unary_op("AbsBackward0", UnaryOp::Abs, t, [](FunctionNode& c, const Tensor& g) { return g * kiln::sign(c.saved(0)); },
                  true, false);
}
Tensor sign(const Tensor& t) { return unary_op("SignBackward0", UnaryOp::Sign, t, zero_grad, false, false); }
Tensor tanh(const Tensor& t) { return unary_op("TanhBackward0", UnaryOp::Tanh, t, tanh_grad, false, true); }
Tensor sigmoid(const Tensor& t) { return unary_op("SigmoidBackward0", UnaryOp::Sigmoid, t, sigmoid_grad, false, true); }
Tensor relu(const Tensor& t) { return unary_op("ReluBackward0", UnaryOp::Relu, t, relu_grad, false, true); }

Tensor gelu(const Tensor& t, const std::string& approximate) {
  KILN_CHECK(approximate == "none" || approximate == "tanh", "gelu: approximate must be 'none' or 'tanh', got '",
             approximate, "'");
  if (approximate == "none") {
    return unary_op("GeluBackward0", UnaryOp::GeluErf, t, [](FunctionNode& c, const Tensor& g) {
      Tensor x = c.saved(0);
      if (!create_graph()) return native::binary(BinaryOp::GeluErfBackward, g, x);
      // d/dx x Phi(x) = Phi(x) + x phi(x).
      Tensor cdf = (kiln::erf(x * kSqrtHalf) + 1.0) * 0.5;
      Tensor pdf = kiln::exp(x * x * -0.5) * kInvSqrt2Pi;
      return g * (cdf + x * pdf);
    }, true, false);
  }
  return unary_op("GeluBackward0", UnaryOp::GeluTanh, t, [](FunctionNode& c, const Tensor& g) {
    Tensor x = c.saved(0);
    if (!create_graph()) return native::binary(BinaryOp::GeluTanhBackward, g, x);
    // y = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).
    Tensor x2 = x * x;
    Tensor th = kiln::tanh((x + x2 * x * kGeluTanhCoeff) * kSqrt2OverPi);
    Tensor du = (x2 * (3.0 * kGeluTanhCoeff) + 1.0) * kSqrt2OverPi;
    return g * ((th + 1.0) * 0.5 + x * 0.5 * (1.0 - th * th) * du);
  }, true, false);
}

Tensor silu(const Tensor& t) {
  return unary_op("SiluBackward0", UnaryOp::Silu, t, [](FunctionNode& c, const Tensor& g) {
    Tensor x = c.saved(0);
    if (!create_graph()) return native::binary(BinaryOp::SiluBackward, g, x);
    // d/dx x s(x) = s(x) (1 + x (1 - s(x))).
    Tensor s = kiln::sigmoid(x);
    return g * s * (x * (1.0 - s) + 1.0);
  }, true, false);
}

Tensor sin(const Tensor& t) {
  return unary_op("SinBackward0", UnaryOp::Sin, t, [](FunctionNode& c, const Tensor& g) { return g * kiln::cos(c.saved(0)); },
                  true, false);
}
Tensor cos(const Tensor& t) {
  return unary_op("CosBackward0", UnaryOp::Cos, t, [](FunctionNode& c, const Tensor& g) { return g * -kiln::sin(c.saved(0)); },
                  true, false);
}
Tensor acos(const Tensor& t) {
  return unary_op("AcosBackward0", UnaryOp::Acos, t, [](FunctionNode& c, const Tensor& g) {
    Tensor x = c.saved(0);
    return -g * kiln::rsqrt(1.0 - x * x);
  }, true, false);
}
Tensor erf(const Tensor& t) {
  return unary_op("ErfBackward0", UnaryOp::Erf, t, [](FunctionNode& c, const Tensor& g) {
    Tensor x = c.saved(0);
    return g * kiln::exp(-(x * x)) * kTwoOverSqrtPi;
  }, true, false);
}
Tensor reciprocal(const Tensor& t) {
  return unary_op("ReciprocalBackward0", UnaryOp::Reciprocal, t, [](FunctionNode& c, const Tensor& g) {
    Tensor y = c.result();
    return -g * (y * y);
  }, false, true);
}
// torch implements square as pow(x, 2), and so names its node.
Tensor square(const Tensor& t) { return kiln::pow(t, 2); }
Tensor floor(const Tensor& t) { return unary_op("FloorBackward0", UnaryOp::Floor, t, zero_grad, false, false); }
Tensor ceil(const Tensor& t) { return unary_op("CeilBackward0", UnaryOp::Ceil, t, zero_grad, false, false); }
Tensor round(const Tensor& t) { return unary_op("RoundBackward0", UnaryOp::Round, t, zero_grad, false, false); }

Tensor clamp(const Tensor& t, const std::optional<Scalar>& min, const std::optional<Scalar>& max) {
  return record("ClampBackward1", native::clamp(t, min, max), {t}, {t},
                [f = clamp_grad(min, max)](FunctionNode& c, const Tensor& g) -> variable_list { return {f(c, g)}; });
}
Tensor clamp_min(const Tensor& t, const Scalar& min) {
  return record("ClampMinBackward0", native::clamp(t, min, std::nullopt), {t}, {t},
                [f = clamp_grad(min, std::nullopt)](FunctionNode& c, const Tensor& g) -> variable_list { return {f(c, g)}; });
}
Tensor clamp_max(const Tensor& t, const Scalar& max) {
  return record("ClampMaxBackward0", native::clamp(t, std::nullopt, max), {t}, {t},
                [f = clamp_grad(std::nullopt, max)](FunctionNode& c, const Tensor& g) -> variable_list { return {f(c, g)}; });
}

// ---- in place ----
namespace {
// Ops whose gradient reads only the output can be recorded after the write.
template <typename F>
Tensor& unary_inplace(Tensor& self, const char* name, UnaryOp op, F formula) {
  check_inplace(self);
  native::unary_(op, self);
  record(name, self, {self}, {}, [formula](FunctionNode& c, const Tensor& g) -> variable_list {
    return {c.reduce(0, formula(c, g))};
  }, /*save_result=*/true);
  return self;
}
}  // namespace

Tensor& Tensor::neg_() {
  KILN_CHECK(dtype() != kBool, "neg_: negation on a bool tensor is not supported; use logical_not");
  return unary_inplace(*this, "NegBackward0", UnaryOp::Neg, neg_grad);
}
Tensor& Tensor::exp_() { return unary_inplace(*this, "ExpBackward0", UnaryOp::Exp, exp_grad); }
Tensor& Tensor::sqrt_() { return unary_inplace(*this, "SqrtBackward0", UnaryOp::Sqrt, sqrt_grad); }
Tensor& Tensor::relu_() { return unary_inplace(*this, "ReluBackward0", UnaryOp::Relu, relu_grad); }
Tensor& Tensor::sigmoid_() { return unary_inplace(*this, "SigmoidBackward0", UnaryOp::Sigmoid, sigmoid_grad); }
Tensor& Tensor::tanh_() { return unary_inplace(*this, "TanhBackward0", UnaryOp::Tanh, tanh_grad); }

Tensor& Tensor::clamp_(std::optional<Scalar> min, std::optional<Scalar> max) {
  check_inplace(*this);
  // The gradient reads x from before the write.
  Tensor before = should_record({*this}) ? native::clone(*this) : Tensor();
  native::clamp_(*this, min, max);
  record("ClampBackward1", *this, {*this}, {before},
         [f = clamp_grad(min, max)](FunctionNode& c, const Tensor& g) -> variable_list { return {f(c, g)}; });
  return *this;
}
Tensor& Tensor::clamp_min_(const Scalar& min) { return clamp_(min, std::nullopt); }
Tensor& Tensor::clamp_max_(const Scalar& max) { return clamp_(std::nullopt, max); }

}  // namespace kiln
