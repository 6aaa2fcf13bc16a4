// Joining, splitting and index-driven ops. Splits are views; everything else
// allocates its result and fills it with the backend's copy or index kernels,
// so these work on any device that provides those.
#include "kiln/core/native/indexing.h"

#include <algorithm>
#include <numeric>

#include "kiln/core/backend.h"
#include "kiln/core/native/factory.h"
#include "kiln/core/native/shape_util.h"
#include "kiln/core/native/view.h"

namespace kiln::native {

namespace {

void copy_into(const Tensor& dst, const Tensor& src) {
  if (dst.numel() > 0) backend_of(dst).copy(src, dst, false);
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b, const char* what) {
  KILN_CHECK(a.device() == b.device(), op, ": expected ", what, " on ", a.device(), " but it is on ", b.device());
}

// Kernels take int64 indices: int32 ones (where allowed) are widened first.
Tensor long_index(const char* op, const Tensor& index, bool allow_int32) {
  KILN_CHECK(index.defined(), op, "(): index is undefined");
  KILN_CHECK(index.dtype() == kInt64 || (allow_int32 && index.dtype() == kInt32), op, "(): Expected dtype ",
             allow_int32 ? "int32/int64" : "int64", " for index, got ", dtype_name(index.dtype()));
  return to(index, kInt64);
}

// In-place writes into a tensor whose elements alias each other (an expanded
// view) would be ill-defined; torch refuses them too.
void check_no_internal_overlap(const char* op, const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d) {
    KILN_CHECK(t.stride(d) != 0 || t.size(d) <= 1, op,
               ": unsupported operation: more than one element of the written-to tensor (shape ", t.sizes(),
               ", strides ", t.strides(), ") refers to a single memory location; clone() it first");
  }
}

// A 0-dim tensor as a 1-element 1-D view, so kernels only see dim >= 1.
Tensor at_least_1d(const Tensor& t) { return t.dim() == 0 ? reshape(t, {1}) : t; }

// Values of a small CPU-readable int64 tensor (for checks that need the host).
std::vector<int64_t> host_longs(const Tensor& t) {
  Tensor h = contiguous(to(to(t, Device(kCPU)), kInt64));
  const int64_t* p = h.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + h.numel());
}

}  // namespace

// ---- joining and splitting ----

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  KILN_CHECK(!tensors.empty(), "cat: expected a non-empty list of Tensors");
  DType dt = tensors[0].dtype();
  const Tensor* ref = nullptr;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    KILN_CHECK(t.defined(), "cat: tensor at position ", i, " is undefined");
    KILN_CHECK(t.dim() > 0, "cat: zero-dimensional tensor (at position ", i, ") cannot be concatenated");
    check_same_device("cat", tensors[0], t, "all tensors");
    dt = promote_types(dt, t.dtype());
    // torch skips legacy empty tensors (shape [0]) whatever the other shapes are.
    if (!ref && !(t.dim() == 1 && t.size(0) == 0)) ref = &t;
  }
  const TensorOptions options = tensors[0].options().dtype(dt);
  if (!ref) return empty({0}, options);
  const int64_t d = wrap_dim(dim, ref->dim(), "cat");
  DimVector shape = ref->sizes().dims();
  int64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (t.dim() == 1 && t.size(0) == 0) continue;
    KILN_CHECK(t.dim() == ref->dim(), "cat: Tensors must have same number of dimensions: got ", ref->dim(), " and ",
               t.dim(), " (shapes ", ref->sizes(), " and ", t.sizes(), " for tensor number ", i, ")");
    for (int64_t k = 0; k < t.dim(); ++k) {
      KILN_CHECK(k == d || t.size(k) == ref->size(k), "cat: Sizes of tensors must match except in dimension ", d,
                 ". Expected size ", ref->size(k), " but got size ", t.size(k), " for tensor number ", i,
                 " in the list (shapes ", ref->sizes(), " and ", t.sizes(), ")");
    }
    total += t.size(d);
  }
  shape[d] = total;
  Tensor out = empty(shape, options);
  int64_t at = 0;
  for (const Tensor& t : tensors) {
    if (t.dim() == 1 && t.size(0) == 0) continue;
    copy_into(narrow(out, d, at, t.size(d)), t);
    at += t.size(d);
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  KILN_CHECK(!tensors.empty(), "stack: expects a non-empty TensorList");
  const int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    KILN_CHECK(tensors[i].sizes().equals(tensors[0].sizes()), "stack expects each tensor to be equal size, but got ",
               tensors[0].sizes(), " at entry 0 and ", tensors[i].sizes(), " at entry ", i);
    parts.push_back(unsqueeze(tensors[i], d));
  }
  return cat(parts, d);
}

std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t dim) {
  KILN_CHECK(t.dim() > 0, "split: expects at least a 1-dimensional tensor");
  KILN_CHECK(split_size >= 0, "split: split_size must be non-negative, but got split_size=", split_size);
  const int64_t d = wrap_dim(dim, t.dim(), "split");
  const int64_t size = t.size(d);
  KILN_CHECK(split_size > 0 || size == 0, "split: split_size can only be 0 if dimension size is 0, but got dimension ",
             d, " of size ", size);
  const int64_t parts = split_size == 0 ? 1 : std::max<int64_t>((size + split_size - 1) / split_size, 1);
  std::vector<Tensor> out;
  out.reserve(parts);
  for (int64_t i = 0; i < parts; ++i) {
    const int64_t start = i * split_size;
    out.push_back(narrow(t, d, start, std::min(split_size, size - start)));
  }
  return out;
}

std::vector<Tensor> split_with_sizes(const Tensor& t, IntArrayRef sizes, int64_t dim) {
  KILN_CHECK(t.dim() > 0, "split_with_sizes: expects at least a 1-dimensional tensor");
  const int64_t d = wrap_dim(dim, t.dim(), "split_with_sizes");
  int64_t sum = 0;
  for (int64_t s : sizes) {
    KILN_CHECK(s >= 0, "split_with_sizes: expects split_sizes to be non-negative, but got split_sizes=", sizes);
    sum += s;
  }
  KILN_CHECK(sum == t.size(d), "split_with_sizes: expects split_sizes to sum exactly to ", t.size(d),
             " (input tensor's size at dimension ", d, "), but got split_sizes=", sizes);
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(narrow(t, d, at, s));
    at += s;
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t dim) {
  KILN_CHECK(t.dim() > 0, "chunk: expects at least a 1-dimensional tensor");
  KILN_CHECK(chunks > 0, "chunk: expects `chunks` to be greater than 0, got: ", chunks);
  const int64_t d = wrap_dim(dim, t.dim(), "chunk");
  const int64_t size = t.size(d);
  const int64_t each = (size + chunks - 1) / chunks;
  // An empty dim still yields `chunks` (empty) pieces; otherwise pieces of
  // ceil(size / chunks), which may be fewer than asked for, as torch.
  if (size == 0) return split_with_sizes(t, DimVector(static_cast<size_t>(chunks), 0), d);
  return split(t, each, d);
}

// ---- index-driven ----

Tensor index_select(const Tensor& t, int64_t dim, const Tensor& index) {
  Tensor idx = long_index("index_select", index, true);
  KILN_CHECK(index.dim() <= 1, "index_select(): Index is supposed to be a vector, got shape ", index.sizes());
  check_same_device("index_select", t, index, "index");
  const int64_t d = wrap_dim(dim, t.dim(), "index_select");
  idx = contiguous(reshape(idx, {-1}));
  if (t.dim() == 0) {
    KILN_CHECK(idx.numel() == 1, "index_select(): index of a 0-dim tensor must have exactly one element, got ",
               idx.numel());
    Tensor out = empty({1}, t.options());
    backend_of(t).index_select(reshape(t, {1}), 0, idx, out);
    return reshape(out, {});
  }
  DimVector shape = t.sizes().dims();
  shape[d] = idx.numel();
  Tensor out = empty(shape, t.options());
  backend_of(t).index_select(t, d, idx, out);
  return out;
}

namespace {
// torch's shape rules shared by gather and scatter: index has self's rank;
// off `dim` it is no larger than self (and no larger than src, for scatter).
void check_scatter_gather_shapes(const char* op, const Tensor& self, int64_t dim, const Tensor& index,
                                 const Tensor* src) {
  const int64_t rank = std::max<int64_t>(self.dim(), 1);
  KILN_CHECK(std::max<int64_t>(index.dim(), 1) == rank, op,
             "(): Index tensor must have the same number of dimensions as self tensor (index shape ", index.sizes(),
             ", self shape ", self.sizes(), ")");
  if (src) {
    KILN_CHECK(std::max<int64_t>(src->dim(), 1) == rank, op,
               "(): Index tensor must have the same number of dimensions as src tensor (index shape ",
               index.sizes(), ", src shape ", src->sizes(), ")");
  }
  const Tensor s1 = at_least_1d(self), i1 = at_least_1d(index);
  for (int64_t k = 0; k < rank; ++k) {
    KILN_CHECK(k == dim || i1.size(k) <= s1.size(k), op, "(): Size does not match at dimension ", k,
               " expected index ", index.sizes(), " to be no larger than self ", self.sizes(),
               " apart from dimension ", dim);
    if (src) {
      KILN_CHECK(i1.size(k) <= at_least_1d(*src).size(k), op, "(): Expected index ", index.sizes(),
                 " to be no larger than src ", src->sizes(), " in dimension ", k);
    }
  }
}
}  // namespace

Tensor gather(const Tensor& t, int64_t dim, const Tensor& index) {
  const Tensor idx = long_index("gather", index, false);
  check_same_device("gather", t, index, "index");
  const int64_t d = wrap_dim(dim, t.dim(), "gather");
  check_scatter_gather_shapes("gather", t, d, index, nullptr);
  Tensor out = empty(index.sizes(), t.options());
  if (out.numel() > 0) backend_of(t).gather(at_least_1d(t), d, at_least_1d(idx), at_least_1d(out));
  return out;
}

namespace {
void scatter_into(const char* op, const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
                  ScatterReduce reduce) {
  const Tensor idx = long_index(op, index, false);
  check_same_device(op, out, index, "index");
  check_same_device(op, out, src, "src");
  KILN_CHECK(src.dtype() == out.dtype(), op, "(): Expected self.dtype to be equal to src.dtype (got ",
             dtype_name(out.dtype()), " and ", dtype_name(src.dtype()), ")");
  const int64_t d = wrap_dim(dim, out.dim(), op);
  check_scatter_gather_shapes(op, out, d, index, &src);
  if (index.numel() == 0) return;
  backend_of(out).scatter(at_least_1d(out), d, at_least_1d(idx), at_least_1d(src), reduce);
}
}  // namespace

Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor out = clone(t);
  scatter_into("scatter", out, dim, index, src, ScatterReduce::None);
  return out;
}

Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Scalar& value) {
  Tensor out = clone(t);
  // The value as a tensor broadcast (stride 0) over index's shape.
  Tensor v = full({}, value, t.options());
  scatter_into("scatter", out, dim, index, expand(v, index.sizes()), ScatterReduce::None);
  return out;
}

Tensor scatter_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor out = clone(t);
  scatter_into("scatter_add", out, dim, index, src, ScatterReduce::Add);
  return out;
}

void scatter_add_(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  check_no_internal_overlap("scatter_add_", t);
  scatter_into("scatter_add_", t, dim, index, src, ScatterReduce::Add);
  bump_version(t);
}

void index_add_(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& source, const Scalar& alpha) {
  Tensor idx = long_index("index_add_", index, true);
  KILN_CHECK(index.dim() <= 1, "index_add_(): Index is supposed to be a vector, got shape ", index.sizes());
  check_same_device("index_add_", t, index, "index");
  check_same_device("index_add_", t, source, "source");
  KILN_CHECK(source.dtype() == t.dtype(), "index_add_(): self (", dtype_name(t.dtype()), ") and source (",
             dtype_name(source.dtype()), ") must have the same scalar type");
  check_no_internal_overlap("index_add_", t);
  const int64_t d = wrap_dim(dim, t.dim(), "index_add_");
  const Tensor self1 = at_least_1d(t), src1 = at_least_1d(source);
  KILN_CHECK(src1.dim() == self1.dim(), "index_add_(): source (shape ", source.sizes(),
             ") must have the same number of dimensions as self (shape ", t.sizes(), ")");
  KILN_CHECK(idx.numel() == src1.size(d), "index_add_(): Number of indices (", idx.numel(),
             ") should be equal to source.size(dim) (", src1.size(d), ")");
  for (int64_t k = 0; k < self1.dim(); ++k) {
    KILN_CHECK(k == d || self1.size(k) == src1.size(k), "index_add_(): source tensor shape ", source.sizes(),
               " must match self tensor shape ", t.sizes(), ", excluding the specified dimension ", d);
  }
  idx = contiguous(reshape(idx, {-1}));
  if (src1.numel() > 0) backend_of(t).index_add(self1, d, idx, src1, alpha);
  bump_version(t);
}

Tensor index_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& source, const Scalar& alpha) {
  Tensor out = clone(t);
  index_add_(out, dim, index, source, alpha);
  return out;
}

Tensor one_hot(const Tensor& index, int64_t num_classes) {
  KILN_CHECK(index.dtype() == kInt64, "one_hot: is only applicable to index tensors of dtype int64, got ",
             dtype_name(index.dtype()));
  KILN_CHECK(num_classes >= -1, "one_hot: num_classes should be -1 or non-negative, got ", num_classes);
  const std::vector<int64_t> vals = host_longs(index);
  if (num_classes == -1) {
    KILN_CHECK(!vals.empty(), "one_hot: Can not infer total number of classes from empty tensor.");
    num_classes = *std::max_element(vals.begin(), vals.end()) + 1;
  }
  for (int64_t v : vals) {
    KILN_CHECK(v >= 0, "one_hot: Class values must be non-negative (got ", v, ")");
    KILN_CHECK(v < num_classes, "one_hot: Class values must be smaller than num_classes (got ", v,
               " with num_classes=", num_classes, ")");
  }
  DimVector shape = index.sizes().dims();
  shape.push_back(num_classes);
  Tensor out = zeros(shape, index.options().dtype(kInt64));
  if (index.numel() == 0) return out;
  const Tensor idx = unsqueeze(index, -1);
  backend_of(out).scatter(out, out.dim() - 1, idx, expand(full({}, 1, out.options()), idx.sizes()),
                          ScatterReduce::None);
  return out;
}

// ---- reshuffling ----

Tensor pad(const Tensor& t, IntArrayRef pad, const Scalar& value) {
  KILN_CHECK(pad.size() % 2 == 0, "pad: Padding length must be divisible by 2, got ", pad.size(), " (", pad, ")");
  const int64_t pairs = static_cast<int64_t>(pad.size()) / 2;
  KILN_CHECK(pairs <= t.dim(), "pad: Padding length should be less than or equal to two times the input dimension "
             "but got padding length ", pad.size(), " and input of dimension ", t.dim());
  DimVector shape = t.sizes().dims();
  for (int64_t j = 0; j < pairs; ++j) {
    const int64_t d = t.dim() - 1 - j;
    shape[d] = t.size(d) + pad[2 * j] + pad[2 * j + 1];
    KILN_CHECK(shape[d] >= 0, "pad: The input size ", t.size(d), ", plus negative padding ", pad[2 * j], " and ",
               pad[2 * j + 1], " resulted in a negative output size, which is invalid. Check dimension ", d,
               " of your input.");
  }
  Tensor out = full(shape, value, t.options());
  // The part of t that survives lands at the left padding offset.
  Tensor src = t, dst = out;
  for (int64_t j = 0; j < pairs; ++j) {
    const int64_t d = t.dim() - 1 - j, left = pad[2 * j], right = pad[2 * j + 1];
    const int64_t len = t.size(d) - std::max<int64_t>(0, -left) - std::max<int64_t>(0, -right);
    if (len <= 0) return out;
    src = narrow(src, d, std::max<int64_t>(0, -left), len);
    dst = narrow(dst, d, std::max<int64_t>(0, left), len);
  }
  copy_into(dst, src);
  return out;
}

Tensor flip(const Tensor& t, IntArrayRef dims) {
  const DimVector ds = wrap_dims(dims, t.dim(), "flip", /*empty_means_all=*/false);
  Tensor out = empty(t.sizes(), t.options());
  if (t.numel() == 0) return out;
  if (t.dim() == 0 || ds.empty()) {
    copy_into(out, t);
    return out;
  }
  backend_of(t).flip(t, ds, out);
  return out;
}

Tensor repeat(const Tensor& t, IntArrayRef repeats) {
  const int64_t n = static_cast<int64_t>(repeats.size());
  KILN_CHECK(n >= t.dim(), "repeat: Number of dimensions of repeat dims (", n,
             ") can not be smaller than number of dimensions of tensor (", t.dim(), ")");
  // View t as [r0, s0, r1, s1, ...] with stride 0 on each r, copy that out
  // contiguously, and merge each (r, s) pair.
  const int64_t lead = n - t.dim();
  DimVector sizes2, strides2, shape;
  for (int64_t i = 0; i < n; ++i) {
    KILN_CHECK(repeats[i] >= 0, "repeat: trying to create tensor with negative dimension ", repeats[i], ": ",
               repeats);
    const int64_t s = i < lead ? 1 : t.size(i - lead);
    sizes2.push_back(repeats[i]);
    sizes2.push_back(s);
    strides2.push_back(0);
    strides2.push_back(i < lead ? 1 : t.stride(i - lead));
    shape.push_back(repeats[i] * s);
  }
  Tensor expanded = as_strided(t, sizes2, strides2, t.storage_offset());
  return view(clone(expanded), shape);
}

Tensor roll(const Tensor& t, IntArrayRef shifts, IntArrayRef dims) {
  if (dims.empty()) {
    KILN_CHECK(shifts.size() == 1, "roll: `shifts` required a single element when `dims` is not given, got ", shifts);
    const int64_t axis = 0;
    return view(roll(reshape(t, {-1}), shifts, IntArrayRef(axis)), t.sizes());
  }
  KILN_CHECK(shifts.size() == dims.size(), "roll: shifts and dimensions must align. shifts: ", shifts.size(),
             ", dims:", dims.size());
  // Net shift per dim (a dim may be listed twice), in [0, size).
  DimVector net(static_cast<size_t>(std::max<int64_t>(t.dim(), 1)), 0);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], t.dim(), "roll");
    const int64_t size = t.dim() == 0 ? 1 : t.size(d);
    if (size > 0) net[d] = ((net[d] + shifts[i]) % size + size) % size;
  }
  Tensor out = empty(t.sizes(), t.options());
  if (t.numel() == 0) return out;
  std::vector<int64_t> rolled;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (net[d] != 0) rolled.push_back(d);
  // Each rolled dim splits into two blocks that swap places: 2^k block copies.
  for (uint64_t mask = 0; mask < (uint64_t{1} << rolled.size()); ++mask) {
    Tensor src = t, dst = out;
    for (size_t j = 0; j < rolled.size(); ++j) {
      const int64_t d = rolled[j], size = t.size(d), s = net[d];
      if (mask >> j & 1) {
        src = narrow(src, d, 0, size - s);
        dst = narrow(dst, d, s, size - s);
      } else {
        src = narrow(src, d, size - s, s);
        dst = narrow(dst, d, 0, s);
      }
    }
    copy_into(dst, src);
  }
  return out;
}

namespace {
// Copies into zeros only the kept part of each row: row i keeps columns
// [lo(i), hi(i)). Rows kept whole are copied as one block, so a
// [.., M, N] input costs at most min(M, N) + 1 copies.
template <typename Range>
Tensor keep_band(const Tensor& t, const char* op, Range range) {
  KILN_CHECK(t.dim() >= 2, op, ": input tensor must have at least 2 dimensions, got shape ", t.sizes());
  Tensor out = zeros(t.sizes(), t.options());
  const int64_t M = t.size(-2), N = t.size(-1);
  if (t.numel() == 0) return out;
  int64_t i = 0;
  while (i < M) {
    auto [lo, hi] = range(i);
    if (lo == 0 && hi == N) {  // a run of full rows
      int64_t j = i + 1;
      while (j < M && range(j).first == 0 && range(j).second == N) ++j;
      copy_into(narrow(out, -2, i, j - i), narrow(t, -2, i, j - i));
      i = j;
      continue;
    }
    if (hi > lo) copy_into(narrow(select(out, -2, i), -1, lo, hi - lo), narrow(select(t, -2, i), -1, lo, hi - lo));
    ++i;
  }
  return out;
}
}  // namespace

Tensor tril(const Tensor& t, int64_t diagonal) {
  const int64_t N = t.dim() >= 2 ? t.size(-1) : 0;
  // Keeps j <= i + diagonal.
  return keep_band(t, "tril", [&](int64_t i) {
    const int64_t hi = std::clamp<int64_t>(i + diagonal + 1, 0, N);
    return std::pair<int64_t, int64_t>{0, hi};
  });
}

Tensor triu(const Tensor& t, int64_t diagonal) {
  const int64_t N = t.dim() >= 2 ? t.size(-1) : 0;
  // Keeps j >= i + diagonal.
  return keep_band(t, "triu", [&](int64_t i) {
    const int64_t lo = std::clamp<int64_t>(i + diagonal, 0, N);
    return std::pair<int64_t, int64_t>{lo, N};
  });
}

}  // namespace kiln::native
