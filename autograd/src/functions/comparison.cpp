// Comparisons and logical ops (bool results, never differentiable), and the
// selecting ops where/masked_fill, whose gradient follows the selection.
#include "kiln/autograd/function.h"
#include "kiln/autograd/functions.h"
#include "kiln/core/native.h"

namespace kiln {

using autograd::check_inplace;
using autograd::FunctionNode;
using autograd::record;
using autograd::variable_list;

Tensor eq(const Tensor& a, const Tensor& b) { return native::binary(BinaryOp::Eq, a, b); }
Tensor eq(const Tensor& a, const Scalar& b) { return native::binary(BinaryOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return native::binary(BinaryOp::Ne, a, b); }
Tensor ne(const Tensor& a, const Scalar& b) { return native::binary(BinaryOp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return native::binary(BinaryOp::Lt, a, b); }
Tensor lt(const Tensor& a, const Scalar& b) { return native::binary(BinaryOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return native::binary(BinaryOp::Le, a, b); }
Tensor le(const Tensor& a, const Scalar& b) { return native::binary(BinaryOp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return native::binary(BinaryOp::Gt, a, b); }
Tensor gt(const Tensor& a, const Scalar& b) { return native::binary(BinaryOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return native::binary(BinaryOp::Ge, a, b); }
Tensor ge(const Tensor& a, const Scalar& b) { return native::binary(BinaryOp::Ge, a, b); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return native::binary(BinaryOp::LogicalAnd, a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return native::binary(BinaryOp::LogicalOr, a, b); }
Tensor logical_xor(const Tensor& a, const Tensor& b) { return native::binary(BinaryOp::LogicalXor, a, b); }
Tensor logical_not(const Tensor& t) { return native::unary(UnaryOp::LogicalNot, t); }

namespace {
// where saves {condition}: the gradient goes to a where it holds, to b elsewhere.
variable_list where_formula(FunctionNode& c, const Tensor& g) {
  Tensor cond = c.saved(0);
  return {Tensor(), c.needs(1) ? c.reduce(1, kiln::where(cond, g, 0.0)) : Tensor(),
          c.needs(2) ? c.reduce(2, kiln::where(cond, 0.0, g)) : Tensor()};
}
// masked_fill saves {mask}: filled positions get no gradient.
variable_list masked_fill_formula(FunctionNode& c, const Tensor& g) {
  Tensor mask = c.saved(0);
  return {c.reduce(0, kiln::masked_fill(g, mask, 0.0)), Tensor()};
}
}  // namespace

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  return record("WhereBackward0", native::where(condition, a, b), {condition, a, b}, {condition}, where_formula);
}

Tensor where(const Tensor& condition, const Tensor& a, const Scalar& b) {
  return record("WhereBackward0", native::where(condition, a, b), {condition, a, Tensor()}, {condition},
                where_formula);
}

Tensor where(const Tensor& condition, const Scalar& a, const Tensor& b) {
  return record("WhereBackward0", native::where(condition, a, b), {condition, Tensor(), b}, {condition},
                where_formula);
}

Tensor masked_fill(const Tensor& t, const Tensor& mask, const Scalar& value) {
  return record("MaskedFillBackward0", native::masked_fill(t, mask, value), {t, mask}, {mask}, masked_fill_formula);
}

Tensor masked_fill(const Tensor& t, const Tensor& mask, const Tensor& value) {
  KILN_CHECK(value.dim() == 0, "masked_fill: only supports a 0-dimensional value tensor, but got tensor with ",
             value.dim(), " dimension(s)");
  return record("MaskedFillBackward1", native::masked_fill(t, mask, value.item()), {t, mask, value}, {mask},
                [](FunctionNode& c, const Tensor& g) -> variable_list {
                  Tensor mask = c.saved(0);
                  return {c.needs(0) ? c.reduce(0, kiln::masked_fill(g, mask, 0.0)) : Tensor(), Tensor(),
                          c.needs(2) ? c.reduce(2, kiln::sum(kiln::where(mask, g, 0.0))) : Tensor()};
                });
}

Tensor& Tensor::masked_fill_(const Tensor& mask, const Scalar& value) {
  check_inplace(*this);
  Tensor filled = native::masked_fill(*this, mask, value);
  KILN_CHECK(filled.sizes().equals(sizes()), "masked_fill_: mask of shape ", mask.sizes(),
             " cannot be broadcast to the tensor's shape ", sizes());
  native::copy_(*this, filled);
  record("MaskedFillBackward0", *this, {*this, mask}, {mask}, masked_fill_formula);
  return *this;
}

}  // namespace kiln
