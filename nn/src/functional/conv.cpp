// conv2d with autograd, double backward included.
//
// The forward and its two backward products are three differentiable
// functions here, each linear in each of its two tensor arguments, whose
// backward formulas are written with the other two:
//   y  = conv(x, w):          dx = bwd_input(gy, w),    dw = bwd_weight(gy, x)
//   gx = bwd_input(gy, w):    dgy = conv(ggx, w),       dw = bwd_weight(gy, ggx)
//   gw = bwd_weight(gy, x):   dgy = conv(x, ggw),       dx = bwd_input(gy, ggw)
// (each from <a, f(b, c)> = <f*(a, c), b>). Under create_graph the formulas
// record themselves, so any order of derivative works. Without it, the
// weight and bias gradients come from one fused pass of the native kernel.
#include "kiln/nn/functional/conv.h"

#include "kiln/autograd/autocast.h"
#include "kiln/autograd/function.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/core/native.h"

namespace kiln::nn::functional {

namespace {

using autograd::FunctionNode;
using autograd::record;
using autograd::variable_list;

Tensor convolution(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p);

// The bias gradient: grad_out summed over everything but channels.
Tensor bias_grad(const Tensor& g) { return g.dim() == 3 ? kiln::sum(g, {1, 2}) : kiln::sum(g, {0, 2, 3}); }

Tensor backward_weight(const Tensor& gy, const Tensor& x, IntArrayRef weight_sizes, const Conv2dParams& p);

Tensor backward_input(const Tensor& gy, const Tensor& w, IntArrayRef input_sizes, const Conv2dParams& p) {
  return record("ConvolutionBackwardBackward0", native::conv2d_backward_input(gy, w, input_sizes, p), {gy, w},
                {w.requires_grad() ? gy : Tensor(), gy.requires_grad() ? w : Tensor()},
                [p](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {c.needs(0) ? convolution(g, c.saved(1), Tensor(), p) : Tensor(),
                          c.needs(1) ? backward_weight(c.saved(0), g, c.input_sizes(1), p) : Tensor()};
                });
}

Tensor backward_weight(const Tensor& gy, const Tensor& x, IntArrayRef weight_sizes, const Conv2dParams& p) {
  return record("ConvolutionBackwardBackward0", std::get<0>(native::conv2d_backward_weight(gy, x, weight_sizes, p)),
                {gy, x}, {x.requires_grad() ? gy : Tensor(), gy.requires_grad() ? x : Tensor()},
                [p](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {c.needs(0) ? convolution(c.saved(1), g, Tensor(), p) : Tensor(),
                          c.needs(1) ? backward_input(c.saved(0), g, c.input_sizes(1), p) : Tensor()};
                });
}

Tensor convolution(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p) {
  return record("ConvolutionBackward0", native::conv2d(x, w, b, p), {x, w, b},
                {w.requires_grad() ? x : Tensor(), x.requires_grad() ? w : Tensor()},
                [p](FunctionNode& c, const Tensor& g) -> variable_list {
                  Tensor gx, gw, gb;
                  if (c.needs(0)) gx = backward_input(g, c.saved(1), c.input_sizes(0), p);
                  if (c.needs(1) && c.needs(2) && !GradMode::is_enabled()) {
                    std::tie(gw, gb) = native::conv2d_backward_weight(g, c.saved(0), c.input_sizes(1), p, true);
                  } else {
                    if (c.needs(1)) gw = backward_weight(g, c.saved(0), c.input_sizes(1), p);
                    if (c.needs(2)) gb = bias_grad(g);
                  }
                  return {gx, gw, gb};
                });
}

}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& weight, const Conv2dFuncOptions& options) {
  return conv2d(input, weight, options.bias(), options.stride(), options.padding(), options.dilation(),
                options.groups());
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, ExpandingArray<2> stride,
              ExpandingArray<2> padding, ExpandingArray<2> dilation, int64_t groups) {
  // Under autocast the convolution runs in the region's dtype (autograd/autocast.h).
  if (auto cast = autograd::autocast_args(autograd::CastPolicy::LowerPrecision, {input, weight, bias})) {
    return conv2d(cast(input), cast(weight), cast(bias), stride, padding, dilation, groups);
  }
  return convolution(input, weight, bias, native::conv2d_params(stride, padding, dilation, groups));
}

}  // namespace kiln::nn::functional
