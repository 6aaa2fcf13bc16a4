// cat/stack/split/chunk, index_select, gather, scatter(_add), index_add,
// one_hot, pad, flip, repeat, roll, tril/triu: each against a loop over
// multi-indices written here.
#include <cmath>

#include "kiln/core/native.h"
#include "test_util.h"

using namespace kiln;
using kiln::testing::all_close;
using kiln::testing::make;
using kiln::testing::values;

namespace {

// 0, 1, 2, ... in the given shape and dtype.
Tensor ar(IntArrayRef shape, DType dt = kFloat64) {
  return native::to(native::reshape(native::arange(numel_of(shape), dtype(kFloat64)), shape), dt);
}
Tensor longs(const std::vector<int64_t>& v) { return native::tensor(v); }
Tensor longs(IntArrayRef shape, const std::vector<int64_t>& v) { return native::reshape(native::tensor(v), shape); }

DimVector unravel(int64_t flat, IntArrayRef shape) {
  DimVector idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}
int64_t ravel(const DimVector& idx, IntArrayRef shape) {
  int64_t f = 0;
  for (size_t d = 0; d < shape.size(); ++d) f = f * shape[d] + idx[d];
  return f;
}

std::vector<double> sizes_of(const std::vector<Tensor>& ts, int64_t dim) {
  std::vector<double> out;
  for (const Tensor& t : ts) out.push_back(static_cast<double>(t.size(dim)));
  return out;
}

}  // namespace

// ---- cat / stack / split / chunk ----

TEST(Indexing, CatAlongEachDim) {
  Tensor a = ar({2, 3}), b = make({2, 2}, {100, 101, 102, 103});
  Tensor c = native::cat({a, b}, 1);
  EXPECT_EQ(c.sizes(), IntArrayRef({2, 5}));
  EXPECT_EQ(values(c), (std::vector<double>{0, 1, 2, 100, 101, 3, 4, 5, 102, 103}));
  Tensor d = native::cat({a, native::transpose(ar({3, 1}), 0, 1), a}, 0);  // a non-contiguous input
  EXPECT_EQ(d.sizes(), IntArrayRef({5, 3}));
  EXPECT_EQ(values(d), (std::vector<double>{0, 1, 2, 3, 4, 5, 0, 1, 2, 0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(values(native::cat({a, a}, -1)), (std::vector<double>{0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5}));
}

TEST(Indexing, CatPromotesAndSkipsLegacyEmpty) {
  Tensor i = ar({2}, kInt32), f = ar({3}, kFloat32);
  Tensor c = native::cat({i, f});
  EXPECT_EQ(c.dtype(), kFloat32);
  EXPECT_EQ(values(c), (std::vector<double>{0, 1, 0, 1, 2}));
  EXPECT_EQ(native::cat({ar({2}, kBool), ar({2}, kUInt8)}).dtype(), kUInt8);
  EXPECT_EQ(native::cat({ar({2}, kInt64), ar({2}, kFloat16)}).dtype(), kFloat16);
  EXPECT_EQ(native::cat({ar({2}, kFloat16), ar({2}, kBFloat16)}).dtype(), kFloat32);
  // A [0]-shaped tensor is skipped whatever the others' shapes, but still promotes.
  Tensor e = native::empty({0}, dtype(kFloat64));
  Tensor m = ar({2, 3}, kFloat32);
  Tensor r = native::cat({e, m, e}, 1);
  EXPECT_EQ(r.sizes(), IntArrayRef({2, 3}));
  EXPECT_EQ(r.dtype(), kFloat64);
  EXPECT_EQ(values(r), values(m));
  Tensor all_empty = native::cat({e, native::empty({0}, dtype(kInt32))});
  EXPECT_EQ(all_empty.sizes(), IntArrayRef({0}));
  // A [2, 0] tensor is not legacy-empty: it joins along dim 0 normally.
  EXPECT_EQ(native::cat({native::empty({2, 0}), native::empty({3, 0})}).sizes(), IntArrayRef({5, 0}));
}

TEST(Indexing, CatErrors) {
  EXPECT_KILN_ERROR(native::cat({ar({2, 3}), ar({2, 4})}, 0),
                    "Sizes of tensors must match except in dimension 0. Expected size 3 but got size 4");
  EXPECT_KILN_ERROR(native::cat({ar({2, 3}), ar({2, 4})}, 0), "[2, 4]");
  EXPECT_KILN_ERROR(native::cat({ar({2, 3}), ar({2, 3, 1})}, 0), "same number of dimensions");
  EXPECT_KILN_ERROR(native::cat({ar({2}), native::scalar_tensor(1.0)}, 0), "zero-dimensional");
  EXPECT_KILN_ERROR(native::cat({}, 0), "non-empty");
  EXPECT_KILN_ERROR(native::cat({ar({2, 3}), ar({2, 3})}, 2), "dimension out of range");
}

TEST(Indexing, Stack) {
  Tensor a = ar({2, 3}), b = make({2, 3}, {10, 11, 12, 13, 14, 15});
  for (int64_t dim : {0, 1, 2, -1}) {
    Tensor s = native::stack({a, b}, dim);
    const int64_t d = dim < 0 ? dim + 3 : dim;
    DimVector shape{2, 3};
    shape.insert(static_cast<size_t>(d), 2);
    EXPECT_EQ(s.sizes(), IntArrayRef(shape));
    auto v = values(s), va = values(a), vb = values(b);
    for (int64_t f = 0; f < 12; ++f) {
      DimVector idx = unravel(f, shape);
      const int64_t which = idx[d];
      idx.erase(static_cast<size_t>(d));
      const double expect = (which ? vb : va)[ravel(idx, {2, 3})];
      EXPECT_EQ(v[f], expect) << "dim " << dim << " flat " << f;
    }
  }
  EXPECT_EQ(native::stack({native::scalar_tensor(1.0), native::scalar_tensor(2.0)}).sizes(), IntArrayRef({2}));
  EXPECT_KILN_ERROR(native::stack({ar({2, 3}), ar({2, 4})}), "stack expects each tensor to be equal size, but got [2, 3] at entry 0 and [2, 4] at entry 1");
}

TEST(Indexing, SplitAndChunkSizes) {
  Tensor t = ar({7, 2});
  auto parts = native::split(t, 3);
  EXPECT_EQ(sizes_of(parts, 0), (std::vector<double>{3, 3, 1}));
  EXPECT_EQ(parts[2].storage(), t.storage());  // views
  EXPECT_EQ(values(parts[2]), (std::vector<double>{12, 13}));
  EXPECT_EQ(sizes_of(native::split(t, 7), 0), (std::vector<double>{7}));
  EXPECT_EQ(sizes_of(native::split(t, 10), 0), (std::vector<double>{7}));
  EXPECT_EQ(sizes_of(native::split(t, 1, 1), 1), (std::vector<double>{1, 1}));
  auto ws = native::split_with_sizes(t, {2, 0, 5});
  EXPECT_EQ(sizes_of(ws, 0), (std::vector<double>{2, 0, 5}));
  EXPECT_EQ(values(ws[2])[0], 4.0);
  // torch.chunk: pieces of ceil(size / chunks), possibly fewer than asked.
  EXPECT_EQ(sizes_of(native::chunk(ar({6}), 4), 0), (std::vector<double>{2, 2, 2}));
  EXPECT_EQ(sizes_of(native::chunk(ar({5}), 2), 0), (std::vector<double>{3, 2}));
  EXPECT_EQ(sizes_of(native::chunk(ar({5}), 5), 0), (std::vector<double>{1, 1, 1, 1, 1}));
  EXPECT_EQ(sizes_of(native::chunk(ar({5}), 7), 0), (std::vector<double>{1, 1, 1, 1, 1}));
  EXPECT_EQ(sizes_of(native::chunk(ar({10}), 4), 0), (std::vector<double>{3, 3, 3, 1}));
  EXPECT_EQ(sizes_of(native::chunk(ar({0}), 3), 0), (std::vector<double>{0, 0, 0}));
  EXPECT_EQ(sizes_of(native::split(ar({0}), 0), 0), (std::vector<double>{0}));
  EXPECT_KILN_ERROR(native::split(t, 0), "split_size can only be 0");
  EXPECT_KILN_ERROR(native::split(t, -1), "non-negative");
  EXPECT_KILN_ERROR(native::split_with_sizes(t, {2, 2}), "sum exactly to 7");
  EXPECT_KILN_ERROR(native::chunk(t, 0), "greater than 0");
  EXPECT_KILN_ERROR(native::chunk(native::scalar_tensor(1.0), 2), "1-dimensional");
}

// ---- index_select / gather ----

TEST(Indexing, IndexSelect) {
  Tensor t = ar({3, 4});
  Tensor r0 = native::index_select(t, 0, longs({2, 0, 2}));
  EXPECT_EQ(values(r0), (std::vector<double>{8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11}));
  Tensor r1 = native::index_select(t, 1, native::tensor(std::vector<int32_t>{3, 1}));  // int32 index
  EXPECT_EQ(r1.sizes(), IntArrayRef({3, 2}));
  EXPECT_EQ(values(r1), (std::vector<double>{3, 1, 7, 5, 11, 9}));
  // Non-contiguous self, 0-dim index, empty index, negative dim.
  Tensor tt = native::t(t);  // [4, 3]
  EXPECT_EQ(values(native::index_select(tt, -1, longs({1}))), (std::vector<double>{4, 5, 6, 7}));
  Tensor s = native::index_select(t, 0, native::scalar_tensor(1));
  EXPECT_EQ(s.sizes(), IntArrayRef({1, 4}));
  EXPECT_EQ(values(s), (std::vector<double>{4, 5, 6, 7}));
  EXPECT_EQ(native::index_select(t, 1, native::empty({0}, dtype(kInt64))).sizes(), IntArrayRef({3, 0}));
  Tensor z = native::index_select(native::scalar_tensor(5.0), 0, longs({0}));
  EXPECT_EQ(z.dim(), 0);
  EXPECT_EQ(z.item<double>(), 5.0);
  // Every dtype moves bit for bit.
  for (DType dt : {kFloat64, kFloat32, kFloat16, kBFloat16, kInt64, kInt32, kUInt8, kBool}) {
    Tensor x = native::to(ar({5, 3}), dt);
    Tensor r = native::index_select(x, 0, longs({4, 1, 1}));
    EXPECT_EQ(r.dtype(), dt);
    EXPECT_EQ(values(r), values(native::to(make({3, 3}, {12, 13, 14, 3, 4, 5, 3, 4, 5}), dt)));
  }
  // A large lookup (embedding-like), checked row by row.
  Tensor table = ar({50, 64}, kFloat32);
  std::vector<int64_t> ids;
  for (int i = 0; i < 3000; ++i) ids.push_back((i * 37) % 50);
  auto got = values(native::index_select(table, 0, longs(ids)));
  for (int i = 0; i < 3000; ++i)
    for (int j = 0; j < 64; ++j) ASSERT_EQ(got[i * 64 + j], ids[i] * 64 + j);
}

TEST(Indexing, IndexSelectErrors) {
  Tensor t = ar({3, 4});
  EXPECT_KILN_ERROR(native::index_select(t, 0, longs({0, 3})), "index 3 is out of bounds for dimension 0 with size 3");
  EXPECT_KILN_ERROR(native::index_select(t, 1, longs({-1})), "index -1 is out of bounds for dimension 1 with size 4");
  EXPECT_KILN_ERROR(native::index_select(t, 0, native::tensor(std::vector<float>{0.f})),
                    "index_select(): Expected dtype int32/int64 for index");
  EXPECT_KILN_ERROR(native::index_select(t, 0, longs({2, 2}, {0, 0, 0, 0})), "vector");
  EXPECT_KILN_ERROR(native::index_select(t, 2, longs({0})), "dimension out of range");
}

TEST(Indexing, Gather) {
  Tensor t = ar({3, 4});
  // dim 1: out[i][j] = t[i][index[i][j]], index smaller than t off dim.
  Tensor idx = longs({2, 3}, {3, 0, 0, 1, 2, 1});
  EXPECT_EQ(values(native::gather(t, 1, idx)), (std::vector<double>{3, 0, 0, 5, 6, 5}));
  // dim 0: out[i][j] = t[index[i][j]][j].
  Tensor idx0 = longs({2, 4}, {2, 1, 0, 2, 0, 0, 1, 1});
  EXPECT_EQ(values(native::gather(t, 0, idx0)), (std::vector<double>{8, 5, 2, 11, 0, 1, 6, 7}));
  // 3-D, non-contiguous self and index, every dim, against a loop.
  Tensor x = native::permute(ar({4, 3, 5}), {1, 0, 2});  // [3, 4, 5]
  const auto vx = values(x);
  for (int64_t dim = 0; dim < 3; ++dim) {
    const DimVector ishape{2, 3, 4};
    std::vector<int64_t> iv;
    for (int64_t f = 0; f < 24; ++f) iv.push_back((f * 7 + dim) % x.size(dim));
    // Stored transposed so the index is non-contiguous.
    Tensor index = native::transpose(native::contiguous(native::transpose(longs(ishape, iv), 0, 2)), 0, 2);
    ASSERT_FALSE(index.is_contiguous());
    auto got = values(native::gather(x, dim, index));
    for (int64_t f = 0; f < 24; ++f) {
      DimVector at = unravel(f, ishape);
      at[dim] = iv[f];
      EXPECT_EQ(got[f], vx[ravel(at, x.sizes())]) << "dim " << dim << " flat " << f;
    }
  }
  // 0-dim self with 0-dim index; empty index.
  EXPECT_EQ(native::gather(native::scalar_tensor(3.0), 0, native::scalar_tensor(0)).item<double>(), 3.0);
  EXPECT_EQ(native::gather(t, 1, native::empty({3, 0}, dtype(kInt64))).sizes(), IntArrayRef({3, 0}));
}

TEST(Indexing, GatherErrors) {
  Tensor t = ar({3, 4});
  EXPECT_KILN_ERROR(native::gather(t, 1, longs({1, 2}, {0, 4})), "index 4 is out of bounds for dimension 1 with size 4");
  EXPECT_KILN_ERROR(native::gather(t, 1, longs({4, 1}, {0, 0, 0, 0})), "Size does not match at dimension 0");
  EXPECT_KILN_ERROR(native::gather(t, 1, longs({0, 1})), "same number of dimensions");
  EXPECT_KILN_ERROR(native::gather(t, 1, native::tensor(std::vector<int32_t>{0})), "Expected dtype int64 for index");
}

// ---- scatter / index_add ----

TEST(Indexing, ScatterAndScatterAdd) {
  for (int64_t dim : {0, 1}) {
    Tensor self = ar({3, 4});
    const DimVector ishape{2, 3};
    // Indices with duplicates along dim: scatter_add must sum them all.
    std::vector<int64_t> iv;
    for (int64_t f = 0; f < 6; ++f) iv.push_back((f * 5 + 1) % self.size(dim));
    Tensor index = longs(ishape, iv);
    Tensor src = native::transpose(native::contiguous(native::transpose(make({2, 4}, {10, 20, 30, 40, 50, 60, 70, 80}), 0, 1)), 0, 1);
    auto vs = values(src);  // src is [2, 4], larger than index off-dim; non-contiguous
    std::vector<double> expect_add = values(self), expect_set = values(self);
    for (int64_t f = 0; f < 6; ++f) {
      DimVector at = unravel(f, ishape);
      const double v = vs[ravel(at, {2, 4})];
      at[dim] = iv[f];
      expect_add[ravel(at, {3, 4})] += v;
      expect_set[ravel(at, {3, 4})] = v;  // the last write in index order wins, as torch on CPU
    }
    EXPECT_EQ(values(native::scatter_add(self, dim, index, src)), expect_add) << dim;
    EXPECT_EQ(values(native::scatter(self, dim, index, src)), expect_set) << dim;
    EXPECT_EQ(values(self), values(ar({3, 4})));  // out of place
    // Scalar value.
    std::vector<double> expect_val = values(self);
    for (int64_t f = 0; f < 6; ++f) {
      DimVector at = unravel(f, ishape);
      at[dim] = iv[f];
      expect_val[ravel(at, {3, 4})] = -1;
    }
    EXPECT_EQ(values(native::scatter(self, dim, index, Scalar(-1.0))), expect_val);
  }
  // In place, with a version bump, on a large tensor that splits across threads.
  Tensor acc = native::zeros({8, 70000}, dtype(kFloat32));
  std::vector<int64_t> iv(3 * 70000);
  for (size_t f = 0; f < iv.size(); ++f) iv[f] = static_cast<int64_t>((f * 13) % 8);
  Tensor index = longs({3, 70000}, iv);
  Tensor ones = native::ones({3, 70000}, dtype(kFloat32));
  const auto v0 = acc._version();
  native::scatter_add_(acc, 0, index, ones);
  EXPECT_GT(acc._version(), v0);
  std::vector<double> expect(8 * 70000, 0.0);
  for (size_t f = 0; f < iv.size(); ++f) expect[iv[f] * 70000 + f % 70000] += 1;
  EXPECT_EQ(values(acc), expect);
}

TEST(Indexing, ScatterErrors) {
  Tensor self = ar({3, 4});
  EXPECT_KILN_ERROR(native::scatter(self, 0, longs({1, 1}, {3}), ar({1, 1})), "index 3 is out of bounds for dimension 0 with size 3");
  EXPECT_KILN_ERROR(native::scatter(self, 0, longs({1, 2}, {0, 0}), ar({1, 1})), "no larger than src");
  EXPECT_KILN_ERROR(native::scatter(self, 0, longs({1, 5}, {0, 0, 0, 0, 0}), ar({1, 5})), "Size does not match at dimension 1");
  EXPECT_KILN_ERROR(native::scatter(self, 0, longs({1, 1}, {0}), ar({1, 1}, kFloat32)), "Expected self.dtype to be equal to src.dtype");
  EXPECT_KILN_ERROR(native::scatter_add_(native::expand(ar({1, 4}), {3, 4}), 0, longs({1, 1}, {0}), ar({1, 1})),
                    "more than one element");
}

TEST(Indexing, IndexAdd) {
  for (DType dt : {kFloat64, kFloat32, kInt64, kFloat16}) {
    Tensor self = native::to(ar({4, 3}), dt);
    Tensor src = native::to(make({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}), dt);
    Tensor idx = native::tensor(std::vector<int32_t>{3, 0, 3});  // a repeated row sums
    Tensor r = native::index_add(self, 0, idx, src, 2);
    EXPECT_EQ(r.dtype(), dt);
    EXPECT_EQ(values(r), (std::vector<double>{0 + 8, 1 + 10, 2 + 12, 3, 4, 5, 6, 7, 8, 9 + 2 + 14, 10 + 4 + 16, 11 + 6 + 18}));
    // Along dim 1, with a transposed source.
    Tensor r1 = native::index_add(self, 1, longs({2, 2}), native::t(native::to(make({2, 4}, {1, 1, 1, 1, 2, 2, 2, 2}), dt)));
    EXPECT_EQ(values(r1), (std::vector<double>{0, 1, 5, 3, 4, 8, 6, 7, 11, 9, 10, 14}));
  }
  // In place on a large table (embedding backward), spread over threads.
  Tensor table = native::zeros({10, 4096}, dtype(kFloat32));
  std::vector<int64_t> ids(300);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>((i * 7) % 10);
  const auto v0 = table._version();
  native::index_add_(table, 0, longs(ids), native::ones({300, 4096}, dtype(kFloat32)), 0.5);
  EXPECT_GT(table._version(), v0);
  std::vector<double> counts(10, 0.0);
  for (int64_t id : ids) counts[id] += 0.5;
  auto got = values(table);
  for (int64_t r = 0; r < 10; ++r)
    for (int64_t c = 0; c < 4096; ++c) ASSERT_EQ(got[r * 4096 + c], counts[r]);
}

TEST(Indexing, IndexAddErrors) {
  Tensor self = ar({4, 3});
  EXPECT_KILN_ERROR(native::index_add(self, 0, longs({0, 1}), ar({3, 3})), "Number of indices (2) should be equal to source.size(dim) (3)");
  EXPECT_KILN_ERROR(native::index_add(self, 0, longs({0}), ar({1, 2})), "must match self tensor shape");
  EXPECT_KILN_ERROR(native::index_add(self, 0, longs({4}), ar({1, 3})), "index 4 is out of bounds for dimension 0 with size 4");
  EXPECT_KILN_ERROR(native::index_add(self, 0, longs({0}), ar({1, 3}, kFloat32)), "same scalar type");
  EXPECT_KILN_ERROR(native::index_add(self, 0, native::tensor(std::vector<double>{0}), ar({1, 3})), "int32/int64");
}

TEST(Indexing, OneHot) {
  Tensor r = native::one_hot(longs({2, 2}, {0, 3, 1, 3}));
  EXPECT_EQ(r.dtype(), kInt64);
  EXPECT_EQ(r.sizes(), IntArrayRef({2, 2, 4}));
  EXPECT_EQ(values(r), (std::vector<double>{1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(values(native::one_hot(longs({1}), 3)), (std::vector<double>{0, 1, 0}));
  EXPECT_EQ(native::one_hot(native::scalar_tensor(2), 3).sizes(), IntArrayRef({3}));
  EXPECT_EQ(native::one_hot(native::empty({0}, dtype(kInt64)), 5).sizes(), IntArrayRef({0, 5}));
  EXPECT_KILN_ERROR(native::one_hot(native::empty({0}, dtype(kInt64))), "Can not infer total number of classes");
  EXPECT_KILN_ERROR(native::one_hot(longs({-1})), "non-negative");
  EXPECT_KILN_ERROR(native::one_hot(longs({3}), 3), "smaller than num_classes");
  EXPECT_KILN_ERROR(native::one_hot(native::tensor(std::vector<int32_t>{1})), "int64");
}

// ---- pad / flip / repeat / roll / tril / triu ----

TEST(Indexing, PadConstantAndNegative) {
  Tensor t = ar({2, 3});
  auto check = [&](IntArrayRef p, IntArrayRef shape, double value) {
    Tensor r = native::pad(t, p, value);
    ASSERT_EQ(r.sizes(), shape) << p;
    EXPECT_EQ(r.dtype(), t.dtype());
    // Output (i, j) reads input (i - top, j - left) when that is inside.
    const int64_t left = p[0], top = p.size() > 2 ? p[2] : 0;
    auto v = values(r);
    for (int64_t i = 0; i < shape[0]; ++i)
      for (int64_t j = 0; j < shape[1]; ++j) {
        const int64_t si = i - top, sj = j - left;
        const double e = (si >= 0 && si < 2 && sj >= 0 && sj < 3) ? static_cast<double>(si * 3 + sj) : value;
        EXPECT_EQ(v[i * shape[1] + j], e) << p << " at " << i << "," << j;
      }
  };
  check({1, 2}, {2, 6}, 0);
  check({1, 1, 2, 0}, {4, 5}, -7.5);
  check({-1, 1}, {2, 3}, 9);
  check({0, -2, -1, 1}, {2, 1}, 1);
  check({-3, 0}, {2, 0}, 1);
  check({2, -4, 0, 0}, {2, 1}, 4);  // only padding survives in that dim
  // A 3-D input padded on its last dim only; an int tensor keeps its dtype.
  Tensor i3 = native::pad(ar({2, 1, 2}, kInt32), {1, 0}, 5);
  EXPECT_EQ(i3.dtype(), kInt32);
  EXPECT_EQ(values(i3), (std::vector<double>{5, 0, 1, 5, 2, 3}));
  EXPECT_KILN_ERROR(native::pad(t, {1}), "divisible by 2");
  EXPECT_KILN_ERROR(native::pad(t, {1, 1, 1, 1, 1, 1}), "less than or equal to two times");
  EXPECT_KILN_ERROR(native::pad(t, {-2, -2}), "negative output size");
}

TEST(Indexing, Flip) {
  Tensor t = ar({2, 3, 4});
  const auto vt = values(t);
  for (std::vector<int64_t> dims : {std::vector<int64_t>{0}, {2}, {-1, 0}, {0, 1, 2}}) {
    auto v = values(native::flip(t, dims));
    for (int64_t f = 0; f < 24; ++f) {
      DimVector at = unravel(f, {2, 3, 4});
      for (int64_t d : dims) {
        const int64_t w = d < 0 ? d + 3 : d;
        at[w] = t.size(w) - 1 - at[w];
      }
      EXPECT_EQ(v[f], vt[ravel(at, {2, 3, 4})]);
    }
  }
  // Non-contiguous input, int dtype.
  Tensor x = native::t(ar({3, 2}, kInt32));  // [[0, 2, 4], [1, 3, 5]]
  Tensor fx = native::flip(x, {1});
  EXPECT_EQ(fx.dtype(), kInt32);
  EXPECT_EQ(values(fx), (std::vector<double>{4, 2, 0, 5, 3, 1}));
  EXPECT_EQ(values(native::flip(t, {})), vt);
  EXPECT_KILN_ERROR(native::flip(t, {0, -3}), "appears multiple times");
}

TEST(Indexing, Repeat) {
  Tensor t = native::t(ar({3, 2}));  // [2, 3] non-contiguous: [[0, 2, 4], [1, 3, 5]]
  const auto vt = values(t);
  Tensor r = native::repeat(t, {2, 2, 3});
  ASSERT_EQ(r.sizes(), IntArrayRef({2, 4, 9}));
  auto v = values(r);
  for (int64_t f = 0; f < r.numel(); ++f) {
    DimVector at = unravel(f, {2, 4, 9});
    EXPECT_EQ(v[f], vt[(at[1] % 2) * 3 + at[2] % 3]);
  }
  EXPECT_EQ(native::repeat(t, {0, 1}).sizes(), IntArrayRef({0, 3}));
  EXPECT_EQ(values(native::repeat(native::scalar_tensor(7.0), {3})), (std::vector<double>{7, 7, 7}));
  EXPECT_KILN_ERROR(native::repeat(t, {2}), "can not be smaller");
  EXPECT_KILN_ERROR(native::repeat(t, {-1, 2}), "negative");
}

TEST(Indexing, Roll) {
  Tensor t = ar({3, 4});
  // Without dims: the flattened tensor rolls.
  EXPECT_EQ(values(native::roll(t, {1})), (std::vector<double>{11, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  auto check = [&](const Tensor& x, IntArrayRef shifts, IntArrayRef dims) {
    auto v = values(native::roll(x, shifts, dims));
    auto vx = values(x);
    for (int64_t f = 0; f < x.numel(); ++f) {
      DimVector at = unravel(f, x.sizes());
      for (size_t k = 0; k < dims.size(); ++k) {
        const int64_t d = dims[k] < 0 ? dims[k] + x.dim() : dims[k];
        const int64_t n = x.size(d);
        at[d] = (((at[d] - shifts[k]) % n) + n) % n;
      }
      EXPECT_EQ(v[f], vx[ravel(at, x.sizes())]) << shifts << " " << dims;
    }
  };
  check(t, {1}, {0});
  check(t, {-1}, {1});
  check(t, {6}, {1});
  check(t, {2, -3}, {0, 1});
  check(t, {1, 1}, {1, 1});  // the same dim twice rolls twice
  check(native::t(t), {1, 2}, {-1, 0});
  check(ar({2, 3, 4}), {1, 1, 1}, {0, 1, 2});
  EXPECT_KILN_ERROR(native::roll(t, {1, 2}, {0}), "must align");
}

TEST(Indexing, TrilTriu) {
  for (DType dt : {kFloat64, kInt32, kBool}) {
    Tensor t = native::to(native::reshape(native::arange(1, 25, 1, dtype(kFloat64)), {2, 3, 4}), dt);
    const auto vt = values(t);
    for (int64_t k : {-4, -1, 0, 1, 2, 5}) {
      auto lo = values(native::tril(t, k)), hi = values(native::triu(t, k));
      for (int64_t f = 0; f < 24; ++f) {
        DimVector at = unravel(f, {2, 3, 4});
        EXPECT_EQ(lo[f], at[2] <= at[1] + k ? vt[f] : 0.0) << "tril k=" << k << " f=" << f;
        EXPECT_EQ(hi[f], at[2] >= at[1] + k ? vt[f] : 0.0) << "triu k=" << k << " f=" << f;
      }
    }
  }
  // Tall, non-contiguous input.
  Tensor x = native::t(ar({3, 5}));  // [5, 3]
  auto vx = values(x), v = values(native::tril(x, -1));
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(v[i * 3 + j], j <= i - 1 ? vx[i * 3 + j] : 0.0);
  EXPECT_KILN_ERROR(native::tril(ar({3})), "at least 2 dimensions");
}
