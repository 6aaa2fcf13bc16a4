#pragma once
// 2-D convolution (cross-correlation, as torch), NCHW.
#include <cstdint>

#include "kiln/autograd/functions.h"
#include "kiln/nn/functional/options.h"

namespace kiln::nn::functional {

struct Conv2dFuncOptions {
  KILN_FUNC_ARG(Tensor, bias, Tensor());  // [C_out] or undefined
  KILN_FUNC_ARG(ExpandingArray<2>, stride, 1);
  KILN_FUNC_ARG(ExpandingArray<2>, padding, 0);  // zeros, symmetric; use pad() for per-side amounts
  KILN_FUNC_ARG(ExpandingArray<2>, dilation, 1);
  KILN_FUNC_ARG(int64_t, groups, 1);
};

// input [N, C_in, H, W] or unbatched [C_in, H, W]; weight [C_out, C_in/groups, kH, kW].
// Differentiable in input, weight and bias (double backward included).
Tensor conv2d(const Tensor& input, const Tensor& weight, const Conv2dFuncOptions& options = {});
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, ExpandingArray<2> stride = 1,
              ExpandingArray<2> padding = 0, ExpandingArray<2> dilation = 1, int64_t groups = 1);

}  // namespace kiln::nn::functional
