// Gradient clipping with torch.nn.utils' arithmetic: per-tensor norms, the
// norm of their stack, and a clip coefficient computed in the norm's dtype.
#include "kiln/train/optim/clip_grad.h"

#include <cmath>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/core/native.h"

namespace kiln::optim {

namespace {

std::vector<Tensor> grads_of(const std::vector<Tensor>& params) {
  std::vector<Tensor> grads;
  for (const auto& p : params) {
    KILN_CHECK(p.defined(), "clip_grad: got an undefined parameter");
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  return grads;
}

}  // namespace

Tensor get_total_norm(const std::vector<Tensor>& tensors, double norm_type, bool error_if_nonfinite) {
  NoGradGuard no_grad;
  if (tensors.empty()) return scalar_tensor(0.0, TensorOptions().dtype(kFloat32));
  const Device device = tensors.front().device();
  DType dtype = tensors.front().dtype();
  for (const auto& t : tensors) dtype = promote_types(dtype, t.dtype());
  // As torch: the per-tensor norms of each (device, dtype) group in one
  // multi-tensor call, each rounded to its tensors' dtype (a bfloat16
  // gradient's norm is a bfloat16, as torch._foreach_norm returns it), then
  // moved to the first device in the promoted dtype and stacked group after
  // group.
  std::vector<Tensor> parts;
  for (const native::TensorGroup& g : native::group_tensors(tensors)) {
    const Tensor norms = native::to(native::foreach_norm(g.tensors, norm_type), g.dtype);
    parts.push_back(native::to(native::to(norms, dtype), device));
  }
  Tensor total = native::norm(parts.size() == 1 ? parts[0] : native::cat(parts), Scalar(norm_type));
  if (error_if_nonfinite) {
    const double v = total.item<double>();
    KILN_CHECK(std::isfinite(v), "clip_grad_norm_: The total norm of order ", norm_type,
               " for gradients from `parameters` is non-finite (", v,
               "), so it cannot be clipped. To disable this error and scale the gradients by the non-finite norm "
               "anyway, set error_if_nonfinite=false");
  }
  return total;
}

void clip_grads_with_norm_(const std::vector<Tensor>& params, double max_norm, const Tensor& total_norm) {
  NoGradGuard no_grad;
  const std::vector<Tensor> grads = grads_of(params);
  if (grads.empty()) return;
  // No "if coef < 1" test: as torch, so a device-side norm never has to be
  // read back; the multi-tensor multiply reads coef on the device.
  const Tensor coef = clamp_max(max_norm / (total_norm + 1e-6), 1.0);
  for (const native::TensorGroup& g : native::group_tensors(grads, /*by_dtype=*/false)) {
    native::foreach_mul_(g.tensors, coef.to(g.device));
  }
}

Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  Tensor total = get_total_norm(grads_of(params), norm_type, error_if_nonfinite);
  clip_grads_with_norm_(params, max_norm, total);
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  NoGradGuard no_grad;
  for (auto g : grads_of(params)) g.clamp_(Scalar(-clip_value), Scalar(clip_value));
}

}  // namespace kiln::optim
