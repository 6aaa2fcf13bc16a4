// Fused cross-entropy: argument checks, the stat-dtype/contiguity policy the
// Backend contract assumes, then one kernel each way.
#include <tuple>

#include "kiln/core/backend.h"
#include "kiln/core/error.h"
#include "kiln/core/native/factory.h"
#include "kiln/core/native/loss.h"
#include "kiln/core/native/view.h"

namespace kiln::native {

namespace {

DType stat_dtype(DType t) { return t == kFloat64 ? kFloat64 : kFloat32; }

// The CPU kernels are written for f32/f64 only: 16-bit logits are widened
// here, as linalg does for bmm (the values are exact in f32).
bool widen_on_cpu(const Tensor& logits) { return logits.is_cpu() && is_reduced_float(logits.dtype()); }

void check_args(const char* op, const Tensor& logits, const Tensor& target, const Tensor& weight,
                int64_t ignore_index, double label_smoothing) {
  KILN_CHECK(logits.defined() && target.defined(), op, ": undefined logits or target");
  KILN_CHECK(logits.dim() == 2, op, ": expected logits of shape [N, C], got ", logits.sizes());
  KILN_CHECK(is_floating_point(logits.dtype()), op, ": expected floating-point logits, got ", logits.dtype(),
             " (logits shape ", logits.sizes(), ")");
  KILN_CHECK(target.dtype() == kInt64, op, ": expected an int64 class-index target, got ", target.dtype());
  KILN_CHECK(target.dim() == 1 && target.size(0) == logits.size(0), op, ": target shape ", target.sizes(),
             " does not match logits shape ", logits.sizes(), " (expected target [N] for logits [N, C])");
  KILN_CHECK(target.device() == logits.device(), op, ": target is on ", target.device(), " but logits are on ",
             logits.device());
  const int64_t c = logits.size(1);
  if (weight.defined()) {
    KILN_CHECK(weight.dim() == 1 && weight.size(0) == c, op, ": weight must be a 1-D tensor of ", c,
               " elements (one per class), got shape ", weight.sizes(), " for logits shape ", logits.sizes());
    KILN_CHECK(weight.dtype() == logits.dtype() || weight.dtype() == stat_dtype(logits.dtype()), op,
               ": weight dtype ", weight.dtype(), " must be the logits' (", logits.dtype(), ") or ",
               stat_dtype(logits.dtype()));
    KILN_CHECK(weight.device() == logits.device(), op, ": weight is on ", weight.device(), " but logits are on ",
               logits.device());
  }
  KILN_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op, ": label_smoothing must be in [0, 1], got ",
             label_smoothing);
  // The kernels index rows by target, so every value is checked; that needs
  // them on the host (a small copy next to the logits).
  const Tensor host = contiguous(to(target, Device(kCPU)));
  const int64_t* p = host.data_ptr<int64_t>();
  for (int64_t i = 0, n = host.numel(); i < n; ++i) {
    KILN_CHECK(p[i] == ignore_index || (p[i] >= 0 && p[i] < c), op, ": target index ", p[i], " (row ", i,
               ") is out of range for ", c, " classes (logits shape ", logits.sizes(), ", ignore_index ",
               ignore_index, ")");
  }
}

// Weight as the kernels take it: contiguous, in the stat dtype.
Tensor kernel_weight(const Tensor& weight, DType sd) {
  return weight.defined() ? contiguous(to(weight, sd)) : weight;
}

Tensor kernel_logits(const Tensor& logits) {
  return contiguous(widen_on_cpu(logits) ? to(logits, kFloat32) : logits);
}

}  // namespace

std::tuple<Tensor, Tensor> cross_entropy_loss(const Tensor& logits, const Tensor& target, const Tensor& weight,
                                              int64_t ignore_index, double label_smoothing) {
  check_args("cross_entropy_loss", logits, target, weight, ignore_index, label_smoothing);
  const DType sd = stat_dtype(logits.dtype());
  const int64_t n = logits.size(0);
  const TensorOptions so = logits.options().dtype(sd);
  Tensor loss = empty({n}, so), lse = empty({n}, so);
  if (n == 0) return {loss, lse};
  const Tensor x = kernel_logits(logits);
  backend_of(x).cross_entropy(x, contiguous(target), kernel_weight(weight, sd), ignore_index, label_smoothing, loss,
                              lse);
  return {loss, lse};
}

Tensor cross_entropy_loss_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& target,
                                   const Tensor& weight, const Tensor& lse, int64_t ignore_index,
                                   double label_smoothing) {
  const char* op = "cross_entropy_loss_backward";
  check_args(op, logits, target, weight, ignore_index, label_smoothing);
  const DType sd = stat_dtype(logits.dtype());
  const int64_t n = logits.size(0);
  KILN_CHECK(grad_loss.defined() && grad_loss.dim() == 1 && grad_loss.size(0) == n, op, ": grad_loss must be [", n,
             "], got ", grad_loss.defined() ? grad_loss.sizes() : IntArrayRef());
  KILN_CHECK(lse.defined() && lse.dim() == 1 && lse.size(0) == n, op, ": lse must be [", n, "], got ",
             lse.defined() ? lse.sizes() : IntArrayRef());
  KILN_CHECK(grad_loss.device() == logits.device() && lse.device() == logits.device(), op,
             ": grad_loss and lse must be on the logits' device ", logits.device());
  KILN_CHECK(is_floating_point(grad_loss.dtype()) && is_floating_point(lse.dtype()), op,
             ": grad_loss and lse must be floating point, got ", grad_loss.dtype(), " and ", lse.dtype());
  if (n == 0 || logits.size(1) == 0) return empty(logits.sizes(), logits.options());
  const Tensor x = kernel_logits(logits);
  Tensor grad = empty(x.sizes(), x.options());
  backend_of(x).cross_entropy_backward(contiguous(to(grad_loss, sd)), x, contiguous(target),
                                       kernel_weight(weight, sd), contiguous(to(lse, sd)), ignore_index,
                                       label_smoothing, grad);
  return grad.dtype() == logits.dtype() ? grad : to(grad, logits.dtype());
}

}  // namespace kiln::native
