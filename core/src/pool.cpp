// 2-D pooling: argument checks with torch's rules (and messages naming the
// shapes), output sizes, unbatched inputs, then the backend's kernels on
// contiguous [N, C, H, W] tensors. 16-bit floats go to the kernels as they
// are; the kernels compute in float and round once.
#include "kiln/core/native/pool.h"

#include <array>
#include <string>

#include "kiln/core/native/factory.h"
#include "kiln/core/native/indexing.h"
#include "kiln/core/native/view.h"

namespace kiln::native {

namespace {

// (H, W) values of one argument; prints as [h, w] in messages.
struct Pair {
  int64_t v[2];
  int64_t operator[](int i) const { return v[i]; }
  friend std::ostream& operator<<(std::ostream& os, const Pair& p) {
    return os << "[" << p.v[0] << ", " << p.v[1] << "]";
  }
};

// One value for both dims or (H, W); `fallback` when empty and allowed.
Pair pair_arg(const char* op, const char* name, IntArrayRef v, const Pair* fallback = nullptr) {
  if (v.empty() && fallback != nullptr) return *fallback;
  KILN_CHECK(v.size() == 1 || v.size() == 2, op, ": ", name, " must either be a single int, or a tuple of two ints",
             fallback != nullptr ? " (or omitted)" : "", ", got ", v);
  return Pair{{v[0], v.size() == 2 ? v[1] : v[0]}};
}

// A 3-D [C, H, W] or 4-D [N, C, H, W] floating input; only N may be 0
// (`spatial_only`: only H and W must be non-zero, as adaptive pooling).
void check_input(const char* op, const Tensor& input, bool spatial_only = false) {
  const int64_t nd = input.dim();
  bool ok = nd == 3 || nd == 4;
  for (int64_t d = spatial_only ? nd - 2 : nd - 3; ok && d < nd; ++d) ok = input.size(d) != 0;
  KILN_CHECK(ok, op, ": expected a 3-D [C, H, W] or 4-D [N, C, H, W] input with non-zero ",
             spatial_only ? "H and W" : "C, H and W (only the batch size may be 0)", ", got shape ", input.sizes());
  KILN_CHECK(is_floating_point(input.dtype()), op, ": expected a floating-point input, got ",
             dtype_name(input.dtype()), " of shape ", input.sizes());
}

// The [N, C, H, W] view of a 3-D or 4-D tensor.
Tensor batched(const Tensor& t) { return t.dim() == 3 ? unsqueeze(t, 0) : t; }
Tensor unbatched(const Tensor& out, int64_t input_dim) { return input_dim == 3 ? squeeze(out, 0) : out; }

// N, C, H, W of a 3-D or 4-D shape.
std::array<int64_t, 4> nchw(IntArrayRef s) {
  return s.size() == 3 ? std::array<int64_t, 4>{1, s[0], s[1], s[2]} : std::array<int64_t, 4>{s[0], s[1], s[2], s[3]};
}
// The output shape, batched like `like`.
DimVector out_shape(IntArrayRef like, int64_t out_h, int64_t out_w) {
  DimVector s = like.dims();
  s[s.size() - 2] = out_h;
  s[s.size() - 1] = out_w;
  return s;
}

struct Geometry {
  Pool2dParams p;
  int64_t out_h = 0, out_w = 0;
};

// Window of output position o along one dim starts at o * stride - pad and
// has taps every `dilation`; true when one of the taps lands inside [0, size).
bool window_hits_input(int64_t o, int64_t size, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  const int64_t start = o * stride - pad;
  const int64_t first = start < 0 ? (-start + dilation - 1) / dilation : 0;  // first tap at or after 0
  return first < kernel && start + first * dilation < size;
}

Geometry geometry(const char* op, IntArrayRef input_sizes, IntArrayRef kernel_size, IntArrayRef stride,
                  IntArrayRef padding, IntArrayRef dilation, bool ceil_mode, bool is_max) {
  const Pair k = pair_arg(op, "kernel_size", kernel_size);
  const Pair s = pair_arg(op, "stride", stride, &k);
  const Pair pad = pair_arg(op, "padding", padding);
  const Pair d = pair_arg(op, "dilation", dilation);
  KILN_CHECK(k[0] > 0 && k[1] > 0, op, ": kernel_size should be greater than zero, but got ", k);
  KILN_CHECK(s[0] > 0 && s[1] > 0, op, ": stride should be greater than zero, but got ", s);
  KILN_CHECK(d[0] > 0 && d[1] > 0, op, ": dilation should be greater than zero, but got ", d);
  KILN_CHECK(pad[0] >= 0 && pad[1] >= 0, op, ": padding must be non-negative, but got ", pad);
  // Dilation is printed for max pooling only (avg pooling has none).
  const std::string dil = is_max ? detail::str(", dilation ", d) : std::string();
  for (int i = 0; i < 2; ++i) {
    const int64_t effective = (k[i] - 1) * d[i] + 1;
    KILN_CHECK(pad[i] <= effective / 2, op, ": padding should be at most half of the effective kernel size, but got ",
               "padding ", pad, " with kernel_size ", k, dil, " (input shape ", input_sizes, ")");
  }
  const int64_t h = nchw(input_sizes)[2], w = nchw(input_sizes)[3];
  Geometry g;
  g.out_h = pool_output_size(h, k[0], s[0], pad[0], d[0], ceil_mode);
  g.out_w = pool_output_size(w, k[1], s[1], pad[1], d[1], ceil_mode);
  KILN_CHECK(g.out_h >= 1 && g.out_w >= 1, op, ": input of shape ", input_sizes, " gives an output of ", g.out_h,
             " x ", g.out_w, ", which is too small (kernel_size ", k, ", stride ", s, ", padding ", pad, dil,
             ", ceil_mode ", ceil_mode ? "true" : "false", ")");
  if (is_max) {
    // Only possible with dilation: torch returns -inf and an index outside
    // the plane there, which its backward then writes through.
    for (int64_t o = 0; o < g.out_h; ++o)
      KILN_CHECK(window_hits_input(o, h, k[0], s[0], pad[0], d[0]), op, ": the window of output row ", o,
                 " covers no input row (input shape ", input_sizes, ", kernel_size ", k, ", stride ", s, ", padding ",
                 pad, ", dilation ", d, ")");
    for (int64_t o = 0; o < g.out_w; ++o)
      KILN_CHECK(window_hits_input(o, w, k[1], s[1], pad[1], d[1]), op, ": the window of output column ", o,
                 " covers no input column (input shape ", input_sizes, ", kernel_size ", k, ", stride ", s,
                 ", padding ", pad, ", dilation ", d, ")");
  }
  for (int i = 0; i < 2; ++i) {
    g.p.kernel[i] = k[i];
    g.p.stride[i] = s[i];
    g.p.padding[i] = pad[i];
    g.p.dilation[i] = is_max ? d[i] : 1;
  }
  return g;
}

Geometry avg_geometry(const char* op, IntArrayRef input_sizes, IntArrayRef kernel_size, IntArrayRef stride,
                      IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                      std::optional<int64_t> divisor_override) {
  KILN_CHECK(!divisor_override || *divisor_override != 0, op, ": divisor_override must be non-zero");
  Geometry g = geometry(op, input_sizes, kernel_size, stride, padding, 1, ceil_mode, false);
  g.p.count_include_pad = count_include_pad;
  g.p.divisor_override = divisor_override.value_or(0);
  return g;
}

// Checks grad_out against the shape the forward produced from input_sizes.
void check_grad(const char* op, const Tensor& grad_out, IntArrayRef input_sizes, int64_t out_h, int64_t out_w) {
  KILN_CHECK(is_floating_point(grad_out.dtype()), op, ": expected a floating-point grad_output, got ",
             dtype_name(grad_out.dtype()));
  const DimVector expected = out_shape(input_sizes, out_h, out_w);
  KILN_CHECK(grad_out.sizes() == IntArrayRef(expected), op, ": grad_output of shape ", grad_out.sizes(),
             " does not match the output shape ", expected, " for input shape ", input_sizes);
}

void check_input_sizes(const char* op, IntArrayRef input_sizes) {
  bool ok = input_sizes.size() == 3 || input_sizes.size() == 4;
  for (int64_t v : input_sizes) ok = ok && v >= 0;
  KILN_CHECK(ok, op, ": input_sizes must be a 3-D [C, H, W] or 4-D [N, C, H, W] shape, got ", input_sizes);
}

}  // namespace

int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, bool ceil_mode) {
  const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  // Floor division (span may be negative when the window exceeds the input).
  int64_t out = (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride,
                                                   IntArrayRef padding, IntArrayRef dilation, bool ceil_mode) {
  const char* op = "max_pool2d";
  check_input(op, input);
  const Geometry g = geometry(op, input.sizes(), kernel_size, stride, padding, dilation, ceil_mode, true);
  const Tensor x = contiguous(batched(input));
  const DimVector shape = out_shape(x.sizes(), g.out_h, g.out_w);
  Tensor out = empty(shape, x.options());
  Tensor indices = empty(shape, x.options().dtype(kInt64));
  if (out.numel() > 0) backend_of(x).max_pool2d(x, g.p, out, indices);
  return {unbatched(out, input.dim()), unbatched(indices, input.dim())};
}

Tensor max_pool2d(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride, IntArrayRef padding,
                  IntArrayRef dilation, bool ceil_mode) {
  return std::get<0>(max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode));
}

Tensor max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, IntArrayRef input_sizes) {
  const char* op = "max_pool2d_backward";
  check_input_sizes(op, input_sizes);
  KILN_CHECK(indices.dtype() == kInt64, op, ": expected int64 indices, got ", dtype_name(indices.dtype()));
  KILN_CHECK(grad_out.dim() == static_cast<int64_t>(input_sizes.size()) && grad_out.sizes() == indices.sizes() &&
                 grad_out.size(0) == input_sizes[0] && (grad_out.dim() == 3 || grad_out.size(1) == input_sizes[1]),
             op, ": grad_output of shape ", grad_out.sizes(), " and indices of shape ", indices.sizes(),
             " do not match each other or input shape ", input_sizes);
  KILN_CHECK(is_floating_point(grad_out.dtype()), op, ": expected a floating-point grad_output, got ",
             dtype_name(grad_out.dtype()));
  if (grad_out.numel() == 0) return zeros(input_sizes, grad_out.options());
  Tensor grad_in = empty(input_sizes, grad_out.options());
  if (grad_in.numel() == 0) return grad_in;
  backend_of(grad_out).max_pool2d_backward(contiguous(batched(grad_out)), contiguous(batched(indices)),
                                           batched(grad_in));
  return grad_in;
}

Tensor max_pool2d_gather(const Tensor& t, const Tensor& indices) {
  KILN_CHECK(t.dim() >= 2 && t.dim() == indices.dim(), "max_pool2d_gather: input of shape ", t.sizes(),
             " and indices of shape ", indices.sizes(), " must have the same rank (at least 2)");
  const int64_t nd = t.dim();
  DimVector flat_t(t.sizes().data(), t.sizes().size() - 2), flat_i = flat_t;
  for (int64_t d = 0; d < nd - 2; ++d)
    KILN_CHECK(t.size(d) == indices.size(d), "max_pool2d_gather: input of shape ", t.sizes(),
               " and indices of shape ", indices.sizes(), " differ outside the last two dims");
  flat_t.push_back(t.size(nd - 2) * t.size(nd - 1));
  flat_i.push_back(indices.size(nd - 2) * indices.size(nd - 1));
  return reshape(gather(reshape(t, flat_t), nd - 2, reshape(indices, flat_i)), indices.sizes());
}

Tensor avg_pool2d(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride, IntArrayRef padding,
                  bool ceil_mode, bool count_include_pad, std::optional<int64_t> divisor_override) {
  const char* op = "avg_pool2d";
  check_input(op, input);
  const Geometry g =
      avg_geometry(op, input.sizes(), kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override);
  const Tensor x = contiguous(batched(input));
  Tensor out = empty(out_shape(x.sizes(), g.out_h, g.out_w), x.options());
  if (out.numel() > 0) backend_of(x).avg_pool2d(x, g.p, out);
  return unbatched(out, input.dim());
}

Tensor avg_pool2d_backward(const Tensor& grad_out, IntArrayRef input_sizes, IntArrayRef kernel_size,
                           IntArrayRef stride, IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                           std::optional<int64_t> divisor_override) {
  const char* op = "avg_pool2d_backward";
  check_input_sizes(op, input_sizes);
  const Geometry g =
      avg_geometry(op, input_sizes, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override);
  check_grad(op, grad_out, input_sizes, g.out_h, g.out_w);
  if (grad_out.numel() == 0) return zeros(input_sizes, grad_out.options());
  Tensor grad_in = empty(input_sizes, grad_out.options());
  backend_of(grad_out).avg_pool2d_backward(contiguous(batched(grad_out)), g.p, batched(grad_in));
  return grad_in;
}

Tensor adaptive_avg_pool2d(const Tensor& input, IntArrayRef output_size) {
  const char* op = "adaptive_avg_pool2d";
  const Pair o = pair_arg(op, "output_size", output_size);
  KILN_CHECK(o[0] >= 0 && o[1] >= 0, op, ": elements of output_size must be greater than or equal to 0, but got ", o,
             " for input shape ", input.sizes());
  check_input(op, input, /*spatial_only=*/true);
  const Tensor x = contiguous(batched(input));
  Tensor out = empty(out_shape(x.sizes(), o[0], o[1]), x.options());
  if (out.numel() > 0) backend_of(x).adaptive_avg_pool2d(x, out);
  return unbatched(out, input.dim());
}

Tensor adaptive_avg_pool2d_backward(const Tensor& grad_out, IntArrayRef input_sizes) {
  const char* op = "adaptive_avg_pool2d_backward";
  check_input_sizes(op, input_sizes);
  KILN_CHECK(grad_out.dim() == static_cast<int64_t>(input_sizes.size()), op, ": grad_output of shape ",
             grad_out.sizes(), " does not match input shape ", input_sizes);
  check_grad(op, grad_out, input_sizes, grad_out.size(-2), grad_out.size(-1));
  KILN_CHECK(input_sizes[input_sizes.size() - 2] > 0 && input_sizes.back() > 0, op,
             ": input H and W must be non-zero, got input shape ", input_sizes);
  if (grad_out.numel() == 0) return zeros(input_sizes, grad_out.options());
  Tensor grad_in = empty(input_sizes, grad_out.options());
  backend_of(grad_out).adaptive_avg_pool2d_backward(contiguous(batched(grad_out)), batched(grad_in));
  return grad_in;
}

}  // namespace kiln::native
