// Differentiable interpolate (nearest, bilinear). The backward is the
// adjoint resize, recorded as an op whose own backward is the forward resize,
// so double backward works; a plain backward is one native kernel.
#include "kiln/nn/functional/interpolate.h"

#include "kiln/autograd/function.h"
#include "kiln/core/native.h"

namespace kiln::nn::functional {

namespace {

using autograd::FunctionNode;
using autograd::record;
using autograd::variable_list;

struct Resize {
  InterpolationMode mode = InterpolationMode::Nearest;
  bool align_corners = false;
  double scale_h = 0, scale_w = 0;
  bool nearest() const { return mode == InterpolationMode::Nearest; }
};

Tensor resize_backward(const Tensor& grad, IntArrayRef input_sizes, const Resize& r);

Tensor resize(const Tensor& input, IntArrayRef output_size, const Resize& r) {
  return record(r.nearest() ? "UpsampleNearest2DBackward0" : "UpsampleBilinear2DBackward0",
                native::upsample2d(input, r.mode, output_size, r.align_corners, r.scale_h, r.scale_w), {input}, {},
                [r](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {resize_backward(g, c.input_sizes(0), r)};
                });
}

Tensor resize_backward(const Tensor& grad, IntArrayRef input_sizes, const Resize& r) {
  return record(r.nearest() ? "UpsampleNearest2DBackwardBackward0" : "UpsampleBilinear2DBackwardBackward0",
                native::upsample2d_backward(grad, input_sizes, r.mode, r.align_corners, r.scale_h, r.scale_w),
                {grad}, {}, [r](FunctionNode& c, const Tensor& g) -> variable_list {
                  const IntArrayRef s = c.input_sizes(0);
                  return {resize(g, {s[2], s[3]}, r)};
                });
}

}  // namespace

Tensor interpolate(const Tensor& input, const InterpolateFuncOptions& options) {
  Resize r;
  r.mode = options.mode() == InterpolateMode::Nearest ? InterpolationMode::Nearest : InterpolationMode::Bilinear;
  const native::Interpolate2dPlan p = native::plan_interpolate2d(
      input.sizes(), r.mode, options.size(), options.scale_factor(), options.align_corners(),
      options.recompute_scale_factor());
  r.align_corners = p.align_corners;
  r.scale_h = p.scale_h;
  r.scale_w = p.scale_w;
  return resize(input, {p.out_h, p.out_w}, r);
}

}  // namespace kiln::nn::functional
