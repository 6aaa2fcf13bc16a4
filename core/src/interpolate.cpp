// interpolate's argument rules (torch.nn.functional.interpolate for 4-D
// inputs, modes nearest and bilinear) and the resize kernels' checks. The
// scale factors travel to the kernel because torch computes source
// coordinates from them, not from the rounded output size, unless
// recompute_scale_factor is true.
#include "kiln/core/native/interpolate.h"

#include <sstream>
#include <string>

#include "kiln/core/native/factory.h"
#include "kiln/core/native/view.h"

namespace kiln::native {

namespace {

const char* mode_name(InterpolationMode mode) { return mode == InterpolationMode::Nearest ? "nearest" : "bilinear"; }

template <typename T>
std::string list(const std::vector<T>& v) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << "]";
  return os.str();
}

void check_4d(const char* op, IntArrayRef sizes, const char* what) {
  KILN_CHECK(sizes.size() == 4, op, ": expected a 4-D [N, C, H, W] ", what, ", got shape ", sizes,
             sizes.size() == 3 ? " (torch resizes 3-D inputs as [N, C, L], which Kiln does not provide)" : "");
}

// torch's upsample_2d_common_check: only N may be 0, and both sizes must be positive.
void check_sizes(const char* op, IntArrayRef input_sizes, int64_t out_h, int64_t out_w) {
  check_4d(op, input_sizes, "input");
  KILN_CHECK(input_sizes[2] > 0 && input_sizes[3] > 0 && out_h > 0 && out_w > 0, op,
             ": input and output sizes should be greater than 0, but got input (H: ", input_sizes[2],
             ", W: ", input_sizes[3], ") output (H: ", out_h, ", W: ", out_w, ")");
  KILN_CHECK(input_sizes[1] > 0, op, ": expected a non-empty 4-D input (only the batch size may be 0), got shape ",
             input_sizes);
}

}  // namespace

Interpolate2dPlan plan_interpolate2d(IntArrayRef input_sizes, InterpolationMode mode,
                                     const std::optional<std::vector<int64_t>>& size,
                                     const std::optional<std::vector<double>>& scale_factor,
                                     std::optional<bool> align_corners, std::optional<bool> recompute_scale_factor) {
  const char* op = "interpolate";
  check_4d(op, input_sizes, "input");
  KILN_CHECK(mode == InterpolationMode::Bilinear || !align_corners, op,
             ": align_corners can only be set with the interpolating mode bilinear, not ", mode_name(mode));
  KILN_CHECK(!(size && scale_factor), op, ": only one of size or scale_factor should be defined, got size ",
             list(*size), " and scale_factor ", list(*scale_factor));
  KILN_CHECK(size || scale_factor, op, ": either size or scale_factor should be defined");
  KILN_CHECK(!(size && recompute_scale_factor.value_or(false)), op,
             ": recompute_scale_factor is not meaningful with an explicit size");
  Interpolate2dPlan plan;
  plan.align_corners = align_corners.value_or(false);
  if (size) {
    KILN_CHECK(size->size() == 1 || size->size() == 2, op, ": size must hold 1 value or 2 (H_out, W_out), got ",
               list(*size), " for input of shape ", input_sizes);
    plan.out_h = (*size)[0];
    plan.out_w = size->back();
  } else {
    const std::vector<double>& s = *scale_factor;
    KILN_CHECK(s.size() == 1 || s.size() == 2, op, ": scale_factor must hold 1 value or 2 (for H, W), got ", list(s),
               " for input of shape ", input_sizes);
    const double sh = s[0], sw = s.back();
    // Truncation, as torch's int(in * scale).
    plan.out_h = static_cast<int64_t>(static_cast<double>(input_sizes[2]) * sh);
    plan.out_w = static_cast<int64_t>(static_cast<double>(input_sizes[3]) * sw);
    if (!recompute_scale_factor.value_or(false)) {
      plan.scale_h = sh;
      plan.scale_w = sw;
    }
  }
  check_sizes(op, input_sizes, plan.out_h, plan.out_w);
  return plan;
}

Tensor upsample2d(const Tensor& input, InterpolationMode mode, IntArrayRef output_size, bool align_corners,
                  double scale_h, double scale_w) {
  const char* op = mode == InterpolationMode::Nearest ? "upsample_nearest2d" : "upsample_bilinear2d";
  KILN_CHECK(output_size.size() == 2, op, ": output_size must hold 2 values (H_out, W_out), got ", output_size);
  check_sizes(op, input.sizes(), output_size[0], output_size[1]);
  KILN_CHECK(is_floating_point(input.dtype()), op, ": expected a floating-point input, got ",
             dtype_name(input.dtype()), " of shape ", input.sizes());
  const Tensor x = contiguous(input);
  Tensor out = empty({x.size(0), x.size(1), output_size[0], output_size[1]}, x.options());
  if (out.numel() > 0) backend_of(x).upsample2d(mode, x, align_corners, scale_h, scale_w, out);
  return out;
}

Tensor upsample2d_backward(const Tensor& grad_out, IntArrayRef input_sizes, InterpolationMode mode,
                           bool align_corners, double scale_h, double scale_w) {
  const char* op = mode == InterpolationMode::Nearest ? "upsample_nearest2d_backward" : "upsample_bilinear2d_backward";
  check_4d(op, grad_out.sizes(), "grad_output");
  check_sizes(op, input_sizes, grad_out.size(2), grad_out.size(3));
  KILN_CHECK(grad_out.size(0) == input_sizes[0] && grad_out.size(1) == input_sizes[1], op, ": grad_output of shape ",
             grad_out.sizes(), " does not match input shape ", input_sizes, " in N and C");
  KILN_CHECK(is_floating_point(grad_out.dtype()), op, ": expected a floating-point grad_output, got ",
             dtype_name(grad_out.dtype()));
  if (grad_out.numel() == 0) return zeros(input_sizes, grad_out.options());
  Tensor grad_in = empty(input_sizes, grad_out.options());
  backend_of(grad_out).upsample2d_backward(mode, contiguous(grad_out), align_corners, scale_h, scale_w, grad_in);
  return grad_in;
}

Tensor interpolate(const Tensor& input, InterpolationMode mode, const std::optional<std::vector<int64_t>>& size,
                   const std::optional<std::vector<double>>& scale_factor, std::optional<bool> align_corners,
                   std::optional<bool> recompute_scale_factor) {
  const Interpolate2dPlan p =
      plan_interpolate2d(input.sizes(), mode, size, scale_factor, align_corners, recompute_scale_factor);
  return upsample2d(input, mode, {p.out_h, p.out_w}, p.align_corners, p.scale_h, p.scale_w);
}

}  // namespace kiln::native
