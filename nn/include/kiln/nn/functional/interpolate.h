#pragma once
// Resizing of [N, C, H, W] tensors, as torch.nn.functional.interpolate.
#include <optional>
#include <string>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/nn/functional/options.h"

namespace kiln::nn::functional {

enum class InterpolateMode { Nearest, Bilinear };

struct InterpolateFuncOptions {
  KILN_FUNC_ARG(std::optional<std::vector<int64_t>>, size, std::nullopt);  // (H_out, W_out)
  KILN_FUNC_ARG(std::optional<std::vector<double>>, scale_factor, std::nullopt);  // one or two values
  KILN_FUNC_ARG(InterpolateMode, mode, InterpolateMode::Nearest);
  KILN_FUNC_ARG(std::optional<bool>, align_corners, std::nullopt);  // bilinear only; default false
  // With scale_factor: use it to compute source coordinates (torch's
  // recompute_scale_factor=False default) rather than size ratios.
  KILN_FUNC_ARG(std::optional<bool>, recompute_scale_factor, std::nullopt);
};

// Exactly one of size / scale_factor. Nearest uses torch's "nearest" (floor)
// rule; bilinear matches torch for both align_corners values. Differentiable.
Tensor interpolate(const Tensor& input, const InterpolateFuncOptions& options);

}  // namespace kiln::nn::functional
