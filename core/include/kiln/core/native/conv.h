#pragma once
// 2-D convolution (cross-correlation, as torch.nn.functional.conv2d), NCHW,
// without autograd. The forward and its two backward products are separate
// functions because double backward is written with all three.
//
// Every function also takes unbatched operands ([C, H, W] input, grad_out
// [C_out, Ho, Wo]) and returns unbatched results for them. Operands may be
// any strided views (they are made contiguous once); float16/bfloat16 are
// computed in float32 and rounded once at the end. Integer tensors are
// rejected (Kiln's matmul-like ops are floating-point only).
#include <tuple>

#include "kiln/core/backend.h"
#include "kiln/core/tensor.h"

namespace kiln::native {

// torch's stride/padding/dilation arguments (1 value, repeated, or 2), checked.
Conv2dParams conv2d_params(IntArrayRef stride, IntArrayRef padding, IntArrayRef dilation, int64_t groups);

// The output shape conv2d gives for these input and weight shapes, after
// every check conv2d makes (channels, groups, kernel vs padded input).
DimVector conv2d_output_size(IntArrayRef input_sizes, IntArrayRef weight_sizes, const Conv2dParams& p);

// input [N, C_in, H, W] or [C_in, H, W]; weight [C_out, C_in/groups, kH, kW];
// bias [C_out] or undefined.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv2dParams& p);
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(), IntArrayRef stride = {1},
              IntArrayRef padding = {0}, IntArrayRef dilation = {1}, int64_t groups = 1);

// d(conv2d)/d(input) applied to grad_out: the gradient of an input of shape
// input_sizes. Linear in grad_out and in weight.
Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, IntArrayRef input_sizes,
                             const Conv2dParams& p);

// d(conv2d)/d(weight) applied to grad_out, and with `bias` also the bias
// gradient (grad_out summed over N, Ho, Wo; undefined otherwise), computed in
// the same pass. The weight gradient is linear in grad_out and in input.
std::tuple<Tensor, Tensor> conv2d_backward_weight(const Tensor& grad_out, const Tensor& input,
                                                  IntArrayRef weight_sizes, const Conv2dParams& p,
                                                  bool bias = false);

}  // namespace kiln::native
