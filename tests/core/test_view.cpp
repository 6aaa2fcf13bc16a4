#include <cmath>
#include <sstream>

#include "kiln/core/native.h"
#include "test_util.h"

using namespace kiln;
using kiln::testing::values;

TEST(View, TransposeSharesStorageAndSwapsStrides) {
  Tensor x = native::reshape(native::arange(6, dtype(kFloat64)), {2, 3});
  Tensor y = native::transpose(x, 0, 1);
  EXPECT_EQ(y.sizes(), IntArrayRef({3, 2}));
  EXPECT_EQ(y.strides(), IntArrayRef({1, 3}));
  EXPECT_EQ(y.storage(), x.storage());
  EXPECT_FALSE(y.is_contiguous());
  EXPECT_EQ(values(native::contiguous(y)), (std::vector<double>{0, 3, 1, 4, 2, 5}));
}

namespace {
using kiln::testing::all_close;
using kiln::testing::make;

Tensor ar(IntArrayRef shape, DType dt = kFloat64) {
  return native::to(native::reshape(native::arange(numel_of(shape), dtype(kFloat64)), shape), dt);
}
std::string str(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}
}  // namespace

// ---- views ----

TEST(View, ViewSharesStorageAndInfersSize) {
  Tensor x = ar({2, 6});
  Tensor v = native::view(x, {3, -1});
  EXPECT_EQ(v.sizes(), IntArrayRef({3, 4}));
  EXPECT_EQ(v.storage(), x.storage());
  EXPECT_EQ(values(v), values(x));
  // A narrowed (non-contiguous) tensor can still split its outer dim.
  Tensor n = native::narrow(ar({4, 6}), 1, 1, 3);  // strides (6, 1)
  Tensor nv = native::view(n, {2, 2, 3});
  EXPECT_EQ(nv.strides(), IntArrayRef({12, 6, 1}));
  EXPECT_EQ(values(nv), values(n));
  EXPECT_KILN_ERROR(native::view(native::t(x), {12}), "view: size [12] is not compatible");
  EXPECT_KILN_ERROR(native::view(x, {5, -1}), "invalid for input of size 12");
  EXPECT_KILN_ERROR(native::view(x, {-1, -1}), "only one dimension can be inferred");
  // 0-dim <-> 1-element.
  EXPECT_EQ(native::view(native::scalar_tensor(3.0), {1, 1}).sizes(), IntArrayRef({1, 1}));
  EXPECT_EQ(native::view(ar({1}), {}).dim(), 0);
}

TEST(View, ReshapeViewsWhenPossibleElseCopies) {
  Tensor x = ar({2, 3});
  Tensor r = native::reshape(x, {3, 2});
  EXPECT_EQ(r.storage(), x.storage());
  Tensor xt = native::t(x);
  Tensor c = native::reshape(xt, {6});
  EXPECT_NE(c.storage(), x.storage());
  EXPECT_EQ(values(c), (std::vector<double>{0, 3, 1, 4, 2, 5}));
  // An expanded tensor flattens by copying.
  Tensor e = native::expand(ar({1, 3}), {2, 3});
  EXPECT_EQ(values(native::reshape(e, {-1})), (std::vector<double>{0, 1, 2, 0, 1, 2}));
  // Size-1 dims with odd strides do not stop a view.
  Tensor s = native::select(ar({3, 1, 4}), 2, 1);  // [3, 1], strides (4, 4)
  EXPECT_EQ(native::reshape(s, {3}).storage(), s.storage());
}

TEST(View, SqueezeUnsqueeze) {
  Tensor x = ar({1, 3, 1, 2});
  EXPECT_EQ(native::squeeze(x).sizes(), IntArrayRef({3, 2}));
  EXPECT_EQ(native::squeeze(x, 2).sizes(), IntArrayRef({1, 3, 2}));
  EXPECT_EQ(native::squeeze(x, 1).sizes(), IntArrayRef({1, 3, 1, 2}));  // not size 1: unchanged
  EXPECT_EQ(native::squeeze(x, -4).sizes(), IntArrayRef({3, 1, 2}));
  EXPECT_EQ(native::squeeze(native::scalar_tensor(1.0), 0).dim(), 0);
  Tensor y = ar({2, 3});
  EXPECT_EQ(native::unsqueeze(y, 0).sizes(), IntArrayRef({1, 2, 3}));
  EXPECT_EQ(native::unsqueeze(y, 1).sizes(), IntArrayRef({2, 1, 3}));
  EXPECT_EQ(native::unsqueeze(y, 1).strides(), IntArrayRef({3, 3, 1}));
  EXPECT_EQ(native::unsqueeze(y, -1).sizes(), IntArrayRef({2, 3, 1}));
  EXPECT_EQ(native::unsqueeze(y, -1).strides(), IntArrayRef({3, 1, 1}));
  EXPECT_TRUE(native::unsqueeze(native::t(y), 0).storage() == y.storage());
  EXPECT_EQ(native::unsqueeze(native::scalar_tensor(1.0), 0).sizes(), IntArrayRef({1}));
  EXPECT_KILN_ERROR(native::unsqueeze(y, 3), "dimension out of range");
  EXPECT_KILN_ERROR(native::squeeze(y, 2), "dimension out of range");
}

TEST(View, Expand) {
  Tensor x = ar({3, 1});
  Tensor e = native::expand(x, {2, -1, 4});
  EXPECT_EQ(e.sizes(), IntArrayRef({2, 3, 4}));
  EXPECT_EQ(e.strides(), IntArrayRef({0, 1, 0}));
  auto v = values(e);
  for (int64_t f = 0; f < 24; ++f) EXPECT_EQ(v[f], static_cast<double>((f / 4) % 3));
  EXPECT_KILN_ERROR(native::expand(x, {3, 2, 2}), "expanded size of the tensor (2) must match the existing size (3)");
  EXPECT_KILN_ERROR(native::expand(x, {4}), "must be greater or equal");
  EXPECT_KILN_ERROR(native::expand(x, {-1, 3, 1}), "-1 is not allowed");
  EXPECT_KILN_ERROR(native::expand(x, {3, -2}), "expanded size -2 is invalid");
  EXPECT_EQ(native::expand(x, {3, 0}).numel(), 0);
}

TEST(View, NarrowSliceSelect) {
  Tensor x = ar({4, 5});
  EXPECT_EQ(values(native::narrow(x, 1, -2, 2)), (std::vector<double>{3, 4, 8, 9, 13, 14, 18, 19}));
  EXPECT_EQ(native::narrow(x, 0, 4, 0).sizes(), IntArrayRef({0, 5}));
  EXPECT_KILN_ERROR(native::narrow(x, 0, 3, 2), "exceeds dimension size");
  // Python slicing: negative bounds, clamping, steps.
  EXPECT_EQ(values(native::slice(x, 1, 1, std::nullopt, 2)), (std::vector<double>{1, 3, 6, 8, 11, 13, 16, 18}));
  EXPECT_EQ(values(native::slice(x, 0, -1, std::nullopt)), (std::vector<double>{15, 16, 17, 18, 19}));
  EXPECT_EQ(native::slice(x, 0, 2, 100).sizes(), IntArrayRef({2, 5}));
  EXPECT_EQ(native::slice(x, 0, 3, 1).sizes(), IntArrayRef({0, 5}));
  EXPECT_EQ(native::slice(x, 1, -100, -3).sizes(), IntArrayRef({4, 2}));
  Tensor s = native::slice(x, 1, 0, 5, 3);
  EXPECT_EQ(s.strides(), IntArrayRef({5, 3}));
  EXPECT_EQ(values(s), (std::vector<double>{0, 3, 5, 8, 10, 13, 15, 18}));
  EXPECT_KILN_ERROR(native::slice(x, 0, 0, 4, 0), "step must be positive");
  EXPECT_EQ(values(native::select(x, 1, -1)), (std::vector<double>{4, 9, 14, 19}));
  EXPECT_EQ(native::select(x, 0, 2).storage_offset(), 10);
  EXPECT_KILN_ERROR(native::select(x, 0, 4), "index 4 out of range");
  EXPECT_KILN_ERROR(native::select(x, 0, -5), "out of range");
  EXPECT_KILN_ERROR(native::select(native::scalar_tensor(1.0), 0, 0), "0-dim");
}

TEST(View, FlattenUnflatten) {
  Tensor x = ar({2, 3, 4});
  EXPECT_EQ(native::flatten(x).sizes(), IntArrayRef({24}));
  EXPECT_EQ(native::flatten(x, 1).sizes(), IntArrayRef({2, 12}));
  EXPECT_EQ(native::flatten(x, 0, 1).sizes(), IntArrayRef({6, 4}));
  EXPECT_EQ(native::flatten(x, -2, -1).storage(), x.storage());
  EXPECT_EQ(native::flatten(native::scalar_tensor(2.0)).sizes(), IntArrayRef({1}));
  Tensor xt = native::transpose(x, 0, 2);  // [4, 3, 2]
  EXPECT_EQ(values(native::flatten(xt)), values(native::contiguous(xt)));
  EXPECT_KILN_ERROR(native::flatten(x, 2, 1), "cannot come after");
  Tensor u = native::unflatten(x, 2, {2, -1});
  EXPECT_EQ(u.sizes(), IntArrayRef({2, 3, 2, 2}));
  EXPECT_EQ(u.storage(), x.storage());
  EXPECT_EQ(native::unflatten(x, -3, {1, 2, 1}).sizes(), IntArrayRef({1, 2, 1, 3, 4}));
  EXPECT_KILN_ERROR(native::unflatten(x, 1, {2, 2}), "invalid for input of size 3");
}

TEST(View, AsStridedPermuteT) {
  Tensor x = ar({6});
  Tensor w = native::as_strided(x, {4, 3}, {1, 1});  // overlapping sliding windows
  EXPECT_EQ(values(w), (std::vector<double>{0, 1, 2, 1, 2, 3, 2, 3, 4, 3, 4, 5}));
  EXPECT_EQ(values(native::as_strided(x, {2}, {2}, 1)), (std::vector<double>{1, 3}));
  EXPECT_KILN_ERROR(native::as_strided(x, {4, 3}, {2, 1}), "outside the storage");
  EXPECT_KILN_ERROR(native::as_strided(x, {2}, {1, 1}), "sizes");
  Tensor y = ar({2, 3, 4});
  Tensor p = native::permute(y, {2, 0, -2});
  EXPECT_EQ(p.sizes(), IntArrayRef({4, 2, 3}));
  EXPECT_EQ(p.strides(), IntArrayRef({1, 12, 4}));
  EXPECT_KILN_ERROR(native::permute(y, {0, 0, 1}), "repeated dim");
  EXPECT_KILN_ERROR(native::permute(y, {0, 1}), "number of dims");
  EXPECT_EQ(native::t(ar({3})).sizes(), IntArrayRef({3}));
  EXPECT_KILN_ERROR(native::t(y), "<= 2 dimensions");
  EXPECT_EQ(native::transpose(native::scalar_tensor(1.0), 0, -1).dim(), 0);
}

// ---- copies ----

TEST(View, ContiguousCloneCopy) {
  Tensor x = ar({2, 3});
  EXPECT_TRUE(native::contiguous(x).is_same(x));
  Tensor c = native::clone(x);
  EXPECT_NE(c.storage(), x.storage());
  EXPECT_EQ(values(c), values(x));
  Tensor ct = native::clone(native::t(x));
  EXPECT_TRUE(ct.is_contiguous());
  EXPECT_EQ(values(ct), (std::vector<double>{0, 3, 1, 4, 2, 5}));
  // copy_ broadcasts the source, converts its dtype, writes strided
  // destinations and bumps the version.
  Tensor dst = native::zeros({3, 2}, dtype(kFloat32));
  Tensor dst_t = native::t(dst);  // [2, 3] view of it
  const auto v0 = dst._version();
  native::copy_(dst_t, make({3}, {7, 8, 9}, kInt32));
  EXPECT_GT(dst._version(), v0);
  EXPECT_EQ(values(dst), (std::vector<double>{7, 7, 8, 8, 9, 9}));
  native::copy_(dst, native::scalar_tensor(true));
  EXPECT_EQ(values(dst), std::vector<double>(6, 1.0));
  EXPECT_KILN_ERROR(native::copy_(dst, ar({3})), "cannot be broadcast");
  native::copy_(dst, ar({2}));  // [2] does broadcast to [3, 2]
  EXPECT_EQ(values(dst), (std::vector<double>{0, 1, 0, 1, 0, 1}));
  EXPECT_KILN_ERROR(native::copy_(dst, ar({2, 3, 2})), "copy_");
}

TEST(View, ToEveryDtypePair) {
  const std::vector<DType> all = {kFloat64, kFloat32, kFloat16, kBFloat16, kInt64, kInt32, kUInt8, kBool};
  // Values every dtype holds exactly (uint8 has no negatives; bool maps to 0/1).
  const std::vector<double> base = {0, 1, 2, 3, 100, 127};
  for (DType from : all) {
    Tensor src = native::to(make({6}, base), from);
    const auto vs = values(src);
    for (DType to : all) {
      Tensor r = native::to(src, to);
      EXPECT_EQ(r.dtype(), to);
      if (from == to) {
        EXPECT_TRUE(r.is_same(src));
      }
      auto v = values(r);
      for (size_t i = 0; i < vs.size(); ++i) {
        const double e = to == kBool ? (vs[i] != 0 ? 1.0 : 0.0) : vs[i];
        EXPECT_EQ(v[i], e) << dtype_name(from) << " -> " << dtype_name(to) << " at " << i;
      }
    }
  }
  // Float to integer truncates toward zero; bool is "not zero" (fractions included).
  Tensor f = make({5}, {-2.75, -0.5, 0.25, 1.5, 2.9999}, kFloat32);
  EXPECT_EQ(values(native::to(f, kInt64)), (std::vector<double>{-2, 0, 0, 1, 2}));
  EXPECT_EQ(values(native::to(f, kInt32)), (std::vector<double>{-2, 0, 0, 1, 2}));
  EXPECT_EQ(values(native::to(f, kBool)), (std::vector<double>{1, 1, 1, 1, 1}));
  EXPECT_EQ(values(native::to(make({2}, {0.0, -0.0}), kBool)), (std::vector<double>{0, 0}));
  // Non-contiguous source.
  EXPECT_EQ(values(native::to(native::t(ar({2, 3})), kInt32)), (std::vector<double>{0, 3, 1, 4, 2, 5}));
}

TEST(View, ToHalfAndBFloat16RoundToNearestEven) {
  const double e10 = std::ldexp(1.0, -10), e11 = std::ldexp(1.0, -11);
  // float16: 10 mantissa bits. Ties go to the even neighbour.
  Tensor h = native::to(make({9}, {1 + e10, 1 + e11, 1 + 3 * e11, 1 + e11 + std::ldexp(1.0, -20), 65504, 65519, 65520,
                                   std::ldexp(1.0, -24), std::ldexp(1.0, -25)},
                             kFloat32),
                        kFloat16);
  EXPECT_EQ(values(h), (std::vector<double>{1 + e10, 1, 1 + 2 * e10, 1 + e10, 65504, 65504, INFINITY,
                                            std::ldexp(1.0, -24), 0}));
  EXPECT_EQ(values(native::to(make({2}, {3 * std::ldexp(1.0, -26), -3 * std::ldexp(1.0, -26)}, kFloat32), kFloat16)),
            (std::vector<double>{std::ldexp(1.0, -24), -std::ldexp(1.0, -24)}));
  // bfloat16: 7 mantissa bits.
  const double b7 = std::ldexp(1.0, -7), b8 = std::ldexp(1.0, -8);
  Tensor b = native::to(make({5}, {1 + b7, 1 + b8, 1 + 3 * b8, 3.0e38, -1.0e-3}, kFloat32), kBFloat16);
  auto vb = values(b);
  EXPECT_EQ(vb[0], 1 + b7);
  EXPECT_EQ(vb[1], 1.0);
  EXPECT_EQ(vb[2], 1 + 2 * b7);
  EXPECT_NEAR(vb[3], 3.0e38, 3.0e38 * b8);
  EXPECT_NEAR(vb[4], -1.0e-3, 1.0e-3 * b8);
  EXPECT_EQ(values(native::to(make({1}, {3.4028234663852886e38}, kFloat32), kBFloat16))[0], INFINITY);
  // NaN survives both ways; f16 -> bf16 goes through float.
  auto vn = values(native::to(native::to(make({1}, {NAN}, kFloat32), kFloat16), kBFloat16));
  EXPECT_TRUE(std::isnan(vn[0]));
  EXPECT_EQ(values(native::to(native::to(make({1}, {1 + e10}), kFloat16), kBFloat16))[0], 1.0);
  // Half to integers and back.
  EXPECT_EQ(values(native::to(native::to(make({3}, {-3.5, 0.5, 200.75}), kFloat16), kInt32)),
            (std::vector<double>{-3, 0, 200}));
}

// ---- printing, as torch prints ----

TEST(View, PrintsLikeTorch) {
  EXPECT_EQ(str(make({2, 2}, {1, 2, 3, 4}, kFloat32)), "tensor([[1., 2.],\n        [3., 4.]])");
  EXPECT_EQ(str(make({2}, {0.1, 0.2}, kFloat32)), "tensor([0.1000, 0.2000])");
  EXPECT_EQ(str(make({3}, {1, 2, 3}, kInt64)), "tensor([1, 2, 3])");
  EXPECT_EQ(str(make({2}, {1, 0}, kBool)), "tensor([ True, False])");
  EXPECT_EQ(str(make({1}, {1.5}, kFloat64)), "tensor([1.5000], dtype=kiln.float64)");
  EXPECT_EQ(str(make({2}, {1, 2}, kInt32)), "tensor([1, 2], dtype=kiln.int32)");
  EXPECT_EQ(str(make({1}, {0.1}, kFloat16)), "tensor([0.1000], dtype=kiln.float16)");
  EXPECT_EQ(str(make({2}, {1, 10}, kFloat32)), "tensor([ 1., 10.])");
  EXPECT_EQ(str(make({2}, {-1.5, 10.25}, kFloat32)), "tensor([-1.5000, 10.2500])");
  EXPECT_EQ(str(make({2}, {0, 0.5}, kFloat32)), "tensor([0.0000, 0.5000])");
  // Scientific when the range is wide or values tiny/huge.
  EXPECT_EQ(str(make({2}, {1, 2000}, kFloat32)), "tensor([1.0000e+00, 2.0000e+03])");
  EXPECT_EQ(str(make({2}, {1e-5, 1}, kFloat32)), "tensor([1.0000e-05, 1.0000e+00])");
  EXPECT_EQ(str(make({1}, {1e9}, kFloat32)), "tensor([1.0000e+09])");
  // Non-finite values do not count towards the style or width.
  EXPECT_EQ(str(make({3}, {1, -INFINITY, NAN}, kFloat32)), "tensor([1., -inf, nan])");
  EXPECT_EQ(str(make({2}, {0, NAN}, kFloat32)), "tensor([0., nan])");
  // 0-dim.
  EXPECT_EQ(str(native::scalar_tensor(2.0)), "tensor(2.)");
  EXPECT_EQ(str(native::scalar_tensor(0.5)), "tensor(0.5000)");
  EXPECT_EQ(str(native::scalar_tensor(7)), "tensor(7)");
  EXPECT_EQ(str(native::scalar_tensor(true)), "tensor(True)");
  // Empty.
  EXPECT_EQ(str(native::zeros({0})), "tensor([])");
  EXPECT_EQ(str(native::zeros({2, 0})), "tensor([], size=(2, 0))");
  EXPECT_EQ(str(native::zeros({0}, dtype(kInt64))), "tensor([], dtype=kiln.int64)");
  // 3-D: a blank line between matrices.
  EXPECT_EQ(str(ar({2, 2, 2}, kInt64)), "tensor([[[0, 1],\n         [2, 3]],\n\n        [[4, 5],\n         [6, 7]]])");
  // Non-contiguous.
  EXPECT_EQ(str(native::t(ar({2, 2}, kInt64))), "tensor([[0, 2],\n        [1, 3]])");
}

TEST(View, PrintsLongTensorsLikeTorch) {
  // Rows wrap at 80 columns.
  EXPECT_EQ(str(ar({20}, kFloat32)),
            "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n"
            "        14., 15., 16., 17., 18., 19.])");
  // Over 1000 elements: edges only, formatted from the edges alone.
  EXPECT_EQ(str(native::arange(1001)), "tensor([   0,    1,    2,  ...,  998,  999, 1000])");
  EXPECT_EQ(str(ar({1000, 2}, kInt64)),
            "tensor([[   0,    1],\n        [   2,    3],\n        [   4,    5],\n        ...,\n"
            "        [1994, 1995],\n        [1996, 1997],\n        [1998, 1999]])");
  EXPECT_EQ(str(ar({2, 1000}, kInt64)),
            "tensor([[   0,    1,    2,  ...,  997,  998,  999],\n"
            "        [1000, 1001, 1002,  ..., 1997, 1998, 1999]])");
  // A suffix that does not fit on the last line goes on its own.
  Tensor t9 = native::to(native::full({9}, 0.5), kFloat64);
  EXPECT_EQ(str(t9),
            "tensor([0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000],\n"
            "       dtype=kiln.float64)");
}

// contiguous() of a view whose last two dims are column-major takes the
// tiled transpose path; check it element by element, with batch dims,
// sizes that are not multiples of the tile, a sliced source (leading
// dimension larger than the rows) and a dtype conversion.
TEST(View, ContiguousOfTransposedBatchMatchesElementwise) {
  const int64_t batch = 3, rows = 45, cols = 70, padded = 50;
  std::vector<double> vals(static_cast<size_t>(batch * cols * padded));
  for (size_t i = 0; i < vals.size(); ++i) vals[i] = static_cast<double>(i % 9973) - 4000.5;
  // base[b][j][i] for i < padded; the view is base[:, :, :rows] transposed -> [batch, rows, cols].
  Tensor base = kiln::testing::make({batch, cols, padded}, vals, kFloat32);
  Tensor view = native::transpose(native::narrow(base, 2, 0, rows), 1, 2);
  ASSERT_EQ(view.stride(1), 1);
  for (DType out_dtype : {kFloat32, kFloat64}) {
    Tensor out = native::to(native::contiguous(view), out_dtype);
    Tensor converted = native::clone(native::to(view, out_dtype));
    auto got = values(out), got_converted = values(converted);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          const double want = vals[static_cast<size_t>((b * cols + j) * padded + i)];
          const size_t at = static_cast<size_t>((b * rows + i) * cols + j);
          ASSERT_EQ(got[at], want) << "b " << b << " i " << i << " j " << j;
          ASSERT_EQ(got_converted[at], want) << "b " << b << " i " << i << " j " << j;
        }
  }
}
