#pragma once
// Fused log-softmax + cross-entropy over the rows of a [N, C] logits matrix,
// without autograd (kiln::cross_entropy_loss records it). Per row i, with
// t = target[i], w = weight (all ones when undefined), ls = label_smoothing
// and lse = logsumexp of the row:
//   loss[i] = (1 - ls) w[t] (lse - x[t]) + (ls / C) sum_c w[c] (lse - x[c]),
// and 0 where t == ignore_index. Reductions (torch's mean divides by the
// summed w[t] of non-ignored rows) are the caller's: nn's cross_entropy.
//
// loss and lse come back in the "stat dtype": f32 for f32/f16/bf16 logits,
// f64 for f64. On the CPU 16-bit logits run as f32 (rounded back once, for
// the gradient); other devices take them natively.
#include <tuple>

#include "kiln/core/tensor.h"

namespace kiln::native {

// logits [N, C] floating (any strides); target [N] int64 with values in
// [0, C) or equal to ignore_index; weight [C] floating (the logits' or the
// stat dtype) or undefined; label_smoothing in [0, 1]. Returns (loss [N], lse [N]).
std::tuple<Tensor, Tensor> cross_entropy_loss(const Tensor& logits, const Tensor& target, const Tensor& weight,
                                              int64_t ignore_index, double label_smoothing);

// The gradient of sum_i grad_loss[i] * loss[i] with respect to logits, given
// the forward's lse: [N, C] in the logits' dtype. Ignored rows get zeros.
Tensor cross_entropy_loss_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& target,
                                   const Tensor& weight, const Tensor& lse, int64_t ignore_index,
                                   double label_smoothing);

}  // namespace kiln::native
