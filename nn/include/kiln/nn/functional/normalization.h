#pragma once
// Normalisation layers' functions with torch.nn.functional's semantics.
// All are differentiable in input, weight and bias (fused kernels forward and
// backward; statistics in f32 or wider).
#include <cstdint>

#include "kiln/autograd/functions.h"
#include "kiln/nn/functional/options.h"

namespace kiln::nn::functional {

// Normalises over the trailing dims given by normalized_shape; weight/bias of
// that shape or undefined. Biased variance, as torch.
Tensor layer_norm(const Tensor& input, IntArrayRef normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

// input [N, C, *]; C divisible by num_groups; weight/bias [C] or undefined.
Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

// input [N, C, *]. training: normalise with the batch's statistics and, when
// running_mean/var are defined, update them in place (unbiased variance for
// running_var, as torch) with `momentum`; eval: use the running statistics.
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool training = false,
                  double momentum = 0.1, double eps = 1e-5);

}  // namespace kiln::nn::functional
