#pragma once
// Layer, group and batch normalisation without autograd: argument checks with
// torch's rules, then the backend's fused kernels. Statistics are f32 for
// f32/f16/bf16 inputs and f64 for f64 (never 16-bit).
//
// Parameters (weight, bias, running stats) share one dtype: the input's, or
// f32 for an f16/bf16 input (torch's CPU "mixed dtype"). Results have the
// input's dtype; parameter gradients the parameters' dtype. Inputs may be
// strided; they are made contiguous here, as the kernels assume.
#include <array>
#include <tuple>

#include "kiln/core/backend.h"
#include "kiln/core/tensor.h"

namespace kiln::native {

// Which of (grad_input, grad_weight, grad_bias) a backward computes; the
// others come back undefined.
using NormGradMask = std::array<bool, 3>;

// Normalises over the trailing dims `normalized_shape` (eps inside the sqrt,
// biased variance). Returns (out, mean, rstd); mean/rstd have the input's
// leading dims followed by 1 for each normalised dim, as torch.
std::tuple<Tensor, Tensor, Tensor> layer_norm(const Tensor& input, IntArrayRef normalized_shape, const Tensor& weight,
                                              const Tensor& bias, double eps);
std::tuple<Tensor, Tensor, Tensor> layer_norm_backward(const Tensor& grad_out, const Tensor& input,
                                                       IntArrayRef normalized_shape, const Tensor& mean,
                                                       const Tensor& rstd, const Tensor& weight,
                                                       const Tensor& bias, NormGradMask mask);

// input [N, C, *] with C divisible by groups; returns (out, mean [N, groups], rstd [N, groups]).
std::tuple<Tensor, Tensor, Tensor> group_norm(const Tensor& input, int64_t groups, const Tensor& weight,
                                              const Tensor& bias, double eps);
std::tuple<Tensor, Tensor, Tensor> group_norm_backward(const Tensor& grad_out, const Tensor& input,
                                                       const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                                                       const Tensor& bias, int64_t groups, NormGradMask mask);

// input [N, C, *]. training: normalise with the batch statistics; when
// running_mean/var are defined they are updated in place as
//   running = (1 - momentum) * running + momentum * batch_stat
// with the unbiased variance for running_var. Eval: normalise with the
// running statistics (which must then be defined). Returns (out, save_mean,
// save_invstd): the statistics used, [C] in the stat dtype.
std::tuple<Tensor, Tensor, Tensor> batch_norm(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                              const Tensor& running_mean, const Tensor& running_var, bool training,
                                              double momentum, double eps);
// Gradients of batch_norm given the forward's save_mean/save_invstd. In
// training the statistics depend on the input (the full formula); in eval
// they are constants.
std::tuple<Tensor, Tensor, Tensor> batch_norm_backward(const Tensor& grad_out, const Tensor& input,
                                                       const Tensor& weight, const Tensor& bias,
                                                       const Tensor& save_mean, const Tensor& save_invstd,
                                                       bool training, NormGradMask mask);

}  // namespace kiln::native
