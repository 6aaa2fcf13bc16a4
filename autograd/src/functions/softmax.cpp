// Differentiable softmax and log_softmax along one dim.
//
// A plain backward uses the fused native kernel; under create_graph (grad
// mode on inside the formula) the composite formula runs instead, so the
// gradient records its own graph for double backward.
#include "kiln/autograd/autocast.h"
#include "kiln/autograd/function.h"
#include "kiln/autograd/functions.h"
#include "kiln/core/native.h"

namespace kiln {

using autograd::FunctionNode;
using autograd::record;
using autograd::variable_list;

// softmax: dx = y (g - sum(g y)).
Tensor softmax(const Tensor& t, int64_t dim, std::optional<DType> dtype) {
  // Autocast computes in float32 unless a dtype was asked for (torch's fp32_set_opt_dtype).
  if (!dtype && autograd::autocast_args(autograd::CastPolicy::Float32, {t})) return kiln::softmax(t, dim, kFloat32);
  // With a dtype the input is converted first (as torch), so ToCopyBackward
  // casts the gradient back to t's dtype.
  const Tensor x = dtype ? kiln::to(t, *dtype) : t;
  return record("SoftmaxBackward0", native::softmax(x, dim), {x}, {},
                [dim](FunctionNode& c, const Tensor& g) -> variable_list {
                  const Tensor y = c.result();
                  if (!GradMode::is_enabled()) return {native::softmax_backward(g, y, dim, false)};
                  return {y * (g - kiln::sum(g * y, dim, true))};
                },
                true);
}

// log_softmax: dx = g - exp(y) sum(g).
Tensor log_softmax(const Tensor& t, int64_t dim, std::optional<DType> dtype) {
  if (!dtype && autograd::autocast_args(autograd::CastPolicy::Float32, {t})) return kiln::log_softmax(t, dim, kFloat32);
  const Tensor x = dtype ? kiln::to(t, *dtype) : t;
  return record("LogSoftmaxBackward0", native::log_softmax(x, dim), {x}, {},
                [dim](FunctionNode& c, const Tensor& g) -> variable_list {
                  const Tensor y = c.result();
                  if (!GradMode::is_enabled()) return {native::softmax_backward(g, y, dim, true)};
                  return {g - kiln::exp(y) * kiln::sum(g, dim, true)};
                },
                true);
}

}  // namespace kiln
