// layer_norm, group_norm, batch_norm and their backwards: torch's argument
// rules and messages, the parameter dtype policy, contiguous operands, then
// one backend kernel each. Statistics tensors are f32 for f32/f16/bf16 and
// f64 for f64 inputs.
#include "kiln/core/native/norm.h"

#include <initializer_list>
#include <sstream>
#include <utility>

#include "kiln/core/native/elementwise.h"
#include "kiln/core/native/factory.h"
#include "kiln/core/native/view.h"

namespace kiln::native {

namespace {

DType stat_dtype(DType t) { return t == kFloat64 ? kFloat64 : kFloat32; }

struct Param {
  const char* name;
  const Tensor& t;
};

// Every defined parameter shares one dtype: the input's, or f32 for a
// 16-bit float input (a bf16 activation with f32 weights, as torch allows).
// Returns that dtype (the input's when none is defined).
DType check_params(const char* op, const Tensor& input, std::initializer_list<Param> params) {
  KILN_CHECK(input.defined(), op, ": input is undefined");
  KILN_CHECK(is_floating_point(input.dtype()), op, ": expected a floating-point input, got dtype ",
             input.dtype(), " (input shape ", input.sizes(), ")");
  const Param* first = nullptr;
  for (const Param& p : params) {
    if (!p.t.defined()) continue;
    KILN_CHECK(p.t.device() == input.device(), op, ": ", p.name, " is on ", p.t.device(), " but input is on ",
               input.device());
    if (first == nullptr) {
      first = &p;
      const DType d = p.t.dtype();
      KILN_CHECK(d == input.dtype() || (d == kFloat32 && is_reduced_float(input.dtype())), op, ": ", p.name,
                 " has dtype ", d, " but input has dtype ", input.dtype(),
                 " (parameters must have the input's dtype, or float32 for a float16/bfloat16 input)");
    } else {
      KILN_CHECK(p.t.dtype() == first->t.dtype(), op, ": ", p.name, " has dtype ", p.t.dtype(), " but ", first->name,
                 " has dtype ", first->t.dtype(), " (all parameters must share one dtype)");
    }
  }
  return first ? first->t.dtype() : input.dtype();
}

Tensor contiguous_or_undefined(const Tensor& t) { return t.defined() ? contiguous(t) : t; }

// A per-channel parameter as a contiguous [C] tensor (torch checks only the element count).
Tensor channel_param(const char* op, const char* name, const Tensor& t, int64_t c, const Tensor& input) {
  if (!t.defined()) return t;
  KILN_CHECK(t.numel() == c, op, ": ", name, " should contain ", c, " elements (one per channel of input ",
             input.sizes(), ") not ", t.numel(), " (", name, " shape ", t.sizes(), ")");
  return contiguous(reshape(t, {c}));
}

// The gradient of the output in the input's dtype and layout.
Tensor grad_like(const char* op, const Tensor& grad_out, const Tensor& input) {
  KILN_CHECK(grad_out.defined() && grad_out.sizes().equals(input.sizes()), op, ": grad_out of shape ",
             grad_out.defined() ? grad_out.sizes() : IntArrayRef(), " does not match input shape ", input.sizes());
  return contiguous(to(grad_out, input.dtype()));
}

// Statistics given in any shape with `count` elements, as the contiguous
// flat tensor the kernels read.
Tensor flat_stat(const char* op, const char* name, const Tensor& t, int64_t count, DType dtype) {
  KILN_CHECK(t.defined() && t.numel() == count, op, ": expected ", name, " with ", count, " elements, got ",
             t.defined() ? t.numel() : 0);
  return contiguous(to(reshape(t, {count}), dtype));
}

Tensor empty_param_grad(bool wanted, const Tensor& param, IntArrayRef sizes, DType dtype) {
  if (!wanted || !param.defined()) return Tensor();
  return empty(sizes, param.options().dtype(dtype));
}

int64_t product(IntArrayRef s, size_t from = 0) {
  int64_t p = 1;
  for (size_t i = from; i < s.size(); ++i) p *= s[i];
  return p;
}

}  // namespace

// ---- layer norm ----

namespace {

// M rows of D elements; checks shapes against normalized_shape.
std::pair<int64_t, int64_t> layer_norm_rows(const Tensor& input, IntArrayRef ns, const Tensor& weight,
                                            const Tensor& bias) {
  KILN_CHECK(!ns.empty(), "layer_norm: Expected normalized_shape to be at least 1-dimensional, i.e., containing at "
             "least one element, but got normalized_shape = ", ns);
  const int64_t nd = input.dim(), k = static_cast<int64_t>(ns.size());
  bool ok = nd >= k;
  for (int64_t i = 0; ok && i < k; ++i) ok = input.size(nd - k + i) == ns[i];
  if (!ok) {
    std::ostringstream dims;  // "3, 4" for [*, 3, 4]
    for (size_t i = 0; i < ns.size(); ++i) dims << (i ? ", " : "") << ns[i];
    KILN_ERROR("layer_norm: Given normalized_shape=", ns, ", expected input with shape [*, ", dims.str(),
               "] (trailing dims equal to normalized_shape), but got input of size ", input.sizes());
  }
  KILN_CHECK(!weight.defined() || weight.sizes().equals(ns), "layer_norm: Expected weight to be of same shape as ",
             "normalized_shape, but got weight of shape ", weight.defined() ? weight.sizes() : IntArrayRef(),
             " and normalized_shape = ", ns);
  KILN_CHECK(!bias.defined() || bias.sizes().equals(ns), "layer_norm: Expected bias to be of same shape as ",
             "normalized_shape, but got bias of shape ", bias.defined() ? bias.sizes() : IntArrayRef(),
             " and normalized_shape = ", ns);
  return {product(IntArrayRef(input.sizes().data(), static_cast<size_t>(nd - k))), product(ns)};
}

// mean/rstd's shape: the leading dims, then 1 per normalised dim.
DimVector layer_norm_stat_shape(const Tensor& input, size_t k) {
  DimVector s = input.sizes().dims();
  for (size_t i = s.size() - k; i < s.size(); ++i) s[i] = 1;
  return s;
}

}  // namespace

std::tuple<Tensor, Tensor, Tensor> layer_norm(const Tensor& input, IntArrayRef normalized_shape, const Tensor& weight,
                                              const Tensor& bias, double eps) {
  check_params("layer_norm", input, {{"weight", weight}, {"bias", bias}});
  const auto [m, d] = layer_norm_rows(input, normalized_shape, weight, bias);
  const Tensor x = contiguous(input);
  Tensor out = empty(input.sizes(), input.options());
  const TensorOptions so = input.options().dtype(stat_dtype(input.dtype()));
  Tensor mean = empty({m}, so), rstd = empty({m}, so);
  if (m > 0) {
    backend_of(x).layer_norm(x, contiguous_or_undefined(weight), contiguous_or_undefined(bias), eps, out, mean,
                             rstd);
  }
  const DimVector ss = layer_norm_stat_shape(input, normalized_shape.size());
  return {out, view(mean, ss), view(rstd, ss)};
}

std::tuple<Tensor, Tensor, Tensor> layer_norm_backward(const Tensor& grad_out, const Tensor& input,
                                                       IntArrayRef normalized_shape, const Tensor& mean,
                                                       const Tensor& rstd, const Tensor& weight,
                                                       const Tensor& bias, NormGradMask mask) {
  const DType pd = check_params("layer_norm_backward", input, {{"weight", weight}, {"bias", bias}});
  const auto [m, d] = layer_norm_rows(input, normalized_shape, weight, bias);
  const Tensor g = grad_like("layer_norm_backward", grad_out, input);
  const Tensor x = contiguous(input);
  const DType sd = stat_dtype(input.dtype());
  Tensor gi = mask[0] ? empty(input.sizes(), input.options()) : Tensor();
  Tensor gw = empty_param_grad(mask[1], weight, normalized_shape, pd);
  Tensor gb = empty_param_grad(mask[2], bias, normalized_shape, pd);
  if (m == 0) {
    if (gw.defined()) fill_(gw, 0);
    if (gb.defined()) fill_(gb, 0);
  } else if (gi.defined() || gw.defined() || gb.defined()) {
    backend_of(x).layer_norm_backward(g, x, flat_stat("layer_norm_backward", "mean", mean, m, sd),
                                      flat_stat("layer_norm_backward", "rstd", rstd, m, sd),
                                      contiguous_or_undefined(weight), gi, gw, gb);
  }
  return {gi, gw, gb};
}

// ---- group norm ----

namespace {

struct GroupShape {
  int64_t n, c, hw;
};

GroupShape group_norm_shape(const Tensor& input, int64_t groups, const Tensor& weight, const Tensor& bias) {
  KILN_CHECK(input.dim() >= 2, "group_norm: Expected at least 2 dimensions for input tensor but received ",
             input.dim(), " (input shape ", input.sizes(), "; expected [N, C, *])");
  const int64_t c = input.size(1);
  KILN_CHECK(groups > 0, "group_norm: num_groups must be positive, got ", groups, " (input shape ", input.sizes(),
             ")");
  KILN_CHECK(c > 0, "group_norm: Expected number of channels to be greater than 0, got ", c, " (input shape ",
             input.sizes(), ")");
  KILN_CHECK(c % groups == 0, "group_norm: Expected number of channels in input to be divisible by num_groups, ",
             "but got input of shape ", input.sizes(), " and num_groups=", groups);
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"weight", &weight}, {"bias", &bias}}) {
    KILN_CHECK(!t->defined() || (t->dim() == 1 && t->size(0) == c), "group_norm: Expected ", name,
               " to be a vector of size equal to the number of channels in input, but got ", name, " of shape ",
               t->defined() ? t->sizes() : IntArrayRef(), " and input of shape ", input.sizes());
  }
  const int64_t hw = product(input.sizes(), 2);
  KILN_CHECK(hw > 0 || input.size(0) == 0, "group_norm: Expected HxW to be greater than 0, got ", hw,
             " (input shape ", input.sizes(), ")");
  return {input.size(0), c, hw};
}

}  // namespace

std::tuple<Tensor, Tensor, Tensor> group_norm(const Tensor& input, int64_t groups, const Tensor& weight,
                                              const Tensor& bias, double eps) {
  check_params("group_norm", input, {{"weight", weight}, {"bias", bias}});
  const GroupShape s = group_norm_shape(input, groups, weight, bias);
  const Tensor x = contiguous(input);
  Tensor out = empty(input.sizes(), input.options());
  const TensorOptions so = input.options().dtype(stat_dtype(input.dtype()));
  Tensor mean = empty({s.n, groups}, so), rstd = empty({s.n, groups}, so);
  if (s.n > 0) {
    backend_of(x).group_norm(x, contiguous_or_undefined(weight), contiguous_or_undefined(bias), groups, eps, out,
                             mean, rstd);
  }
  return {out, mean, rstd};
}

std::tuple<Tensor, Tensor, Tensor> group_norm_backward(const Tensor& grad_out, const Tensor& input,
                                                       const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                                       const Tensor& bias, int64_t groups, NormGradMask mask) {
  const DType pd = check_params("group_norm_backward", input, {{"weight", weight}, {"bias", bias}});
  const GroupShape s = group_norm_shape(input, groups, weight, bias);
  const Tensor g = grad_like("group_norm_backward", grad_out, input);
  const Tensor x = contiguous(input);
  const DType sd = stat_dtype(input.dtype());
  Tensor gi = mask[0] ? empty(input.sizes(), input.options()) : Tensor();
  Tensor gw = empty_param_grad(mask[1], weight, {s.c}, pd);
  Tensor gb = empty_param_grad(mask[2], bias, {s.c}, pd);
  if (s.n == 0) {
    if (gw.defined()) fill_(gw, 0);
    if (gb.defined()) fill_(gb, 0);
  } else if (gi.defined() || gw.defined() || gb.defined()) {
    const int64_t count = s.n * groups;
    backend_of(x).group_norm_backward(g, x, reshape(flat_stat("group_norm_backward", "mean", mean, count, sd),
                                                    {s.n, groups}),
                                      reshape(flat_stat("group_norm_backward", "rstd", rstd, count, sd),
                                              {s.n, groups}),
                                      contiguous_or_undefined(weight), groups, gi, gw, gb);
  }
  return {gi, gw, gb};
}

// ---- batch norm ----

namespace {

void check_batch_input(const char* op, const Tensor& input) {
  KILN_CHECK(input.dim() >= 2, op, ": expected input of shape [N, C, *] (at least 2 dims), got shape ",
             input.sizes());
}

// 1 / sqrt(var + eps) in var's dtype.
Tensor invstd_of(const Tensor& var, double eps) { return unary(UnaryOp::Rsqrt, add(var, Scalar(eps))); }

// running = (1 - momentum) * running + momentum * stat, in running's dtype, in place.
void update_running(const Tensor& running, const Tensor& stat, double momentum) {
  const Tensor flat = reshape(running, {running.numel()});
  const Tensor s = to(stat, running.dtype());
  copy_(running, view(add(mul(flat, Scalar(1.0 - momentum)), mul(s, Scalar(momentum))), running.sizes()));
}

}  // namespace

std::tuple<Tensor, Tensor, Tensor> batch_norm(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                              const Tensor& running_mean, const Tensor& running_var, bool training,
                                              double momentum, double eps) {
  const char* op = "batch_norm";
  check_params(op, input, {{"weight", weight}, {"bias", bias}, {"running_mean", running_mean},
                           {"running_var", running_var}});
  check_batch_input(op, input);
  const int64_t n = input.size(0), c = input.size(1), hw = product(input.sizes(), 2), count = n * hw;
  const Tensor w = channel_param(op, "weight", weight, c, input);
  const Tensor b = channel_param(op, "bias", bias, c, input);
  const Tensor rm = channel_param(op, "running_mean", running_mean, c, input);
  const Tensor rv = channel_param(op, "running_var", running_var, c, input);
  const DType sd = stat_dtype(input.dtype());
  const Tensor x = contiguous(input);
  Tensor mean, invstd;
  if (training) {
    KILN_CHECK(count != 1, op, ": Expected more than 1 value per channel when training, got input size ",
               input.sizes());
    const TensorOptions so = input.options().dtype(sd);
    if (count == 0) {  // nothing to normalise; running statistics stay as they are, as torch
      return {empty(input.sizes(), input.options()), zeros({c}, so), zeros({c}, so)};
    }
    mean = empty({c}, so);
    Tensor var = empty({c}, so);
    backend_of(x).batch_norm_stats(x, mean, var);
    invstd = invstd_of(var, eps);
    if (running_mean.defined()) update_running(running_mean, mean, momentum);
    if (running_var.defined()) {
      const double unbiased = static_cast<double>(count) / static_cast<double>(count - 1);
      update_running(running_var, mul(var, Scalar(unbiased)), momentum);
    }
  } else {
    KILN_CHECK(running_mean.defined(), op, ": running_mean must be defined in evaluation mode");
    KILN_CHECK(running_var.defined(), op, ": running_var must be defined in evaluation mode");
    mean = clone(to(rm, sd));  // a copy: the caller keeps it while the buffer may change
    invstd = invstd_of(to(rv, sd), eps);
  }
  Tensor out = empty(input.sizes(), input.options());
  if (out.numel() > 0) backend_of(x).batch_norm_apply(x, mean, invstd, w, b, out);
  return {out, mean, invstd};
}

std::tuple<Tensor, Tensor, Tensor> batch_norm_backward(const Tensor& grad_out, const Tensor& input,
                                                       const Tensor& weight, const Tensor& bias,
                                                       const Tensor& save_mean, const Tensor& save_invstd,
                                                       bool training, NormGradMask mask) {
  const char* op = "batch_norm_backward";
  const DType pd = check_params(op, input, {{"weight", weight}, {"bias", bias}});
  check_batch_input(op, input);
  const int64_t c = input.size(1);
  const Tensor w = channel_param(op, "weight", weight, c, input);
  const Tensor g = grad_like(op, grad_out, input);
  const Tensor x = contiguous(input);
  const DType sd = stat_dtype(input.dtype());
  const Tensor mean = flat_stat(op, "save_mean", save_mean, c, sd);
  const Tensor invstd = flat_stat(op, "save_invstd", save_invstd, c, sd);
  Tensor gi = mask[0] ? empty(input.sizes(), input.options()) : Tensor();
  Tensor gw = empty_param_grad(mask[1], weight, weight.defined() ? weight.sizes() : IntArrayRef(), pd);
  Tensor gb = empty_param_grad(mask[2], bias, bias.defined() ? bias.sizes() : IntArrayRef(), pd);
  if (x.numel() == 0) {
    if (gw.defined()) fill_(gw, 0);
    if (gb.defined()) fill_(gb, 0);
    return {gi, gw, gb};
  }
  // The kernels write [C] parameter gradients; views keep the parameters' own shapes.
  const Tensor gw_flat = gw.defined() ? reshape(gw, {c}) : gw, gb_flat = gb.defined() ? reshape(gb, {c}) : gb;
  Backend& be = backend_of(x);
  if (training) {
    if (gi.defined() || gw.defined() || gb.defined()) be.batch_norm_backward(g, x, mean, invstd, w, gi, gw_flat, gb_flat);
  } else {
    // Constant statistics: grad_input = g * invstd * weight is the forward's
    // affine map with a zero mean; the parameter sums are the training
    // kernel's without grad_input.
    if (gi.defined()) be.batch_norm_apply(g, zeros({c}, mean.options()), invstd, w, Tensor(), gi);
    if (gw.defined() || gb.defined()) be.batch_norm_backward(g, x, mean, invstd, w, Tensor(), gw_flat, gb_flat);
  }
  return {gi, gw, gb};
}

}  // namespace kiln::native
