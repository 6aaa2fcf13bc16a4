// Differentiable views and copies. A view's backward maps the gradient back
// onto the input's shape; slice/select scatter it into zeros, expand sums it.
#include <algorithm>

#include "kiln/autograd/function.h"
#include "kiln/autograd/functions.h"
#include "kiln/core/native.h"

namespace kiln {

using autograd::FunctionNode;
using autograd::record;
using autograd::record_view;
using autograd::variable_list;

namespace {

// The gradient of a reshaping view: the same elements in the input's shape.
variable_list reshape_back(FunctionNode& c, const Tensor& g) { return {kiln::reshape(g, c.input_sizes(0))}; }

// Zeros of `sizes` with g written into one slice: the gradient of slice(),
// itself differentiable (its backward is the slice again) for double backward.
Tensor slice_backward(const Tensor& g, IntArrayRef sizes, int64_t dim, int64_t start, int64_t end, int64_t step) {
  Tensor out = native::zeros(sizes, g.options());
  native::copy_(native::slice(out, dim, start, end, step), g);
  return record("SliceBackwardBackward0", out, {g}, {},
                [dim, start, end, step](FunctionNode&, const Tensor& gg) -> variable_list {
                  return {kiln::slice(gg, dim, start, end, step)};
                });
}

Tensor select_backward(const Tensor& g, IntArrayRef sizes, int64_t dim, int64_t index) {
  Tensor out = native::zeros(sizes, g.options());
  native::copy_(native::select(out, dim, index), g);
  return record("SelectBackwardBackward0", out, {g}, {}, [dim, index](FunctionNode&, const Tensor& gg) -> variable_list {
    return {kiln::select(gg, dim, index)};
  });
}

// Whether no two indices of the geometry address the same element.
bool non_overlapping(IntArrayRef sizes, IntArrayRef strides) {
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size)
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 0) return true;
    if (sizes[d] > 1) dims.emplace_back(strides[d], sizes[d]);
  }
  std::sort(dims.begin(), dims.end());
  int64_t reach = 1;  // the smallest stride the next dim may have
  for (auto [stride, size] : dims) {
    if (stride < reach) return false;
    reach = stride * (size - 1) + 1;
  }
  return true;
}

int64_t extent_end(IntArrayRef sizes, IntArrayRef strides, int64_t offset) {
  int64_t last = offset;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 0) return offset;
    last += (sizes[d] - 1) * strides[d];
  }
  return last + 1;
}

// as_strided's gradient: add every output element's gradient into the storage
// position it read (index_add, so positions read twice get both), then read
// the input's positions back out.
struct StridedGeometry {
  DimVector sizes, strides;
  int64_t offset;
};
Tensor as_strided_backward(const Tensor& g, const StridedGeometry& in, const StridedGeometry& out) {
  KILN_CHECK(non_overlapping(in.sizes, in.strides), "as_strided: backward through as_strided of an input whose "
             "elements overlap in memory (sizes ", in.sizes, ", strides ", in.strides, ") is not supported");
  const int64_t base = std::min(in.offset, out.offset);
  const int64_t span = std::max(extent_end(in.sizes, in.strides, in.offset),
                                extent_end(out.sizes, out.strides, out.offset)) - base;
  Tensor positions = native::arange(span, TensorOptions().dtype(kInt64).device(g.device()));
  positions = native::reshape(native::as_strided(positions, out.sizes, out.strides, out.offset - base), {-1});
  Tensor storage = kiln::zeros({span}, g.options());
  storage = kiln::index_add(storage, 0, native::contiguous(positions), kiln::reshape(g, {-1}));
  return kiln::as_strided(storage, in.sizes, in.strides, in.offset - base);
}

}  // namespace

Tensor view(const Tensor& t, IntArrayRef sizes) {
  return record_view("ViewBackward0", native::view(t, sizes), t, reshape_back);
}

Tensor view_as(const Tensor& t, const Tensor& other) { return kiln::view(t, other.sizes()); }

Tensor reshape(const Tensor& t, IntArrayRef sizes) {
  DimVector shape = native::infer_size(sizes, t.numel(), "reshape");
  if (native::view_strides(t, shape)) return kiln::view(t, shape);
  // Not expressible as a view: a copy, which is not a view of t.
  return record("UnsafeViewBackward0", native::reshape(t, shape), {t}, {}, reshape_back);
}

Tensor reshape_as(const Tensor& t, const Tensor& other) { return kiln::reshape(t, other.sizes()); }

Tensor as_strided(const Tensor& t, IntArrayRef sizes, IntArrayRef strides, std::optional<int64_t> storage_offset) {
  Tensor out = native::as_strided(t, sizes, strides, storage_offset);
  StridedGeometry in{t.sizes().dims(), t.strides().dims(), t.storage_offset()};
  StridedGeometry geo{out.sizes().dims(), out.strides().dims(), out.storage_offset()};
  return record_view("AsStridedBackward0", out, t, [in, geo](FunctionNode&, const Tensor& g) -> variable_list {
    return {as_strided_backward(g, in, geo)};
  });
}

Tensor permute(const Tensor& t, IntArrayRef dims) {
  Tensor out = native::permute(t, dims);
  DimVector inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) inverse[native::wrap_dim(dims[i], t.dim(), "permute")] = static_cast<int64_t>(i);
  return record_view("PermuteBackward0", out, t, [inverse](FunctionNode&, const Tensor& g) -> variable_list {
    return {kiln::permute(g, inverse)};
  });
}

Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1) {
  return record_view("TransposeBackward0", native::transpose(t, dim0, dim1), t,
                     [dim0, dim1](FunctionNode&, const Tensor& g) -> variable_list {
                       return {kiln::transpose(g, dim0, dim1)};
                     });
}

Tensor t(const Tensor& x) {
  return record_view("TBackward0", native::t(x), x,
                     [](FunctionNode&, const Tensor& g) -> variable_list { return {kiln::t(g)}; });
}

Tensor squeeze(const Tensor& t) { return record_view("SqueezeBackward0", native::squeeze(t), t, reshape_back); }

Tensor squeeze(const Tensor& t, int64_t dim) {
  return record_view("SqueezeBackward1", native::squeeze(t, dim), t, reshape_back);
}

Tensor unsqueeze(const Tensor& t, int64_t dim) {
  return record_view("UnsqueezeBackward0", native::unsqueeze(t, dim), t, reshape_back);
}

Tensor expand(const Tensor& t, IntArrayRef sizes) {
  return record_view("ExpandBackward0", native::expand(t, sizes), t,
                     [](FunctionNode& c, const Tensor& g) -> variable_list { return {c.reduce(0, g)}; });
}

Tensor expand_as(const Tensor& t, const Tensor& other) { return kiln::expand(t, other.sizes()); }

Tensor slice(const Tensor& t, int64_t dim, std::optional<int64_t> start, std::optional<int64_t> end, int64_t step) {
  Tensor out = native::slice(t, dim, start, end, step);  // checks the arguments
  // The same clamping as Python slicing (and native::slice).
  const int64_t d = native::wrap_dim(dim, t.dim(), "slice");
  const int64_t size = t.size(d);
  int64_t first = start.value_or(0), last = end.value_or(size);
  if (first < 0) first += size;
  if (last < 0) last += size;
  first = std::clamp<int64_t>(first, 0, size);
  last = std::clamp<int64_t>(last, first, size);
  return record_view("SliceBackward0", out, t, [d, first, last, step](FunctionNode& c, const Tensor& g) -> variable_list {
    return {slice_backward(g, c.input_sizes(0), d, first, last, step)};
  });
}

Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length) {
  Tensor out = native::narrow(t, dim, start, length);  // checks the arguments
  const int64_t d = native::wrap_dim(dim, t.dim(), "narrow");
  const int64_t first = start < 0 ? start + t.size(d) : start;
  return record_view("SliceBackward0", out, t, [d, first, length](FunctionNode& c, const Tensor& g) -> variable_list {
    return {slice_backward(g, c.input_sizes(0), d, first, first + length, 1)};
  });
}

Tensor select(const Tensor& t, int64_t dim, int64_t index) {
  Tensor out = native::select(t, dim, index);
  const int64_t d = native::wrap_dim(dim, t.dim(), "select");
  const int64_t i = index < 0 ? index + t.size(d) : index;
  return record_view("SelectBackward0", out, t, [d, i](FunctionNode& c, const Tensor& g) -> variable_list {
    return {select_backward(g, c.input_sizes(0), d, i)};
  });
}

Tensor flatten(const Tensor& t, int64_t start_dim, int64_t end_dim) {
  if (t.dim() == 0) return kiln::reshape(t, {1});
  const int64_t s = native::wrap_dim(start_dim, t.dim(), "flatten"), e = native::wrap_dim(end_dim, t.dim(), "flatten");
  KILN_CHECK(s <= e, "flatten: start_dim (", start_dim, ") cannot come after end_dim (", end_dim, ")");
  if (s == e) return t;
  DimVector shape;
  for (int64_t d = 0; d < s; ++d) shape.push_back(t.size(d));
  int64_t merged = 1;
  for (int64_t d = s; d <= e; ++d) merged *= t.size(d);
  shape.push_back(merged);
  for (int64_t d = e + 1; d < t.dim(); ++d) shape.push_back(t.size(d));
  return kiln::reshape(t, shape);
}

Tensor unflatten(const Tensor& t, int64_t dim, IntArrayRef sizes) {
  const int64_t d = native::wrap_dim(dim, t.dim(), "unflatten");
  KILN_CHECK(!sizes.empty(), "unflatten: sizes must be non-empty");
  DimVector inner = native::infer_size(sizes, t.size(d), "unflatten");
  DimVector shape;
  for (int64_t i = 0; i < d; ++i) shape.push_back(t.size(i));
  for (int64_t s : inner) shape.push_back(s);
  for (int64_t i = d + 1; i < t.dim(); ++i) shape.push_back(t.size(i));
  return kiln::view(t, shape);
}

Tensor clone(const Tensor& t) {
  return record("CloneBackward0", native::clone(t), {t}, {},
                [](FunctionNode&, const Tensor& g) -> variable_list { return {g}; });
}

Tensor contiguous(const Tensor& t) { return t.is_contiguous() ? t : kiln::clone(t); }

Tensor to(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  return record("ToCopyBackward0", native::to(t, dtype), {t}, {}, [](FunctionNode& c, const Tensor& g) -> variable_list {
    return {kiln::to(g, c.input_dtype(0))};
  });
}

Tensor to(const Tensor& t, Device device, bool non_blocking) {
  if (t.device() == device) return t;
  return record("ToCopyBackward0", native::to(t, device, non_blocking), {t}, {},
                [](FunctionNode& c, const Tensor& g) -> variable_list { return {kiln::to(g, c.input_device(0))}; });
}

Tensor to(const Tensor& t, Device device, DType dtype, bool non_blocking) {
  return kiln::to(kiln::to(t, device, non_blocking), dtype);
}

Tensor detach(const Tensor& t) {
  return Tensor(std::make_shared<TensorImpl>(t.storage(), t.dtype(), t.sizes().dims(), t.strides().dims(),
                                             t.storage_offset()));
}

Tensor sum_to(const Tensor& t, IntArrayRef shape) {
  if (t.sizes().equals(shape)) return t;
  return record("SumBackward1", native::sum_to(t, shape), {t}, {}, [](FunctionNode& c, const Tensor& g) -> variable_list {
    return {kiln::expand(g, c.input_sizes(0))};
  });
}

}  // namespace kiln
