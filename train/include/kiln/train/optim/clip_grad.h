#pragma once
// Gradient clipping, as torch.nn.utils: by the global norm of all the
// parameters' gradients, or elementwise by value. Parameters without a
// gradient are skipped. Both run without recording history.
#include <vector>

#include "kiln/core/tensor.h"

namespace kiln::optim {

// The norm of the per-tensor norms: the norm of all the tensors' elements
// seen as one vector (norm_type may be infinity). A 0-dim tensor of the
// tensors' (promoted) dtype; float32 zero when the list is empty. With
// error_if_nonfinite, a NaN or infinite total is an error.
Tensor get_total_norm(const std::vector<Tensor>& tensors, double norm_type = 2.0, bool error_if_nonfinite = false);

// Multiplies every gradient by min(max_norm / (total_norm + 1e-6), 1). The
// factor is applied even when it is 1, and a NaN or infinite total is not
// special-cased: gradients become NaN (or 0 with an infinite total), as torch.
void clip_grads_with_norm_(const std::vector<Tensor>& params, double max_norm, const Tensor& total_norm);

// get_total_norm of the gradients, then clip_grads_with_norm_. Returns the
// total norm from before clipping.
Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

// Clamps every gradient to [-clip_value, clip_value] in place (NaN stays NaN).
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace kiln::optim
