// Reductions against float64 loops written here: every combination of dims
// with keepdim and negative dims, contiguous / permuted / sliced inputs (which
// exercise the kernel's three strategies), dtype rules, large-sum accuracy and
// thread-count determinism, empty tensors, NaN handling, the statistics
// (mean, var, std, norm, logsumexp) and sum_to.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "kiln/core/native.h"
#include "kiln/core/parallel.h"
#include "test_util.h"

using namespace kiln;
using kiln::testing::all_close;
using kiln::testing::make;
using kiln::testing::kInf;
using kiln::testing::kNaN;
using kiln::testing::sample;
using kiln::testing::values;

namespace {



using Group = std::function<double(const std::vector<double>&)>;

// Reference: gathers each output's inputs (in row-major order) and applies f.
Tensor ref_reduce(const Tensor& t, std::vector<int64_t> dims, bool keepdim, const Group& f) {
  const int64_t nd = t.dim();
  for (auto& d : dims) d = d < 0 ? d + nd : d;
  if (dims.empty())
    for (int64_t d = 0; d < nd; ++d) dims.push_back(d);
  auto is_red = [&](int64_t d) { return std::find(dims.begin(), dims.end(), d) != dims.end(); };
  std::vector<int64_t> keep(nd), out_shape;
  int64_t nout = 1;
  for (int64_t d = 0; d < nd; ++d) {
    keep[d] = is_red(d) ? 1 : t.size(d);
    nout *= keep[d];
    if (!is_red(d) || keepdim) out_shape.push_back(keep[d]);
  }
  std::vector<std::vector<double>> groups(nout);
  const auto v = values(t);
  for (int64_t i = 0; i < t.numel(); ++i) {
    int64_t rem = i, o = 0, mult = 1;
    for (int64_t d = nd - 1; d >= 0; --d) {
      const int64_t idx = rem % t.size(d);
      rem /= t.size(d);
      if (!is_red(d)) o += idx * mult;
      mult *= keep[d];
    }
    groups[o].push_back(v[i]);
  }
  std::vector<double> r(nout);
  for (int64_t o = 0; o < nout; ++o) r[o] = f(groups[o]);
  return make(out_shape, r);
}

double g_sum(const std::vector<double>& g) {
  double s = 0;
  for (double x : g) s += x;
  return s;
}
double g_prod(const std::vector<double>& g) {
  double s = 1;
  for (double x : g) s *= x;
  return s;
}
double g_max(const std::vector<double>& g) {
  double m = -kInf;
  for (double x : g) {
    if (std::isnan(x)) return x;
    m = std::max(m, x);
  }
  return m;
}
double g_min(const std::vector<double>& g) {
  double m = kInf;
  for (double x : g) {
    if (std::isnan(x)) return x;
    m = std::min(m, x);
  }
  return m;
}
double g_mean(const std::vector<double>& g) { return g_sum(g) / double(g.size()); }
double g_var(const std::vector<double>& g, int correction) {
  const double m = g_mean(g);
  double s = 0;
  for (double x : g) s += (x - m) * (x - m);
  return s / double(int64_t(g.size()) - correction);
}

// Every subset of the dims of a rank-3 tensor, written with negative dims for odd masks.
std::vector<std::vector<int64_t>> dim_subsets() {
  std::vector<std::vector<int64_t>> out;
  for (int mask = 0; mask < 8; ++mask) {
    std::vector<int64_t> d;
    for (int64_t i = 0; i < 3; ++i)
      if (mask & (1 << i)) d.push_back(mask % 2 ? i - 3 : i);
    out.push_back(d);
  }
  return out;
}

// Contiguous, permuted and sliced views of one [4, 5, 6] tensor's values.
std::vector<Tensor> layouts(DType d, double lo = -2, double hi = 2) {
  Tensor base = make({4, 5, 6}, sample(120, lo, hi, 3), d);
  Tensor perm = native::permute(make({6, 4, 5}, sample(120, lo, hi, 4), d), {1, 2, 0});
  Tensor sliced = native::slice(make({4, 10, 6}, sample(240, lo, hi, 5), d), 1, 1, 10, 2);
  return {base, perm, sliced};
}

}  // namespace

TEST(Reduce, EveryDimComboKeepdimAndLayout) {
  for (const Tensor& x : layouts(kFloat64, 0.5, 1.5)) {
    for (const auto& dims : dim_subsets()) {
      for (bool keep : {false, true}) {
        EXPECT_TRUE(all_close(native::sum(x, dims, keep), ref_reduce(x, dims, keep, g_sum), 1e-12));
        EXPECT_TRUE(all_close(native::prod(x, dims, keep), ref_reduce(x, dims, keep, g_prod), 1e-12));
        EXPECT_TRUE(all_close(native::mean(x, dims, keep), ref_reduce(x, dims, keep, g_mean), 1e-12));
        EXPECT_TRUE(all_close(native::amax(x, dims, keep), ref_reduce(x, dims, keep, g_max), 0));
        EXPECT_TRUE(all_close(native::amin(x, dims, keep), ref_reduce(x, dims, keep, g_min), 0));
        Tensor gt = native::binary(BinaryOp::Gt, x, 1.0);
        EXPECT_TRUE(all_close(native::any(gt, dims, keep), ref_reduce(gt, dims, keep, g_max), 0));
        EXPECT_TRUE(all_close(native::all(gt, dims, keep), ref_reduce(gt, dims, keep, g_min), 0));
      }
    }
  }
}

TEST(Reduce, FloatDtypesKeepTheirDtype) {
  for (DType d : {kFloat32, kFloat16, kBFloat16}) {
    const double tol = d == kFloat32 ? 1e-6 : d == kFloat16 ? 1e-3 : 8e-3;
    for (const Tensor& x : layouts(d)) {
      for (const auto& dims : dim_subsets()) {
        Tensor s = native::sum(x, dims, false);
        EXPECT_EQ(s.dtype(), d);
        // One rounding of the exact sum (accumulation is in double); relative to the input scale.
        EXPECT_TRUE(all_close(s, ref_reduce(x, dims, false, g_sum), tol, tol * 120 * 2));
        EXPECT_TRUE(all_close(native::amax(x, dims, true), ref_reduce(x, dims, true, g_max), 0));
        EXPECT_TRUE(all_close(native::mean(x, dims, false), ref_reduce(x, dims, false, g_mean), tol, tol * 2));
      }
    }
  }
}

TEST(Reduce, IntegerAndBoolDtypeRules) {
  Tensor i = make({2, 3}, {1, 2, 3, 4, 5, 6}, kInt32);
  EXPECT_EQ(native::sum(i).dtype(), kInt64);
  EXPECT_EQ(native::sum(i).item<int64_t>(), 21);
  EXPECT_EQ(native::prod(i, {1}).dtype(), kInt64);
  EXPECT_EQ(values(native::prod(i, {1})), (std::vector<double>{6, 120}));
  EXPECT_EQ(native::sum(i, {0}, false, kInt32).dtype(), kInt32);
  EXPECT_EQ(native::sum(make({3}, {1, 1, 0}, kBool)).item<int64_t>(), 2);
  EXPECT_EQ(native::sum(make({3}, {1, 1, 0}, kBool)).dtype(), kInt64);
  EXPECT_EQ(native::sum(make({3}, {200, 100, 1}, kUInt8)).item<int64_t>(), 301);  // no uint8 wrap
  EXPECT_EQ(native::amax(i, {0}).dtype(), kInt32);
  EXPECT_EQ(values(native::amax(i, {0})), (std::vector<double>{4, 5, 6}));
  EXPECT_EQ(values(native::amin(native::transpose(i, 0, 1), {1})), (std::vector<double>{1, 2, 3}));
  // sum with a dtype computes in that dtype.
  Tensor f = native::sum(make({2}, {0.5, 0.25}, kFloat32), {}, false, kFloat64);
  EXPECT_EQ(f.dtype(), kFloat64);
  EXPECT_EQ(f.item<double>(), 0.75);
  EXPECT_EQ(native::sum(make({2}, {0.5, 0.25}, kFloat16), {}, false, kFloat32).dtype(), kFloat32);
  // mean needs a floating dtype, from the input or given.
  EXPECT_KILN_ERROR(native::mean(i), "mean(): could not infer output dtype");
  EXPECT_KILN_ERROR(native::mean(i, {}, false, kInt64), "Optional dtype");
  EXPECT_EQ(native::mean(i, {}, false, kFloat64).item<double>(), 3.5);
  // all/any give bool, except uint8 which stays uint8 (torch).
  EXPECT_EQ(native::all(make({2}, {1, 2})).dtype(), kBool);
  EXPECT_EQ(native::all(make({2}, {1, 0}, kInt64)).item<bool>(), false);
  EXPECT_EQ(native::any(make({2}, {0, 3}, kUInt8)).dtype(), kUInt8);
  EXPECT_EQ(native::any(make({2}, {0, 3}, kUInt8)).item<int64_t>(), 1);
  EXPECT_EQ(native::any(make({2}, {kNaN, 0})).item<bool>(), true);
}

TEST(Reduce, DimErrors) {
  Tensor x = native::zeros({2, 3});
  EXPECT_KILN_ERROR(native::sum(x, {1, -1}), "multiple times");
  EXPECT_KILN_ERROR(native::sum(x, {2}), "out of range");
  EXPECT_KILN_ERROR(native::amax(x, {0, 0}), "amax");
  EXPECT_KILN_ERROR(native::max(x, 3), "max");
}

TEST(Reduce, ZeroDimInput) {
  Tensor s = native::scalar_tensor(2.5, dtype(kFloat64));
  EXPECT_EQ(native::sum(s).dim(), 0);
  EXPECT_EQ(native::sum(s).item<double>(), 2.5);
  EXPECT_EQ(native::sum(s, {0}).item<double>(), 2.5);
  EXPECT_EQ(native::amax(s, {-1}, true).dim(), 0);
  auto [v, i] = native::max(s, 0);
  EXPECT_EQ(v.item<double>(), 2.5);
  EXPECT_EQ(i.item<int64_t>(), 0);
  EXPECT_EQ(native::argmax(s).item<int64_t>(), 0);
}

TEST(Reduce, LargeSumIsAccurateAndThreadCountIndependent) {
  const int64_t n = 1 << 20;
  std::vector<double> v = sample(n, 0, 1, 11);
  Tensor x = make({n}, v, kFloat32);
  double exact = 0;
  for (double e : values(x)) exact += e;  // float inputs summed in double: exact to ~1e-16
  Tensor s = native::sum(x);
  EXPECT_NEAR(s.item<double>(), exact, 1e-6 * exact);
  Tensor m = native::mean(x);
  EXPECT_NEAR(m.item<double>(), exact / n, 1e-6 * exact / n);
  // Same bits with one thread as with two, whole and per row.
  Tensor x2 = native::reshape(x, {16, n / 16});
  const int before = get_num_threads();
  set_num_threads(1);
  const auto one = values(native::sum(x)), rows1 = values(native::sum(x2, {1})), cols1 = values(native::sum(x2, {0}));
  set_num_threads(2);
  const auto two = values(native::sum(x)), rows2 = values(native::sum(x2, {1})), cols2 = values(native::sum(x2, {0}));
  set_num_threads(before);
  EXPECT_EQ(one, two);
  EXPECT_EQ(rows1, rows2);
  EXPECT_EQ(cols1, cols2);
  // all/any over a large input (chunked, one partial per chunk).
  Tensor big = native::binary(BinaryOp::Lt, x, 2.0);
  EXPECT_TRUE(native::all(big).item<bool>());
  EXPECT_FALSE(native::any(native::unary(UnaryOp::LogicalNot, big)).item<bool>());
  native::fill_(native::slice(big, 0, n - 3, n - 2), false);
  EXPECT_FALSE(native::all(big).item<bool>());
  EXPECT_EQ(native::sum(big).item<int64_t>(), n - 1);
  // Outer-dim reduction accumulates in double too.
  EXPECT_TRUE(all_close(native::sum(x2, {0}), ref_reduce(x2, {0}, false, g_sum), 1e-6));
  // The transposed view (a strided walk) gives the same answer.
  EXPECT_TRUE(all_close(native::sum(native::transpose(x2, 0, 1), {1}), ref_reduce(x2, {0}, false, g_sum), 1e-6));
}

TEST(Reduce, FloatSumRunsAndRowBatchesWithRaggedEnds) {
  // Contiguous float runs shorter and longer than the kernel's lanes and
  // blocks, with ragged tails; rows reduced in batches with leftover rows.
  for (int64_t n : {1, 63, 64, 65, 255, 256, 1000, 4099, 70001}) {
    Tensor x = make({n}, sample(n, -1, 3, 40 + static_cast<uint32_t>(n % 97)), kFloat32);
    double exact = 0, mag = 0;
    for (double e : values(x)) {
      exact += e;
      mag += std::fabs(e);
    }
    EXPECT_NEAR(native::sum(x).item<double>(), exact, 1e-6 * mag) << n;
    EXPECT_NEAR(native::sum(x, {}, false, kFloat64).item<double>(), exact, 1e-6 * mag) << n;
  }
  for (DType d : {kFloat32, kFloat64}) {
    Tensor x = make({19, 300}, sample(5700, -1, 2, 41), d);
    const double tol = d == kFloat32 ? 1e-6 : 1e-12;
    EXPECT_TRUE(all_close(native::sum(x, {0}), ref_reduce(x, {0}, false, g_sum), tol, tol * 19 * 2));
    EXPECT_TRUE(all_close(native::sum(x, {1}), ref_reduce(x, {1}, false, g_sum), tol, tol * 300 * 2));
  }
}

TEST(Reduce, FloatSumDoesNotDependOnAlignment) {
  // The same values summed from a view at an odd offset and from a fresh
  // contiguous copy give the same bits: the order of additions is fixed by
  // the index, not by where vectors happen to start.
  const int64_t n = 100003;
  Tensor base = make({n + 1}, sample(n + 1, -1, 1, 42), kFloat32);
  Tensor view = native::slice(base, 0, 1, n + 1);
  Tensor copy = native::contiguous(native::add(view, 0.0));
  EXPECT_EQ(native::sum(view).item<double>(), native::sum(copy).item<double>());
  Tensor rows = native::slice(native::reshape(base, {1, n + 1}), 1, 1, n + 1);
  EXPECT_EQ(native::sum(rows, {1}).item<double>(), native::sum(copy).item<double>());
}

TEST(Reduce, WideRowsUseEveryBlock) {
  // More kept columns than one accumulation block, reduced over rows.
  Tensor x = make({7, 600}, sample(4200, -1, 1, 12));
  EXPECT_TRUE(all_close(native::sum(x, {0}), ref_reduce(x, {0}, false, g_sum), 1e-12));
  EXPECT_TRUE(all_close(native::amin(x, {0}, true), ref_reduce(x, {0}, true, g_min), 0));
  auto [v, i] = native::max(x, 0);
  EXPECT_TRUE(all_close(v, ref_reduce(x, {0}, false, g_max), 0));
  const auto xv = values(x), iv = values(i);
  for (int64_t c = 0; c < 600; ++c) EXPECT_EQ(xv[int64_t(iv[c]) * 600 + c], values(v)[c]);
}

TEST(Reduce, EmptyTensors) {
  Tensor e = native::zeros({0, 3});
  EXPECT_EQ(values(native::sum(e, {0})), (std::vector<double>{0, 0, 0}));
  EXPECT_EQ(values(native::prod(e, {0})), (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(native::sum(e, {1}).sizes(), IntArrayRef({0}));
  EXPECT_EQ(native::sum(e).item<double>(), 0);
  EXPECT_EQ(native::all(e).item<bool>(), true);
  EXPECT_EQ(native::any(e).item<bool>(), false);
  EXPECT_TRUE(std::isnan(native::mean(e).item<double>()));
  EXPECT_EQ(native::amax(e, {1}).sizes(), IntArrayRef({0}));  // nothing to reduce per output
  EXPECT_KILN_ERROR(native::amax(e, {0}), "amax(): Expected reduction dim 0 to have non-zero size");
  EXPECT_KILN_ERROR(native::amin(e), "non-zero size");
  EXPECT_KILN_ERROR(native::max(e, 0), "max(): Expected reduction dim 0");
  EXPECT_KILN_ERROR(native::argmax(e), "numel() == 0");
  EXPECT_EQ(native::argmax(e, 1).sizes(), IntArrayRef({0}));
  EXPECT_EQ(values(native::logsumexp(e, {0})), (std::vector<double>{-kInf, -kInf, -kInf}));
}

TEST(ArgReduce, ValuesIndicesTiesAndNaN) {
  Tensor x = make({2, 4}, {1, 3, 3, 0, 5, kNaN, 2, kNaN});
  auto [v, i] = native::max(x, 1);
  EXPECT_EQ(i.dtype(), kInt64);
  EXPECT_EQ(values(i), (std::vector<double>{1, 1}));  // first of the tied 3s; first NaN
  EXPECT_EQ(values(v)[0], 3);
  EXPECT_TRUE(std::isnan(values(v)[1]));
  auto [mv, mi] = native::min(x, -1, true);
  EXPECT_EQ(mi.sizes(), IntArrayRef({2, 1}));
  EXPECT_EQ(values(mi), (std::vector<double>{3, 1}));
  EXPECT_EQ(native::argmax(x).item<int64_t>(), 5);  // flattened: the first NaN
  EXPECT_EQ(native::argmax(x, std::nullopt, true).sizes(), IntArrayRef({1, 1}));
  EXPECT_EQ(values(native::argmin(x, 0)), (std::vector<double>{0, 1, 1, 1}));  // NaN wins for min too
  EXPECT_TRUE(std::isnan(values(native::amax(x, {1}))[1]));
  EXPECT_TRUE(std::isnan(values(native::amin(x, {0}))[1]));
  for (DType d : {kFloat32, kFloat16, kBFloat16, kInt32, kUInt8}) {
    Tensor y = make({3, 2}, {4, 9, 7, 1, 7, 9}, d);
    EXPECT_EQ(values(native::argmax(y, 0)), (std::vector<double>{1, 0})) << dtype_name(d);
    EXPECT_EQ(values(native::argmin(native::transpose(y, 0, 1), 1)), (std::vector<double>{0, 1}));
    EXPECT_EQ(values(std::get<0>(native::max(y, 1))), (std::vector<double>{9, 7, 9}));
  }
  // Against a loop on every dim of permuted input: the value at each index is the max.
  for (const Tensor& t : layouts(kFloat64)) {
    for (int64_t d = 0; d < 3; ++d) {
      auto [mx, ix] = native::max(t, d, true);
      EXPECT_TRUE(all_close(mx, ref_reduce(t, {d}, true, g_max), 0));
      const auto tv = values(t), iv = values(ix), mv = values(mx);
      for (int64_t o = 0; o < ix.numel(); ++o) {
        int64_t rem = o, flat = 0, mult = 1;
        for (int64_t k = 2; k >= 0; --k) {
          const int64_t idx = k == d ? int64_t(iv[o]) : rem % ix.size(k);
          rem /= ix.size(k);
          flat += idx * mult;
          mult *= t.size(k);
        }
        EXPECT_EQ(tv[flat], mv[o]);
      }
    }
  }
}

TEST(Stats, VarStdTwoPass) {
  for (const Tensor& x : layouts(kFloat64)) {
    for (const auto& dims : dim_subsets()) {
      for (bool unbiased : {true, false}) {
        const int c = unbiased ? 1 : 0;
        Tensor rv = ref_reduce(x, dims, true, [c](const std::vector<double>& g) { return g_var(g, c); });
        EXPECT_TRUE(all_close(native::var(x, dims, unbiased, true), rv, 1e-12));
        EXPECT_TRUE(all_close(native::std(x, dims, unbiased, true), native::unary(UnaryOp::Sqrt, rv), 1e-12));
      }
    }
  }
  // A large offset would ruin a one-pass sum of squares in float32.
  std::vector<double> v = sample(4096, -1, 1, 21);
  for (auto& e : v) e += 1000;
  Tensor x = make({4096}, v, kFloat32);
  Tensor ref = ref_reduce(x, {}, false, [](const std::vector<double>& g) { return g_var(g, 1); });
  EXPECT_TRUE(all_close(native::var(x), ref, 1e-4));
  EXPECT_TRUE(std::isnan(native::var(make({1}, {3})).item<double>()));  // one element, unbiased
  EXPECT_EQ(native::var(make({1}, {3}), {}, false).item<double>(), 0);
  EXPECT_EQ(native::var(make({4}, {1, 2, 3, 4}, kFloat16)).dtype(), kFloat16);
  EXPECT_NEAR(native::std(make({4}, {1, 2, 3, 4}, kBFloat16)).item<double>(), std::sqrt(5.0 / 3), 8e-3);
  EXPECT_KILN_ERROR(native::var(make({2}, {1, 2}, kInt64)), "floating point");
}

TEST(Stats, Norms) {
  Tensor x = make({3, 4}, sample(12, -2, 2, 31));
  auto pnorm = [](double p) {
    return [p](const std::vector<double>& g) {
      double s = 0;
      for (double e : g) s += std::pow(std::fabs(e), p);
      return std::pow(s, 1 / p);
    };
  };
  auto absmax = [](const std::vector<double>& g) {
    double m = 0;
    for (double e : g) m = std::max(m, std::fabs(e));
    return m;
  };
  for (std::vector<int64_t> dims : {std::vector<int64_t>{}, {0}, {-1}}) {
    EXPECT_TRUE(all_close(native::norm(x, 2, dims), ref_reduce(x, dims, false, pnorm(2)), 1e-12));
    EXPECT_TRUE(all_close(native::norm(x, 1, dims), ref_reduce(x, dims, false, pnorm(1)), 1e-12));
    EXPECT_TRUE(all_close(native::norm(x, 3.5, dims, true), ref_reduce(x, dims, true, pnorm(3.5)), 1e-12));
    EXPECT_TRUE(all_close(native::norm(x, kInf, dims), ref_reduce(x, dims, false, absmax), 0));
  }
  Tensor z = make({4}, {0, -3, 0, 2}, kFloat32);
  EXPECT_EQ(native::norm(z, 0).item<double>(), 2);
  EXPECT_EQ(native::norm(z, -kInf).item<double>(), 0);
  EXPECT_EQ(native::norm(z).dtype(), kFloat32);
  EXPECT_NEAR(native::norm(native::to(z, kFloat16)).item<double>(), std::sqrt(13.0), 4e-3);
  EXPECT_KILN_ERROR(native::norm(make({2}, {1, 2}, kInt32)), "floating point");
}

TEST(Stats, LogSumExpIsStable) {
  auto lse = [](const std::vector<double>& g) {
    const double m = *std::max_element(g.begin(), g.end());
    double s = 0;
    for (double e : g) s += std::exp(e - m);
    return m + std::log(s);
  };
  for (const Tensor& x : layouts(kFloat64)) {
    for (const auto& dims : dim_subsets()) {
      EXPECT_TRUE(all_close(native::logsumexp(x, dims), ref_reduce(x, dims, false, lse), 1e-12));
    }
  }
  Tensor big = make({2, 3}, {1000, 1001, 1002, -1000, -kInf, -1001});
  EXPECT_TRUE(all_close(native::logsumexp(big, {1}, true), make({2, 1}, {lse({1000, 1001, 1002}), lse({-1000, -1001})}),
                        1e-12));
  Tensor inf_rows = make({3, 2}, {-kInf, -kInf, kInf, 1, kNaN, 1});
  auto r = values(native::logsumexp(inf_rows, {1}));
  EXPECT_EQ(r[0], -kInf);
  EXPECT_EQ(r[1], kInf);
  EXPECT_TRUE(std::isnan(r[2]));
  Tensor fi = native::logsumexp(make({2}, {0, 0}, kInt64), {0});
  EXPECT_EQ(fi.dtype(), kFloat32);
  EXPECT_NEAR(fi.item<double>(), std::log(2.0), 1e-6);
}

TEST(SumTo, ReversesBroadcasting) {
  Tensor g = make({2, 3, 4}, sample(24, -1, 1, 41));
  Tensor a = native::sum_to(g, {3, 1});
  EXPECT_EQ(a.sizes(), IntArrayRef({3, 1}));
  EXPECT_TRUE(all_close(a, native::reshape(ref_reduce(g, {0, 2}, false, g_sum), {3, 1}), 1e-12));
  EXPECT_TRUE(all_close(native::sum_to(g, {4}), ref_reduce(g, {0, 1}, false, g_sum), 1e-12));
  EXPECT_TRUE(all_close(native::sum_to(g, {2, 1, 4}), ref_reduce(g, {1}, true, g_sum), 1e-12));
  EXPECT_TRUE(all_close(native::sum_to(g, {}), ref_reduce(g, {}, false, g_sum), 1e-12));
  EXPECT_TRUE(native::sum_to(g, {2, 3, 4}).is_same(g));
  // A broadcast (stride-0) gradient sums like any other.
  Tensor e = native::expand(make({1, 4}, {1, 2, 3, 4}), {5, 4});
  EXPECT_EQ(values(native::sum_to(e, {1, 4})), (std::vector<double>{5, 10, 15, 20}));
  Tensor i = native::sum_to(make({2, 2}, {1, 2, 3, 4}, kInt32), {2});
  EXPECT_EQ(i.dtype(), kInt32);
  EXPECT_EQ(values(i), (std::vector<double>{4, 6}));
  EXPECT_KILN_ERROR(native::sum_to(g, {3}), "not broadcastable");
  EXPECT_KILN_ERROR(native::sum_to(g, {1, 2, 3, 4}), "not broadcastable");
}
