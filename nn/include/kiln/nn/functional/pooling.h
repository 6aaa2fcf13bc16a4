#pragma once
// 2-D pooling with torch.nn.functional's semantics (NCHW or unbatched CHW).
#include <cstdint>
#include <optional>
#include <utility>

#include "kiln/autograd/functions.h"
#include "kiln/nn/functional/options.h"

namespace kiln::nn::functional {

struct MaxPool2dFuncOptions {
  MaxPool2dFuncOptions(ExpandingArray<2> kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}  // NOLINT
  KILN_FUNC_ARG(ExpandingArray<2>, kernel_size, 1);
  KILN_FUNC_ARG(ExpandingArray<2>, stride, 1);  // defaults to kernel_size
  KILN_FUNC_ARG(ExpandingArray<2>, padding, 0);  // implicit -inf; at most ((kernel_size - 1) * dilation + 1) / 2
  KILN_FUNC_ARG(ExpandingArray<2>, dilation, 1);
  KILN_FUNC_ARG(bool, ceil_mode, false);
};

struct AvgPool2dFuncOptions {
  AvgPool2dFuncOptions(ExpandingArray<2> kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}  // NOLINT
  KILN_FUNC_ARG(ExpandingArray<2>, kernel_size, 1);
  KILN_FUNC_ARG(ExpandingArray<2>, stride, 1);  // defaults to kernel_size
  KILN_FUNC_ARG(ExpandingArray<2>, padding, 0);
  KILN_FUNC_ARG(bool, ceil_mode, false);
  KILN_FUNC_ARG(bool, count_include_pad, true);
  KILN_FUNC_ARG(std::optional<int64_t>, divisor_override, std::nullopt);
};

Tensor max_pool2d(const Tensor& input, const MaxPool2dFuncOptions& options);
// Values and the int64 flat (h * W + w) index of each maximum in its input plane.
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, const MaxPool2dFuncOptions& options);
Tensor avg_pool2d(const Tensor& input, const AvgPool2dFuncOptions& options);
// output_size: (H_out, W_out); bins as torch: [floor(i*H/Ho), ceil((i+1)*H/Ho)).
Tensor adaptive_avg_pool2d(const Tensor& input, ExpandingArray<2> output_size);

}  // namespace kiln::nn::functional
