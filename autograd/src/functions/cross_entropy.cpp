// Differentiable fused cross-entropy per row.
//
// A plain backward runs the fused native kernel from the saved logsumexp.
// Under create_graph the gradient is written with differentiable kiln:: ops,
//   dx = g (a p - b),  p = softmax(x),
//   a_i = (1 - ls) w_t + (ls / C) W,  b_ic = (ls / C) w_c + (1 - ls) w_t [c == t],
// where a and b do not depend on x (they are built with native ops as
// constants), so the gradient's own graph carries the dependence on g and
// on x through softmax, and double backward is exact.
#include "kiln/autograd/function.h"
#include "kiln/autograd/functions.h"
#include "kiln/core/error.h"
#include "kiln/core/native.h"

namespace kiln {

using autograd::FunctionNode;
using autograd::record;
using autograd::variable_list;

namespace {

DType stat_dtype(DType t) { return t == kFloat64 ? kFloat64 : kFloat32; }

// g (a p - b) with ignored rows zeroed; x [N, C] (with its history), g [N].
Tensor composite_grad(const Tensor& g, const Tensor& x, const Tensor& target, const Tensor& weight,
                      int64_t ignore_index, double ls) {
  const int64_t c = x.size(1);
  const DType sd = stat_dtype(x.dtype());
  const TensorOptions so = x.options().dtype(sd);
  const Tensor ignored = native::binary(BinaryOp::Eq, target, Scalar(ignore_index));
  const Tensor safe_t = native::masked_fill(target, ignored, Scalar(0));
  const double share = c == 0 ? 0.0 : ls / static_cast<double>(c);
  Tensor w_t, a, b;
  if (weight.defined()) {
    const Tensor w = native::to(weight, sd);
    w_t = native::index_select(w, 0, safe_t);
    a = native::add(native::mul(w_t, Scalar(1.0 - ls)), native::mul(native::sum(w), Scalar(share)));
    b = native::mul(native::unsqueeze(w, 0), Scalar(share));
  } else {
    w_t = native::ones({x.size(0)}, so);
    a = native::full({x.size(0)}, Scalar((1.0 - ls) + share * static_cast<double>(c)), so);
    b = native::full({1, c}, Scalar(share), so);
  }
  const Tensor hot = native::to(native::one_hot(safe_t, c), sd);
  b = native::add(b, native::mul(hot, native::unsqueeze(native::mul(w_t, Scalar(1.0 - ls)), 1)));
  const Tensor p = kiln::softmax(x, 1, sd);
  const Tensor grad = kiln::unsqueeze(g, 1) * (native::unsqueeze(a, 1) * p - b);
  return kiln::where(native::unsqueeze(ignored, 1), Scalar(0), grad);
}

}  // namespace

Tensor cross_entropy_loss(const Tensor& logits, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                          double label_smoothing) {
  // As torch's nll_loss, which refuses a weight that requires grad (Kiln's
  // nn::functional::cross_entropy composes the loss from ops when one does).
  KILN_CHECK(!(GradMode::is_enabled() && weight.defined() && weight.requires_grad()),
             "cross_entropy_loss: not differentiable with respect to argument 'weight' (shape ", weight.sizes(),
             "); this input cannot have requires_grad true");
  auto [loss, lse] = native::cross_entropy_loss(logits, target, weight, ignore_index, label_smoothing);
  return record("CrossEntropyLossBackward0", loss, {logits}, {logits, target, weight, lse},
                [ignore_index, label_smoothing](FunctionNode& c, const Tensor& g) -> variable_list {
                  const Tensor x = c.saved(0), t = c.saved(1), w = c.saved(2);
                  if (!GradMode::is_enabled()) {
                    return {native::cross_entropy_loss_backward(g, x, t, w, c.saved(3), ignore_index,
                                                                label_smoothing)};
                  }
                  return {c.reduce(0, composite_grad(g, x, t, w, ignore_index, label_smoothing))};
                });
}

}  // namespace kiln
