// Differentiable 2-D pooling. Every backward here is linear in the incoming
// gradient, so each is recorded as an op of its own whose backward is the
// adjoint map again: avg/adaptive backward <-> forward, and max pooling's
// scatter to the saved indices <-> the gather at them. Gradients of
// gradients then work to any order, and a plain backward (grad mode off)
// costs one native kernel.
#include "kiln/nn/functional/pooling.h"

#include <tuple>

#include "kiln/autograd/function.h"
#include "kiln/core/native.h"

namespace kiln::nn::functional {

namespace {

using autograd::FunctionNode;
using autograd::record;
using autograd::variable_list;

Tensor max_pool_scatter(const Tensor& grad, const Tensor& indices, IntArrayRef input_sizes);

// t's values at the saved indices: the adjoint of max_pool_scatter.
Tensor max_pool_gather(const Tensor& t, const Tensor& indices) {
  return record("GatherBackward0", native::max_pool2d_gather(t, indices), {t}, {indices},
                [](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {max_pool_scatter(g, c.saved(0), c.input_sizes(0))};
                });
}

Tensor max_pool_scatter(const Tensor& grad, const Tensor& indices, IntArrayRef input_sizes) {
  return record("MaxPool2DWithIndicesBackwardBackward0", native::max_pool2d_backward(grad, indices, input_sizes),
                {grad}, {indices}, [](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {max_pool_gather(g, c.saved(0))};
                });
}

struct AvgArgs {
  DimVector kernel, stride, padding;
  bool ceil_mode = false, count_include_pad = true;
  std::optional<int64_t> divisor_override;
};

Tensor avg_pool_backward(const Tensor& grad, IntArrayRef input_sizes, const AvgArgs& a);

Tensor avg_pool(const Tensor& input, const AvgArgs& a) {
  return record("AvgPool2DBackward0",
                native::avg_pool2d(input, a.kernel, a.stride, a.padding, a.ceil_mode, a.count_include_pad,
                                   a.divisor_override),
                {input}, {}, [a](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {avg_pool_backward(g, c.input_sizes(0), a)};
                });
}

Tensor avg_pool_backward(const Tensor& grad, IntArrayRef input_sizes, const AvgArgs& a) {
  return record("AvgPool2DBackwardBackward0",
                native::avg_pool2d_backward(grad, input_sizes, a.kernel, a.stride, a.padding, a.ceil_mode,
                                            a.count_include_pad, a.divisor_override),
                {grad}, {}, [a](FunctionNode&, const Tensor& g) -> variable_list { return {avg_pool(g, a)}; });
}

Tensor adaptive_pool_backward(const Tensor& grad, IntArrayRef input_sizes);

Tensor adaptive_pool(const Tensor& input, IntArrayRef output_size) {
  return record("AdaptiveAvgPool2DBackward0", native::adaptive_avg_pool2d(input, output_size), {input}, {},
                [](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {adaptive_pool_backward(g, c.input_sizes(0))};
                });
}

Tensor adaptive_pool_backward(const Tensor& grad, IntArrayRef input_sizes) {
  return record("AdaptiveAvgPool2DBackwardBackward0", native::adaptive_avg_pool2d_backward(grad, input_sizes),
                {grad}, {}, [](FunctionNode& c, const Tensor& g) -> variable_list {
                  const IntArrayRef s = c.input_sizes(0);
                  return {adaptive_pool(g, {s[s.size() - 2], s[s.size() - 1]})};
                });
}

}  // namespace

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, const MaxPool2dFuncOptions& options) {
  auto result = native::max_pool2d_with_indices(input, options.kernel_size(), options.stride(), options.padding(),
                                                options.dilation(), options.ceil_mode());
  Tensor indices = std::get<1>(result);
  Tensor out = record("MaxPool2DWithIndicesBackward0", std::get<0>(result), {input}, {indices},
                      [](FunctionNode& c, const Tensor& g) -> variable_list {
                        return {max_pool_scatter(g, c.saved(0), c.input_sizes(0))};
                      });
  return {out, indices};
}

Tensor max_pool2d(const Tensor& input, const MaxPool2dFuncOptions& options) {
  return max_pool2d_with_indices(input, options).first;
}

Tensor avg_pool2d(const Tensor& input, const AvgPool2dFuncOptions& options) {
  AvgArgs a;
  a.kernel = options.kernel_size().ref().dims();
  a.stride = options.stride().ref().dims();
  a.padding = options.padding().ref().dims();
  a.ceil_mode = options.ceil_mode();
  a.count_include_pad = options.count_include_pad();
  a.divisor_override = options.divisor_override();
  return avg_pool(input, a);
}

Tensor adaptive_avg_pool2d(const Tensor& input, ExpandingArray<2> output_size) {
  return adaptive_pool(input, output_size);
}

}  // namespace kiln::nn::functional
