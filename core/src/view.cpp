// Views: new TensorImpls over the same storage. Copies: contiguous, clone,
// copy_, to.
#include "kiln/core/native/view.h"

#include <algorithm>

#include "kiln/core/backend.h"
#include "kiln/core/native/factory.h"
#include "kiln/core/native/shape_util.h"

namespace kiln::native {

namespace {
Tensor make_view(const Tensor& t, DimVector sizes, DimVector strides, int64_t offset) {
  return Tensor(std::make_shared<TensorImpl>(t.storage(), t.dtype(), std::move(sizes), std::move(strides), offset));
}
}  // namespace

Tensor as_strided(const Tensor& t, IntArrayRef sizes, IntArrayRef strides, std::optional<int64_t> offset) {
  KILN_CHECK(sizes.size() == strides.size(), "as_strided: got ", sizes.size(), " sizes but ", strides.size(),
             " strides");
  const int64_t off = offset.value_or(t.storage_offset());
  int64_t last = off;
  for (size_t i = 0; i < sizes.size(); ++i) {
    KILN_CHECK(sizes[i] >= 0 && strides[i] >= 0, "as_strided: negative size or stride in sizes ", sizes,
               " strides ", strides);
    if (sizes[i] == 0) last = -1;
    if (last >= 0) last += (sizes[i] - 1) * strides[i];
  }
  KILN_CHECK(off >= 0 && (last < 0 || (last + 1) * static_cast<int64_t>(t.element_size()) <=
                                          static_cast<int64_t>(t.storage()->nbytes())),
             "as_strided: sizes ", sizes, " strides ", strides, " offset ", off,
             " reach outside the storage of ", t.storage()->nbytes(), " bytes");
  return make_view(t, sizes.dims(), strides.dims(), off);
}

std::optional<DimVector> view_strides(const Tensor& t, IntArrayRef sizes) {
  // Walk chunks of old dims that are contiguous with each other; each chunk
  // must map onto a run of new dims (the algorithm torch uses).
  const IntArrayRef old_sizes = t.sizes(), old_strides = t.strides();
  DimVector new_strides(sizes.size());
  if (t.numel() == 0) return contiguous_strides(sizes);
  if (old_sizes.empty()) {
    for (auto& s : new_strides) s = 1;
    return new_strides;
  }
  int64_t view_d = static_cast<int64_t>(sizes.size()) - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t td = static_cast<int64_t>(old_sizes.size()) - 1; td >= 0; --td) {
    tensor_numel *= old_sizes[td];
    if (td == 0 || (old_sizes[td - 1] != 1 && old_strides[td - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || sizes[view_d] == 1)) {
        new_strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= sizes[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (td > 0) {
        chunk_base_stride = old_strides[td - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return new_strides;
}

Tensor view(const Tensor& t, IntArrayRef sizes) {
  DimVector shape = infer_size(sizes, t.numel(), "view");
  auto strides = view_strides(t, shape);
  KILN_CHECK(strides.has_value(), "view: size ", sizes, " is not compatible with input of size ", t.sizes(),
             " and stride ", t.strides(),
             " (at least one dimension spans across two contiguous subspaces); use reshape instead");
  return make_view(t, std::move(shape), std::move(*strides), t.storage_offset());
}

Tensor reshape(const Tensor& t, IntArrayRef sizes) {
  DimVector shape = infer_size(sizes, t.numel(), "reshape");
  if (auto strides = view_strides(t, shape)) return make_view(t, std::move(shape), std::move(*strides), t.storage_offset());
  return view(clone(t), shape);
}

Tensor permute(const Tensor& t, IntArrayRef dims) {
  const int64_t n = t.dim();
  KILN_CHECK(static_cast<int64_t>(dims.size()) == n, "permute: number of dims don't match (tensor has ", n,
             " dims, got ", dims, ")");
  DimVector sizes(n), strides(n);
  std::vector<bool> seen(n, false);
  for (int64_t i = 0; i < n; ++i) {
    int64_t d = wrap_dim(dims[i], n, "permute");
    KILN_CHECK(!seen[d], "permute: repeated dim in ", dims);
    seen[d] = true;
    sizes[i] = t.size(d);
    strides[i] = t.stride(d);
  }
  return make_view(t, std::move(sizes), std::move(strides), t.storage_offset());
}

Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1) {
  const int64_t n = t.dim();
  const int64_t a = wrap_dim(dim0, n, "transpose"), b = wrap_dim(dim1, n, "transpose");
  DimVector sizes = t.sizes().dims(), strides = t.strides().dims();
  if (n > 0) {
    std::swap(sizes[a], sizes[b]);
    std::swap(strides[a], strides[b]);
  }
  return make_view(t, std::move(sizes), std::move(strides), t.storage_offset());
}

Tensor t(const Tensor& x) {
  KILN_CHECK(x.dim() <= 2, "t: expects a tensor with <= 2 dimensions, but got ", x.dim(), "-D of shape ", x.sizes());
  return x.dim() < 2 ? make_view(x, x.sizes().dims(), x.strides().dims(), x.storage_offset()) : transpose(x, 0, 1);
}

Tensor squeeze(const Tensor& t) {
  DimVector sizes, strides;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) != 1) {
      sizes.push_back(t.size(d));
      strides.push_back(t.stride(d));
    }
  }
  return make_view(t, std::move(sizes), std::move(strides), t.storage_offset());
}

Tensor squeeze(const Tensor& t, int64_t dim) {
  DimVector sizes = t.sizes().dims(), strides = t.strides().dims();
  if (t.dim() == 0) return make_view(t, sizes, strides, t.storage_offset());
  const int64_t d = wrap_dim(dim, t.dim(), "squeeze");
  if (sizes[d] == 1) {
    sizes.erase(d);
    strides.erase(d);
  }
  return make_view(t, std::move(sizes), std::move(strides), t.storage_offset());
}

Tensor unsqueeze(const Tensor& t, int64_t dim) {
  const int64_t d = wrap_dim(dim, t.dim() + 1, "unsqueeze");
  DimVector sizes = t.sizes().dims(), strides = t.strides().dims();
  const int64_t stride = d < t.dim() ? t.stride(d) * t.size(d) : 1;
  sizes.insert(d, 1);
  strides.insert(d, stride);
  return make_view(t, std::move(sizes), std::move(strides), t.storage_offset());
}

Tensor expand(const Tensor& t, IntArrayRef sizes) {
  const int64_t n = static_cast<int64_t>(sizes.size());
  KILN_CHECK(n >= t.dim(), "expand: the number of sizes provided (", n,
             ") must be greater or equal to the number of dimensions in the tensor (", t.dim(), ")");
  DimVector out_sizes(n), out_strides(n);
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t src = i - (n - t.dim());
    const int64_t want = sizes[i];
    if (src < 0) {
      KILN_CHECK(want >= 0, "expand: -1 is not allowed in a leading, non-existing dimension (sizes ", sizes, ")");
      out_sizes[i] = want;
      out_strides[i] = 0;
      continue;
    }
    const int64_t have = t.size(src);
    if (want == -1 || want == have) {
      out_sizes[i] = have;
      out_strides[i] = t.stride(src);
    } else {
      KILN_CHECK(want >= 0, "expand: the expanded size ", want, " is invalid (sizes ", sizes, ")");
      KILN_CHECK(have == 1, "expand: the expanded size of the tensor (", want,
                 ") must match the existing size (", have, ") at non-singleton dimension ", i,
                 ". Target sizes: ", sizes, ". Tensor sizes: ", t.sizes());
      out_sizes[i] = want;
      out_strides[i] = 0;
    }
  }
  return make_view(t, std::move(out_sizes), std::move(out_strides), t.storage_offset());
}

Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length) {
  KILN_CHECK(t.dim() > 0, "narrow: cannot be applied to a 0-dim tensor");
  const int64_t d = wrap_dim(dim, t.dim(), "narrow");
  const int64_t size = t.size(d);
  if (start < 0) start += size;
  KILN_CHECK(start >= 0 && length >= 0 && start + length <= size, "narrow: start (", start, ") + length (", length,
             ") exceeds dimension size (", size, ") of dim ", d, " in tensor of shape ", t.sizes());
  DimVector sizes = t.sizes().dims();
  sizes[d] = length;
  return make_view(t, std::move(sizes), t.strides().dims(), t.storage_offset() + start * t.stride(d));
}

Tensor slice(const Tensor& t, int64_t dim, std::optional<int64_t> start_opt, std::optional<int64_t> end_opt,
             int64_t step) {
  KILN_CHECK(t.dim() > 0, "slice: cannot be applied to a 0-dim tensor");
  KILN_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t d = wrap_dim(dim, t.dim(), "slice");
  const int64_t size = t.size(d);
  int64_t start = start_opt.value_or(0), end = end_opt.value_or(size);
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::clamp<int64_t>(start, 0, size);
  end = std::clamp<int64_t>(end, start, size);
  DimVector sizes = t.sizes().dims(), strides = t.strides().dims();
  sizes[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  return make_view(t, std::move(sizes), std::move(strides), t.storage_offset() + start * t.stride(d));
}

Tensor select(const Tensor& t, int64_t dim, int64_t index) {
  KILN_CHECK(t.dim() > 0, "select: cannot be applied to a 0-dim tensor");
  const int64_t d = wrap_dim(dim, t.dim(), "select");
  const int64_t size = t.size(d);
  KILN_CHECK(index >= -size && index < size, "select: index ", index, " out of range for tensor of size ",
             t.sizes(), " at dimension ", d);
  if (index < 0) index += size;
  DimVector sizes = t.sizes().dims(), strides = t.strides().dims();
  sizes.erase(d);
  strides.erase(d);
  return make_view(t, std::move(sizes), std::move(strides), t.storage_offset() + index * t.stride(d));
}

Tensor flatten(const Tensor& t, int64_t start_dim, int64_t end_dim) {
  if (t.dim() == 0) return reshape(t, {1});
  const int64_t s = wrap_dim(start_dim, t.dim(), "flatten"), e = wrap_dim(end_dim, t.dim(), "flatten");
  KILN_CHECK(s <= e, "flatten: start_dim (", start_dim, ") cannot come after end_dim (", end_dim, ")");
  DimVector sizes;
  for (int64_t d = 0; d < s; ++d) sizes.push_back(t.size(d));
  int64_t merged = 1;
  for (int64_t d = s; d <= e; ++d) merged *= t.size(d);
  sizes.push_back(merged);
  for (int64_t d = e + 1; d < t.dim(); ++d) sizes.push_back(t.size(d));
  return reshape(t, sizes);
}

Tensor unflatten(const Tensor& t, int64_t dim, IntArrayRef sizes) {
  const int64_t d = wrap_dim(dim, t.dim(), "unflatten");
  KILN_CHECK(!sizes.empty(), "unflatten: sizes must be non-empty");
  DimVector inner = infer_size(sizes, t.size(d), "unflatten");
  DimVector shape;
  for (int64_t i = 0; i < d; ++i) shape.push_back(t.size(i));
  for (int64_t s : inner) shape.push_back(s);
  for (int64_t i = d + 1; i < t.dim(); ++i) shape.push_back(t.size(i));
  return view(t, shape);
}

Tensor contiguous(const Tensor& t) { return t.is_contiguous() ? t : clone(t); }

Tensor clone(const Tensor& t) {
  Tensor out = empty(t.sizes(), t.options());
  backend_of(t).copy(t, out, false);
  return out;
}

void copy_(const Tensor& dst, const Tensor& src, bool non_blocking) {
  Tensor source = src;
  if (!src.sizes().equals(dst.sizes())) {
    DimVector shape = broadcast_shapes(dst.sizes(), src.sizes(), "copy_");
    KILN_CHECK(shape == dst.sizes().dims(), "copy_: source of shape ", src.sizes(),
               " cannot be broadcast to destination of shape ", dst.sizes());
    source = expand(src, dst.sizes());
  }
  // Cross-device copies belong to the non-CPU side's backend.
  Backend& b = dst.is_cpu() ? backend_of(source) : backend_of(dst);
  b.copy(source, dst, non_blocking);
  bump_version(dst);
}

Tensor to(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  Tensor out = empty(t.sizes(), t.options().dtype(dtype));
  backend_of(t).copy(t, out, false);
  return out;
}

Tensor to(const Tensor& t, Device device, bool non_blocking) {
  if (t.device() == device) return t;
  Tensor out = empty(t.sizes(), t.options().device(device));
  Backend& b = device.is_cpu() ? backend_of(t) : backend(device);
  b.copy(t, out, non_blocking);
  return out;
}

}  // namespace kiln::native
