// conv2d and its two backward products: argument checks with torch's
// conditions (and messages naming the shapes), output shapes, unbatched
// operands, dtype handling; the arithmetic is the backend's.
#include "kiln/core/native/conv.h"

#include "kiln/core/backend.h"
#include "kiln/core/native/factory.h"
#include "kiln/core/native/reduce.h"
#include "kiln/core/native/view.h"

namespace kiln::native {

namespace {

void pack(const char* name, IntArrayRef values, int64_t out[2]) {
  KILN_CHECK(values.size() == 1 || values.size() == 2, "conv2d: expected ", name,
             " to be a single integer value or a list of 2 values to match the convolution dimensions, but got ",
             name, "=", values);
  out[0] = values[0];
  out[1] = values[values.size() == 1 ? 0 : 1];
}

void check_params(const Conv2dParams& p) {
  KILN_CHECK(p.groups > 0, "conv2d: non-positive groups is not supported (groups=", p.groups, ")");
  for (int d = 0; d < 2; ++d) {
    KILN_CHECK(p.stride[d] > 0, "conv2d: non-positive stride is not supported (stride=[", p.stride[0], ", ",
               p.stride[1], "])");
    KILN_CHECK(p.dilation[d] > 0, "conv2d: non-positive dilation is not supported (dilation=[", p.dilation[0],
               ", ", p.dilation[1], "])");
    KILN_CHECK(p.padding[d] >= 0, "conv2d: negative padding is not supported (padding=[", p.padding[0], ", ",
               p.padding[1], "])");
  }
}

// The dtype a device convolves a dtype in: the CPU widens 16-bit floats to
// float32 (rounding the result once); cuDNN takes them natively.
DType compute_dtype(DType t, Device d) { return is_reduced_float(t) && d.is_cpu() ? kFloat32 : t; }

// The operand as the backend computes it: contiguous, in the compute dtype.
Tensor operand(const Tensor& t) { return contiguous(to(t, compute_dtype(t.dtype(), t.device()))); }

// Floating dtype shared by two operands on one device.
void check_pair(const char* op, const char* a_name, const Tensor& a, const char* b_name, const Tensor& b) {
  KILN_CHECK(a.defined() && b.defined(), op, ": undefined ", a.defined() ? b_name : a_name);
  KILN_CHECK(is_floating_point(a.dtype()), op, ": expected a floating-point ", a_name, " (Kiln's convolutions are ",
             "floating-point only), got ", dtype_name(a.dtype()));
  KILN_CHECK(a.dtype() == b.dtype(), op, ": ", a_name, " type (", dtype_name(a.dtype()), ") and ", b_name, " type (",
             dtype_name(b.dtype()), ") should be the same");
  KILN_CHECK(a.device() == b.device(), op, ": expected ", a_name, " and ", b_name, " on the same device, got ",
             a.device(), " and ", b.device());
}

// [C, H, W] -> [1, C, H, W]; 4-D unchanged.
Tensor batched(const Tensor& t) { return t.dim() == 3 ? unsqueeze(t, 0) : t; }
DimVector batched(IntArrayRef s) {
  DimVector d = s.dims();
  if (d.size() == 3) d.insert(0, 1);
  return d;
}

}  // namespace

Conv2dParams conv2d_params(IntArrayRef stride, IntArrayRef padding, IntArrayRef dilation, int64_t groups) {
  Conv2dParams p;
  pack("stride", stride, p.stride);
  pack("padding", padding, p.padding);
  pack("dilation", dilation, p.dilation);
  p.groups = groups;
  check_params(p);
  return p;
}

DimVector conv2d_output_size(IntArrayRef input, IntArrayRef weight, const Conv2dParams& p) {
  check_params(p);
  KILN_CHECK(weight.size() == 4, "conv2d: expected a 4-D weight [C_out, C_in/groups, kH, kW], got weight of size ",
             weight);
  KILN_CHECK(input.size() == 3 || input.size() == 4,
             "conv2d: expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: ", input);
  const DimVector in = batched(input);
  const int64_t g = p.groups;
  KILN_CHECK(weight[0] >= g, "conv2d: given groups=", g, ", expected weight to be at least ", g,
             " at dimension 0, but got weight of size ", weight, " instead");
  KILN_CHECK(weight[0] % g == 0, "conv2d: given groups=", g, ", expected weight to be divisible by ", g,
             " at dimension 0, but got weight of size ", weight, " instead");
  KILN_CHECK(in[1] == weight[1] * g, "conv2d: given groups=", g, ", weight of size ", weight, ", expected input",
             in, " to have ", weight[1] * g, " channels, but got ", in[1], " channels instead");
  KILN_CHECK(weight[2] > 0 && weight[3] > 0, "conv2d: expected a non-empty kernel, got weight of size ", weight);
  KILN_CHECK(in[0] == 0 || in[1] == 0 || (in[2] > 0 && in[3] > 0),
             "conv2d: only zero batch or zero channel inputs are supported, but got input shape: ", input);
  int64_t padded[2], kernel[2];
  for (int d = 0; d < 2; ++d) {
    padded[d] = in[2 + d] + 2 * p.padding[d];
    kernel[d] = p.dilation[d] * (weight[2 + d] - 1) + 1;
  }
  KILN_CHECK(padded[0] >= kernel[0] && padded[1] >= kernel[1], "conv2d: calculated padded input size per channel: (",
             padded[0], " x ", padded[1], "). Kernel size: (", kernel[0], " x ", kernel[1],
             "). Kernel size can't be greater than actual input size (input ", input, ", weight ", weight,
             ", padding [", p.padding[0], ", ", p.padding[1], "], dilation [", p.dilation[0], ", ", p.dilation[1],
             "])");
  DimVector out{weight[0], (padded[0] - kernel[0]) / p.stride[0] + 1, (padded[1] - kernel[1]) / p.stride[1] + 1};
  if (input.size() == 4) out.insert(0, in[0]);
  return out;
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv2dParams& p) {
  check_pair("conv2d", "input", input, "weight", weight);
  const DimVector out_size = conv2d_output_size(input.sizes(), weight.sizes(), p);
  if (bias.defined()) {
    check_pair("conv2d", "input", input, "bias", bias);
    KILN_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "conv2d: given weight of size ", weight.sizes(),
               ", expected bias to be 1-dimensional with ", weight.size(0), " elements, but got bias of size ",
               bias.sizes(), " instead");
  }
  const DType dt = input.dtype();
  Tensor out = empty(out_size, input.options().dtype(compute_dtype(dt, input.device())));
  if (out.numel() > 0) {
    Backend& be = backend_of(input);
    Tensor out4 = batched(out);
    if (weight.size(1) == 0) {
      // No input channels: every output is the bias (or zero).
      if (bias.defined()) {
        be.copy(expand(view(to(bias, out.dtype()), {1, bias.size(0), 1, 1}), out4.sizes()), out4, false);
      } else {
        be.fill(out4, 0);
      }
    } else {
      be.conv2d(operand(batched(input)), operand(weight), bias.defined() ? operand(bias) : Tensor(), p, out4);
    }
  }
  return to(out, dt);
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, IntArrayRef stride, IntArrayRef padding,
              IntArrayRef dilation, int64_t groups) {
  return conv2d(input, weight, bias, conv2d_params(stride, padding, dilation, groups));
}

Tensor conv2d_backward_input(const Tensor& grad_out, const Tensor& weight, IntArrayRef input_sizes,
                             const Conv2dParams& p) {
  check_pair("conv2d_backward_input", "grad_out", grad_out, "weight", weight);
  const DimVector expected = conv2d_output_size(input_sizes, weight.sizes(), p);
  KILN_CHECK(grad_out.sizes() == IntArrayRef(expected), "conv2d_backward_input: grad_out of size ", grad_out.sizes(),
             " does not match the output size ", expected, " of conv2d on input ", input_sizes, " with weight ",
             weight.sizes());
  const DType dt = grad_out.dtype();
  Tensor grad_input = empty(input_sizes, grad_out.options().dtype(compute_dtype(dt, grad_out.device())));
  if (grad_input.numel() > 0) {
    backend_of(grad_out).conv2d_backward_input(operand(batched(grad_out)), operand(weight), p, batched(grad_input));
  }
  return to(grad_input, dt);
}

std::tuple<Tensor, Tensor> conv2d_backward_weight(const Tensor& grad_out, const Tensor& input,
                                                  IntArrayRef weight_sizes, const Conv2dParams& p, bool bias) {
  check_pair("conv2d_backward_weight", "grad_out", grad_out, "input", input);
  const DimVector expected = conv2d_output_size(input.sizes(), weight_sizes, p);
  KILN_CHECK(grad_out.sizes() == IntArrayRef(expected), "conv2d_backward_weight: grad_out of size ",
             grad_out.sizes(), " does not match the output size ", expected, " of conv2d on input ", input.sizes(),
             " with weight ", weight_sizes);
  const DType dt = grad_out.dtype();
  const TensorOptions opts = grad_out.options().dtype(compute_dtype(dt, grad_out.device()));
  Tensor grad_weight = empty(weight_sizes, opts);
  Tensor grad_bias = bias ? empty({weight_sizes[0]}, opts) : Tensor();
  const Tensor go = batched(grad_out);
  Backend& be = backend_of(grad_out);
  if (go.size(0) == 0 || grad_weight.numel() == 0) {
    // Nothing to correlate: an empty batch gives zero gradients; a weight
    // with no elements leaves only the bias sum.
    be.fill(grad_weight, 0);
    if (bias) be.copy(sum(to(go, opts.dtype()), {0, 2, 3}), grad_bias, false);
  } else {
    be.conv2d_backward_weight(operand(go), operand(batched(input)), p, grad_weight, grad_bias);
  }
  return {to(grad_weight, dt), bias ? to(grad_bias, dt) : Tensor()};
}

}  // namespace kiln::native
