// Differentiable matrix products. Forwards are the native kernels; the
// gradients are products of the output gradient with the other operand,
// written with kiln:: ops so double backward records through them.
#include "kiln/autograd/autocast.h"
#include "kiln/autograd/function.h"
#include "kiln/autograd/functions.h"
#include "kiln/core/native.h"

namespace kiln {

using autograd::autocast_args;
using autograd::CastPolicy;
using autograd::FunctionNode;
using autograd::record;
using autograd::variable_list;

namespace {

bool is_one(const Scalar& s) { return s.toDouble() == 1.0; }
Tensor scaled(const Tensor& g, const Scalar& s) { return is_one(s) ? g : g * s; }

// Save only what the needed gradients read: the gradient of one operand of a
// product needs the other operand.
Tensor if_needed(const Tensor& t, bool needed) { return needed ? t : Tensor(); }

Tensor mT(const Tensor& t) { return kiln::transpose(t, -1, -2); }

// The product of all but the last dim (the rows a [..., k] tensor folds into).
int64_t leading_rows(IntArrayRef sizes) {
  int64_t n = 1;
  for (size_t d = 0; d + 1 < sizes.size(); ++d) n *= sizes[d];
  return n;
}

// torch's grad_fn names for the shapes matmul dispatches on.
const char* matmul_name(int64_t da, int64_t db) {
  if (da == 1 && db == 1) return "DotBackward0";
  if (da == 2 && db == 1) return "MvBackward0";
  if (da <= 2 && db <= 2) return "MmBackward0";  // 1-D @ 2-D runs as a one-row mm
  return "UnsafeViewBackward0";
}

// matmul's gradients for every case. 1-D operands are given back the dim
// matmul added (a row for a, a column for b), and the gradient the matching
// dims; then the batched products are taken and summed back over broadcast
// batch dims. When b is one matrix shared by a batch, its gradient folds the
// batch into the rows of a single product instead of summing B products.
variable_list matmul_backward(FunctionNode& c, const Tensor& g) {
  const IntArrayRef sa = c.input_sizes(0), sb = c.input_sizes(1);
  const int64_t da = static_cast<int64_t>(sa.size()), db = static_cast<int64_t>(sb.size());
  Tensor g2 = g;
  if (db == 1) g2 = kiln::unsqueeze(g2, g2.dim());
  if (da == 1) g2 = kiln::unsqueeze(g2, g2.dim() - 1);
  Tensor ga, gb;
  if (c.needs(0)) {
    Tensor b = c.saved(1);
    Tensor b2 = db == 1 ? kiln::unsqueeze(b, 1) : b;
    DimVector shape_a2 = sa.dims();
    if (da == 1) shape_a2.insert(0, 1);
    ga = kiln::reshape(kiln::sum_to(kiln::matmul(g2, mT(b2)), shape_a2), sa);
  }
  if (c.needs(1)) {
    Tensor a = c.saved(0);
    Tensor a2 = da == 1 ? kiln::unsqueeze(a, 0) : a;
    DimVector shape_b2 = sb.dims();
    if (db == 1) shape_b2.push_back(1);
    if (db <= 2 && a2.dim() > 2) {
      const int64_t K = a2.size(-1), N = g2.size(-1), rows = leading_rows(a2.sizes());
      gb = kiln::mm(mT(kiln::reshape(a2, {rows, K})), kiln::reshape(g2, {rows, N}));
    } else {
      gb = kiln::sum_to(kiln::matmul(mT(a2), g2), shape_b2);
    }
    gb = kiln::reshape(gb, sb);
  }
  return {ga, gb};
}

}  // namespace

// Under autocast each product re-enters itself with its floating
// arguments cast to the region's dtype (autograd/autocast.h).

Tensor mm(const Tensor& a, const Tensor& b) {
  if (auto cast = autocast_args(CastPolicy::LowerPrecision, {a, b})) return kiln::mm(cast(a), cast(b));
  return record("MmBackward0", native::mm(a, b), {a, b},
                {if_needed(a, b.requires_grad()), if_needed(b, a.requires_grad())},
                [](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {c.needs(0) ? kiln::mm(g, kiln::t(c.saved(1))) : Tensor(),
                          c.needs(1) ? kiln::mm(kiln::t(c.saved(0)), g) : Tensor()};
                });
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  if (auto cast = autocast_args(CastPolicy::LowerPrecision, {a, b})) return kiln::bmm(cast(a), cast(b));
  return record("BmmBackward0", native::bmm(a, b), {a, b},
                {if_needed(a, b.requires_grad()), if_needed(b, a.requires_grad())},
                [](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {c.needs(0) ? kiln::bmm(g, mT(c.saved(1))) : Tensor(),
                          c.needs(1) ? kiln::bmm(mT(c.saved(0)), g) : Tensor()};
                });
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (auto cast = autocast_args(CastPolicy::LowerPrecision, {a, b})) return kiln::matmul(cast(a), cast(b));
  if (a.dim() == 2 && b.dim() == 2) return kiln::mm(a, b);  // what native::matmul runs too
  return record(matmul_name(a.dim(), b.dim()), native::matmul(a, b), {a, b},
                {if_needed(a, b.requires_grad()), if_needed(b, a.requires_grad())}, matmul_backward);
}

Tensor addmm(const Tensor& input, const Tensor& mat1, const Tensor& mat2, const Scalar& beta, const Scalar& alpha) {
  if (auto cast = autocast_args(CastPolicy::LowerPrecision, {mat1, mat2, input})) {
    return kiln::addmm(cast(input), cast(mat1), cast(mat2), beta, alpha);
  }
  return record("AddmmBackward0", native::addmm(input, mat1, mat2, beta, alpha), {input, mat1, mat2},
                {if_needed(mat1, mat2.requires_grad()), if_needed(mat2, mat1.requires_grad())},
                [beta, alpha](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {c.needs(0) ? c.reduce(0, scaled(g, beta)) : Tensor(),
                          c.needs(1) ? scaled(kiln::mm(g, kiln::t(c.saved(1))), alpha) : Tensor(),
                          c.needs(2) ? scaled(kiln::mm(kiln::t(c.saved(0)), g), alpha) : Tensor()};
                });
}

Tensor baddbmm(const Tensor& input, const Tensor& batch1, const Tensor& batch2, const Scalar& beta,
               const Scalar& alpha) {
  if (auto cast = autocast_args(CastPolicy::LowerPrecision, {batch1, batch2, input})) {
    return kiln::baddbmm(cast(input), cast(batch1), cast(batch2), beta, alpha);
  }
  return record("BaddbmmBackward0", native::baddbmm(input, batch1, batch2, beta, alpha), {input, batch1, batch2},
                {if_needed(batch1, batch2.requires_grad()), if_needed(batch2, batch1.requires_grad())},
                [beta, alpha](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {c.needs(0) ? c.reduce(0, scaled(g, beta)) : Tensor(),
                          c.needs(1) ? scaled(kiln::bmm(g, mT(c.saved(1))), alpha) : Tensor(),
                          c.needs(2) ? scaled(kiln::bmm(mT(c.saved(0)), g), alpha) : Tensor()};
                });
}

// y [..., out] = x [..., in] @ W^T + b. The weight's gradient folds every
// leading dim into the rows of one [out, rows] @ [rows, in] product.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (auto cast = autocast_args(CastPolicy::LowerPrecision, {x, weight, bias})) {
    return kiln::linear(cast(x), cast(weight), cast(bias));
  }
  const char* name = bias.defined() ? "AddmmBackward0" : "MmBackward0";
  if (x.dim() > 2) name = "UnsafeViewBackward0";
  return record(name, native::linear(x, weight, bias), {x, weight, bias},
                {if_needed(x, weight.requires_grad()), if_needed(weight, x.requires_grad())},
                [](FunctionNode& c, const Tensor& g) -> variable_list {
                  Tensor gx, gw, gb;
                  if (c.needs(0)) gx = kiln::matmul(g, c.saved(1));
                  if (c.needs(1)) {
                    const IntArrayRef sx = c.input_sizes(0);
                    const int64_t rows = leading_rows(sx), in = sx.back(), out = c.input_sizes(1)[0];
                    gw = kiln::mm(kiln::t(kiln::reshape(g, {rows, out})), kiln::reshape(c.saved(0), {rows, in}));
                  }
                  if (c.needs(2)) gb = c.reduce(2, g);
                  return {gx, gw, gb};
                });
}

}  // namespace kiln
