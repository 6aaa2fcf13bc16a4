// Differentiable binary arithmetic (add, sub, mul, div, pow, minimum,
// maximum) and their in-place forms. Broadcast inputs get their gradient
// summed back by c.reduce().
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

bool is_one(const Scalar& s) { return s.toDouble() == 1.0; }

// alpha * b as a Scalar, keeping Python's number kinds (int * int stays int).
Scalar scalar_mul(const Scalar& a, const Scalar& b) {
  if (a.is_floating_point() || b.is_floating_point()) return Scalar(a.toDouble() * b.toDouble());
  return Scalar(a.toLong() * b.toLong());
}

Tensor scaled(const Tensor& g, const Scalar& alpha) { return is_one(alpha) ? g : g * alpha; }

// ---- formulas, shared by the out-of-place and in-place forms ----
// add/sub: d/da = 1, d/db = +-alpha.
auto add_formula(Scalar alpha_b) {
  return [alpha_b](FunctionNode& c, const Tensor& g) -> variable_list {
    return {c.needs(0) ? c.reduce(0, g) : Tensor(), c.needs(1) ? c.reduce(1, scaled(g, alpha_b)) : Tensor()};
  };
}
auto scalar_formula(Scalar factor) {  // op(a, number): d/da = factor
  return [factor](FunctionNode& c, const Tensor& g) -> variable_list { return {c.reduce(0, scaled(g, factor))}; };
}
// mul saves {a, b}: d/da = b, d/db = a.
variable_list mul_formula(FunctionNode& c, const Tensor& g) {
  return {c.needs(0) ? c.reduce(0, g * c.saved(1)) : Tensor(), c.needs(1) ? c.reduce(1, g * c.saved(0)) : Tensor()};
}
// div saves {a, b}: d/da = 1/b, d/db = -a/b^2.
variable_list div_formula(FunctionNode& c, const Tensor& g) {
  Tensor b = c.saved(1);
  return {c.needs(0) ? c.reduce(0, g / b) : Tensor(), c.needs(1) ? c.reduce(1, -g * c.saved(0) / (b * b)) : Tensor()};
}
// pow(x, p) saves {x}: p x^(p-1), and 0 for p == 0 (even where x == 0).
auto pow_scalar_formula(Scalar p) {
  return [p](FunctionNode& c, const Tensor& g) -> variable_list {
    if (p.toDouble() == 0.0) return {kiln::zeros_like(g)};
    return {c.reduce(0, g * (kiln::pow(c.saved(0), p.toDouble() - 1.0) * p))};
  };
}

// Only save what the gradients that are needed will read.
Tensor if_needed(const Tensor& t, bool needed) { return needed ? t : Tensor(); }

}  // namespace

// ---- out of place ----

Tensor add(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  return record("AddBackward0", native::add(a, b, alpha), {a, b}, {}, add_formula(alpha));
}

Tensor add(const Tensor& a, const Scalar& b, const Scalar& alpha) {
  return record("AddBackward0", native::add(a, scalar_mul(b, alpha)), {a}, {}, scalar_formula(1));
}

Tensor sub(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  return record("SubBackward0", native::sub(a, b, alpha), {a, b}, {}, add_formula(-alpha));
}

Tensor sub(const Tensor& a, const Scalar& b, const Scalar& alpha) {
  KILN_CHECK(a.dtype() != kBool, "sub: subtraction with a bool tensor is not supported; use logical_xor or ~");
  return record("SubBackward0", native::add(a, -scalar_mul(b, alpha)), {a}, {}, scalar_formula(1));
}

Tensor rsub(const Tensor& a, const Tensor& b, const Scalar& alpha) {
  return record("RsubBackward0", native::sub(b, a, alpha), {a, b}, {},
                [alpha](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {c.needs(0) ? c.reduce(0, scaled(g, -alpha)) : Tensor(), c.needs(1) ? c.reduce(1, g) : Tensor()};
                });
}

Tensor rsub(const Tensor& a, const Scalar& b, const Scalar& alpha) {
  Tensor scaled_a = is_one(alpha) ? a : native::mul(a, alpha);
  return record("RsubBackward1", native::binary(BinaryOp::Sub, b, scaled_a), {a}, {}, scalar_formula(-alpha));
}

Tensor mul(const Tensor& a, const Tensor& b) {
  return record("MulBackward0", native::mul(a, b), {a, b},
                {if_needed(a, b.requires_grad()), if_needed(b, a.requires_grad())}, mul_formula);
}

Tensor mul(const Tensor& a, const Scalar& b) {
  return record("MulBackward0", native::mul(a, b), {a}, {}, scalar_formula(b));
}

Tensor div(const Tensor& a, const Tensor& b) {
  return record("DivBackward0", native::div(a, b), {a, b}, {if_needed(a, b.requires_grad()), b}, div_formula);
}

Tensor div(const Tensor& a, const Scalar& b) {
  return record("DivBackward0", native::binary(BinaryOp::Div, a, b), {a}, {},
                [b](FunctionNode& c, const Tensor& g) -> variable_list { return {c.reduce(0, g / b)}; });
}

Tensor pow(const Tensor& a, const Scalar& exponent) {
  return record("PowBackward0", native::pow(a, exponent), {a}, {a}, pow_scalar_formula(exponent));
}

Tensor pow(const Tensor& a, const Tensor& exponent) {
  return record(
      "PowBackward1", native::pow(a, exponent), {a, exponent}, {a, exponent},
      [](FunctionNode& c, const Tensor& g) -> variable_list {
        Tensor x = c.saved(0), p = c.saved(1);
        Tensor ga, gp;
        // d/dx = p x^(p-1), taken as 0 where p == 0; d/dp = x^p log x, taken as 0 where x == 0 and p >= 0.
        if (c.needs(0)) ga = c.reduce(0, kiln::where(p == 0.0, 0.0, g * p * kiln::pow(x, p - 1.0)));
        if (c.needs(1)) {
          Tensor y = c.result();
          gp = c.reduce(1, kiln::where(kiln::logical_and(x == 0.0, p >= 0.0), 0.0, g * y * kiln::log(x)));
        }
        return {ga, gp};
      },
      /*save_result=*/true);
}

Tensor pow(const Scalar& base, const Tensor& exponent) {
  return record(
      "PowBackward2", native::binary(BinaryOp::Pow, base, exponent), {exponent}, {exponent},
      [base](FunctionNode& c, const Tensor& g) -> variable_list {
        // d/dp b^p = b^p log b, taken as 0 where b == 0 and p >= 0.
        Tensor grad = g * c.result() * std::log(base.toDouble());
        if (base.toDouble() == 0.0) grad = kiln::where(c.saved(0) >= 0.0, 0.0, grad);
        return {c.reduce(0, grad)};
      },
      /*save_result=*/true);
}

namespace {
// minimum/maximum: the gradient goes to the selected input, split evenly on ties.
variable_list min_max_formula(FunctionNode& c, const Tensor& g, bool is_max) {
  Tensor a = c.saved(0), b = c.saved(1);
  Tensor tie = kiln::where(a == b, g / 2.0, g);
  Tensor a_loses = is_max ? a < b : a > b;
  Tensor b_loses = is_max ? b < a : b > a;
  return {c.needs(0) ? c.reduce(0, kiln::masked_fill(tie, a_loses, 0.0)) : Tensor(),
          c.needs(1) ? c.reduce(1, kiln::masked_fill(tie, b_loses, 0.0)) : Tensor()};
}
}  // namespace

Tensor minimum(const Tensor& a, const Tensor& b) {
  return record("MinimumBackward0", native::binary(BinaryOp::Minimum, a, b), {a, b}, {a, b},
                [](FunctionNode& c, const Tensor& g) { return min_max_formula(c, g, false); });
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  return record("MaximumBackward0", native::binary(BinaryOp::Maximum, a, b), {a, b}, {a, b},
                [](FunctionNode& c, const Tensor& g) { return min_max_formula(c, g, true); });
}

// ---- in place: check, write, then record with self as input and result ----

Tensor& Tensor::add_(const Tensor& other, const Scalar& alpha) {
  check_inplace(*this, {other});
  native::binary_(BinaryOp::Add, *this, is_one(alpha) ? other : native::mul(other, alpha));
  record("AddBackward0", *this, {*this, other}, {}, add_formula(alpha));
  return *this;
}

Tensor& Tensor::add_(const Scalar& other, const Scalar& alpha) {
  check_inplace(*this);
  native::binary_(BinaryOp::Add, *this, scalar_mul(other, alpha));
  record("AddBackward0", *this, {*this}, {}, scalar_formula(1));
  return *this;
}

Tensor& Tensor::sub_(const Tensor& other, const Scalar& alpha) {
  check_inplace(*this, {other});
  native::binary_(BinaryOp::Sub, *this, is_one(alpha) ? other : native::mul(other, alpha));
  record("SubBackward0", *this, {*this, other}, {}, add_formula(-alpha));
  return *this;
}

Tensor& Tensor::sub_(const Scalar& other, const Scalar& alpha) {
  check_inplace(*this);
  native::binary_(BinaryOp::Sub, *this, scalar_mul(other, alpha));
  record("SubBackward0", *this, {*this}, {}, scalar_formula(1));
  return *this;
}

Tensor& Tensor::mul_(const Tensor& other) {
  check_inplace(*this, {other});
  // d/d(other) reads self's value from before the write.
  Tensor before = should_record({*this, other}) && other.requires_grad() ? native::clone(*this) : Tensor();
  native::binary_(BinaryOp::Mul, *this, other);
  record("MulBackward0", *this, {*this, other}, {before, if_needed(other, requires_grad() || before.defined())},
         mul_formula);
  return *this;
}

Tensor& Tensor::mul_(const Scalar& other) {
  check_inplace(*this);
  native::binary_(BinaryOp::Mul, *this, other);
  record("MulBackward0", *this, {*this}, {}, scalar_formula(other));
  return *this;
}

Tensor& Tensor::div_(const Tensor& other) {
  check_inplace(*this, {other});
  Tensor before = should_record({*this, other}) && other.requires_grad() ? native::clone(*this) : Tensor();
  native::binary_(BinaryOp::Div, *this, other);
  record("DivBackward0", *this, {*this, other}, {before, other}, div_formula);
  return *this;
}

Tensor& Tensor::div_(const Scalar& other) {
  check_inplace(*this);
  native::binary_(BinaryOp::Div, *this, other);
  record("DivBackward0", *this, {*this}, {}, [other](FunctionNode& c, const Tensor& g) -> variable_list {
    return {c.reduce(0, g / other)};
  });
  return *this;
}

Tensor& Tensor::pow_(const Scalar& exponent) {
  check_inplace(*this);
  Tensor before = should_record({*this}) ? native::clone(*this) : Tensor();
  native::binary_(BinaryOp::Pow, *this, exponent);
  record("PowBackward0", *this, {*this}, {before}, pow_scalar_formula(exponent));
  return *this;
}

}  // namespace kiln
