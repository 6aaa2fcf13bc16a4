// The fused log-softmax + cross-entropy (native::cross_entropy_loss, its
// backward, kiln::cross_entropy_loss, and nn::functional::cross_entropy with
// class-index targets, which runs on it) against an independent float64
// loop written from the definition (log-probabilities from a max-shifted
// logsumexp, -w_t logp_t and -sum_c w_c logp_c), the gradient's closed form,
// the composed formula (still used when the class weights need a gradient)
// and gradcheck / gradgradcheck.
#include <kiln/kiln.h>

#include <cmath>
#include <limits>
#include <vector>

#include "autograd/gradcheck_util.h"

using namespace kiln;
using autograd::variable_list;
using kiln::testing::all_close;
using kiln::testing::kInf;
using kiln::testing::make;
using kiln::testing::random_leaf;
using kiln::testing::sample;
using kiln::testing::values;
namespace F = kiln::nn::functional;
using F::Reduction;

namespace {

constexpr Reduction kAll[] = {Reduction::None, Reduction::Mean, Reduction::Sum};
constexpr double kSmoothings[] = {0.0, 0.1, 1.0};

struct Problem {
  int64_t m = 0, c = 0;        // rows, classes
  std::vector<double> x;       // [m, c] row-major
  std::vector<int64_t> t;      // [m]
  std::vector<double> w;       // [c], or empty: no weight
  int64_t ignore = -100;
  double ls = 0.0;
};

double class_weight(const Problem& p, int64_t k) { return p.w.empty() ? 1.0 : p.w[static_cast<size_t>(k)]; }

double row_lse(const Problem& p, int64_t i) {
  double mx = -kInf;
  for (int64_t k = 0; k < p.c; ++k) mx = std::max(mx, p.x[i * p.c + k]);
  double s = 0;
  for (int64_t k = 0; k < p.c; ++k) s += std::exp(p.x[i * p.c + k] - mx);
  return mx + std::log(s);
}

// Per-row losses, straight from torch's definition.
std::vector<double> naive_rows(const Problem& p) {
  std::vector<double> out;
  for (int64_t i = 0; i < p.m; ++i) {
    const int64_t t = p.t[i];
    if (t == p.ignore) {
      out.push_back(0.0);
      continue;
    }
    const double lse = row_lse(p, i);
    const double nll = -class_weight(p, t) * (p.x[i * p.c + t] - lse);
    double smooth = 0;
    for (int64_t k = 0; k < p.c; ++k) smooth -= class_weight(p, k) * (p.x[i * p.c + k] - lse);
    out.push_back(p.ls > 0 ? (1 - p.ls) * nll + p.ls / static_cast<double>(p.c) * smooth : nll);
  }
  return out;
}

// torch's reduction: mean divides by the summed weights of non-ignored targets.
std::vector<double> naive_reduce(const Problem& p, const std::vector<double>& rows, Reduction red) {
  if (red == Reduction::None) return rows;
  double total = 0, wsum = 0;
  for (int64_t i = 0; i < p.m; ++i) {
    total += rows[i];
    if (p.t[i] != p.ignore) wsum += class_weight(p, p.t[i]);
  }
  return {red == Reduction::Sum ? total : total / wsum};
}

// d(sum_i g_i loss_i)/dx: (1-ls) w_t (p_c - [c==t]) + (ls/C)(W p_c - w_c), zero for ignored rows.
std::vector<double> naive_grad(const Problem& p, const std::vector<double>& g) {
  double big_w = 0;
  for (int64_t k = 0; k < p.c; ++k) big_w += class_weight(p, k);
  std::vector<double> out(static_cast<size_t>(p.m * p.c), 0.0);
  for (int64_t i = 0; i < p.m; ++i) {
    const int64_t t = p.t[i];
    if (t == p.ignore) continue;
    const double lse = row_lse(p, i), wt = class_weight(p, t);
    for (int64_t k = 0; k < p.c; ++k) {
      const double prob = std::exp(p.x[i * p.c + k] - lse);
      out[i * p.c + k] = g[i] * ((1 - p.ls) * wt * (prob - (k == t ? 1.0 : 0.0)) +
                                 p.ls / static_cast<double>(p.c) * (big_w * prob - class_weight(p, k)));
    }
  }
  return out;
}

// Logits in [-3, 3), targets cycling over the classes with every fourth row
// set to ignore_index (2: also a real class, so the ignore rule is what zeroes it).
Problem problem(int64_t m, int64_t c, bool weighted, double ls, unsigned seed, int64_t ignore = 2) {
  Problem p;
  p.m = m;
  p.c = c;
  p.x = sample(m * c, -3, 3, seed);
  for (int64_t i = 0; i < m; ++i) p.t.push_back(i % 4 == 3 ? ignore : (i * 7 + 1) % c);
  if (weighted) p.w = sample(c, 0.25, 2.0, seed + 1);
  p.ignore = ignore;
  p.ls = ls;
  return p;
}

// The problem's values after rounding to dt (what the kernels see).
Problem rounded(Problem p, DType dt) {
  p.x = values(make({p.m, p.c}, p.x, dt));
  if (!p.w.empty()) p.w = values(make({p.c}, p.w, dt));
  return p;
}

Tensor logits_of(const Problem& p, DType dt) { return make({p.m, p.c}, p.x, dt); }
Tensor target_of(const Problem& p) {
  return make({p.m}, std::vector<double>(p.t.begin(), p.t.end()), kInt64);
}
Tensor weight_of(const Problem& p, DType dt) { return p.w.empty() ? Tensor() : make({p.c}, p.w, dt); }

double tol_of(DType dt) { return dt == kFloat64 ? 1e-12 : 1e-5; }

std::string describe(const Problem& p, DType dt) {
  return std::string(dtype_name(dt)) + " [" + std::to_string(p.m) + ", " + std::to_string(p.c) +
         "] weighted " + std::to_string(!p.w.empty()) + " ls " + std::to_string(p.ls);
}

F::CrossEntropyFuncOptions options_of(const Problem& p, Reduction red, DType dt) {
  auto o = F::CrossEntropyFuncOptions().ignore_index(p.ignore).label_smoothing(p.ls).reduction(red);
  if (!p.w.empty()) o.weight(weight_of(p, dt));
  return o;
}

}  // namespace

// ---- native entry point and the backend kernels ----

TEST(CrossEntropyFused, NativeForwardMatchesNaive) {
  for (DType dt : {kFloat64, kFloat32}) {
    for (auto [m, c] : {std::pair<int64_t, int64_t>{9, 5}, {3, 1500}, {4, 1}}) {
      for (bool weighted : {false, true}) {
        for (double ls : kSmoothings) {
          const Problem p = rounded(problem(m, c, weighted, ls, static_cast<unsigned>(m + c)), dt);
          SCOPED_TRACE(describe(p, dt));
          auto [loss, lse] = native::cross_entropy_loss(logits_of(p, dt), target_of(p), weight_of(p, dt), p.ignore, ls);
          EXPECT_EQ(loss.dtype(), dt);
          EXPECT_TRUE(all_close(loss, make({m}, naive_rows(p)), tol_of(dt), tol_of(dt)));
          std::vector<double> ref_lse;
          for (int64_t i = 0; i < m; ++i) ref_lse.push_back(row_lse(p, i));
          EXPECT_TRUE(all_close(lse, make({m}, ref_lse), tol_of(dt), tol_of(dt)));
        }
      }
    }
  }
}

TEST(CrossEntropyFused, NativeBackwardMatchesClosedForm) {
  for (DType dt : {kFloat64, kFloat32}) {
    for (auto [m, c] : {std::pair<int64_t, int64_t>{9, 5}, {3, 1500}}) {
      for (bool weighted : {false, true}) {
        for (double ls : kSmoothings) {
          const Problem p = rounded(problem(m, c, weighted, ls, static_cast<unsigned>(2 * m + c)), dt);
          SCOPED_TRACE(describe(p, dt));
          const Tensor x = logits_of(p, dt), t = target_of(p), w = weight_of(p, dt);
          const std::vector<double> g = values(make({m}, sample(m, -2, 2, 77), dt));
          auto [loss, lse] = native::cross_entropy_loss(x, t, w, p.ignore, ls);
          const Tensor gi = native::cross_entropy_loss_backward(make({m}, g, dt), x, t, w, lse, p.ignore, ls);
          EXPECT_EQ(gi.dtype(), dt);
          EXPECT_TRUE(all_close(gi, make({m, c}, naive_grad(p, g)), tol_of(dt), tol_of(dt)));
        }
      }
    }
  }
}

// Logits of large magnitude, where exp without the max shift overflows, and
// -inf in non-target columns (masked classes): finite losses and gradients
// without smoothing; the smoothing term sums -logp over every class, so it
// is +inf then, as torch.
TEST(CrossEntropyFused, LargeMagnitudeAndMaskedLogits) {
  const int64_t m = 4, c = 6;
  std::vector<double> x = sample(m * c, -1, 1, 5);
  for (double& v : x) v *= 1e4;
  x[0 * c + 1] = -kInf;
  x[1 * c + 0] = -kInf;
  x[1 * c + 5] = -kInf;
  x[2 * c + 3] = 2e4;
  for (DType dt : {kFloat64, kFloat32}) {
    for (double ls : {0.0, 0.1}) {
      Problem p;
      p.m = m;
      p.c = c;
      p.x = values(make({m, c}, x, dt));
      p.t = {0, 2, 3, 4};
      p.ls = ls;
      SCOPED_TRACE(describe(p, dt));
      auto [loss, lse] = native::cross_entropy_loss(logits_of(p, dt), target_of(p), Tensor(), p.ignore, ls);
      const std::vector<double> got = values(loss), want = naive_rows(p);
      for (int64_t i = 0; i < m; ++i) {
        const bool masked = i < 2;
        if (ls > 0 && masked) {
          EXPECT_EQ(got[i], kInf) << "row " << i;
        } else {
          EXPECT_TRUE(std::isfinite(got[i])) << "row " << i;
          EXPECT_NEAR(got[i], want[i], tol_of(dt) * std::max(1.0, std::fabs(want[i]))) << "row " << i;
        }
      }
      const std::vector<double> g = {1.0, -0.5, 2.0, 0.25};
      const Tensor gi = native::cross_entropy_loss_backward(make({m}, g, dt), logits_of(p, dt), target_of(p),
                                                            Tensor(), lse, p.ignore, ls);
      EXPECT_TRUE(all_close(gi, make({m, c}, naive_grad(p, g)), tol_of(dt), tol_of(dt)));
    }
  }
  // A NaN anywhere in a row makes that row's loss NaN, and only that row's.
  std::vector<double> xn = sample(2 * 3, -1, 1, 6);
  xn[4] = std::numeric_limits<double>::quiet_NaN();
  auto [loss, lse] =
      native::cross_entropy_loss(make({2, 3}, xn, kFloat32), make({2}, {0, 0}, kInt64), Tensor(), -100, 0);
  const std::vector<double> v = values(loss);
  EXPECT_TRUE(std::isfinite(v[0]));
  EXPECT_TRUE(std::isnan(v[1]));
}

// ---- nn::functional::cross_entropy on the fused op ----

TEST(CrossEntropyFused, FunctionalMatchesNaive) {
  for (DType dt : {kFloat64, kFloat32}) {
    for (bool weighted : {false, true}) {
      for (double ls : kSmoothings) {
        for (Reduction red : kAll) {
          const Problem p = rounded(problem(10, 7, weighted, ls, 11), dt);
          SCOPED_TRACE(describe(p, dt) + " reduction " + std::to_string(static_cast<int>(red)));
          const Tensor out = F::cross_entropy(logits_of(p, dt), target_of(p), options_of(p, red, dt));
          EXPECT_EQ(out.dtype(), dt);
          const std::vector<double> want = naive_reduce(p, naive_rows(p), red);
          EXPECT_TRUE(all_close(out, red == Reduction::None ? make({p.m}, want) : make({}, want), tol_of(dt),
                                tol_of(dt)));
        }
      }
    }
  }
}

// [N, C, d1, d2]: each (n, d1, d2) is a row of C classes strided by d1 * d2.
TEST(CrossEntropyFused, SpatialAndUnbatched) {
  const int64_t n = 2, c = 4, d1 = 3, d2 = 2, d = d1 * d2;
  const std::vector<double> x = sample(n * c * d, -2, 2, 21);
  std::vector<double> t;
  for (int64_t i = 0; i < n * d; ++i) t.push_back(i % 5 == 4 ? -100 : static_cast<double>((i * 3) % c));
  Problem p;  // the same data as rows [n * d, c]
  p.m = n * d;
  p.c = c;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < d; ++k)
      for (int64_t j = 0; j < c; ++j) p.x.push_back(x[(i * c + j) * d + k]);
  for (double v : t) p.t.push_back(static_cast<int64_t>(v));
  p.w = {0.5, 1.5, 1.0, 2.0};
  for (double ls : {0.0, 0.2}) {
    p.ls = ls;
    for (Reduction red : kAll) {
      const Tensor out =
          F::cross_entropy(make({n, c, d1, d2}, x), make({n, d1, d2}, t, kInt64), options_of(p, red, kFloat64));
      const std::vector<double> want = naive_reduce(p, naive_rows(p), red);
      EXPECT_TRUE(all_close(out, red == Reduction::None ? make({n, d1, d2}, want) : make({}, want), 1e-12, 1e-12))
          << "ls " << ls << " reduction " << static_cast<int>(red);
    }
  }
  // Unbatched [C] with a 0-dim target: one row.
  Problem u;
  u.m = 1;
  u.c = 5;
  u.x = sample(5, -2, 2, 22);
  u.t = {3};
  u.ls = 0.1;
  for (Reduction red : kAll) {
    const Tensor out = F::cross_entropy(make({5}, u.x), make({}, {3}, kInt64), options_of(u, red, kFloat64));
    EXPECT_EQ(out.dim(), 0);
    EXPECT_NEAR(values(out)[0], naive_rows(u)[0], 1e-12);
  }
}

TEST(CrossEntropyFused, NonContiguousLogits) {
  const int64_t m = 6, c = 5;
  // Transposed: stored [C, M].
  const std::vector<double> xs = sample(m * c, -2, 2, 31);
  Problem p = problem(m, c, true, 0.1, 31);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < c; ++j) p.x[i * c + j] = xs[j * m + i];
  const Tensor tr = native::t(make({c, m}, xs));
  ASSERT_FALSE(tr.is_contiguous());
  for (Reduction red : kAll) {
    const std::vector<double> want = naive_reduce(p, naive_rows(p), red);
    EXPECT_TRUE(all_close(F::cross_entropy(tr, target_of(p), options_of(p, red, kFloat64)),
                          red == Reduction::None ? make({m}, want) : make({}, want), 1e-12, 1e-12));
  }
  // Sliced: every other row and every other column of a [2M, 2C] base.
  const std::vector<double> base = sample(4 * m * c, -2, 2, 32);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < c; ++j) p.x[i * c + j] = base[(2 * i) * (2 * c) + 2 * j + 1];
  const Tensor rows = native::slice(make({2 * m, 2 * c}, base), 0, 0, std::nullopt, 2);
  const Tensor sl = native::slice(rows, 1, 1, std::nullopt, 2);
  ASSERT_FALSE(sl.is_contiguous());
  auto [loss, lse] = native::cross_entropy_loss(sl, target_of(p), weight_of(p, kFloat64), p.ignore, p.ls);
  EXPECT_TRUE(all_close(loss, make({m}, naive_rows(p)), 1e-12, 1e-12));
  // Gradient of a strided leaf lands in its own layout.
  Tensor leaf = native::slice(make({2 * m, 2 * c}, base), 0, 0, std::nullopt, 2).requires_grad_(true);
  const Tensor view = kiln::slice(leaf, 1, 1, std::nullopt, 2);
  kiln::sum(kiln::cross_entropy_loss(view, target_of(p), weight_of(p, kFloat64), p.ignore, p.ls)).backward();
  const std::vector<double> g = values(leaf.grad()), want = naive_grad(p, std::vector<double>(m, 1.0));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < 2 * c; ++j) {
      const double expect = j % 2 == 1 ? want[i * c + j / 2] : 0.0;
      EXPECT_NEAR(g[i * 2 * c + j], expect, 1e-12) << i << ", " << j;
    }
  }
}

// 16-bit logits run in float32 on the CPU; the loss comes back in the input's dtype.
TEST(CrossEntropyFused, BFloat16OnCpu) {
  for (Reduction red : kAll) {
    const Problem p = rounded(problem(8, 6, true, 0.1, 41), kBFloat16);
    const Tensor x = logits_of(p, kBFloat16).requires_grad_(true);
    const Tensor out = F::cross_entropy(x, target_of(p), options_of(p, red, kBFloat16));
    EXPECT_EQ(out.dtype(), kBFloat16);
    const std::vector<double> want = naive_reduce(p, naive_rows(p), red);
    EXPECT_TRUE(all_close(out, red == Reduction::None ? make({p.m}, want) : make({}, want), 1e-2, 1e-2));
    if (red != Reduction::Sum) continue;
    out.backward();
    EXPECT_EQ(x.grad().dtype(), kBFloat16);
    EXPECT_TRUE(all_close(x.grad(), make({p.m, p.c}, naive_grad(p, std::vector<double>(p.m, 1.0))), 1e-2, 1e-2));
  }
}

TEST(CrossEntropyFused, AllIgnoredAndEmpty) {
  const Tensor x = make({3, 4}, sample(12, -1, 1, 51));
  const Tensor all_ign = make({3}, {-100, -100, -100}, kInt64);
  for (double ls : kSmoothings) {
    auto o = F::CrossEntropyFuncOptions().label_smoothing(ls);
    EXPECT_TRUE(std::isnan(values(F::cross_entropy(x, all_ign, o))[0])) << "mean is 0/0, as torch";
    EXPECT_EQ(values(F::cross_entropy(x, all_ign, o.reduction(Reduction::Sum)))[0], 0.0);
    EXPECT_TRUE(all_close(F::cross_entropy(x, all_ign, o.reduction(Reduction::None)), make({3}, {0, 0, 0})));
  }
  // No rows at all.
  const Tensor none = native::zeros({0, 4}, TensorOptions().dtype(kFloat64));
  const Tensor no_t = native::zeros({0}, TensorOptions().dtype(kInt64));
  EXPECT_TRUE(std::isnan(values(F::cross_entropy(none, no_t))[0]));
  EXPECT_EQ(values(F::cross_entropy(none, no_t, F::CrossEntropyFuncOptions().reduction(Reduction::Sum)))[0], 0.0);
  EXPECT_EQ(F::cross_entropy(none, no_t, F::CrossEntropyFuncOptions().reduction(Reduction::None)).numel(), 0);
}

// The composed formula (taken when the weight requires grad) and the fused
// op agree on values and on the logits' gradient.
TEST(CrossEntropyFused, MatchesComposedPath) {
  for (DType dt : {kFloat64, kFloat32}) {
    for (double ls : kSmoothings) {
      for (Reduction red : kAll) {
        const Problem p = rounded(problem(9, 5, true, ls, 61), dt);
        SCOPED_TRACE(describe(p, dt) + " reduction " + std::to_string(static_cast<int>(red)));
        const Tensor x1 = logits_of(p, dt).requires_grad_(true), x2 = logits_of(p, dt).requires_grad_(true);
        const Tensor fused = F::cross_entropy(x1, target_of(p), options_of(p, red, dt));
        const Tensor composed = F::cross_entropy(
            x2, target_of(p), options_of(p, red, dt).weight(weight_of(p, dt).requires_grad_(true)));
        EXPECT_TRUE(all_close(fused, composed, tol_of(dt), tol_of(dt)));
        kiln::sum(fused).backward();
        kiln::sum(composed).backward();
        EXPECT_TRUE(all_close(x1.grad(), x2.grad(), tol_of(dt), tol_of(dt)));
      }
    }
  }
}

// A weight that requires grad still gets its gradient (composed path):
// d(sum of losses)/dw_c = sum over kept rows of (1-ls)[t==c](lse - x_c) + (ls/C)(lse - x_c).
TEST(CrossEntropyFused, WeightGradientViaComposedPath) {
  Problem p = problem(7, 4, true, 0.2, 71);
  const Tensor w = weight_of(p, kFloat64).requires_grad_(true);
  F::cross_entropy(logits_of(p, kFloat64), target_of(p), options_of(p, Reduction::Sum, kFloat64).weight(w)).backward();
  std::vector<double> want(4, 0.0);
  for (int64_t i = 0; i < p.m; ++i) {
    if (p.t[i] == p.ignore) continue;
    const double lse = row_lse(p, i);
    for (int64_t k = 0; k < p.c; ++k) {
      want[k] += ((k == p.t[i] ? 1 - p.ls : 0.0) + p.ls / 4.0) * (lse - p.x[i * p.c + k]);
    }
  }
  ASSERT_TRUE(w.grad().defined());
  EXPECT_TRUE(all_close(w.grad(), make({4}, want), 1e-12, 1e-12));
  // Without grad mode the weight is just a constant and the fused op runs.
  NoGradGuard no_grad;
  const Tensor v =
      F::cross_entropy(logits_of(p, kFloat64), target_of(p), options_of(p, Reduction::Sum, kFloat64).weight(w));
  EXPECT_NEAR(values(v)[0], naive_reduce(p, naive_rows(p), Reduction::Sum)[0], 1e-12);
}

TEST(CrossEntropyFused, RecordsOneNode) {
  const Problem p = problem(3, 4, false, 0.0, 81);
  const Tensor x = logits_of(p, kFloat64).requires_grad_(true);
  const Tensor loss = kiln::cross_entropy_loss(x, target_of(p), Tensor(), p.ignore, 0.0);
  ASSERT_TRUE(loss.grad_fn() != nullptr);
  EXPECT_EQ(loss.grad_fn()->name(), "CrossEntropyLossBackward0");
}

// ---- gradcheck / gradgradcheck (float64) ----

TEST(CrossEntropyFused, Gradcheck) {
  const Tensor t = make({5}, {0, 3, 2, 2, 1}, kInt64);  // ignore_index 2 in some cases
  const Tensor w = make({4}, {0.5, 1.5, 1.0, 2.0});
  for (double ls : kSmoothings) {
    for (bool weighted : {false, true}) {
      for (int64_t ignore : {int64_t{-100}, int64_t{2}}) {
        SCOPED_TRACE("ls " + std::to_string(ls) + " weighted " + std::to_string(weighted) + " ignore " +
                     std::to_string(ignore));
        auto op = [&](const variable_list& in) {
          return kiln::cross_entropy_loss(in[0], in[1], weighted ? in[2] : Tensor(), ignore, ls);
        };
        EXPECT_GRADCHECK(op, {random_leaf({5, 4}, -2, 2, 91), t, w});
        EXPECT_GRADGRADCHECK(op, {random_leaf({5, 4}, -2, 2, 92), t, w});
      }
    }
  }
  for (Reduction red : kAll) {
    auto fn = [&](const variable_list& in) {
      const auto o = F::CrossEntropyFuncOptions().weight(in[2]).ignore_index(2).label_smoothing(0.1);
      return F::cross_entropy(in[0], in[1], F::CrossEntropyFuncOptions(o).reduction(red));
    };
    EXPECT_GRADCHECK(fn, {random_leaf({2, 4, 3}, -2, 2, 93), make({2, 3}, {0, 2, 3, 1, 1, 2}, kInt64), w});
    EXPECT_GRADGRADCHECK(fn, {random_leaf({2, 4, 3}, -2, 2, 94), make({2, 3}, {0, 2, 3, 1, 1, 2}, kInt64), w});
  }
  auto unbatched = [](const variable_list& in) { return F::cross_entropy(in[0], in[1]); };
  EXPECT_GRADGRADCHECK(unbatched, {random_leaf({6}, -1, 1, 95), make({}, {4}, kInt64)});
  auto transposed = [](const variable_list& in) {
    return F::cross_entropy(in[0], in[1], F::CrossEntropyFuncOptions().label_smoothing(0.3));
  };
  EXPECT_GRADCHECK(transposed, {kiln::testing::transposed_leaf(3, 5), make({3}, {4, 0, 2}, kInt64)});
  EXPECT_GRADGRADCHECK(transposed, {kiln::testing::transposed_leaf(3, 5), make({3}, {4, 0, 2}, kInt64)});
}

// ---- errors ----

TEST(CrossEntropyFused, Errors) {
  const Tensor x = make({2, 3}, sample(6));
  const Tensor t = make({2}, {0, 1}, kInt64);
  EXPECT_KILN_ERROR(native::cross_entropy_loss(make({6}, sample(6)), t, Tensor(), -100, 0), "[N, C]");
  EXPECT_KILN_ERROR(native::cross_entropy_loss(x, make({3}, {0, 1, 2}, kInt64), Tensor(), -100, 0),
                    "target shape [3] does not match logits shape [2, 3]");
  EXPECT_KILN_ERROR(native::cross_entropy_loss(x, make({2}, {0, 1}), Tensor(), -100, 0), "int64");
  EXPECT_KILN_ERROR(native::cross_entropy_loss(x, make({2}, {0, 3}, kInt64), Tensor(), -100, 0),
                    "target index 3 (row 1) is out of range for 3 classes");
  EXPECT_KILN_ERROR(native::cross_entropy_loss(x, make({2}, {-1, 0}, kInt64), Tensor(), -100, 0), "target index -1");
  EXPECT_KILN_ERROR(native::cross_entropy_loss(x, t, make({2}, {1, 1}), -100, 0), "weight must be a 1-D tensor of 3");
  EXPECT_KILN_ERROR(native::cross_entropy_loss(x, t, Tensor(), -100, 1.5), "label_smoothing");
  EXPECT_KILN_ERROR(native::cross_entropy_loss(make({2, 3}, sample(6), kInt64), t, Tensor(), -100, 0),
                    "floating-point logits");
  // Through nn (the fused path checks the values once, in the native op).
  EXPECT_KILN_ERROR(F::cross_entropy(make({2, 3, 1}, sample(6)), make({2, 1}, {0, 5}, kInt64)),
                    "target index 5 (row 1) is out of range for 3 classes");
  EXPECT_KILN_ERROR(F::nll_loss(x, make({2}, {7, 0}, kInt64)), "target index 7 is out of range for 3 classes");
  auto [loss, lse] = native::cross_entropy_loss(x, t, Tensor(), -100, 0);
  EXPECT_KILN_ERROR(native::cross_entropy_loss_backward(make({3}, {1, 1, 1}), x, t, Tensor(), lse, -100, 0),
                    "grad_loss must be [2]");
  // The differentiable op refuses class weights that require grad (as torch).
  EXPECT_KILN_ERROR(kiln::cross_entropy_loss(x, t, make({3}, {1, 1, 1}).requires_grad_(true)),
                    "not differentiable with respect to argument 'weight'");
  // nn's shape and weight checks and messages are unchanged; target values
  // are checked once, by the fused op.
  EXPECT_KILN_ERROR(F::cross_entropy(x, make({2}, {0, 3}, kInt64)), "cross_entropy_loss: target index 3 (row 1)");
  EXPECT_KILN_ERROR(F::cross_entropy(x, make({3}, {0, 1, 2}, kInt64)), "target shape [3]");
  EXPECT_KILN_ERROR(F::cross_entropy(x, t, F::CrossEntropyFuncOptions().weight(make({2}, {1, 1}))), "weight");
}
