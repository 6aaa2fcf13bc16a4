// Differentiable reductions. The gradient of a reduction is broadcast back
// over the reduced dims (re-inserted first when keepdim was false).
//
// Formulas follow torch's at edge points (zeros in prod, ties in max/min,
// zero norms, zero std), so gradients agree with torch's subgradients there.
// Where a branch is masked out with where(), the value it would divide by is
// replaced first, so the masked branch never produces inf/NaN that a double
// backward would multiply by zero.
#include <cmath>

#include "kiln/autograd/function.h"
#include "kiln/autograd/functions.h"
#include "kiln/core/native.h"

namespace kiln {

using autograd::FunctionNode;
using autograd::record;
using autograd::variable_list;

namespace {

// g with the dims a keepdim=false reduction of an `ndim`-dim tensor over
// `dims` (empty: all) dropped put back as size 1, so it broadcasts against
// the input. A 0-dim input has nothing to put back.
Tensor restore_dims(const Tensor& g, int64_t ndim, const DimVector& dims, bool keepdim) {
  if (keepdim || ndim == 0) return g;
  Tensor r = g;
  for (int64_t d : native::wrap_dims(dims, ndim, "backward")) r = kiln::unsqueeze(r, d);  // ascending: each lands at its index
  return r;
}

// g reshaped to the keepdim shape of a reduction of `sizes` over `dims`
// (empty: all), then expanded to `sizes`.
Tensor expand_reduced(const Tensor& g, IntArrayRef sizes, const DimVector& dims, bool keepdim) {
  return kiln::expand(restore_dims(g, static_cast<int64_t>(sizes.size()), dims, keepdim), sizes);
}

int64_t reduced_count(IntArrayRef sizes, const DimVector& dims) {
  const int64_t ndim = static_cast<int64_t>(sizes.size());
  if (ndim == 0) return 1;
  int64_t n = 1;
  for (int64_t d : native::wrap_dims(dims, ndim, "backward")) n *= sizes[d];
  return n;
}

// prod over `dim` (nullopt: all); g and result in the keepdim shape. Each
// element's gradient is the product of the others. With no zero in x that is
// result / x. Otherwise, per slice, (product of the zeros) * (product of the
// non-zeros) / x for a non-zero x, and (product of the other zeros) * (product
// of the non-zeros) for a zero x: one zero gets the product of the others,
// everything else 0 (as torch). The zeros' products are written so that their
// first derivatives are right too (one zero: that element; two: the other
// one), which makes double backward exact at zeros.
Tensor prod_grad(const Tensor& g, const Tensor& x, const Tensor& result, std::optional<int64_t> dim) {
  if (x.dim() == 0) return g;
  const Tensor is_zero = x == 0.0;
  if (!native::any(is_zero).item<bool>()) return g * (result / x);
  auto slice_prod = [&](const Tensor& t) { return dim ? kiln::prod(t, *dim, true) : kiln::prod(t); };
  auto slice_sum = [&](const Tensor& t) { return dim ? kiln::sum(t, *dim, true) : kiln::sum(t); };
  const Tensor safe = kiln::where(is_zero, 1.0, x);
  const Tensor nonzero_prod = slice_prod(safe);
  const Tensor zeros = slice_sum(is_zero);
  const Tensor zero_sum = slice_sum(kiln::where(is_zero, x, 0.0));  // 0, but carries the zeros' derivatives
  const Tensor zero_prod = kiln::where(zeros == 0, 1.0, kiln::where(zeros == 1, zero_sum, 0.0));
  const Tensor other_zeros = kiln::where(zeros == 1, 1.0, kiln::where(zeros == 2, zero_sum - x, 0.0));
  return g * kiln::where(is_zero, other_zeros * nonzero_prod, zero_prod * nonzero_prod / safe);
}

// max()/min() over everything: ties share the gradient evenly. NaN results
// select the NaN inputs.
variable_list evenly_distribute(FunctionNode& c, const Tensor& g) {
  const Tensor x = c.saved(0), v = c.result();
  const Tensor mask = kiln::logical_or(x == v, kiln::logical_and(x != x, v != v));
  return {mask * (g / kiln::sum(mask))};
}

// amax/amin: ties along the reduced dims share the slice's gradient evenly.
auto amax_formula(const DimVector& dims, bool keepdim) {
  return [dims, keepdim](FunctionNode& c, const Tensor& g) -> variable_list {
    const Tensor x = c.saved(0);
    const Tensor mask = x == restore_dims(c.result(), x.dim(), dims, keepdim);
    return {mask * (restore_dims(g, x.dim(), dims, keepdim) / kiln::sum(mask, dims, true))};
  };
}

// max(dim)/min(dim): the gradient goes to the recorded index of each slice.
auto value_selecting_formula(int64_t dim, bool keepdim) {
  return [dim, keepdim](FunctionNode& c, const Tensor& g) -> variable_list {
    const IntArrayRef sizes = c.input_sizes(0);
    const int64_t nd = static_cast<int64_t>(sizes.size());
    if (nd == 0) return {g};
    const int64_t d = native::wrap_dim(dim, nd, "backward");
    const Tensor gk = keepdim ? g : kiln::unsqueeze(g, d);
    const Tensor ik = keepdim ? c.saved(0) : kiln::unsqueeze(c.saved(0), d);
    // A one-hot mask along d (position == index) instead of a scatter: same
    // result, and where() is differentiable in g for double backward.
    DimVector shape(static_cast<size_t>(nd), 1);
    shape[d] = sizes[d];
    const Tensor pos = kiln::view(kiln::arange(sizes[d], TensorOptions().dtype(kInt64).device(g.device())), shape);
    return {kiln::where(pos == ik, gk, 0.0)};
  };
}

std::tuple<Tensor, Tensor> value_selecting(const char* name, std::tuple<Tensor, Tensor> vi, const Tensor& t,
                                           int64_t dim, bool keepdim) {
  auto [v, i] = std::move(vi);
  Tensor values = record(name, std::move(v), {t}, {i}, value_selecting_formula(dim, keepdim));
  return {values, i};
}

void check_full_extreme(const Tensor& t, const char* name) {
  KILN_CHECK(t.numel() > 0, name,
             "(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim with the "
             "'dim' argument.");
}

// d var / dx = 2 (x - mean) / (n - correction), g in the output shape.
Tensor var_grad(const Tensor& g, const Tensor& x, const DimVector& dims, bool unbiased, bool keepdim) {
  const double dof = static_cast<double>(reduced_count(x.sizes(), dims)) - (unbiased ? 1.0 : 0.0);
  return (2.0 / dof) * restore_dims(g, x.dim(), dims, keepdim) * (x - kiln::mean(x, dims, true));
}

// d std = d var / (2 std); a zero std gives a zero gradient, as torch.
Tensor std_grad(const Tensor& g, const Tensor& x, const Tensor& s, const DimVector& dims, bool unbiased,
                bool keepdim) {
  const Tensor zero = s == 0.0;
  const Tensor g_var = kiln::where(zero, 0.0, g / (kiln::where(zero, 1.0, s) * 2.0));
  return var_grad(g_var, x, dims, unbiased, keepdim);
}

// Gradient of the p-norm over `dims`; g and the norm in the output shape.
Tensor norm_grad(const Tensor& g_out, const Tensor& x, const Tensor& norm_out, double p, const DimVector& dims,
                 bool keepdim) {
  if (p == 0) return Tensor();  // counts non-zeros: no gradient, as torch
  const Tensor g = restore_dims(g_out, x.dim(), dims, keepdim);
  const Tensor nrm = restore_dims(norm_out, x.dim(), dims, keepdim);
  if (p == 1) return kiln::sign(x) * g;
  const Tensor zero_norm = nrm == 0.0;
  if (p == 2) return g * kiln::where(zero_norm, 0.0, x / kiln::where(zero_norm, 1.0, nrm));
  if (std::isinf(p)) {
    // The elements that attain max|x| (or min|x|) share evenly; NaNs count as attaining it.
    const Tensor ax = kiln::abs(x);
    const Tensor mask = kiln::logical_or(ax == nrm, ax != ax);
    return kiln::sign(x) * ((g / kiln::sum(mask, dims, true)) * mask);
  }
  if (p < 1) {
    // |x|^(p-1) is infinite at 0, where torch takes the subgradient 0.
    const Tensor x_zero = x == 0.0;
    const Tensor pw = kiln::where(x_zero, 0.0, kiln::pow(kiln::where(x_zero, 1.0, kiln::abs(x)), p - 1));
    return kiln::sign(x) * pw * g * kiln::pow(nrm, 1 - p);
  }
  const Tensor scaled = p < 2 ? kiln::sign(x) * kiln::pow(kiln::abs(x), p - 1) : x * kiln::pow(kiln::abs(x), p - 2);
  const Tensor scale = kiln::where(zero_norm, 0.0, g / kiln::pow(kiln::where(zero_norm, 1.0, nrm), p - 1));
  return scaled * scale;
}

}  // namespace

Tensor sum(const Tensor& t, std::optional<DType> dtype) {
  return record("SumBackward0", native::sum(t, {}, false, dtype), {t}, {},
                [](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {c.reduce(0, kiln::expand(g, c.input_sizes(0)))};
                });
}

Tensor sum(const Tensor& t, IntArrayRef dims, bool keepdim, std::optional<DType> dtype) {
  return record("SumBackward1", native::sum(t, dims, keepdim, dtype), {t}, {},
                [dims = dims.dims(), keepdim](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {c.reduce(0, expand_reduced(g, c.input_sizes(0), dims, keepdim))};
                });
}

Tensor mean(const Tensor& t, std::optional<DType> dtype) {
  return record("MeanBackward0", native::mean(t, {}, false, dtype), {t}, {},
                [](FunctionNode& c, const Tensor& g) -> variable_list {
                  const int64_t n = numel_of(c.input_sizes(0));
                  return {c.reduce(0, kiln::expand(g / static_cast<double>(n), c.input_sizes(0)))};
                });
}

Tensor mean(const Tensor& t, IntArrayRef dims, bool keepdim, std::optional<DType> dtype) {
  return record("MeanBackward1", native::mean(t, dims, keepdim, dtype), {t}, {},
                [dims = dims.dims(), keepdim](FunctionNode& c, const Tensor& g) -> variable_list {
                  const double n = static_cast<double>(reduced_count(c.input_sizes(0), dims));
                  return {c.reduce(0, expand_reduced(g / n, c.input_sizes(0), dims, keepdim))};
                });
}

// With a dtype the input is converted first (as torch), so the backward
// works in that dtype and ToCopyBackward casts the gradient back.
Tensor prod(const Tensor& t, std::optional<DType> dtype) {
  if (dtype && *dtype != t.dtype()) return kiln::prod(kiln::to(t, *dtype));
  return record("ProdBackward0", native::prod(t), {t}, {t},
                [](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {prod_grad(g, c.saved(0), c.result(), std::nullopt)};
                },
                true);
}

Tensor prod(const Tensor& t, int64_t dim, bool keepdim, std::optional<DType> dtype) {
  if (dtype && *dtype != t.dtype()) return kiln::prod(kiln::to(t, *dtype), dim, keepdim);
  return record("ProdBackward1", native::prod(t, dim, keepdim), {t}, {t},
                [dim, keepdim](FunctionNode& c, const Tensor& g) -> variable_list {
                  const Tensor x = c.saved(0);
                  const DimVector dims{dim};
                  return {prod_grad(restore_dims(g, x.dim(), dims, keepdim), x,
                                    restore_dims(c.result(), x.dim(), dims, keepdim), dim)};
                },
                true);
}

Tensor max(const Tensor& t) {
  check_full_extreme(t, "max");
  return record("MaxBackward1", native::amax(t), {t}, {t}, evenly_distribute, true);
}

Tensor min(const Tensor& t) {
  check_full_extreme(t, "min");
  return record("MinBackward1", native::amin(t), {t}, {t}, evenly_distribute, true);
}

std::tuple<Tensor, Tensor> max(const Tensor& t, int64_t dim, bool keepdim) {
  return value_selecting("MaxBackward0", native::max(t, dim, keepdim), t, dim, keepdim);
}

std::tuple<Tensor, Tensor> min(const Tensor& t, int64_t dim, bool keepdim) {
  return value_selecting("MinBackward0", native::min(t, dim, keepdim), t, dim, keepdim);
}

Tensor amax(const Tensor& t, IntArrayRef dims, bool keepdim) {
  return record("AmaxBackward0", native::amax(t, dims, keepdim), {t}, {t}, amax_formula(dims.dims(), keepdim), true);
}

Tensor amin(const Tensor& t, IntArrayRef dims, bool keepdim) {
  return record("AminBackward0", native::amin(t, dims, keepdim), {t}, {t}, amax_formula(dims.dims(), keepdim), true);
}

Tensor argmax(const Tensor& t, std::optional<int64_t> dim, bool keepdim) { return native::argmax(t, dim, keepdim); }
Tensor argmin(const Tensor& t, std::optional<int64_t> dim, bool keepdim) { return native::argmin(t, dim, keepdim); }

Tensor var(const Tensor& t, bool unbiased) { return kiln::var(t, {}, unbiased, false); }

Tensor var(const Tensor& t, IntArrayRef dims, bool unbiased, bool keepdim) {
  return record("VarBackward0", native::var(t, dims, unbiased, keepdim), {t}, {t},
                [dims = dims.dims(), unbiased, keepdim](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {var_grad(g, c.saved(0), dims, unbiased, keepdim)};
                });
}

Tensor std(const Tensor& t, bool unbiased) { return kiln::std(t, {}, unbiased, false); }

Tensor std(const Tensor& t, IntArrayRef dims, bool unbiased, bool keepdim) {
  return record("StdBackward0", native::std(t, dims, unbiased, keepdim), {t}, {t},
                [dims = dims.dims(), unbiased, keepdim](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {std_grad(g, c.saved(0), c.result(), dims, unbiased, keepdim)};
                },
                true);
}

Tensor norm(const Tensor& t, const Scalar& p) {
  return record("NormBackward0", native::norm(t, p), {t}, {t},
                [p = p.toDouble()](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {norm_grad(g, c.saved(0), c.result(), p, {}, false)};
                },
                true);
}

Tensor norm(const Tensor& t, const Scalar& p, IntArrayRef dims, bool keepdim) {
  return record("NormBackward1", native::norm(t, p, dims, keepdim), {t}, {t},
                [p = p.toDouble(), dims = dims.dims(), keepdim](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {norm_grad(g, c.saved(0), c.result(), p, dims, keepdim)};
                },
                true);
}

// d logsumexp / dx = exp(x - logsumexp) (the softmax over the reduced dims).
Tensor logsumexp(const Tensor& t, IntArrayRef dims, bool keepdim) {
  return record("LogsumexpBackward0", native::logsumexp(t, dims, keepdim), {t}, {t},
                [dims = dims.dims(), keepdim](FunctionNode& c, const Tensor& g) -> variable_list {
                  const Tensor x = c.saved(0);
                  return {restore_dims(g, x.dim(), dims, keepdim) *
                          kiln::exp(x - restore_dims(c.result(), x.dim(), dims, keepdim))};
                },
                true);
}

Tensor all(const Tensor& t) { return native::all(t); }
Tensor all(const Tensor& t, int64_t dim, bool keepdim) { return native::all(t, dim, keepdim); }
Tensor any(const Tensor& t) { return native::any(t); }
Tensor any(const Tensor& t, int64_t dim, bool keepdim) { return native::any(t, dim, keepdim); }

}  // namespace kiln
