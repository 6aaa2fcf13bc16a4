// kiln::native::foreach_norm, foreach_mul_ and amp_unscale_ (the multi-tensor
// ops behind gradient clipping and loss scaling) against float64 loops here:
// p = 1, 2, inf and the per-tensor fallback for other p; contiguous,
// transposed, permuted, sliced, 0-dim and empty tensors; inf and NaN; f32,
// f64, bf16, f16; a tensor of more than 1M elements and a list of many
// small ones; torch's error conditions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kiln/core/parallel.h"
#include "test_util.h"

using namespace kiln;
using kiln::testing::all_close;
using kiln::testing::kInf;
using kiln::testing::kNaN;
using kiln::testing::make;
using kiln::testing::sample;
using kiln::testing::values;

namespace {

// The p-norm of xs in float64, torch.linalg.vector_norm's definition.
double ref_norm(const std::vector<double>& xs, double p) {
  if (std::isinf(p)) {
    double m = p > 0 ? 0.0 : kInf;
    for (double x : xs) {
      if (std::isnan(x)) return kNaN;
      m = p > 0 ? std::max(m, std::fabs(x)) : std::min(m, std::fabs(x));
    }
    return m;
  }
  double s = 0;
  for (double x : xs) s += p == 0 ? (x != 0 ? 1.0 : 0.0) : std::pow(std::fabs(x), p);
  return p == 0 ? s : std::pow(s, 1.0 / p);
}

Tensor ref_norms(const std::vector<Tensor>& ts, double p) {
  std::vector<double> r;
  for (const Tensor& t : ts) r.push_back(ref_norm(values(t), p));
  return make({static_cast<int64_t>(r.size())}, r);
}

Tensor random(IntArrayRef sizes, DType dtype, unsigned seed, double lo = -2, double hi = 2) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  return make(sizes, sample(n, lo, hi, seed), dtype);
}

// One of each layout, in `dtype`: contiguous, transposed, permuted 3-D,
// sliced with gaps (a step and a column range), 0-dim, one element, empty.
std::vector<Tensor> layouts(DType dtype, bool with_empty = true) {
  std::vector<Tensor> ts = {
      random({3, 4}, dtype, 1),
      native::t(random({5, 7}, dtype, 2)),
      native::permute(random({2, 3, 4}, dtype, 3), {2, 0, 1}),
      native::slice(native::slice(random({6, 8}, dtype, 4), 0, 1, std::nullopt, 2), 1, 1, 5),
      native::select(random({4}, dtype, 5), 0, 2),
      random({1}, dtype, 6),
  };
  if (with_empty) ts.push_back(native::empty({0, 3}, TensorOptions().dtype(dtype)));
  return ts;
}

DType stat_of(DType d) { return d == kFloat64 ? kFloat64 : kFloat32; }

}  // namespace

TEST(ForeachNorm, FusedNormsMatchFloat64Loop) {
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kFloat16}) {
    for (double p : {1.0, 2.0, kInf}) {
      const auto ts = layouts(dt, /*with_empty=*/!std::isinf(p));
      const Tensor got = native::foreach_norm(ts, p);
      EXPECT_EQ(got.dtype(), stat_of(dt));
      EXPECT_EQ(got.dim(), 1);
      // Sums accumulate in double and round once: within a rounding of the
      // stat dtype (16-bit values are exact in float, as are their squares).
      const double rtol = dt == kFloat64 ? 1e-14 : 1e-6;
      EXPECT_TRUE(all_close(got, ref_norms(ts, p), rtol, 0)) << dtype_name(dt) << " p = " << p;
    }
  }
}

TEST(ForeachNorm, OtherOrdersFallBackPerTensor) {
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    for (double p : {0.0, 0.5, 3.0, -kInf}) {
      const auto ts = layouts(dt, /*with_empty=*/!std::isinf(p));
      const Tensor got = native::foreach_norm(ts, p);
      EXPECT_EQ(got.dtype(), stat_of(dt));
      EXPECT_TRUE(all_close(got, ref_norms(ts, p), dt == kFloat64 ? 1e-13 : 1e-5, 0))
          << dtype_name(dt) << " p = " << p;
    }
  }
}

TEST(ForeachNorm, EmptyTensorsHaveNormZero) {
  const std::vector<Tensor> ts = {native::empty({0}), native::ones({2}), native::empty({3, 0, 2})};
  for (double p : {1.0, 2.0, 0.0, 3.0}) {
    const auto v = values(native::foreach_norm(ts, p));
    EXPECT_EQ(v[0], 0.0);
    EXPECT_EQ(v[2], 0.0);
  }
}

TEST(ForeachNorm, InfinityAndNaNPropagateAsTorch) {
  const Tensor with_inf = make({4}, {1, -kInf, 2, 3}, kFloat32);
  const Tensor with_nan = make({4}, {1, kNaN, 2, 3}, kFloat32);
  const Tensor both = make({5}, {kInf, 1, kNaN, -kInf, 0}, kFloat32);
  // A NaN in the ragged tail of the lanes.
  const Tensor tail = native::cat({native::ones({39}), make({1}, {kNaN}, kFloat32)});
  for (double p : {1.0, 2.0, kInf}) {
    const auto v = values(native::foreach_norm({with_inf, with_nan, both, tail}, p));
    EXPECT_EQ(v[0], kInf) << "p = " << p;
    EXPECT_TRUE(std::isnan(v[1])) << "p = " << p;
    EXPECT_TRUE(std::isnan(v[2])) << "p = " << p;
    EXPECT_TRUE(std::isnan(v[3])) << "p = " << p;
  }
  // Squares are taken in float for float32 input: 1e20^2 overflows, as torch's norm.
  const Tensor huge = make({2}, {1e20, 1}, kFloat32);
  EXPECT_EQ(values(native::foreach_norm({huge}, 2))[0], kInf);
  EXPECT_NEAR(values(native::foreach_norm({huge}, 1))[0], 1e20, 1e14);
  // ... and not for float64.
  EXPECT_NEAR(values(native::foreach_norm({make({2}, {1e20, 1})}, 2))[0], 1e20, 1e5);
}

TEST(ForeachNorm, BigTensorAndThreadCountIndependence) {
  const int64_t n = (int64_t{1} << 20) + 12345;  // many chunks, a ragged last one
  for (DType dt : {kFloat32, kFloat64}) {
    const Tensor big = random({n}, dt, 7, -1, 1);
    const Tensor wide = native::t(random({1000, 1100}, dt, 8, -3, 1));  // transposed, 1.1M elements
    const std::vector<Tensor> ts = {big, wide, random({17}, dt, 9)};
    for (double p : {1.0, 2.0, kInf}) {
      const Tensor got = native::foreach_norm(ts, p);
      EXPECT_TRUE(all_close(got, ref_norms(ts, p), dt == kFloat64 ? 1e-13 : 1e-6, 0))
          << dtype_name(dt) << " p = " << p;
      // Chunks are combined in a fixed order: one thread gives the same bits.
      const int threads = get_num_threads();
      set_num_threads(1);
      const Tensor serial = native::foreach_norm(ts, p);
      set_num_threads(threads);
      EXPECT_EQ(values(serial), values(got)) << dtype_name(dt) << " p = " << p;
    }
  }
}

TEST(ForeachNorm, ManySmallTensors) {
  std::vector<Tensor> ts;
  for (unsigned i = 0; i < 300; ++i) {
    const int64_t rows = i % 7, cols = 1 + (i * 13) % 40;
    ts.push_back(random({rows, cols}, i % 3 == 0 ? kBFloat16 : kFloat32, 100 + i));
  }
  for (double p : {1.0, 2.0}) EXPECT_TRUE(all_close(native::foreach_norm(ts, p), ref_norms(ts, p), 1e-6, 0));
}

TEST(ForeachNorm, MixedDtypesKeepListOrderAndPromote) {
  const std::vector<Tensor> ts = {random({5}, kFloat32, 1), random({3, 2}, kFloat64, 2), random({4}, kBFloat16, 3),
                                  random({2, 2}, kFloat32, 4)};
  const Tensor got = native::foreach_norm(ts, 2);
  EXPECT_EQ(got.dtype(), kFloat64);
  EXPECT_TRUE(all_close(got, ref_norms(ts, 2), 1e-6, 0));
  const std::vector<Tensor> halves = {random({5}, kBFloat16, 5), random({3}, kFloat16, 6), random({2}, kFloat32, 7)};
  const Tensor h = native::foreach_norm(halves, kInf);
  EXPECT_EQ(h.dtype(), kFloat32);
  EXPECT_TRUE(all_close(h, ref_norms(halves, kInf), 0, 0));
}

TEST(ForeachNorm, Errors) {
  EXPECT_KILN_ERROR(native::foreach_norm({}, 2), "Tensor list must have at least one tensor");
  EXPECT_KILN_ERROR(native::foreach_norm({native::ones({2}), native::ones({2}, TensorOptions().dtype(kInt64))}, 2),
                    "Expected a floating point tensor as input. Got int64");
  EXPECT_KILN_ERROR(native::foreach_norm({native::ones({2}), Tensor()}, 2), "tensor 1 of the list is undefined");
  EXPECT_KILN_ERROR(native::foreach_norm({native::ones({2}), native::empty({0})}, kInf),
                    "cannot compute the inf norm on an empty tensor");
  EXPECT_KILN_ERROR(native::foreach_norm({native::empty({0})}, -kInf), "norm on an empty tensor");
}

TEST(ForeachMul, ScalesInPlaceInTheComputeType) {
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kFloat16}) {
    for (DType st : {kFloat32, kFloat64}) {
      const double scale = 0.1234567890123;
      auto ts = layouts(dt);
      const Tensor base = random({6, 8}, dt, 11);  // the slice below is every other row, columns 1..4
      ts.push_back(native::slice(native::slice(base, 0, 1, std::nullopt, 2), 1, 1, 5));
      const Tensor before_base = native::clone(base);
      std::vector<Tensor> expected;
      // The scale as the compute type holds it (float for all but float64),
      // the product rounded once to it, then stored in dt.
      const double stored = native::scalar_tensor(scale, TensorOptions().dtype(st)).item<double>();
      const double s = dt == kFloat64 ? stored : static_cast<double>(static_cast<float>(stored));
      for (const Tensor& t : ts) {
        std::vector<double> v = values(t);
        for (double& x : v) x = dt == kFloat64 ? x * s : static_cast<double>(static_cast<float>(x * s));
        expected.push_back(make(t.sizes(), v, dt));
      }
      const uint32_t version = ts[0]._version();
      native::foreach_mul_(ts, native::scalar_tensor(scale, TensorOptions().dtype(st)));
      EXPECT_GT(ts[0]._version(), version);
      for (size_t i = 0; i < ts.size(); ++i) {
        EXPECT_TRUE(all_close(ts[i], expected[i], 0, 0))
            << dtype_name(dt) << " scale " << dtype_name(st) << " tensor " << i;
      }
      // The rows and columns outside the slice are untouched.
      const auto b = values(base), b0 = values(before_base);
      for (int64_t r = 0; r < 6; ++r) {
        for (int64_t c = 0; c < 8; ++c) {
          if (r % 2 == 1 && c >= 1 && c < 5) continue;
          EXPECT_EQ(b[r * 8 + c], b0[r * 8 + c]) << "row " << r << " col " << c;
        }
      }
    }
  }
}

TEST(ForeachMul, MixedDtypesBigTensorsAndSpecialScales) {
  const Tensor big = random({(int64_t{1} << 20) + 3}, kFloat32, 12);
  const Tensor small = random({3}, kFloat64, 13);
  const Tensor half = make({4}, {1, -kInf, kNaN, 3}, kBFloat16);
  const auto vb = values(big), vs = values(small);
  native::foreach_mul_({big, small, half}, native::scalar_tensor(0.5));
  const auto gb = values(big), gs = values(small), gh = values(half);
  for (size_t i = 0; i < vb.size(); i += 997) ASSERT_EQ(gb[i], vb[i] * 0.5);
  for (size_t i = 0; i < vs.size(); ++i) EXPECT_EQ(gs[i], vs[i] * 0.5);
  EXPECT_EQ(gh[0], 0.5);
  EXPECT_EQ(gh[1], -kInf);
  EXPECT_TRUE(std::isnan(gh[2]));
  // A NaN scale makes everything NaN; an integer scale is a number.
  Tensor a = make({2}, {1, 2}, kFloat32);
  native::foreach_mul_({a}, native::scalar_tensor(3, TensorOptions().dtype(kInt64)));
  EXPECT_EQ(values(a), (std::vector<double>{3, 6}));
  native::foreach_mul_({a}, native::scalar_tensor(kNaN, TensorOptions().dtype(kFloat32)));
  for (double x : values(a)) EXPECT_TRUE(std::isnan(x));
  // Empty tensors are fine.
  native::foreach_mul_({native::empty({0}), native::empty({2, 0})}, native::scalar_tensor(2.0));
}

TEST(ForeachMul, ScaleSharingMemoryWithTheListIsRefused) {
  // torch refuses a partial overlap, and gives list-order-dependent results
  // for a scale that is itself in the list; both are errors here.
  Tensor a = make({3}, {2, 3, 4}, kFloat32);
  Tensor b = make({2}, {5, 6}, kFloat32);
  Tensor c = native::scalar_tensor(3.0, TensorOptions().dtype(kFloat32));
  EXPECT_KILN_ERROR(native::foreach_mul_({a, b}, native::select(a, 0, 0)), "refer to the same memory");
  EXPECT_KILN_ERROR(native::foreach_mul_({b, c}, c), "refer to the same memory");
  EXPECT_EQ(values(a), (std::vector<double>{2, 3, 4}));
  native::foreach_mul_({a, b}, native::clone(native::select(a, 0, 0)));
  EXPECT_EQ(values(a), (std::vector<double>{4, 6, 8}));
  EXPECT_EQ(values(b), (std::vector<double>{10, 12}));
}

TEST(ForeachMul, Errors) {
  const Tensor two = native::scalar_tensor(2.0);
  EXPECT_KILN_ERROR(native::foreach_mul_({}, two), "Tensor list must have at least one tensor");
  EXPECT_KILN_ERROR(native::foreach_mul_({native::ones({2})}, native::ones({1})),
                    "scalar tensor expected to be 0 dim but it has 1 dimensions and 1 elements");
  EXPECT_KILN_ERROR(native::foreach_mul_({native::ones({2})}, native::ones({2})), "expected to be 0 dim");
  EXPECT_KILN_ERROR(native::foreach_mul_({native::ones({2}), native::ones({2}, TensorOptions().dtype(kInt32))}, two),
                    "Expected a floating point tensor as input. Got int32");
  EXPECT_KILN_ERROR(native::foreach_mul_({native::expand(native::ones({1}), {3})}, two),
                    "more than one element of the written-to tensor refers to a single memory location");
  EXPECT_KILN_ERROR(native::foreach_mul_({native::ones({2})}, Tensor()), "scale is undefined");
}

TEST(AmpUnscale, ScalesEverythingAndFlagsNonFinite) {
  const TensorOptions f32 = TensorOptions().dtype(kFloat32);
  const Tensor inv = native::scalar_tensor(0.25, f32);
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kFloat16}) {
    // Clean: scaled, the flag left as it was (0 stays 0, 0.5 stays 0.5).
    for (double start : {0.0, 0.5}) {
      auto ts = layouts(dt);
      std::vector<Tensor> expected;
      for (const Tensor& t : ts) {
        auto v = values(t);
        for (double& x : v) x *= 0.25;  // exact in every dtype
        expected.push_back(make(t.sizes(), v, dt));
      }
      Tensor found = native::full({1}, start, f32);
      native::amp_unscale_(ts, inv, found);
      EXPECT_EQ(values(found)[0], start) << dtype_name(dt);
      for (size_t i = 0; i < ts.size(); ++i) EXPECT_TRUE(all_close(ts[i], expected[i], 0, 0)) << dtype_name(dt);
    }
    // One non-finite element anywhere in the list sets the flag; every tensor is still scaled.
    for (double bad : {kInf, -kInf, kNaN}) {
      Tensor a = random({40, 50}, dt, 20);
      Tensor b = native::t(random({7, 9}, dt, 21));
      const auto va = values(a);
      native::fill_(native::select(native::select(b, 0, 8), 0, 6), Scalar(bad));
      Tensor found = native::zeros({}, f32);
      native::amp_unscale_({a, b}, inv, found);
      EXPECT_EQ(values(found)[0], 1.0) << dtype_name(dt) << " " << bad;
      EXPECT_EQ(values(a)[7], va[7] * 0.25);
      const double got = values(b)[8 * 7 + 6];
      EXPECT_TRUE(std::isnan(bad) ? std::isnan(got) : got == bad);
    }
  }
}

TEST(AmpUnscale, MixedDtypesBigListAndEmpty) {
  const TensorOptions f32 = TensorOptions().dtype(kFloat32);
  std::vector<Tensor> ts;
  for (unsigned i = 0; i < 100; ++i) ts.push_back(random({1 + i % 9, 5}, i % 2 ? kFloat32 : kBFloat16, 30 + i));
  ts.push_back(random({(int64_t{1} << 20) + 1}, kFloat64, 31));
  ts.push_back(native::empty({0}, f32));
  Tensor found = native::zeros({1}, f32);
  native::amp_unscale_(ts, native::scalar_tensor(1.0, f32), found);
  EXPECT_EQ(values(found)[0], 0.0);
  // The last element of the big float64 tensor, now inf.
  native::fill_(native::select(ts[100], 0, (int64_t{1} << 20)), Scalar(kInf));
  native::amp_unscale_(ts, native::scalar_tensor(1.0, f32), found);
  EXPECT_EQ(values(found)[0], 1.0);
  // An empty list does nothing.
  Tensor untouched = native::zeros({1}, f32);
  native::amp_unscale_({}, native::scalar_tensor(2.0, f32), untouched);
  EXPECT_EQ(values(untouched)[0], 0.0);
}

TEST(AmpUnscale, Errors) {
  const TensorOptions f32 = TensorOptions().dtype(kFloat32);
  const Tensor inv = native::ones({1}, f32), found = native::zeros({1}, f32);
  const std::vector<Tensor> ts = {native::ones({2}, f32)};
  EXPECT_KILN_ERROR(native::amp_unscale_(ts, inv, native::zeros({1}, TensorOptions().dtype(kFloat64))),
                    "found_inf must be a float tensor");
  EXPECT_KILN_ERROR(native::amp_unscale_(ts, native::ones({1}, TensorOptions().dtype(kFloat64)), found),
                    "inv_scale must be a float tensor");
  EXPECT_KILN_ERROR(native::amp_unscale_(ts, native::ones({2}, f32), found), "inv_scale must be a 1-element tensor");
  EXPECT_KILN_ERROR(native::amp_unscale_(ts, inv, native::zeros({2}, f32)), "found_inf must be a 1-element tensor");
  EXPECT_KILN_ERROR(native::amp_unscale_({native::ones({2}, TensorOptions().dtype(kInt64))}, inv, found),
                    "Expected a floating point tensor as input. Got int64");
  EXPECT_KILN_ERROR(native::amp_unscale_({native::expand(native::ones({1}, f32), {4})}, inv, found),
                    "more than one element");
}

TEST(GroupTensors, ByDeviceAndDtypeInOrderOfAppearance) {
  const std::vector<Tensor> ts = {native::ones({1}), native::ones({1}, TensorOptions().dtype(kFloat64)),
                                  native::ones({1}), native::ones({1}, TensorOptions().dtype(kBFloat16))};
  const auto groups = native::group_tensors(ts);
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0].index, (std::vector<size_t>{0, 2}));
  EXPECT_EQ(groups[1].index, (std::vector<size_t>{1}));
  EXPECT_EQ(groups[2].dtype, kBFloat16);
  EXPECT_TRUE(groups[0].tensors[1].is_same(ts[2]));
  const auto by_device = native::group_tensors(ts, /*by_dtype=*/false);
  ASSERT_EQ(by_device.size(), 1u);
  EXPECT_EQ(by_device[0].index, (std::vector<size_t>{0, 1, 2, 3}));
}
