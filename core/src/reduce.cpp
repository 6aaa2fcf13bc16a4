// Reductions with torch's dims/keepdim/dtype rules, the statistics built from
// them (mean, var, std, norm, logsumexp), softmax, and sum_to. The backend
// always writes the keepdim shape; dropping the reduced dims is a view.
#include "kiln/core/native/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kiln/core/native/elementwise.h"
#include "kiln/core/native/factory.h"
#include "kiln/core/native/shape_util.h"
#include "kiln/core/native/view.h"

namespace kiln::native {

namespace {

struct Reduction {
  DimVector dims;         // wrapped and sorted
  DimVector keep_shape;   // input shape with 1 on reduced dims
  DimVector out_shape;    // keep_shape, or without the reduced dims
  int64_t count = 1;      // inputs per output
  bool has_empty_dim = false;
};

Reduction plan(const Tensor& t, IntArrayRef dims, bool keepdim, const char* op) {
  Reduction r;
  r.dims = wrap_dims(dims, t.dim(), op);
  for (int64_t d = 0; d < t.dim(); ++d) {
    const bool reduced = std::find(r.dims.begin(), r.dims.end(), d) != r.dims.end();
    r.keep_shape.push_back(reduced ? 1 : t.size(d));
    if (!reduced || keepdim) r.out_shape.push_back(reduced ? 1 : t.size(d));
    if (reduced) {
      r.count *= t.size(d);
      if (t.size(d) == 0) r.has_empty_dim = true;
    }
  }
  return r;
}

Tensor finish(const Tensor& keep, const Reduction& r) { return view(keep, r.out_shape); }

Tensor run(ReduceOp op, const Tensor& in, const Reduction& r, DType out_dtype) {
  Tensor out = empty(r.keep_shape, in.options().dtype(out_dtype));
  backend_of(in).reduce(op, in, out);
  return finish(out, r);
}

// Output dtypes the kernel produces straight from the input (no converted copy).
bool kernel_widens(DType from, DType to) {
  return to == from || (to == kInt64 && is_integral(from, true)) || to == kFloat64 ||
         (to == kFloat32 && from != kFloat64);
}

// Sum or prod: integers accumulate in int64 unless a dtype is given.
Tensor sum_like(ReduceOp op, const Tensor& t, IntArrayRef dims, bool keepdim, std::optional<DType> dtype,
                const char* name) {
  const Reduction r = plan(t, dims, keepdim, name);
  const DType od = dtype ? *dtype : is_integral(t.dtype(), true) ? kInt64 : t.dtype();
  const Tensor in = kernel_widens(t.dtype(), od) ? t : to(t, od);
  return run(op, in, r, od);
}

// Statistics of 16-bit floats are computed in float32 and rounded once.
DType stat_dtype(DType t) { return is_reduced_float(t) ? kFloat32 : t; }

void check_nonempty(const Tensor& t, const Reduction& r, const char* op) {
  if (t.dim() == 0) return;
  for (int64_t d : r.dims) {
    KILN_CHECK(t.size(d) != 0, op, "(): Expected reduction dim ", d, " to have non-zero size.");
  }
}

Tensor extreme(ReduceOp op, const Tensor& t, IntArrayRef dims, bool keepdim, const char* name) {
  const Reduction r = plan(t, dims, keepdim, name);
  check_nonempty(t, r, name);
  return run(op, t, r, t.dtype());
}

std::tuple<Tensor, Tensor> arg_extreme(ArgReduceOp op, const Tensor& t, int64_t dim, bool keepdim, bool want_values,
                                       const char* name) {
  const int64_t d = wrap_dim(dim, t.dim(), name);
  DimVector keep = t.sizes().dims(), out_shape;
  if (t.dim() > 0) {
    KILN_CHECK(t.size(d) != 0, name, "(): Expected reduction dim ", d, " to have non-zero size.");
    keep[d] = 1;
  }
  for (int64_t i = 0; i < t.dim(); ++i)
    if (i != d || keepdim) out_shape.push_back(keep[i]);
  Tensor values = want_values ? empty(keep, t.options()) : Tensor();
  Tensor indices = empty(keep, t.options().dtype(kInt64));
  backend_of(t).arg_reduce(op, t, d, values, indices);
  return {want_values ? view(values, out_shape) : values, view(indices, out_shape)};
}

Tensor arg_flat_or_dim(ArgReduceOp op, const Tensor& t, std::optional<int64_t> dim, bool keepdim, const char* name) {
  if (dim) return std::get<1>(arg_extreme(op, t, *dim, keepdim, false, name));
  KILN_CHECK(t.numel() > 0, name, "(): Expected reduction dim to be specified for input.numel() == 0.");
  Tensor flat = reshape(t, {t.numel()});
  Tensor idx = std::get<1>(arg_extreme(op, flat, 0, false, false, name));
  if (!keepdim) return idx;
  return view(idx, DimVector(static_cast<size_t>(t.dim()), 1));
}

// Two passes for accuracy: the mean, then the squared deviations from it.
Tensor var_impl(const Tensor& t, IntArrayRef dims, bool unbiased, bool keepdim, const char* name) {
  KILN_CHECK(is_floating_point(t.dtype()), name, ": std and var only support floating point dtypes, got ",
             dtype_name(t.dtype()));
  const Tensor x = to(t, stat_dtype(t.dtype()));
  const Reduction r = plan(x, dims, keepdim, name);
  Tensor mean_keep = binary(BinaryOp::Div, sum(x, dims, true), r.count);
  Tensor dev = binary(BinaryOp::Sub, x, mean_keep);
  binary_(BinaryOp::Mul, dev, dev);
  const int64_t denom = std::max<int64_t>(0, r.count - (unbiased ? 1 : 0));
  // 0 / 0 gives NaN for a single element (unbiased) or an empty reduction, as torch.
  return binary(BinaryOp::Div, sum(dev, dims, keepdim), denom);
}

}  // namespace

Tensor sum(const Tensor& t, IntArrayRef dims, bool keepdim, std::optional<DType> dtype) {
  return sum_like(ReduceOp::Sum, t, dims, keepdim, dtype, "sum");
}

Tensor prod(const Tensor& t, IntArrayRef dims, bool keepdim, std::optional<DType> dtype) {
  return sum_like(ReduceOp::Prod, t, dims, keepdim, dtype, "prod");
}

Tensor mean(const Tensor& t, IntArrayRef dims, bool keepdim, std::optional<DType> dtype) {
  const DType od = dtype.value_or(t.dtype());
  KILN_CHECK(is_floating_point(od), "mean(): could not infer output dtype. ", dtype ? "Optional" : "Input",
             " dtype must be either a floating point or complex dtype. Got: ", dtype_name(od));
  const Reduction r = plan(t, dims, keepdim, "mean");
  Tensor s = sum(t, dims, keepdim, stat_dtype(od));
  return to(binary(BinaryOp::Div, s, r.count), od);  // 0 / 0 = NaN for an empty reduction
}

Tensor amax(const Tensor& t, IntArrayRef dims, bool keepdim) { return extreme(ReduceOp::Max, t, dims, keepdim, "amax"); }
Tensor amin(const Tensor& t, IntArrayRef dims, bool keepdim) { return extreme(ReduceOp::Min, t, dims, keepdim, "amin"); }

std::tuple<Tensor, Tensor> max(const Tensor& t, int64_t dim, bool keepdim) {
  return arg_extreme(ArgReduceOp::Max, t, dim, keepdim, true, "max");
}
std::tuple<Tensor, Tensor> min(const Tensor& t, int64_t dim, bool keepdim) {
  return arg_extreme(ArgReduceOp::Min, t, dim, keepdim, true, "min");
}

Tensor argmax(const Tensor& t, std::optional<int64_t> dim, bool keepdim) {
  return arg_flat_or_dim(ArgReduceOp::Max, t, dim, keepdim, "argmax");
}
Tensor argmin(const Tensor& t, std::optional<int64_t> dim, bool keepdim) {
  return arg_flat_or_dim(ArgReduceOp::Min, t, dim, keepdim, "argmin");
}

Tensor var(const Tensor& t, IntArrayRef dims, bool unbiased, bool keepdim) {
  return to(var_impl(t, dims, unbiased, keepdim, "var"), t.dtype());
}

Tensor std(const Tensor& t, IntArrayRef dims, bool unbiased, bool keepdim) {
  return to(unary(UnaryOp::Sqrt, var_impl(t, dims, unbiased, keepdim, "std")), t.dtype());
}

Tensor norm(const Tensor& t, const Scalar& p, IntArrayRef dims, bool keepdim) {
  KILN_CHECK(is_floating_point(t.dtype()), "norm: Expected a floating point tensor as input. Got ",
             dtype_name(t.dtype()));
  const Tensor x = to(t, stat_dtype(t.dtype()));
  const double pv = p.toDouble();
  const double inf = std::numeric_limits<double>::infinity();
  Tensor r;
  if (pv == 2) {
    r = unary(UnaryOp::Sqrt, sum(binary(BinaryOp::Mul, x, x), dims, keepdim));
  } else if (pv == 1) {
    r = sum(unary(UnaryOp::Abs, x), dims, keepdim);
  } else if (pv == inf) {
    r = amax(unary(UnaryOp::Abs, x), dims, keepdim);
  } else if (pv == -inf) {
    r = amin(unary(UnaryOp::Abs, x), dims, keepdim);
  } else if (pv == 0) {  // the number of non-zeros
    r = sum(binary(BinaryOp::Ne, x, 0), dims, keepdim, x.dtype());
  } else {
    r = binary(BinaryOp::Pow, sum(binary(BinaryOp::Pow, unary(UnaryOp::Abs, x), pv), dims, keepdim), 1.0 / pv);
  }
  return to(r, t.dtype());
}

Tensor logsumexp(const Tensor& t, IntArrayRef dims, bool keepdim) {
  const DType od = is_floating_point(t.dtype()) ? t.dtype() : default_dtype();
  const Tensor x = to(t, stat_dtype(od));
  const Reduction r = plan(x, dims, keepdim, "logsumexp");
  if (r.has_empty_dim) return full(r.out_shape, -std::numeric_limits<double>::infinity(), t.options().dtype(od));
  // Shift by the max; where the max is infinite (a row of -inf, or a +inf),
  // shift by 0 instead so that inf - inf never appears.
  Tensor m = amax(x, dims, true);
  Tensor is_inf = binary(BinaryOp::Eq, unary(UnaryOp::Abs, m), std::numeric_limits<double>::infinity());
  Tensor shift = where(is_inf, 0.0, m);
  Tensor s = sum(unary(UnaryOp::Exp, binary(BinaryOp::Sub, x, shift)), dims, keepdim);
  return to(binary(BinaryOp::Add, unary(UnaryOp::Log, s), view(shift, r.out_shape)), od);
}

Tensor all(const Tensor& t, IntArrayRef dims, bool keepdim) {
  const Tensor b = run(ReduceOp::All, t, plan(t, dims, keepdim, "all"), kBool);
  return t.dtype() == kUInt8 ? to(b, kUInt8) : b;  // torch keeps uint8
}

Tensor any(const Tensor& t, IntArrayRef dims, bool keepdim) {
  const Tensor b = run(ReduceOp::Any, t, plan(t, dims, keepdim, "any"), kBool);
  return t.dtype() == kUInt8 ? to(b, kUInt8) : b;
}

namespace {
Tensor softmax_impl(const Tensor& t, int64_t dim, std::optional<DType> dtype, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  const Tensor x = dtype ? to(t, *dtype) : t;
  KILN_CHECK(is_floating_point(x.dtype()), name, ": expected a floating point tensor, got ", dtype_name(x.dtype()));
  const int64_t d = wrap_dim(dim, x.dim(), name);
  Tensor out = empty(x.sizes(), x.options());
  if (out.numel() > 0) backend_of(x).softmax(x, d, log, out);
  return out;
}
}  // namespace

Tensor softmax(const Tensor& t, int64_t dim, std::optional<DType> dtype) { return softmax_impl(t, dim, dtype, false); }
Tensor log_softmax(const Tensor& t, int64_t dim, std::optional<DType> dtype) {
  return softmax_impl(t, dim, dtype, true);
}

Tensor softmax_backward(const Tensor& grad_out, const Tensor& out, int64_t dim, bool log) {
  const char* name = log ? "log_softmax_backward" : "softmax_backward";
  KILN_CHECK(grad_out.sizes().equals(out.sizes()), name, ": grad shape ", grad_out.sizes(),
             " != output shape ", out.sizes());
  KILN_CHECK(grad_out.device() == out.device(), name, ": expected all tensors to be on the same device, but found ",
             grad_out.device(), " and ", out.device());
  const Tensor g = to(grad_out, out.dtype());
  const int64_t d = wrap_dim(dim, out.dim(), name);
  Tensor grad_in = empty(out.sizes(), out.options());
  if (out.numel() > 0) backend_of(out).softmax_backward(g, out, d, log, grad_in);
  return grad_in;
}

Tensor sum_to(const Tensor& t, IntArrayRef shape) {
  if (t.sizes().equals(shape)) return t;
  const int64_t n = static_cast<int64_t>(shape.size());
  const int64_t leading = t.dim() - n;
  KILN_CHECK(leading >= 0, "sum_to: shape ", shape, " is not broadcastable to ", t.sizes());
  DimVector dims;
  for (int64_t i = 0; i < leading; ++i) dims.push_back(i);
  for (int64_t j = 0; j < n; ++j) {
    const int64_t i = leading + j;
    if (shape[j] == 1 && t.size(i) != 1) {
      dims.push_back(i);
    } else {
      KILN_CHECK(shape[j] == t.size(i), "sum_to: shape ", shape, " is not broadcastable to ", t.sizes());
    }
  }
  // Keeps t's dtype: this undoes a broadcast, it is not a user-facing sum.
  const Tensor s = dims.empty() ? t : sum(t, dims, true, t.dtype());
  return view(s, shape);
}

}  // namespace kiln::native
