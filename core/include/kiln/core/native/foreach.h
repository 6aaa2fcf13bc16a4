#pragma once
// Multi-tensor ops on lists of tensors (torch's _foreach_* family), for
// gradient clipping and loss scaling: one backend call per (device, dtype)
// group of the list instead of one op per tensor. The tensors may be strided
// and of different floating dtypes; the work happens on their devices and
// nothing is read back to the host.
#include <vector>

#include "kiln/core/tensor.h"

namespace kiln::native {

// Tensors of a list that share a device (and a dtype), with their positions
// in the list (torch's _group_tensors_by_device_and_dtype).
struct TensorGroup {
  Device device;
  DType dtype;  // with by_dtype false: the group's first tensor's
  std::vector<size_t> index;
  std::vector<Tensor> tensors;
};
// Groups in order of first appearance, list order within a group. Every
// tensor must be defined.
std::vector<TensorGroup> group_tensors(const std::vector<Tensor>& tensors, bool by_dtype = true);

// torch._foreach_norm(tensors, p) as one tensor: out[i] = the p-norm of all
// elements of tensors[i], a contiguous [n] tensor on tensors[0]'s device in
// the promoted stat dtype (float64 when any tensor is float64, else
// float32), computed from each tensor's values without rounding to a 16-bit
// dtype. p = 1, 2 and inf run as fused kernels (sums accumulated in double);
// any other p (0, -inf, 3, 0.5 ...) is torch.linalg.vector_norm per tensor.
// Errors: an empty list, a non-floating tensor, and the inf/-inf norm of an
// empty tensor (no identity), as torch.
Tensor foreach_norm(const std::vector<Tensor>& tensors, double p = 2.0);

// torch._foreach_mul_(tensors, scale): tensors[i] *= scale in place, the
// multiply done in each tensor's compute type (float for 16-bit floats) with
// scale converted to it once. scale is a 0-dim tensor on the tensors'
// device (a 0-dim CPU tensor is also accepted, and moved, as a number) and
// is read there: a scale computed on the GPU is never copied to the host.
// A scale sharing memory with a tensor of the list is an error.
void foreach_mul_(const std::vector<Tensor>& tensors, const Tensor& scale);

// torch._amp_foreach_non_finite_check_and_unscale_: tensors[i] *= inv_scale
// in place, and found_inf is set to 1 if any element (before scaling) was inf
// or NaN, else left as it was. Every tensor is scaled either way.
// inv_scale and found_inf are 1-element float32 tensors on the tensors'
// device. An empty list does nothing.
void amp_unscale_(const std::vector<Tensor>& tensors, const Tensor& inv_scale, const Tensor& found_inf);

}  // namespace kiln::native
