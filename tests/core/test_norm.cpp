// native::layer_norm / group_norm / batch_norm and their backwards against
// float64 loops written here. The backward reference sums the explicit
// Jacobian of each normalised block (O(n^2) per block), independent of the
// factored formula the kernels use. Covers affine or not, strided inputs,
// blocks longer than the kernels' chunks, f64/f32/f16/bf16 (with f32
// parameters), running-statistic updates, and argument errors.
#include <cmath>
#include <functional>
#include <vector>

#include "kiln/core/native.h"
#include "kiln/core/parallel.h"
#include "test_util.h"

using namespace kiln;
using kiln::testing::all_close;
using kiln::testing::make;
using kiln::testing::sample;
using kiln::testing::values;

namespace {

// Element i of the input belongs to normalisation block block_of(i) and
// uses parameter param_of(i).
struct Blocks {
  int64_t count;
  std::function<int64_t(int64_t)> block_of, param_of;
};

struct Ref {
  std::vector<double> y, mean, rstd, gx, gw, gb;
};

Ref reference(const std::vector<double>& x, const std::vector<double>& g, const Blocks& bl, int64_t nparams,
              const std::vector<double>& w, const std::vector<double>& b, double eps) {
  const size_t n = x.size();
  Ref r;
  std::vector<std::vector<size_t>> members(static_cast<size_t>(bl.count));
  for (size_t i = 0; i < n; ++i) members[bl.block_of(static_cast<int64_t>(i))].push_back(i);
  r.mean.assign(bl.count, 0.0);
  r.rstd.assign(bl.count, 0.0);
  std::vector<double> xhat(n);
  for (int64_t k = 0; k < bl.count; ++k) {
    double s = 0, v = 0;
    for (size_t i : members[k]) s += x[i];
    const double m = s / static_cast<double>(members[k].size());
    for (size_t i : members[k]) v += (x[i] - m) * (x[i] - m);
    v /= static_cast<double>(members[k].size());
    r.mean[k] = m;
    r.rstd[k] = 1.0 / std::sqrt(v + eps);
    for (size_t i : members[k]) xhat[i] = (x[i] - m) * r.rstd[k];
  }
  auto wp = [&](size_t i) { return w.empty() ? 1.0 : w[bl.param_of(static_cast<int64_t>(i))]; };
  r.y.resize(n);
  for (size_t i = 0; i < n; ++i) r.y[i] = xhat[i] * wp(i) + (b.empty() ? 0.0 : b[bl.param_of(static_cast<int64_t>(i))]);
  if (g.empty()) return r;
  // d xhat_i / d x_j = rstd (delta_ij - 1/n - xhat_i xhat_j / n) within a block.
  r.gx.assign(n, 0.0);
  for (int64_t k = 0; k < bl.count; ++k) {
    const double cnt = static_cast<double>(members[k].size());
    for (size_t j : members[k]) {
      double s = 0;
      for (size_t i : members[k]) {
        const double jac = r.rstd[k] * ((i == j ? 1.0 : 0.0) - 1.0 / cnt - xhat[i] * xhat[j] / cnt);
        s += g[i] * wp(i) * jac;
      }
      r.gx[j] = s;
    }
  }
  r.gw.assign(nparams, 0.0);
  r.gb.assign(nparams, 0.0);
  for (size_t i = 0; i < n; ++i) {
    r.gw[bl.param_of(static_cast<int64_t>(i))] += g[i] * xhat[i];
    r.gb[bl.param_of(static_cast<int64_t>(i))] += g[i];
  }
  return r;
}

Blocks layer_blocks(int64_t rows, int64_t d) {
  return {rows, [d](int64_t i) { return i / d; }, [d](int64_t i) { return i % d; }};
}
// [N, C, HW] row-major.
Blocks group_blocks(int64_t n, int64_t c, int64_t hw, int64_t groups) {
  return {n * groups, [=](int64_t i) { return (i / (c * hw)) * groups + ((i / hw) % c) / (c / groups); },
          [=](int64_t i) { return (i / hw) % c; }};
}
Blocks batch_blocks(int64_t c, int64_t hw) {
  return {c, [=](int64_t i) { return (i / hw) % c; }, [=](int64_t i) { return (i / hw) % c; }};
}

Tensor param(const std::vector<double>& v, DType d) { return v.empty() ? Tensor() : make({(int64_t)v.size()}, v, d); }

// A tensor of `sizes` whose memory is laid out with its last two dims swapped
// (a transposed view), holding `vals` in logical row-major order.
Tensor transposed(IntArrayRef sizes, const std::vector<double>& vals, DType d) {
  DimVector s = sizes.dims();
  const int64_t nd = static_cast<int64_t>(s.size());
  std::swap(s[nd - 1], s[nd - 2]);
  Tensor t = native::transpose(native::empty(s, TensorOptions().dtype(d)), nd - 1, nd - 2);
  native::copy_(t, make(sizes, vals, d));
  EXPECT_FALSE(t.is_contiguous());
  return t;
}

struct Tol {
  double rtol, atol;
};
Tol tol_for(DType d) {
  switch (d) {
    case kFloat64: return {1e-11, 1e-11};
    case kFloat32: return {2e-5, 2e-5};
    default: return {2e-2, 3e-2};
  }
}

// Rounds values through dtype d, so references see what the kernel sees.
std::vector<double> rounded(const std::vector<double>& v, DType d) { return values(make({(int64_t)v.size()}, v, d)); }

}  // namespace

// ---- layer norm ----

TEST(LayerNorm, ForwardAndBackwardMatchFloat64Loops) {
  struct Case {
    std::vector<int64_t> shape;
    int64_t k;  // normalised trailing dims
  };
  const std::vector<Case> cases = {{{4, 7}, 1}, {{2, 3, 5}, 2}, {{3, 1}, 1}, {{2, 1500}, 1}, {{5}, 1}, {{2, 3, 4}, 3}};
  for (const Case& cs : cases) {
    const int64_t n = numel_of(cs.shape);
    int64_t d = 1;
    for (size_t i = cs.shape.size() - cs.k; i < cs.shape.size(); ++i) d *= cs.shape[i];
    const std::vector<int64_t> ns(cs.shape.end() - cs.k, cs.shape.end());
    for (DType dt : {kFloat64, kFloat32, kBFloat16, kFloat16}) {
      for (bool affine : {false, true}) {
        const std::vector<double> xv = rounded(sample(n, -3, 2, 1 + n), dt), gv = rounded(sample(n, -1, 1, 5), dt);
        const DType pd = dt == kFloat64 ? kFloat64 : kFloat32;
        std::vector<double> wv, bv;
        if (affine) {
          wv = rounded(sample(d, 0.5, 1.5, 2), pd);
          bv = rounded(sample(d, -0.5, 0.5, 3), pd);
        }
        const Ref r = reference(xv, gv, layer_blocks(n / d, d), d, wv, bv, 1e-5);
        const Tensor x = make(cs.shape, xv, dt), w = affine ? make(ns, wv, pd) : Tensor(),
                     b = affine ? make(ns, bv, pd) : Tensor();
        auto [y, mean, rstd] = native::layer_norm(x, ns, w, b, 1e-5);
        const Tol t = tol_for(dt);
        SCOPED_TRACE(::testing::Message() << "shape " << IntArrayRef(cs.shape) << " dtype " << dt << " affine "
                                          << affine);
        EXPECT_EQ(y.dtype(), dt);
        EXPECT_EQ(mean.dtype(), pd);
        std::vector<int64_t> stat_shape = cs.shape;
        for (size_t i = cs.shape.size() - cs.k; i < cs.shape.size(); ++i) stat_shape[i] = 1;
        EXPECT_EQ(mean.sizes(), IntArrayRef(stat_shape));
        EXPECT_TRUE(all_close(y, make(cs.shape, r.y), t.rtol, t.atol));
        EXPECT_TRUE(all_close(native::reshape(mean, {n / d}), make({n / d}, r.mean), 1e-6, 1e-6));
        EXPECT_TRUE(all_close(native::reshape(rstd, {n / d}), make({n / d}, r.rstd), dt == kFloat64 ? 1e-11 : 1e-5));
        auto [gx, gw, gb] =
            native::layer_norm_backward(make(cs.shape, gv, dt), x, ns, mean, rstd, w, b, {true, true, true});
        EXPECT_EQ(gx.dtype(), dt);
        EXPECT_TRUE(all_close(gx, make(cs.shape, r.gx), t.rtol * 5, t.atol * 5));
        EXPECT_EQ(gw.defined(), affine);
        if (affine) {
          EXPECT_EQ(gw.dtype(), pd);
          EXPECT_TRUE(all_close(gw, make(ns, r.gw), t.rtol, dt == kFloat64 ? 1e-10 : 1e-4));
          EXPECT_TRUE(all_close(gb, make(ns, r.gb), t.rtol, dt == kFloat64 ? 1e-10 : 1e-4));
        }
      }
    }
  }
}

TEST(LayerNorm, StridedInputAndPartialMask) {
  const std::vector<double> xv = sample(60, -2, 2, 9), gv = sample(60, -1, 1, 10), wv = sample(5, 0.5, 2, 11);
  const Ref r = reference(xv, gv, layer_blocks(12, 5), 5, wv, {}, 1e-3);
  for (DType dt : {kFloat64, kFloat32}) {
    const Tensor x = transposed({3, 4, 5}, xv, dt), g = transposed({3, 4, 5}, gv, dt), w = make({5}, wv, dt);
    auto [y, mean, rstd] = native::layer_norm(x, {5}, w, Tensor(), 1e-3);
    EXPECT_TRUE(y.is_contiguous());
    EXPECT_TRUE(all_close(y, make({3, 4, 5}, r.y), tol_for(dt).rtol, tol_for(dt).atol));
    auto [gx, gw, gb] = native::layer_norm_backward(g, x, {5}, mean, rstd, w, Tensor(), {false, true, true});
    EXPECT_FALSE(gx.defined());
    EXPECT_FALSE(gb.defined());  // no bias
    EXPECT_TRUE(all_close(gw, make({5}, r.gw), 1e-5, 1e-5));
    auto [gx2, gw2, gb2] = native::layer_norm_backward(g, x, {5}, mean, rstd, w, Tensor(), {true, false, false});
    EXPECT_TRUE(all_close(gx2, make({3, 4, 5}, r.gx), 1e-4, 1e-5));
    EXPECT_FALSE(gw2.defined());
  }
}

TEST(LayerNorm, LargeMeanKeepsFloat32Accuracy) {
  // Values 1e4 + O(1): a one-pass E[x^2] - E[x]^2 in float would lose the variance.
  std::vector<double> xv = sample(4 * 3000, -1, 1, 21);
  for (double& v : xv) v = static_cast<double>(static_cast<float>(1e4 + v));
  const Ref r = reference(xv, {}, layer_blocks(4, 3000), 3000, {}, {}, 1e-5);
  auto [y, mean, rstd] = native::layer_norm(make({4, 3000}, xv, kFloat32), {3000}, Tensor(), Tensor(), 1e-5);
  EXPECT_TRUE(all_close(y, make({4, 3000}, r.y), 1e-5, 1e-5));
  EXPECT_TRUE(all_close(rstd, make({4, 1}, r.rstd), 1e-5));
  // The same for group norm blocks ([2, 4, 1500] in 2 groups).
  const Ref rg = reference(xv, {}, group_blocks(2, 4, 1500, 2), 4, {}, {}, 1e-5);
  auto [yg, mg, rsg] = native::group_norm(make({2, 4, 1500}, xv, kFloat32), 2, Tensor(), Tensor(), 1e-5);
  EXPECT_TRUE(all_close(yg, make({2, 4, 1500}, rg.y), 1e-5, 1e-5));
}

TEST(LayerNorm, ResultsDoNotDependOnThreadCount) {
  const Tensor x = make({300, 40}, sample(12000, -2, 2, 4), kFloat32), g = make({300, 40}, sample(12000, -1, 1, 5), kFloat32);
  const Tensor w = make({40}, sample(40, 0.5, 1.5, 6), kFloat32), b = make({40}, sample(40, -1, 1, 7), kFloat32);
  const int saved = get_num_threads();
  std::vector<std::vector<double>> results[2];
  for (int k = 0; k < 2; ++k) {
    set_num_threads(k == 0 ? 1 : 2);
    auto [y, mean, rstd] = native::layer_norm(x, {40}, w, b, 1e-5);
    auto [gx, gw, gb] = native::layer_norm_backward(g, x, {40}, mean, rstd, w, b, {true, true, true});
    results[k] = {values(y), values(gx), values(gw), values(gb)};
  }
  set_num_threads(saved);
  for (size_t i = 0; i < results[0].size(); ++i) EXPECT_EQ(results[0][i], results[1][i]) << "output " << i;
}

TEST(LayerNorm, EmptyInputs) {
  auto [y, mean, rstd] = native::layer_norm(native::empty({0, 4}), {4}, native::ones({4}), Tensor(), 1e-5);
  EXPECT_EQ(y.sizes(), IntArrayRef({0, 4}));
  EXPECT_EQ(mean.sizes(), IntArrayRef({0, 1}));
  auto [gx, gw, gb] = native::layer_norm_backward(native::empty({0, 4}), native::empty({0, 4}), {4}, mean, rstd,
                                                  native::ones({4}), native::ones({4}), {true, true, true});
  EXPECT_EQ(gx.sizes(), IntArrayRef({0, 4}));
  EXPECT_EQ(values(gw), std::vector<double>(4, 0.0));
  EXPECT_EQ(values(gb), std::vector<double>(4, 0.0));
}

TEST(LayerNorm, Errors) {
  const Tensor x = native::zeros({2, 3, 4});
  EXPECT_KILN_ERROR(native::layer_norm(x, {3}, Tensor(), Tensor(), 1e-5),
                    "Given normalized_shape=[3], expected input with shape [*, 3]");
  EXPECT_KILN_ERROR(native::layer_norm(x, {3}, Tensor(), Tensor(), 1e-5), "[2, 3, 4]");
  EXPECT_KILN_ERROR(native::layer_norm(x, {}, Tensor(), Tensor(), 1e-5), "at least 1-dimensional");
  EXPECT_KILN_ERROR(native::layer_norm(x, {2, 3, 4, 5}, Tensor(), Tensor(), 1e-5), "expected input with shape");
  EXPECT_KILN_ERROR(native::layer_norm(x, {4}, native::ones({5}), Tensor(), 1e-5),
                    "Expected weight to be of same shape as normalized_shape, but got weight of shape [5]");
  EXPECT_KILN_ERROR(native::layer_norm(x, {4}, Tensor(), native::ones({3, 4}), 1e-5), "bias of shape [3, 4]");
  EXPECT_KILN_ERROR(native::layer_norm(x, {4}, native::ones({4}, kFloat64), Tensor(), 1e-5),
                    "weight has dtype float64 but input has dtype float32");
  EXPECT_KILN_ERROR(native::layer_norm(native::to(x, kFloat16), {4}, native::ones({4}, kFloat32),
                                       native::ones({4}, kFloat16), 1e-5),
                    "all parameters must share one dtype");
  EXPECT_KILN_ERROR(native::layer_norm(native::zeros({2, 4}, kInt64), {4}, Tensor(), Tensor(), 1e-5),
                    "expected a floating-point input");
}

// ---- group norm ----

TEST(GroupNorm, ForwardAndBackwardMatchFloat64Loops) {
  struct Case {
    std::vector<int64_t> shape;
    int64_t groups;
  };
  const std::vector<Case> cases = {{{2, 6, 5}, 3}, {{3, 4}, 2}, {{2, 4, 3, 3}, 1}, {{1, 4, 2, 2}, 4},
                                   {{2, 4, 33, 40}, 2}, {{2, 6, 1, 1}, 2}};
  for (const Case& cs : cases) {
    const int64_t n = numel_of(cs.shape), N = cs.shape[0], C = cs.shape[1], hw = n / (N * C);
    for (DType dt : {kFloat64, kFloat32, kBFloat16}) {
      for (bool affine : {false, true}) {
        const std::vector<double> xv = rounded(sample(n, -1, 3, 30 + n), dt), gv = rounded(sample(n, -1, 1, 31), dt);
        const DType pd = dt == kFloat64 ? kFloat64 : kFloat32;
        std::vector<double> wv, bv;
        if (affine) {
          wv = sample(C, 0.5, 1.5, 32);
          bv = sample(C, -1, 1, 33);
        }
        const Ref r = reference(xv, gv, group_blocks(N, C, hw, cs.groups), C, wv, bv, 1e-5);
        const Tensor x = make(cs.shape, xv, dt), w = param(wv, pd), b = param(bv, pd);
        SCOPED_TRACE(::testing::Message() << "shape " << IntArrayRef(cs.shape) << " groups " << cs.groups
                                          << " dtype " << dt << " affine " << affine);
        auto [y, mean, rstd] = native::group_norm(x, cs.groups, w, b, 1e-5);
        const Tol t = tol_for(dt);
        EXPECT_EQ(mean.sizes(), IntArrayRef({N, cs.groups}));
        EXPECT_TRUE(all_close(y, make(cs.shape, r.y), t.rtol, t.atol));
        EXPECT_TRUE(all_close(mean, make({N, cs.groups}, r.mean), 1e-6, 1e-6));
        EXPECT_TRUE(all_close(rstd, make({N, cs.groups}, r.rstd), dt == kFloat64 ? 1e-11 : 1e-5));
        auto [gx, gw, gb] =
            native::group_norm_backward(make(cs.shape, gv, dt), x, mean, rstd, w, b, cs.groups, {true, true, true});
        EXPECT_TRUE(all_close(gx, make(cs.shape, r.gx), t.rtol * 5, t.atol * 5));
        if (affine) {
          EXPECT_EQ(gw.dtype(), pd);
          EXPECT_TRUE(all_close(gw, make({C}, r.gw), t.rtol, dt == kFloat64 ? 1e-9 : 1e-3));
          EXPECT_TRUE(all_close(gb, make({C}, r.gb), t.rtol, dt == kFloat64 ? 1e-9 : 1e-3));
        }
      }
    }
  }
}

TEST(GroupNorm, StridedInput) {
  const std::vector<double> xv = sample(2 * 4 * 3 * 5, -2, 2, 40), gv = sample(120, -1, 1, 41);
  const Ref r = reference(xv, gv, group_blocks(2, 4, 15, 2), 4, {}, {}, 1e-5);
  const Tensor x = transposed({2, 4, 3, 5}, xv, kFloat64), g = transposed({2, 4, 3, 5}, gv, kFloat64);
  auto [y, mean, rstd] = native::group_norm(x, 2, Tensor(), Tensor(), 1e-5);
  EXPECT_TRUE(all_close(y, make({2, 4, 3, 5}, r.y), 1e-11, 1e-11));
  auto [gx, gw, gb] = native::group_norm_backward(g, x, mean, rstd, Tensor(), Tensor(), 2, {true, true, true});
  EXPECT_TRUE(all_close(gx, make({2, 4, 3, 5}, r.gx), 1e-10, 1e-10));
  EXPECT_FALSE(gw.defined());
  EXPECT_FALSE(gb.defined());
}

TEST(GroupNorm, Errors) {
  const Tensor x = native::zeros({2, 3, 4});
  EXPECT_KILN_ERROR(native::group_norm(x, 2, Tensor(), Tensor(), 1e-5),
                    "Expected number of channels in input to be divisible by num_groups, but got input of shape "
                    "[2, 3, 4] and num_groups=2");
  EXPECT_KILN_ERROR(native::group_norm(x, 3, native::ones({2}), Tensor(), 1e-5),
                    "Expected weight to be a vector of size equal to the number of channels in input, but got "
                    "weight of shape [2] and input of shape [2, 3, 4]");
  EXPECT_KILN_ERROR(native::group_norm(x, 3, Tensor(), native::ones({3, 1}), 1e-5), "bias of shape [3, 1]");
  EXPECT_KILN_ERROR(native::group_norm(native::zeros({3}), 1, Tensor(), Tensor(), 1e-5),
                    "Expected at least 2 dimensions");
  EXPECT_KILN_ERROR(native::group_norm(x, 0, Tensor(), Tensor(), 1e-5), "num_groups must be positive");
  EXPECT_KILN_ERROR(native::group_norm(native::zeros({2, 4, 0}), 2, Tensor(), Tensor(), 1e-5),
                    "Expected HxW to be greater than 0");
  EXPECT_KILN_ERROR(native::group_norm(native::zeros({2, 0, 3}), 1, Tensor(), Tensor(), 1e-5),
                    "number of channels to be greater than 0");
  auto [y, mean, rstd] = native::group_norm(native::zeros({0, 4, 3}), 2, Tensor(), Tensor(), 1e-5);
  EXPECT_EQ(y.sizes(), IntArrayRef({0, 4, 3}));
}

// ---- batch norm ----

TEST(BatchNorm, TrainingMatchesFloat64LoopsAndUpdatesRunningStats) {
  // HW >= 16 takes the per-channel path, smaller HW the row-sweeping one; N > 64 spans several row chunks.
  const std::vector<std::vector<int64_t>> shapes = {{4, 3}, {150, 5}, {3, 2, 7}, {2, 3, 4, 5}, {70, 2, 3}, {2, 1, 20}};
  for (const auto& shape : shapes) {
    const int64_t n = numel_of(shape), C = shape[1], hw = n / (shape[0] * C), count = shape[0] * hw;
    for (DType dt : {kFloat64, kFloat32, kBFloat16}) {
      for (bool affine : {false, true}) {
        const DType pd = dt == kFloat64 ? kFloat64 : kFloat32;
        const std::vector<double> xv = rounded(sample(n, -2, 4, 50 + n), dt), gv = rounded(sample(n, -1, 1, 51), dt);
        std::vector<double> wv, bv;
        if (affine) {
          wv = sample(C, 0.5, 1.5, 52);
          bv = sample(C, -1, 1, 53);
        }
        const Ref r = reference(xv, gv, batch_blocks(C, hw), C, wv, bv, 1e-5);
        const std::vector<double> rm0 = sample(C, -1, 1, 54), rv0 = sample(C, 0.5, 2, 55);
        const Tensor x = make(shape, xv, dt), w = param(wv, pd), b = param(bv, pd);
        const Tensor rm = make({C}, rm0, pd), rv = make({C}, rv0, pd);
        SCOPED_TRACE(::testing::Message() << "shape " << IntArrayRef(shape) << " dtype " << dt << " affine " << affine);
        auto [y, mean, invstd] = native::batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5);
        const Tol t = tol_for(dt);
        EXPECT_TRUE(all_close(y, make(shape, r.y), t.rtol, t.atol));
        EXPECT_TRUE(all_close(mean, make({C}, r.mean), 1e-6, 1e-6));
        EXPECT_TRUE(all_close(invstd, make({C}, r.rstd), dt == kFloat64 ? 1e-11 : 1e-5));
        std::vector<double> erm(C), erv(C);
        for (int64_t c = 0; c < C; ++c) {
          const double var = 1.0 / (r.rstd[c] * r.rstd[c]) - 1e-5;
          erm[c] = 0.9 * rm0[c] + 0.1 * r.mean[c];
          erv[c] = 0.9 * rv0[c] + 0.1 * var * count / (count - 1);
        }
        EXPECT_TRUE(all_close(rm, make({C}, erm), 1e-6, 1e-6));
        EXPECT_TRUE(all_close(rv, make({C}, erv), 1e-5, 1e-6));
        auto [gx, gw, gb] = native::batch_norm_backward(make(shape, gv, dt), x, w, b, mean, invstd, true,
                                                        {true, true, true});
        EXPECT_TRUE(all_close(gx, make(shape, r.gx), t.rtol * 5, t.atol * 5));
        if (affine) {
          EXPECT_TRUE(all_close(gw, make({C}, r.gw), t.rtol, dt == kFloat64 ? 1e-9 : 1e-3));
          EXPECT_TRUE(all_close(gb, make({C}, r.gb), t.rtol, dt == kFloat64 ? 1e-9 : 1e-3));
        }
      }
    }
  }
}

TEST(BatchNorm, RunningStatsKnownValues) {
  // torch: running_mean [0.2, 0.4], running_var [1.1, 1.7] (unbiased batch variances 2 and 8).
  Tensor rm = native::zeros({2}), rv = native::ones({2});
  native::batch_norm(make({2, 2}, {1, 2, 3, 6}, kFloat32), Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5);
  EXPECT_TRUE(all_close(rm, make({2}, {0.2, 0.4}), 1e-6));
  EXPECT_TRUE(all_close(rv, make({2}, {1.1, 1.7}), 1e-6));
  // Training without running statistics is fine; momentum 1 replaces them.
  native::batch_norm(make({2, 2}, {1, 2, 3, 6}, kFloat32), Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
  native::batch_norm(make({2, 2}, {1, 2, 3, 6}, kFloat32), Tensor(), Tensor(), rm, rv, true, 1.0, 1e-5);
  EXPECT_TRUE(all_close(rv, make({2}, {2, 8}), 1e-6));
}

TEST(BatchNorm, EvalUsesRunningStats) {
  const std::vector<double> xv = sample(2 * 3 * 20, -2, 2, 60), gv = sample(120, -1, 1, 61);
  const std::vector<double> rm = {0.5, -1, 2}, rv = {1, 4, 0.25}, w = {1, 2, 3}, b = {0, 1, -1};
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{2, 3, 20}, std::vector<int64_t>{40, 3}}) {
    std::vector<double> ey(xv.size()), egx(xv.size()), egw(3, 0.0), egb(3, 0.0);
    const int64_t hw = shape.size() == 3 ? 20 : 1;
    for (size_t i = 0; i < xv.size(); ++i) {
      const int64_t c = (static_cast<int64_t>(i) / hw) % 3;
      const double r = 1.0 / std::sqrt(rv[c] + 1e-3);
      ey[i] = (xv[i] - rm[c]) * r * w[c] + b[c];
      egx[i] = gv[i] * r * w[c];
      egw[c] += gv[i] * (xv[i] - rm[c]) * r;
      egb[c] += gv[i];
    }
    const Tensor x = make(shape, xv), rmt = make({3}, rm), rvt = make({3}, rv), wt = make({3}, w), bt = make({3}, b);
    auto [y, mean, invstd] = native::batch_norm(x, wt, bt, rmt, rvt, false, 0.1, 1e-3);
    EXPECT_TRUE(all_close(y, make(shape, ey), 1e-12, 1e-12));
    EXPECT_EQ(values(rmt), rm);  // untouched
    auto [gx, gw, gb] = native::batch_norm_backward(make(shape, gv), x, wt, bt, mean, invstd, false, {true, true, true});
    EXPECT_TRUE(all_close(gx, make(shape, egx), 1e-12, 1e-12));
    EXPECT_TRUE(all_close(gw, make({3}, egw), 1e-12, 1e-12));
    EXPECT_TRUE(all_close(gb, make({3}, egb), 1e-12, 1e-12));
  }
}

TEST(BatchNorm, StridedInput) {
  const std::vector<double> xv = sample(2 * 3 * 4 * 5, -2, 2, 70), gv = sample(120, -1, 1, 71);
  const Ref r = reference(xv, gv, batch_blocks(3, 20), 3, {}, {}, 1e-5);
  const Tensor x = transposed({2, 3, 4, 5}, xv, kFloat64), g = transposed({2, 3, 4, 5}, gv, kFloat64);
  auto [y, mean, invstd] = native::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
  EXPECT_TRUE(all_close(y, make({2, 3, 4, 5}, r.y), 1e-11, 1e-11));
  auto [gx, gw, gb] = native::batch_norm_backward(g, x, Tensor(), Tensor(), mean, invstd, true, {true, false, false});
  EXPECT_TRUE(all_close(gx, make({2, 3, 4, 5}, r.gx), 1e-10, 1e-10));
}

TEST(BatchNorm, EmptyBatchLeavesRunningStats) {
  Tensor rm = native::zeros({3}), rv = native::ones({3});
  auto [y, mean, invstd] = native::batch_norm(native::zeros({0, 3}), Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5);
  EXPECT_EQ(y.sizes(), IntArrayRef({0, 3}));
  EXPECT_EQ(values(rm), std::vector<double>(3, 0.0));
  EXPECT_EQ(values(rv), std::vector<double>(3, 1.0));
}

TEST(BatchNorm, Errors) {
  EXPECT_KILN_ERROR(native::batch_norm(native::zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5),
                    "Expected more than 1 value per channel when training, got input size [1, 3]");
  EXPECT_KILN_ERROR(
      native::batch_norm(native::zeros({1, 3, 1, 1}), Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5),
      "Expected more than 1 value per channel when training");
  EXPECT_KILN_ERROR(native::batch_norm(native::zeros({2, 3}), Tensor(), Tensor(), Tensor(), Tensor(), false, 0.1, 1e-5),
                    "running_mean must be defined in evaluation mode");
  EXPECT_KILN_ERROR(native::batch_norm(native::zeros({2, 3}), Tensor(), Tensor(), native::zeros({4}),
                                       native::ones({3}), false, 0.1, 1e-5),
                    "running_mean should contain 3 elements");
  EXPECT_KILN_ERROR(native::batch_norm(native::zeros({2, 3}), native::ones({4}), Tensor(), Tensor(), Tensor(), true,
                                       0.1, 1e-5),
                    "weight should contain 3 elements");
  EXPECT_KILN_ERROR(native::batch_norm(native::zeros({2, 3}, kBFloat16), Tensor(), Tensor(),
                                       native::zeros({3}, kBFloat16), native::ones({3}), true, 0.1, 1e-5),
                    "running_var has dtype float32 but running_mean has dtype bfloat16");
  EXPECT_KILN_ERROR(native::batch_norm(native::zeros({3}), Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5),
                    "expected input of shape [N, C, *]");
}
