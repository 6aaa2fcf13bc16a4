#pragma once
// Resizing of [N, C, H, W] floating tensors as torch.nn.functional.interpolate
// (modes nearest and bilinear), and the adjoint the autograd layer records.
#include <cstdint>
#include <optional>
#include <vector>

#include "kiln/core/backend.h"
#include "kiln/core/tensor.h"

namespace kiln::native {

// interpolate's arguments resolved as torch resolves them.
struct Interpolate2dPlan {
  int64_t out_h = 0, out_w = 0;
  // The user's scale factors when they drive the source coordinates (given
  // scale_factor without recompute_scale_factor=true); 0: the size ratio.
  double scale_h = 0, scale_w = 0;
  bool align_corners = false;
};

// Exactly one of size / scale_factor (one value for both dims, or two);
// with scale_factor the output size is floor(in * scale). align_corners is
// only allowed for bilinear (default false); recompute_scale_factor=true is
// not allowed with size. Errors name the input shape and the arguments.
Interpolate2dPlan plan_interpolate2d(IntArrayRef input_sizes, InterpolationMode mode,
                                     const std::optional<std::vector<int64_t>>& size,
                                     const std::optional<std::vector<double>>& scale_factor,
                                     std::optional<bool> align_corners, std::optional<bool> recompute_scale_factor);

// Nearest: source index min(floor(dst * s), in - 1) in float arithmetic with
// s = 1 / scale or in / out (torch's "nearest"). Bilinear: torch's
// area_pixel_compute_source_index, negative source coordinates clamped to 0
// when !align_corners. scale_h / scale_w: 0 = use the size ratio.
Tensor upsample2d(const Tensor& input, InterpolationMode mode, IntArrayRef output_size, bool align_corners = false,
                  double scale_h = 0, double scale_w = 0);
// The adjoint of upsample2d for an input of input_sizes.
Tensor upsample2d_backward(const Tensor& grad_out, IntArrayRef input_sizes, InterpolationMode mode,
                           bool align_corners = false, double scale_h = 0, double scale_w = 0);
// plan_interpolate2d then upsample2d.
Tensor interpolate(const Tensor& input, InterpolationMode mode, const std::optional<std::vector<int64_t>>& size,
                   const std::optional<std::vector<double>>& scale_factor = std::nullopt,
                   std::optional<bool> align_corners = std::nullopt,
                   std::optional<bool> recompute_scale_factor = std::nullopt);

}  // namespace kiln::native
