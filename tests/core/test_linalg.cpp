// mm, bmm, matmul, addmm, baddbmm, linear and the CPU bmm kernel, against a
// naive float64 triple loop written here.
#include <cmath>
#include <limits>

#include "kiln/core/backend.h"
#include "kiln/core/native.h"
#include "test_util.h"

using namespace kiln;
using kiln::testing::all_close;
using kiln::testing::make;
using kiln::testing::values;

namespace {

Generator& gen() {
  static Generator g(1234);
  return g;
}

Tensor rnd(IntArrayRef sizes, DType dt = kFloat64) { return native::randn(sizes, dtype(dt), &gen()); }

// Batched reference: a [..., M, K] @ b [..., K, N] with equal batch shapes,
// each a float64 loop over row-major values.
Tensor ref_bmm(const Tensor& a, const Tensor& b) {
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  const auto va = values(a), vb = values(b);
  DimVector shape(a.sizes().begin(), a.dim() - 1);
  shape.push_back(N);
  int64_t nb = 1;
  for (int64_t d = 0; d + 2 < a.dim(); ++d) nb *= a.size(d);
  std::vector<double> out(static_cast<size_t>(nb * M * N), 0.0);
  for (int64_t p = 0; p < nb; ++p)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += va[p * M * K + i * K + k] * vb[p * K * N + k * N + j];
        out[p * M * N + i * N + j] = s;
      }
  return make(shape, out);
}

// A reference for torch.matmul's batched case: broadcast, then ref_bmm.
Tensor ref_matmul(const Tensor& a, const Tensor& b) {
  Tensor a2 = a.dim() == 1 ? native::unsqueeze(a, 0) : a;
  Tensor b2 = b.dim() == 1 ? native::unsqueeze(b, 1) : b;
  DimVector ba(a2.sizes().begin(), a2.dim() - 2), bb(b2.sizes().begin(), b2.dim() - 2);
  DimVector batch = native::broadcast_shapes(ba, bb, "ref");
  DimVector sa = batch, sb = batch;
  sa.push_back(a2.size(-2));
  sa.push_back(a2.size(-1));
  sb.push_back(b2.size(-2));
  sb.push_back(b2.size(-1));
  Tensor r = ref_bmm(native::contiguous(native::expand(a2, sa)), native::contiguous(native::expand(b2, sb)));
  if (a.dim() == 1) r = native::squeeze(r, -2);
  if (b.dim() == 1) r = native::squeeze(r, -1);
  return r;
}

double tol(DType dt) { return dt == kFloat64 ? 1e-12 : dt == kFloat32 ? 1e-5 : 1e-2; }

}  // namespace

TEST(Linalg, MmMatchesNaiveLoop) {
  for (DType dt : {kFloat32, kFloat64}) {
    for (auto [m, k, n] : {std::tuple{1, 1, 1}, {2, 3, 4}, {7, 5, 3}, {33, 17, 65}, {128, 64, 96}}) {
      Tensor a = rnd({m, k}, dt), b = rnd({k, n}, dt);
      Tensor c = native::mm(a, b);
      EXPECT_EQ(c.dtype(), dt);
      EXPECT_TRUE(all_close(c, ref_bmm(a, b), tol(dt), tol(dt))) << m << "x" << k << "x" << n;
    }
  }
}

TEST(Linalg, MmStridedOperandsAreReadInPlaceOrCopied) {
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor base_a = rnd({9, 12}, dt), base_b = rnd({12, 10}, dt);
    // Transposed (column-major) operands.
    Tensor at = native::t(rnd({6, 9}, dt)), bt = native::t(rnd({5, 6}, dt));
    EXPECT_TRUE(all_close(native::mm(at, bt), ref_bmm(at, bt), tol(dt), tol(dt)));
    // Row-major with a padded leading dimension (narrowed columns).
    Tensor an = native::narrow(base_a, 1, 2, 7);
    Tensor bn2 = native::narrow(native::narrow(base_b, 0, 0, 7), 1, 1, 4);
    EXPECT_TRUE(all_close(native::mm(an, bn2), ref_bmm(an, bn2), tol(dt), tol(dt)));
    // Column-major with padding: a transposed, narrowed view.
    Tensor atn = native::narrow(native::t(base_a), 0, 1, 5);  // [5, 9], strides (1, 12)
    EXPECT_TRUE(all_close(native::mm(atn, native::narrow(base_b, 0, 0, 9)),
                          ref_bmm(atn, native::narrow(base_b, 0, 0, 9)), tol(dt), tol(dt)));
    // Neither layout: stepped slices and expanded (stride 0) operands are copied.
    Tensor as = native::slice(native::slice(base_a, 0, 0, 9, 2), 1, 0, 12, 3);  // [5, 4]
    Tensor bs = native::expand(rnd({1, 6}, dt), {4, 6});
    EXPECT_TRUE(all_close(native::mm(as, bs), ref_bmm(as, bs), tol(dt), tol(dt)));
  }
}

TEST(Linalg, BmmKernelWritesStridedOutWithBetaAlpha) {
  Backend& cpu = backend(kCPU);
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor a = rnd({3, 4, 5}, dt), b = rnd({3, 5, 6}, dt);
    const auto r = values(ref_bmm(a, b));
    // Out transposed in its last two dims (column-major), and out strided with a step.
    Tensor out_t = native::transpose(native::zeros({3, 6, 4}, dtype(dt)), 1, 2);
    Tensor big = native::zeros({3, 8, 12}, dtype(dt));
    Tensor out_s = native::slice(native::slice(big, 1, 0, 8, 2), 2, 0, 12, 2);  // [3, 4, 6], strides (96, 24, 2)
    for (const Tensor& out : {out_t, out_s}) {
      Tensor init = rnd({3, 4, 6}, dt);
      native::copy_(out, init);
      const auto vi = values(init);
      cpu.bmm(a, b, out, 0.5, 2.0);
      auto got = values(out);
      for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], 0.5 * vi[i] + 2.0 * r[i], 10 * tol(dt)) << i;
    }
    // The untouched elements of the strided parent stay zero.
    auto vb = values(big);
    for (int64_t p = 0; p < 3; ++p)
      for (int64_t i = 0; i < 8; ++i)
        for (int64_t j = 0; j < 12; ++j)
          if (i % 2 || j % 2) {
            EXPECT_EQ(vb[p * 96 + i * 12 + j], 0.0);
          }
  }
}

TEST(Linalg, BetaZeroIgnoresNaNInOut) {
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor a = rnd({2, 3, 4}, dt), b = rnd({2, 4, 5}, dt);
    for (bool transposed_out : {false, true}) {
      Tensor out = transposed_out ? native::transpose(native::empty({2, 5, 3}, dtype(dt)), 1, 2)
                                  : native::empty({2, 3, 5}, dtype(dt));
      native::copy_(out, native::full({2, 3, 5}, std::numeric_limits<double>::quiet_NaN(), dtype(dt)));
      backend(kCPU).bmm(a, b, out, 0, 1);
      EXPECT_TRUE(all_close(out, ref_bmm(a, b), tol(dt), tol(dt)));
    }
    // K == 0: the product is all zeros and NaN in out is still ignored.
    Tensor out = native::full({2, 3, 5}, std::numeric_limits<double>::quiet_NaN(), dtype(dt));
    backend(kCPU).bmm(rnd({2, 3, 0}, dt), rnd({2, 0, 5}, dt), out, 0, 1);
    EXPECT_EQ(values(out), std::vector<double>(30, 0.0));
    // addmm with beta = 0 ignores NaN in input, as torch.
    Tensor nan_in = native::full({3, 5}, std::numeric_limits<double>::quiet_NaN(), dtype(dt));
    Tensor m1 = rnd({3, 4}, dt), m2 = rnd({4, 5}, dt);
    EXPECT_TRUE(all_close(native::addmm(nan_in, m1, m2, 0, 1), ref_bmm(m1, m2), tol(dt), tol(dt)));
  }
}

TEST(Linalg, BmmBatchStridesIncludingExpanded) {
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor a = rnd({4, 3, 5}, dt), b = rnd({4, 5, 2}, dt);
    EXPECT_TRUE(all_close(native::bmm(a, b), ref_bmm(a, b), tol(dt), tol(dt)));
    // Batch dim expanded with stride 0, and a permuted batch layout.
    Tensor be = native::expand(rnd({1, 5, 2}, dt), {4, 5, 2});
    EXPECT_TRUE(all_close(native::bmm(a, be), ref_bmm(a, native::contiguous(be)), tol(dt), tol(dt)));
    Tensor ap = native::permute(rnd({3, 4, 5}, dt), {1, 0, 2});  // batch stride 5, row stride 20
    EXPECT_TRUE(all_close(native::bmm(ap, b), ref_bmm(ap, b), tol(dt), tol(dt)));
    // Many small matrices (the batch-parallel path) and a few large ones.
    Tensor sa = rnd({64, 8, 7}, dt), sb = rnd({64, 7, 9}, dt);
    EXPECT_TRUE(all_close(native::bmm(sa, sb), ref_bmm(sa, sb), tol(dt), tol(dt)));
    Tensor la = rnd({2, 70, 90}, dt), lb = native::transpose(rnd({2, 80, 90}, dt), 1, 2);
    EXPECT_TRUE(all_close(native::bmm(la, lb), ref_bmm(la, lb), 10 * tol(dt), 10 * tol(dt)));
  }
}

TEST(Linalg, MatmulCases) {
  for (DType dt : {kFloat32, kFloat64}) {
    auto check = [&](const Tensor& a, const Tensor& b, IntArrayRef shape) {
      Tensor c = native::matmul(a, b);
      EXPECT_EQ(c.sizes(), shape) << a.sizes() << " @ " << b.sizes();
      EXPECT_TRUE(all_close(c, ref_matmul(a, b), 10 * tol(dt), 10 * tol(dt))) << a.sizes() << " @ " << b.sizes();
    };
    check(rnd({4}, dt), rnd({4}, dt), {});
    check(rnd({3, 4}, dt), rnd({4}, dt), {3});
    check(rnd({4}, dt), rnd({4, 5}, dt), {5});
    check(rnd({3, 4}, dt), rnd({4, 5}, dt), {3, 5});
    check(rnd({2, 3, 4}, dt), rnd({4, 5}, dt), {2, 3, 5});        // folded into one gemm
    check(rnd({2, 3, 4}, dt), rnd({4}, dt), {2, 3});
    check(rnd({4}, dt), rnd({2, 4, 5}, dt), {2, 5});
    check(rnd({3, 4}, dt), rnd({2, 4, 5}, dt), {2, 3, 5});
    check(rnd({2, 1, 3, 4}, dt), rnd({5, 4, 2}, dt), {2, 5, 3, 2});  // broadcast batch dims
    check(rnd({1, 3, 4}, dt), rnd({6, 4, 2}, dt), {6, 3, 2});
    check(rnd({2, 3, 2, 3, 4}, dt), rnd({3, 1, 4, 2}, dt), {2, 3, 2, 3, 2});
    // Non-viewable left operand with a 2-D right: batched with stride-0 weights.
    check(native::permute(rnd({3, 2, 4}, dt), {1, 0, 2}), rnd({4, 5}, dt), {2, 3, 5});
    check(native::transpose(rnd({2, 4, 3}, dt), 1, 2), rnd({4, 5}, dt), {2, 3, 5});
    // Transposed batched right operand, and batch dims that cannot merge.
    check(rnd({2, 3, 4}, dt), native::transpose(rnd({2, 5, 4}, dt), 1, 2), {2, 3, 5});
    check(native::permute(rnd({3, 4, 2, 5}, dt), {2, 0, 1, 3}), rnd({2, 1, 5, 3}, dt), {2, 3, 4, 3});
    // Empty dims.
    check(rnd({0, 3, 4}, dt), rnd({4, 5}, dt), {0, 3, 5});
    check(rnd({2, 3, 0}, dt), rnd({2, 0, 5}, dt), {2, 3, 5});
  }
}

TEST(Linalg, Addmm) {
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor m1 = rnd({3, 4}, dt), m2 = rnd({4, 5}, dt);
    const auto r = values(ref_bmm(m1, m2));
    for (const Tensor& input : {rnd({3, 5}, dt), rnd({5}, dt), rnd({3, 1}, dt), rnd({}, dt)}) {
      Tensor out = native::addmm(input, m1, m2, 0.5, -2.0);
      auto vi = values(native::contiguous(native::expand(input, {3, 5})));
      auto got = values(out);
      ASSERT_EQ(got.size(), r.size());
      for (size_t i = 0; i < r.size(); ++i) EXPECT_NEAR(got[i], 0.5 * vi[i] - 2.0 * r[i], 10 * tol(dt));
    }
    EXPECT_KILN_ERROR(native::addmm(rnd({4, 5}, dt), m1, m2), "addmm");
  }
}

TEST(Linalg, Baddbmm) {
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor b1 = rnd({2, 3, 4}, dt), b2 = rnd({2, 4, 5}, dt);
    const auto r = values(ref_bmm(b1, b2));
    for (const Tensor& input : {rnd({2, 3, 5}, dt), rnd({3, 5}, dt), rnd({1, 1, 5}, dt)}) {
      Tensor out = native::baddbmm(input, b1, b2, 2.0, 0.25);
      auto vi = values(native::contiguous(native::expand(input, {2, 3, 5})));
      auto got = values(out);
      for (size_t i = 0; i < r.size(); ++i) EXPECT_NEAR(got[i], 2.0 * vi[i] + 0.25 * r[i], 10 * tol(dt));
    }
  }
}

TEST(Linalg, Linear) {
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor w = rnd({5, 4}, dt), bias = rnd({5}, dt);
    auto with_bias = [&](const Tensor& y, const Tensor& x) {
      // reference: x @ W^T + bias, broadcast over the leading dims.
      Tensor ref = ref_matmul(x, native::contiguous(native::t(w)));
      auto vr = values(ref), vb = values(bias), vy = values(y);
      ASSERT_EQ(vy.size(), vr.size());
      for (size_t i = 0; i < vr.size(); ++i) EXPECT_NEAR(vy[i], vr[i] + vb[i % 5], 10 * tol(dt));
    };
    for (const Tensor& x : {rnd({4}, dt), rnd({3, 4}, dt), rnd({2, 3, 4}, dt),
                            native::permute(rnd({3, 2, 4}, dt), {1, 0, 2}),  // leading dims do not fold
                            native::transpose(rnd({2, 4, 3}, dt), 1, 2)}) {
      Tensor y = native::linear(x, w);
      EXPECT_TRUE(all_close(y, ref_matmul(x, native::contiguous(native::t(w))), 10 * tol(dt), 10 * tol(dt)));
      with_bias(native::linear(x, w, bias), x);
    }
    // A non-contiguous weight (itself a transposed view).
    Tensor wt = native::t(rnd({4, 5}, dt));
    Tensor x = rnd({3, 4}, dt);
    EXPECT_TRUE(all_close(native::linear(x, wt), ref_bmm(x, native::contiguous(native::t(wt))), 10 * tol(dt),
                          10 * tol(dt)));
    EXPECT_KILN_ERROR(native::linear(rnd({6, 3}, dt), w), "mat1 and mat2 shapes cannot be multiplied (6x3 and 4x5)");
  }
}

// The Backend's default bmm_bias (what a device without a fused epilogue
// runs, and CUDA's fallback): the bias on every row of every batch, out's
// previous contents ignored, transposed operands read in place.
TEST(Linalg, BackendBmmBiasAddsTheBiasToEveryRow) {
  for (DType dt : {kFloat32, kFloat64}) {
    const Tensor a = rnd({2, 3, 4}, dt), bias = rnd({5}, dt);
    const Tensor b = native::transpose(rnd({2, 5, 4}, dt), 1, 2);  // [2, 4, 5], column-major
    Tensor out = native::full({2, 3, 5}, std::numeric_limits<double>::quiet_NaN(), a.options());
    backend(kCPU).bmm_bias(a, b, bias, out);
    const auto vr = values(ref_bmm(a, native::contiguous(b))), vb = values(bias), vo = values(out);
    ASSERT_EQ(vo.size(), vr.size());
    for (size_t i = 0; i < vr.size(); ++i) EXPECT_NEAR(vo[i], vr[i] + vb[i % 5], 10 * tol(dt)) << i;
  }
}

TEST(Linalg, ReducedFloatsComputeInFloat32) {
  for (DType dt : {kFloat16, kBFloat16}) {
    Tensor a = native::to(rnd({2, 3, 8}), dt), b = native::to(rnd({8, 4}), dt);
    Tensor c = native::matmul(a, b);
    EXPECT_EQ(c.dtype(), dt);
    // Reference from the rounded inputs, rounded once at the end.
    Tensor ref = native::to(native::to(ref_matmul(a, b), kFloat32), dt);
    EXPECT_TRUE(all_close(c, ref, dt == kFloat16 ? 2e-3 : 1e-2, 1e-3));
    Tensor input = native::to(rnd({4}), dt);
    Tensor d = native::addmm(input, native::select(a, 0, 0), b, 1, 1);
    EXPECT_EQ(d.dtype(), dt);
    auto vi = values(input), vr = values(ref_bmm(native::select(a, 0, 0), b)), vd = values(d);
    for (size_t i = 0; i < vd.size(); ++i) EXPECT_NEAR(vd[i], vi[i % 4] + vr[i], 0.05);
  }
}

TEST(Linalg, Errors) {
  Tensor a = rnd({2, 3}), b = rnd({4, 5});
  EXPECT_KILN_ERROR(native::mm(a, b), "mm: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)");
  EXPECT_KILN_ERROR(native::mm(rnd({2, 3, 4}), b), "mm");
  EXPECT_KILN_ERROR(native::mm(a, rnd({3, 5}, kFloat32)), "same dtype");
  Tensor ia = native::ones({2, 3}, dtype(kInt64)), ib = native::ones({3, 2}, dtype(kInt64));
  EXPECT_KILN_ERROR(native::mm(ia, ib), "floating point");
  EXPECT_KILN_ERROR(native::matmul(ia, ib), "floating point");
  EXPECT_KILN_ERROR(native::bmm(rnd({2, 3, 4}), rnd({3, 4, 5})), "bmm");
  EXPECT_KILN_ERROR(native::bmm(rnd({2, 3, 4}), rnd({2, 5, 5})), "bmm");
  EXPECT_KILN_ERROR(native::bmm(rnd({3, 4}), rnd({4, 5})), "3D");
  EXPECT_KILN_ERROR(native::matmul(rnd({}), rnd({3})), "at least 1D");
  EXPECT_KILN_ERROR(native::matmul(rnd({3}), rnd({4})), "matmul");
  EXPECT_KILN_ERROR(native::matmul(rnd({2, 3, 4}), rnd({5, 6})), "cannot be multiplied");
  EXPECT_KILN_ERROR(native::matmul(rnd({2, 3, 4}), rnd({3, 4, 6})), "matmul");
  EXPECT_KILN_ERROR(native::linear(rnd({3, 4}), rnd({5, 4}), rnd({4})), "linear");
}
