// Differentiable joining, splitting, index-driven and reshuffling ops. Each
// backward is the "transpose" of its forward: cat narrows, index_select
// index_adds, gather scatter_adds, pad pads by the negated amounts, flip and
// roll undo themselves, repeat sums the copies.
#include "kiln/autograd/function.h"
#include "kiln/autograd/functions.h"
#include "kiln/core/native.h"

namespace kiln {

using autograd::FunctionNode;
using autograd::record;
using autograd::should_record;
using autograd::variable_list;

namespace {

// torch's cat skips 1-D empty inputs whatever the other shapes are.
bool legacy_empty(IntArrayRef sizes) { return sizes.size() == 1 && sizes[0] == 0; }

// Zeros of `sizes` with g index_added along dim. The fused native path
// avoids index_add's clone of the zeros when no double backward is recorded.
Tensor index_add_into_zeros(IntArrayRef sizes, int64_t dim, const Tensor& index, const Tensor& g) {
  if (should_record({g})) return kiln::index_add(kiln::zeros(sizes, g.options()), dim, index, g);
  Tensor out = native::zeros(sizes, g.options());
  native::index_add_(out, dim, index, g);
  return out;
}

Tensor scatter_add_into_zeros(IntArrayRef sizes, int64_t dim, const Tensor& index, const Tensor& g) {
  if (should_record({g})) return kiln::scatter_add(kiln::zeros(sizes, g.options()), dim, index, g);
  Tensor out = native::zeros(sizes, g.options());
  native::scatter_add_(out, dim, index, g);
  return out;
}

// The gradient of scatter's src: each src element that was written gets the
// gradient of where it went. Elements of src beyond index's extent were never
// read, so the gathered gradient is zero-padded out to src's shape.
Tensor src_gradient(const Tensor& g, int64_t dim, const Tensor& index, IntArrayRef src_sizes) {
  if (index.numel() == 0) return kiln::zeros(src_sizes, g.options());
  Tensor r = kiln::gather(g, dim, index);
  if (r.sizes().equals(src_sizes)) return r;
  if (r.numel() == numel_of(src_sizes)) return kiln::reshape(r, src_sizes);  // 0-dim src, 1-element index
  DimVector pads;  // (left, right) from the last dim, as kiln::pad
  for (int64_t k = r.dim() - 1; k >= 0; --k) {
    pads.push_back(0);
    pads.push_back(src_sizes[k] - r.size(k));
  }
  return kiln::pad(r, pads);
}

// Splits as narrow views of t, so each piece has its own SliceBackward0.
std::vector<Tensor> as_narrows(const Tensor& t, const std::vector<Tensor>& pieces, int64_t dim, const char* op) {
  const int64_t d = native::wrap_dim(dim, t.dim(), op);
  std::vector<Tensor> out;
  out.reserve(pieces.size());
  int64_t at = 0;
  for (const Tensor& p : pieces) {
    out.push_back(kiln::narrow(t, d, at, p.size(d)));
    at += p.size(d);
  }
  return out;
}

DimVector negated(IntArrayRef v) {
  DimVector out;
  for (int64_t x : v) out.push_back(-x);
  return out;
}

}  // namespace

// ---- joining and splitting ----

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  Tensor out = native::cat(tensors, dim);  // checks the arguments
  int64_t d = 0;
  for (const Tensor& t : tensors) {
    if (legacy_empty(t.sizes())) continue;
    d = native::wrap_dim(dim, t.dim(), "cat");
    break;
  }
  return record("CatBackward0", out, tensors, {}, [d, n = tensors.size()](FunctionNode& c, const Tensor& g) {
    variable_list grads(n);
    int64_t at = 0;
    for (size_t i = 0; i < n; ++i) {
      const IntArrayRef s = c.input_sizes(i);
      if (legacy_empty(s)) {
        if (c.needs(i)) grads[i] = kiln::zeros({0}, c.input_options(i));
        continue;
      }
      if (c.needs(i)) grads[i] = c.reduce(i, kiln::narrow(g, d, at, s[d]));  // reduce casts to the input's dtype
      at += s[d];
    }
    return grads;
  });
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  Tensor out = native::stack(tensors, dim);  // checks the arguments
  const int64_t d = native::wrap_dim(dim, tensors[0].dim() + 1, "stack");
  return record("StackBackward0", out, tensors, {}, [d, n = tensors.size()](FunctionNode& c, const Tensor& g) {
    variable_list grads(n);
    for (size_t i = 0; i < n; ++i)
      if (c.needs(i)) grads[i] = c.reduce(i, kiln::select(g, d, static_cast<int64_t>(i)));
    return grads;
  });
}

std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t dim) {
  return as_narrows(t, native::split(t, split_size, dim), dim, "split");
}

std::vector<Tensor> split(const Tensor& t, IntArrayRef split_sizes, int64_t dim) {
  return kiln::split_with_sizes(t, split_sizes, dim);
}

std::vector<Tensor> split_with_sizes(const Tensor& t, IntArrayRef split_sizes, int64_t dim) {
  return as_narrows(t, native::split_with_sizes(t, split_sizes, dim), dim, "split_with_sizes");
}

std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t dim) {
  return as_narrows(t, native::chunk(t, chunks, dim), dim, "chunk");
}

// ---- index-driven ----

Tensor index_select(const Tensor& t, int64_t dim, const Tensor& index) {
  Tensor out = native::index_select(t, dim, index);
  const int64_t d = native::wrap_dim(dim, t.dim(), "index_select");
  return record("IndexSelectBackward0", out, {t}, {index}, [d](FunctionNode& c, const Tensor& g) -> variable_list {
    return {index_add_into_zeros(c.input_sizes(0), d, c.saved(0), g)};
  });
}

Tensor gather(const Tensor& t, int64_t dim, const Tensor& index) {
  Tensor out = native::gather(t, dim, index);
  const int64_t d = native::wrap_dim(dim, t.dim(), "gather");
  return record("GatherBackward0", out, {t}, {index}, [d](FunctionNode& c, const Tensor& g) -> variable_list {
    return {scatter_add_into_zeros(c.input_sizes(0), d, c.saved(0), g)};
  });
}

// Positions scatter overwrote get no gradient in self; with repeated
// indices every src element aimed at a position gets its gradient, as torch.
Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor out = native::scatter(t, dim, index, src);
  const int64_t d = native::wrap_dim(dim, t.dim(), "scatter");
  return record("ScatterBackward0", out, {t, src}, {index}, [d](FunctionNode& c, const Tensor& g) -> variable_list {
    return {c.needs(0) ? kiln::scatter(g, d, c.saved(0), Scalar(0)) : Tensor(),
            c.needs(1) ? src_gradient(g, d, c.saved(0), c.input_sizes(1)) : Tensor()};
  });
}

Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Scalar& value) {
  Tensor out = native::scatter(t, dim, index, value);
  const int64_t d = native::wrap_dim(dim, t.dim(), "scatter");
  return record("ScatterBackward1", out, {t}, {index}, [d](FunctionNode& c, const Tensor& g) -> variable_list {
    return {kiln::scatter(g, d, c.saved(0), Scalar(0))};
  });
}

Tensor scatter_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor out = native::scatter_add(t, dim, index, src);
  const int64_t d = native::wrap_dim(dim, t.dim(), "scatter_add");
  return record("ScatterAddBackward0", out, {t, src}, {index}, [d](FunctionNode& c, const Tensor& g) -> variable_list {
    return {c.needs(0) ? g : Tensor(), c.needs(1) ? src_gradient(g, d, c.saved(0), c.input_sizes(1)) : Tensor()};
  });
}

Tensor index_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& source, const Scalar& alpha) {
  Tensor out = native::index_add(t, dim, index, source, alpha);
  const int64_t d = native::wrap_dim(dim, t.dim(), "index_add");
  return record("IndexAddBackward0", out, {t, source}, {index},
                [d, alpha](FunctionNode& c, const Tensor& g) -> variable_list {
                  Tensor gs;
                  if (c.needs(1)) {
                    gs = kiln::index_select(g, d, c.saved(0));
                    if (alpha.toDouble() != 1.0) gs = gs * alpha;
                    gs = kiln::reshape(gs, c.input_sizes(1));  // a 0-dim source came back 1-D
                  }
                  return {c.needs(0) ? g : Tensor(), gs};
                });
}

Tensor one_hot(const Tensor& index, int64_t num_classes) { return native::one_hot(index, num_classes); }

// ---- reshuffling ----

// Padding by the negated amounts trims what was added and zero-fills what
// was trimmed, so it is the gradient for positive and negative pads alike.
Tensor pad(const Tensor& t, IntArrayRef pad, const Scalar& value) {
  return record("ConstantPadNdBackward0", native::pad(t, pad, value), {t}, {},
                [neg = negated(pad)](FunctionNode&, const Tensor& g) -> variable_list { return {kiln::pad(g, neg)}; });
}

Tensor flip(const Tensor& t, IntArrayRef dims) {
  return record("FlipBackward0", native::flip(t, dims), {t}, {},
                [dims = dims.dims()](FunctionNode&, const Tensor& g) -> variable_list {
                  return {kiln::flip(g, dims)};
                });
}

// Output dim i is repeats[i] copies of input dim s_i: viewed as
// [r0, s0, r1, s1, ...] the copies are the even dims, summed away.
Tensor repeat(const Tensor& t, IntArrayRef repeats) {
  return record("RepeatBackward0", native::repeat(t, repeats), {t}, {},
                [reps = repeats.dims()](FunctionNode& c, const Tensor& g) -> variable_list {
                  const IntArrayRef s = c.input_sizes(0);
                  const size_t lead = reps.size() - s.size();
                  DimVector split, copies;
                  for (size_t i = 0; i < reps.size(); ++i) {
                    split.push_back(reps[i]);
                    split.push_back(i < lead ? 1 : s[i - lead]);
                    copies.push_back(static_cast<int64_t>(2 * i));
                  }
                  if (copies.empty()) return {g};  // 0-dim input, no repeats
                  return {kiln::reshape(kiln::sum(kiln::reshape(g, split), copies), s)};
                });
}

Tensor roll(const Tensor& t, IntArrayRef shifts, IntArrayRef dims) {
  return record("RollBackward0", native::roll(t, shifts, dims), {t}, {},
                [back = negated(shifts), dims = dims.dims()](FunctionNode&, const Tensor& g) -> variable_list {
                  return {kiln::roll(g, back, dims)};
                });
}

Tensor tril(const Tensor& t, int64_t diagonal) {
  return record("TrilBackward0", native::tril(t, diagonal), {t}, {},
                [diagonal](FunctionNode&, const Tensor& g) -> variable_list { return {kiln::tril(g, diagonal)}; });
}

Tensor triu(const Tensor& t, int64_t diagonal) {
  return record("TriuBackward0", native::triu(t, diagonal), {t}, {},
                [diagonal](FunctionNode&, const Tensor& g) -> variable_list { return {kiln::triu(g, diagonal)}; });
}

}  // namespace kiln
