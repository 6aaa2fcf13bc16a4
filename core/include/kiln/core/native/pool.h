#pragma once
// 2-D pooling of [N, C, H, W] (or unbatched [C, H, W]) floating tensors with
// torch.nn.functional's geometry and errors, plus the backward maps the
// autograd layer records. Window arguments take one value (both dims) or
// two (H, W); an empty stride means stride = kernel_size, as torch.
#include <cstdint>
#include <optional>
#include <tuple>

#include "kiln/core/backend.h"
#include "kiln/core/tensor.h"

namespace kiln::native {

// torch's pooling_output_shape: floor((in + 2 pad - dilation (kernel - 1) - 1) / stride) + 1,
// rounded up with ceil_mode, where the last window must still start inside
// the input or the left padding.
int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, bool ceil_mode);

// Values and int64 indices (flat h * W + w within each input plane) of the
// maxima; NaN propagates (the last NaN in a window wins), ties keep the first
// position in row-major window order, padding acts as -inf.
std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, IntArrayRef kernel_size,
                                                   IntArrayRef stride = {}, IntArrayRef padding = 0,
                                                   IntArrayRef dilation = 1, bool ceil_mode = false);
Tensor max_pool2d(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride = {}, IntArrayRef padding = 0,
                  IntArrayRef dilation = 1, bool ceil_mode = false);
// A tensor of input_sizes, zero except grad_out summed at the positions
// `indices` (max_pool2d_with_indices's) name in each plane.
Tensor max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, IntArrayRef input_sizes);
// The adjoint of max_pool2d_backward: t's values at `indices`, in indices' shape.
Tensor max_pool2d_gather(const Tensor& t, const Tensor& indices);

// Windows are clipped to the input plus padding (and to the input when
// count_include_pad is false) for the divisor, as torch's CPU kernel.
Tensor avg_pool2d(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride = {}, IntArrayRef padding = 0,
                  bool ceil_mode = false, bool count_include_pad = true,
                  std::optional<int64_t> divisor_override = std::nullopt);
// The adjoint of avg_pool2d for an input of input_sizes.
Tensor avg_pool2d_backward(const Tensor& grad_out, IntArrayRef input_sizes, IntArrayRef kernel_size,
                           IntArrayRef stride = {}, IntArrayRef padding = 0, bool ceil_mode = false,
                           bool count_include_pad = true, std::optional<int64_t> divisor_override = std::nullopt);

// output_size: one value or (H_out, W_out), each >= 0. Output cell i averages
// input rows [floor(i H / H_out), ceil((i + 1) H / H_out)), likewise columns.
Tensor adaptive_avg_pool2d(const Tensor& input, IntArrayRef output_size);
Tensor adaptive_avg_pool2d_backward(const Tensor& grad_out, IntArrayRef input_sizes);

}  // namespace kiln::native
