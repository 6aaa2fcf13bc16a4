// layer_norm, group_norm and batch_norm: the fused native kernels forward,
// recorded as torch's Native*NormBackward0 nodes.
//
// A plain backward runs the fused backward kernel. Under create_graph the
// gradient is written with differentiable kiln:: ops instead, recomputing the
// statistics from the saved input, so the gradient's own graph knows how
// the mean and variance depend on the input and double backward is exact.
#include "kiln/nn/functional/normalization.h"

#include <algorithm>
#include <vector>

#include "kiln/autograd/autocast.h"
#include "kiln/autograd/function.h"
#include "kiln/core/error.h"
#include "kiln/core/native.h"

namespace kiln::nn::functional {

using autograd::autocast_args;
using autograd::CastPolicy;
using autograd::FunctionNode;
using autograd::record;
using autograd::variable_list;

namespace {

// [1, C, 1, ...]: a per-channel parameter laid along dim 1 of an input of `ndim` dims.
std::vector<int64_t> channel_shape(int64_t c, int64_t ndim) {
  std::vector<int64_t> s(static_cast<size_t>(ndim), 1);
  s[1] = c;
  return s;
}

// The differentiable gradient of normalising x over `dims` (mean and biased
// variance taken over them, eps inside the sqrt), given the gradient gx of
// the normalised x̂ (the output's gradient already multiplied by the weight):
//   dx = r (gx - mean(gx) - x̂ mean(gx x̂)).
// Also returns x̂ for the weight's gradient.
std::pair<Tensor, Tensor> normalize_backward(const Tensor& x, const Tensor& gx, IntArrayRef dims, double eps) {
  const Tensor xc = x - kiln::mean(x, dims, true);
  const Tensor r = kiln::rsqrt(kiln::mean(xc * xc, dims, true) + eps);
  const Tensor xhat = xc * r;
  const Tensor dx = r * (gx - kiln::mean(gx, dims, true) - xhat * kiln::mean(gx * xhat, dims, true));
  return {dx, xhat};
}

native::NormGradMask needs3(const FunctionNode& c) { return {c.needs(0), c.needs(1), c.needs(2)}; }

// The backward reads the bias only for its gradient's dtype and shape, so it
// is saved only when that gradient may be wanted (a frozen bias updated in
// place between forward and backward is then no error).
Tensor if_requires_grad(const Tensor& t) { return t.defined() && t.requires_grad() ? t : Tensor(); }

}  // namespace

Tensor layer_norm(const Tensor& input, IntArrayRef normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  // Autocast normalises 16-bit inputs in float32 (autograd/autocast.h).
  if (auto cast = autocast_args(CastPolicy::Float32, {input, weight, bias})) {
    return layer_norm(cast(input), normalized_shape, cast(weight), cast(bias), eps);
  }
  auto [out, mean, rstd] = native::layer_norm(input, normalized_shape, weight, bias, eps);
  const std::vector<int64_t> ns = normalized_shape.vec();
  return record(
      "NativeLayerNormBackward0", out, {input, weight, bias}, {input, weight, if_requires_grad(bias), mean, rstd},
      [ns, eps](FunctionNode& c, const Tensor& g) -> variable_list {
        const Tensor x = c.saved(0), w = c.saved(1);
        if (!GradMode::is_enabled()) {
          auto [gi, gw, gb] = native::layer_norm_backward(g, x, ns, c.saved(3), c.saved(4), w, c.saved(2), needs3(c));
          return {gi, gw, gb};
        }
        std::vector<int64_t> dims;
        for (size_t i = 0; i < ns.size(); ++i) dims.push_back(x.dim() - static_cast<int64_t>(ns.size() - i));
        auto [dx, xhat] = normalize_backward(x, w.defined() ? g * w : g, dims, eps);
        return {c.needs(0) ? c.reduce(0, dx) : Tensor(), c.needs(1) ? c.reduce(1, g * xhat) : Tensor(),
                c.needs(2) ? c.reduce(2, g) : Tensor()};
      });
}

Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  if (auto cast = autocast_args(CastPolicy::Float32, {input, weight, bias})) {
    return group_norm(cast(input), num_groups, cast(weight), cast(bias), eps);
  }
  auto [out, mean, rstd] = native::group_norm(input, num_groups, weight, bias, eps);
  return record(
      "NativeGroupNormBackward0", out, {input, weight, bias}, {input, weight, if_requires_grad(bias), mean, rstd},
      [num_groups, eps](FunctionNode& c, const Tensor& g) -> variable_list {
        const Tensor x = c.saved(0), w = c.saved(1);
        if (!GradMode::is_enabled()) {
          auto [gi, gw, gb] =
              native::group_norm_backward(g, x, c.saved(3), c.saved(4), w, c.saved(2), num_groups, needs3(c));
          return {gi, gw, gb};
        }
        const int64_t n = x.size(0), ch = x.size(1), per_group = x.numel() / std::max<int64_t>(n * num_groups, 1);
        const std::vector<int64_t> cs = channel_shape(ch, x.dim());
        const Tensor gx = w.defined() ? g * kiln::reshape(w, cs) : g;
        auto [dx, xhat] = normalize_backward(kiln::reshape(x, {n, num_groups, per_group}),
                                             kiln::reshape(gx, {n, num_groups, per_group}), {2}, eps);
        const Tensor xh = kiln::reshape(xhat, x.sizes());
        return {c.needs(0) ? c.reduce(0, kiln::reshape(dx, x.sizes())) : Tensor(),
                c.needs(1) ? c.reduce(1, kiln::reshape(kiln::sum_to(g * xh, cs), {ch})) : Tensor(),
                c.needs(2) ? c.reduce(2, kiln::reshape(kiln::sum_to(g, cs), {ch})) : Tensor()};
      });
}

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  // The running statistics are buffers updated in place, never cast; with
  // 16-bit ones (a model converted whole) the op stays in the input's dtype.
  const bool f32_stats = (!running_mean.defined() || running_mean.dtype() == kFloat32) &&
                         (!running_var.defined() || running_var.dtype() == kFloat32);
  if (auto cast = autocast_args(CastPolicy::Float32, {input, weight, bias}); cast && f32_stats) {
    return batch_norm(cast(input), running_mean, running_var, cast(weight), cast(bias), training, momentum, eps);
  }
  // The running statistics are buffers: their update is never recorded.
  auto [out, mean, invstd] =
      native::batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps);
  return record(
      "NativeBatchNormBackward0", out, {input, weight, bias}, {input, weight, if_requires_grad(bias), mean, invstd},
      [training, eps](FunctionNode& c, const Tensor& g) -> variable_list {
        const Tensor x = c.saved(0), w = c.saved(1), m = c.saved(3), r = c.saved(4);
        if (!GradMode::is_enabled()) {
          auto [gi, gw, gb] = native::batch_norm_backward(g, x, w, c.saved(2), m, r, training, needs3(c));
          return {gi, gw, gb};
        }
        const int64_t ch = x.size(1);
        const std::vector<int64_t> cs = channel_shape(ch, x.dim());
        const Tensor wv = w.defined() ? kiln::reshape(w, cs) : Tensor();
        Tensor dx, xhat;
        if (training) {
          std::vector<int64_t> dims = {0};
          for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
          std::tie(dx, xhat) = normalize_backward(x, wv.defined() ? g * wv : g, dims, eps);
        } else {
          // Eval: the running statistics are constants.
          const Tensor rv = kiln::reshape(r, cs);
          xhat = (x - kiln::reshape(m, cs)) * rv;
          dx = wv.defined() ? g * (wv * rv) : g * rv;
        }
        return {c.needs(0) ? c.reduce(0, dx) : Tensor(),
                c.needs(1) ? c.reduce(1, kiln::reshape(kiln::sum_to(g * xhat, cs), c.input_sizes(1))) : Tensor(),
                c.needs(2) ? c.reduce(2, kiln::reshape(kiln::sum_to(g, cs), c.input_sizes(2))) : Tensor()};
      });
}

}  // namespace kiln::nn::functional
