// kiln::nn::functional losses against naive float64 references written from
// the textbook definitions (log-sum-exp per row, -y log p, ...), plus
// gradchecks and error cases.
#include <kiln/kiln.h>

#include <cmath>
#include <vector>

#include "autograd/gradcheck_util.h"

using namespace kiln;
using autograd::variable_list;
using kiln::testing::all_close;
using kiln::testing::make;
using kiln::testing::random_leaf;
using kiln::testing::sample;
using kiln::testing::values;
namespace F = kiln::nn::functional;
using F::Reduction;

namespace {

constexpr Reduction kAll[] = {Reduction::None, Reduction::Mean, Reduction::Sum};

// Reference cross entropy for input [N, C, D] (D = product of d1...), class
// targets [N, D]. Returns per-element losses (None) or the 1-element reduction.
std::vector<double> ref_ce(const std::vector<double>& x, int64_t n, int64_t c, int64_t d,
                           const std::vector<double>& tgt, const std::vector<double>& w, int64_t ignore, double ls,
                           Reduction red) {
  std::vector<double> out;
  double total = 0, wsum = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < d; ++k) {
      double mx = -INFINITY;
      for (int64_t j = 0; j < c; ++j) mx = std::max(mx, x[(i * c + j) * d + k]);
      double s = 0;
      for (int64_t j = 0; j < c; ++j) s += std::exp(x[(i * c + j) * d + k] - mx);
      double lse = mx + std::log(s);
      auto t = static_cast<int64_t>(tgt[i * d + k]);
      double loss = 0;
      if (t != ignore) {
        double wt = w.empty() ? 1.0 : w[t];
        double nll = -wt * (x[(i * c + t) * d + k] - lse);
        double smooth = 0;
        for (int64_t j = 0; j < c; ++j) smooth -= (w.empty() ? 1.0 : w[j]) * (x[(i * c + j) * d + k] - lse);
        loss = (1 - ls) * nll + ls / static_cast<double>(c) * smooth;
        wsum += wt;
      }
      out.push_back(loss);
      total += loss;
    }
  }
  if (red == Reduction::None) return out;
  if (red == Reduction::Sum) return {total};
  return {total / wsum};
}

// Reference for probability targets (same layout as input).
std::vector<double> ref_ce_prob(const std::vector<double>& x, int64_t n, int64_t c, int64_t d,
                                const std::vector<double>& p, const std::vector<double>& w, double ls, Reduction red) {
  std::vector<double> out;
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < d; ++k) {
      double s = 0;
      for (int64_t j = 0; j < c; ++j) s += std::exp(x[(i * c + j) * d + k]);
      double loss = 0;
      for (int64_t j = 0; j < c; ++j) {
        double pj = p[(i * c + j) * d + k] * (1 - ls) + ls / static_cast<double>(c);
        loss -= (w.empty() ? 1.0 : w[j]) * pj * std::log(std::exp(x[(i * c + j) * d + k]) / s);
      }
      out.push_back(loss);
      total += loss;
    }
  }
  if (red == Reduction::None) return out;
  if (red == Reduction::Sum) return {total};
  return {total / static_cast<double>(n * d)};
}

::testing::AssertionResult matches(const Tensor& got, const std::vector<double>& ref, Reduction red,
                                   IntArrayRef none_shape, double rtol = 1e-10, double atol = 1e-12) {
  if (red == Reduction::None) return all_close(got, make(none_shape, ref), rtol, atol);
  if (got.dim() != 0) return ::testing::AssertionFailure() << "reduced loss is not 0-dim: " << got.sizes();
  return all_close(got, native::tensor(ref).reshape({}), rtol, atol);
}

}  // namespace

TEST(CrossEntropy, ClassIndices2D) {
  const int64_t n = 4, c = 5;
  auto x = sample(n * c, -3, 3, 1);
  std::vector<double> t = {0, 4, 2, 2};
  for (DType dt : {kFloat64, kFloat32}) {
    for (Reduction red : kAll) {
      Tensor out = F::cross_entropy(make({n, c}, x, dt), make({n}, t, kInt64), F::CrossEntropyFuncOptions().reduction(red));
      EXPECT_EQ(out.dtype(), dt);
      double tol = dt == kFloat32 ? 1e-5 : 1e-10;
      EXPECT_TRUE(matches(out, ref_ce(x, n, c, 1, t, {}, -100, 0, red), red, {n}, tol, tol));
    }
  }
}

TEST(CrossEntropy, NonContiguousInput) {
  const int64_t n = 3, c = 4;
  auto xs = sample(n * c, -2, 2, 7);  // stored [C, N]
  std::vector<double> x(n * c);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < c; ++j) x[i * c + j] = xs[j * n + i];
  std::vector<double> t = {3, 0, 1};
  Tensor in = native::t(make({c, n}, xs));
  ASSERT_FALSE(in.is_contiguous());
  EXPECT_TRUE(matches(F::cross_entropy(in, make({n}, t, kInt64)), ref_ce(x, n, c, 1, t, {}, -100, 0, Reduction::Mean),
                      Reduction::Mean, {}));
}

TEST(CrossEntropy, KDimWeightIgnoreSmoothing) {
  const int64_t n = 2, c = 3, d = 4;
  auto x = sample(n * c * d, -2, 2, 3);
  std::vector<double> t = {0, 2, 1, 7, 2, 2, 7, 0};  // 7 = ignore_index
  std::vector<double> w = {0.5, 2.0, 1.25};
  for (Reduction red : kAll) {
    for (double ls : {0.0, 0.2}) {
      for (bool weighted : {false, true}) {
        auto opts = F::CrossEntropyFuncOptions().ignore_index(7).reduction(red).label_smoothing(ls);
        if (weighted) opts.weight(make({c}, w));
        Tensor out = F::cross_entropy(make({n, c, d}, x), make({n, d}, t, kInt64), opts);
        EXPECT_TRUE(matches(out, ref_ce(x, n, c, d, t, weighted ? w : std::vector<double>{}, 7, ls, red), red, {n, d}))
            << "ls " << ls << " weighted " << weighted << " red " << static_cast<int>(red);
      }
    }
  }
}

TEST(CrossEntropy, FourDim) {
  const int64_t n = 2, c = 3;
  auto x = sample(n * c * 2 * 2, -2, 2, 9);
  std::vector<double> t = {0, 1, 2, 1, 2, 0, 0, 1};
  Tensor out = F::cross_entropy(make({n, c, 2, 2}, x), make({n, 2, 2}, t, kInt64),
                                F::CrossEntropyFuncOptions().reduction(Reduction::None));
  EXPECT_TRUE(matches(out, ref_ce(x, n, c, 4, t, {}, -100, 0, Reduction::None), Reduction::None, {n, 2, 2}));
}

TEST(CrossEntropy, DefaultIgnoreIndexAndAllIgnored) {
  const int64_t n = 3, c = 4;
  auto x = sample(n * c, -1, 1, 4);
  std::vector<double> t = {1, -100, 3};
  EXPECT_TRUE(matches(F::cross_entropy(make({n, c}, x), make({n}, t, kInt64)),
                      ref_ce(x, n, c, 1, t, {}, -100, 0, Reduction::Mean), Reduction::Mean, {}));
  // Every target ignored: mean is 0/0 = nan (as torch), sum 0, none all zeros.
  Tensor all_ign = make({n}, {-100, -100, -100}, kInt64);
  auto mean = values(F::cross_entropy(make({n, c}, x), all_ign));
  EXPECT_TRUE(std::isnan(mean[0]));
  auto mean_ls = values(F::cross_entropy(make({n, c}, x), all_ign, F::CrossEntropyFuncOptions().label_smoothing(0.1)));
  EXPECT_TRUE(std::isnan(mean_ls[0]));
  EXPECT_EQ(values(F::cross_entropy(make({n, c}, x), all_ign, F::CrossEntropyFuncOptions().reduction(Reduction::Sum)))[0], 0.0);
  EXPECT_TRUE(all_close(F::cross_entropy(make({n, c}, x), all_ign, F::CrossEntropyFuncOptions().reduction(Reduction::None)),
                        make({n}, {0, 0, 0})));
}

TEST(CrossEntropy, WeightedMeanDividesByWeightSum) {
  // Two samples, uniform logits: each nll is log(2); weights 1 and 3 -> mean = (1+3)log2/(1+3) = log 2,
  // while sum = 4 log 2.
  Tensor x = make({2, 2}, {0, 0, 0, 0});
  Tensor t = make({2}, {0, 1}, kInt64);
  auto o = F::CrossEntropyFuncOptions().weight(make({2}, {1, 3}));
  EXPECT_NEAR(values(F::cross_entropy(x, t, o))[0], std::log(2.0), 1e-12);
  EXPECT_NEAR(values(F::cross_entropy(x, t, o.reduction(Reduction::Sum)))[0], 4 * std::log(2.0), 1e-12);
}

TEST(CrossEntropy, Unbatched) {
  const int64_t c = 5;
  auto x = sample(c, -2, 2, 5);
  Tensor out = F::cross_entropy(make({c}, x), make({}, {3}, kInt64));
  EXPECT_EQ(out.dim(), 0);
  EXPECT_TRUE(matches(out, ref_ce(x, 1, c, 1, {3}, {}, -100, 0, Reduction::Mean), Reduction::Mean, {}));
  Tensor none = F::cross_entropy(make({c}, x), make({}, {3}, kInt64), F::CrossEntropyFuncOptions().reduction(Reduction::None));
  EXPECT_EQ(none.dim(), 0);
}

TEST(CrossEntropy, ProbabilityTargets) {
  const int64_t n = 2, c = 3, d = 2;
  auto x = sample(n * c * d, -2, 2, 11);
  auto p = sample(n * c * d, 0, 1, 12);
  std::vector<double> w = {1.5, 0.5, 2.0};
  for (Reduction red : kAll) {
    for (double ls : {0.0, 0.3}) {
      for (bool weighted : {false, true}) {
        auto opts = F::CrossEntropyFuncOptions().reduction(red).label_smoothing(ls);
        if (weighted) opts.weight(make({c}, w));
        auto ref = ref_ce_prob(x, n, c, d, p, weighted ? w : std::vector<double>{}, ls, red);
        EXPECT_TRUE(matches(F::cross_entropy(make({n, c, d}, x), make({n, c, d}, p), opts), ref, red, {n, d}));
      }
    }
  }
  // Plain [N, C] input.
  auto x2 = sample(4 * c, -1, 1, 13), p2 = sample(4 * c, 0, 1, 14);
  EXPECT_TRUE(matches(F::cross_entropy(make({4, c}, x2), make({4, c}, p2)),
                      ref_ce_prob(x2, 4, c, 1, p2, {}, 0, Reduction::Mean), Reduction::Mean, {}));
}

TEST(NllLoss, MatchesReference) {
  const int64_t n = 3, c = 4, d = 2;
  auto x = sample(n * c * d, -2, 2, 21);
  std::vector<double> t = {0, 3, -1, 2, 1, 1};
  std::vector<double> w = {1, 2, 3, 4};
  // With log-probs as input, nll_loss == cross_entropy of the logits.
  Tensor logp = native::log_softmax(make({n, c, d}, x), 1);
  for (Reduction red : kAll) {
    Tensor out = F::nll_loss(logp, make({n, d}, t, kInt64),
                             F::NLLLossFuncOptions().weight(make({c}, w)).ignore_index(-1).reduction(red));
    EXPECT_TRUE(matches(out, ref_ce(x, n, c, d, t, w, -1, 0, red), red, {n, d}));
  }
  // Direct definition: -input[i, t_i] on a plain 2-D input.
  Tensor in = make({2, 3}, {-1, -2, -3, -4, -5, -6});
  EXPECT_TRUE(all_close(F::nll_loss(in, make({2}, {2, 0}, kInt64), F::NLLLossFuncOptions().reduction(Reduction::None)),
                        make({2}, {3, 4})));
  EXPECT_NEAR(values(F::nll_loss(in, make({2}, {2, 0}, kInt64)))[0], 3.5, 1e-12);
}

TEST(BceWithLogits, MatchesReference) {
  const int64_t n = 3, c = 4;
  auto x = sample(n * c, -4, 4, 31);
  auto y = sample(n * c, 0, 1, 32);
  std::vector<double> w = sample(n * c, 0.5, 2, 33);
  std::vector<double> pw = {0.5, 1, 2, 3};
  for (Reduction red : kAll) {
    for (int variant = 0; variant < 3; ++variant) {
      auto opts = F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(red);
      if (variant >= 1) opts.pos_weight(make({c}, pw));
      if (variant == 2) opts.weight(make({n, c}, w));
      std::vector<double> ref;
      double total = 0;
      for (int64_t i = 0; i < n * c; ++i) {
        double sig = 1.0 / (1.0 + std::exp(-x[i]));
        double p = variant >= 1 ? pw[i % c] : 1.0;
        double l = -(p * y[i] * std::log(sig) + (1 - y[i]) * std::log(1 - sig));
        if (variant == 2) l *= w[i];
        ref.push_back(l);
        total += l;
      }
      if (red == Reduction::Sum) ref = {total};
      if (red == Reduction::Mean) ref = {total / static_cast<double>(n * c)};
      EXPECT_TRUE(matches(F::binary_cross_entropy_with_logits(make({n, c}, x), make({n, c}, y), opts), ref, red, {n, c},
                          1e-10, 1e-12))
          << "variant " << variant;
    }
  }
}

TEST(BceWithLogits, StableForLargeLogits) {
  Tensor x = make({4}, {200, -200, 200, -200});
  Tensor y = make({4}, {1, 0, 0, 1});
  Tensor out = F::binary_cross_entropy_with_logits(x, y, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(Reduction::None));
  EXPECT_TRUE(all_close(out, make({4}, {0, 0, 200, 200})));
  Tensor x32 = make({2}, {100, -100}, kFloat32);
  EXPECT_TRUE(all_close(F::binary_cross_entropy_with_logits(x32, make({2}, {0, 1}, kFloat32),
                                                            F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(Reduction::None)),
                        make({2}, {100, 100}), 1e-6));
}

TEST(RegressionLosses, MatchReference) {
  const int64_t r = 3, c = 4;
  auto a = sample(r * c, -2, 2, 41);
  auto b = sample(r * c, -2, 2, 42);
  for (Reduction red : kAll) {
    for (int which = 0; which < 4; ++which) {
      double beta = which == 2 ? 1.0 : 0.5;  // which 3: beta 0.5, which 2: beta 1
      std::vector<double> ref;
      double total = 0;
      for (int64_t i = 0; i < r * c; ++i) {
        double dd = std::fabs(a[i] - b[i]);
        double l = which == 0 ? dd * dd : which == 1 ? dd : (dd < beta ? 0.5 * dd * dd / beta : dd - 0.5 * beta);
        ref.push_back(l);
        total += l;
      }
      if (red == Reduction::Sum) ref = {total};
      if (red == Reduction::Mean) ref = {total / static_cast<double>(r * c)};
      Tensor x = make({r, c}, a), y = make({r, c}, b), out;
      if (which == 0) out = F::mse_loss(x, y, red);
      if (which == 1) out = F::l1_loss(x, y, red);
      if (which >= 2) out = F::smooth_l1_loss(x, y, F::SmoothL1LossFuncOptions().reduction(red).beta(beta));
      EXPECT_TRUE(matches(out, ref, red, {r, c})) << "which " << which;
    }
  }
  // beta = 0 is l1; a broadcast [C] target; a transposed input; empty input -> nan mean.
  Tensor x = make({r, c}, a), y = make({r, c}, b);
  EXPECT_TRUE(all_close(F::smooth_l1_loss(x, y, F::SmoothL1LossFuncOptions().beta(0)), F::l1_loss(x, y)));
  Tensor row = make({c}, {0.1, -0.2, 0.3, 0.4});
  double s = 0;
  for (int64_t i = 0; i < r * c; ++i) s += (a[i] - values(row)[i % c]) * (a[i] - values(row)[i % c]);
  EXPECT_NEAR(values(F::mse_loss(x, row))[0], s / (r * c), 1e-12);
  Tensor xt = native::t(make({c, r}, a));
  double st = 0;
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) st += std::fabs(a[j * r + i] - b[i * c + j]);
  EXPECT_NEAR(values(F::l1_loss(xt, y, Reduction::Sum))[0], st, 1e-12);
  EXPECT_TRUE(std::isnan(values(F::mse_loss(make({0}, {}), make({0}, {})))[0]));
  EXPECT_EQ(F::l1_loss(make({2}, {1, 2}, kFloat32), make({2}, {0, 0}, kFloat32)).dtype(), kFloat32);
}

TEST(Activations, Forward) {
  Tensor x = make({2, 3}, {-1.5, -0.2, 0, 0.3, 1, 2.5});
  auto v = values(x);
  std::vector<double> relu, silu, tanh, gelu, gelu_t;
  for (double e : v) {
    relu.push_back(e > 0 ? e : 0);
    silu.push_back(e / (1 + std::exp(-e)));
    tanh.push_back(std::tanh(e));
    gelu.push_back(0.5 * e * (1 + std::erf(e / std::sqrt(2.0))));
    gelu_t.push_back(0.5 * e * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (e + 0.044715 * e * e * e))));
  }
  EXPECT_TRUE(all_close(F::relu(x), make({2, 3}, relu)));
  EXPECT_TRUE(all_close(F::silu(x), make({2, 3}, silu)));
  EXPECT_TRUE(all_close(F::tanh(x), make({2, 3}, tanh)));
  EXPECT_TRUE(all_close(F::gelu(x), make({2, 3}, gelu)));
  EXPECT_TRUE(all_close(F::gelu(x, "tanh"), make({2, 3}, gelu_t)));
  std::vector<double> sm(6), lsm(6);
  for (int i = 0; i < 2; ++i) {
    double s = 0;
    for (int j = 0; j < 3; ++j) s += std::exp(v[i * 3 + j]);
    for (int j = 0; j < 3; ++j) {
      sm[i * 3 + j] = std::exp(v[i * 3 + j]) / s;
      lsm[i * 3 + j] = v[i * 3 + j] - std::log(s);
    }
  }
  EXPECT_TRUE(all_close(F::softmax(x, -1), make({2, 3}, sm)));
  EXPECT_TRUE(all_close(F::log_softmax(x, 1), make({2, 3}, lsm)));
  EXPECT_EQ(F::softmax(make({2}, {0, 1}, kFloat32), 0, kFloat64).dtype(), kFloat64);
}

TEST(LossGrad, CrossEntropy) {
  Tensor t = make({2, 3}, {0, 2, 5, 1, 5, 3}, kInt64);
  Tensor w = make({4}, {0.5, 1.5, 1, 2});
  for (Reduction red : kAll) {
    auto fn = [&](const variable_list& in) {
      return F::cross_entropy(in[0], in[1],
                              F::CrossEntropyFuncOptions().weight(in[2]).ignore_index(5).label_smoothing(0.15).reduction(red));
    };
    EXPECT_GRADCHECK(fn, {random_leaf({2, 4, 3}, -2, 2, 51), t, w});
  }
  auto plain = [](const variable_list& in) { return F::cross_entropy(in[0], in[1]); };
  EXPECT_GRADCHECK(plain, {kiln::testing::transposed_leaf(3, 5), make({3}, {4, 0, 2}, kInt64)});
  EXPECT_GRADGRADCHECK(plain, {random_leaf({3, 5}, -1, 1, 52), make({3}, {4, 0, 2}, kInt64)});
}

TEST(LossGrad, CrossEntropyProbabilities) {
  for (Reduction red : kAll) {
    auto fn = [&](const variable_list& in) {
      return F::cross_entropy(in[0], in[1],
                              F::CrossEntropyFuncOptions().weight(in[2]).label_smoothing(0.1).reduction(red));
    };
    EXPECT_GRADCHECK(fn, {random_leaf({2, 3, 2}, -2, 2, 53), random_leaf({2, 3, 2}, 0, 1, 54), make({3}, {1, 2, 0.5})});
  }
}

TEST(LossGrad, NllLoss) {
  auto fn = [](const variable_list& in) {
    return F::nll_loss(in[0], in[1], F::NLLLossFuncOptions().weight(in[2]).ignore_index(1));
  };
  EXPECT_GRADCHECK(fn, {random_leaf({4, 3}, -3, 0, 55), make({4}, {0, 1, 2, 2}, kInt64), make({3}, {1, 2, 3})});
}

TEST(LossGrad, BceWithLogits) {
  for (Reduction red : kAll) {
    auto fn = [&](const variable_list& in) {
      return F::binary_cross_entropy_with_logits(
          in[0], in[1], F::BinaryCrossEntropyWithLogitsFuncOptions().weight(in[2]).pos_weight(in[3]).reduction(red));
    };
    EXPECT_GRADCHECK(fn, {random_leaf({3, 4}, -3, 3, 56), random_leaf({3, 4}, 0, 1, 57), make({4}, {1, 2, 0.5, 1}),
                          make({4}, {2, 1, 0.5, 3})});
  }
}

TEST(LossGrad, Regression) {
  for (Reduction red : kAll) {
    auto mse = [&](const variable_list& in) { return F::mse_loss(in[0], in[1], red); };
    auto l1 = [&](const variable_list& in) { return F::l1_loss(in[0], in[1], red); };
    auto sl1 = [&](const variable_list& in) {
      return F::smooth_l1_loss(in[0], in[1], F::SmoothL1LossFuncOptions().reduction(red).beta(0.7));
    };
    EXPECT_GRADCHECK(mse, {random_leaf({3, 4}, -2, 2, 58), random_leaf({3, 4}, -2, 2, 59)});
    EXPECT_GRADCHECK(l1, {random_leaf({3, 4}, -2, 2, 58), random_leaf({3, 4}, -2, 2, 59)});
    EXPECT_GRADCHECK(sl1, {random_leaf({3, 4}, -2, 2, 58), random_leaf({3, 4}, -2, 2, 59)});
  }
  // Broadcast target receives its reduced gradient.
  auto mse_b = [](const variable_list& in) { return F::mse_loss(in[0], in[1]); };
  EXPECT_GRADCHECK(mse_b, {random_leaf({3, 4}, -2, 2, 60), random_leaf({4}, -2, 2, 61)});
}

TEST(LossErrors, BadArguments) {
  Tensor x = make({2, 3}, sample(6));
  EXPECT_KILN_ERROR(F::cross_entropy(x, make({3}, {0, 1, 2}, kInt64)), "target shape [3]");
  EXPECT_KILN_ERROR(F::cross_entropy(x, make({2}, {0, 1})), "int64");
  EXPECT_KILN_ERROR(F::cross_entropy(x, make({2}, {0, 3}, kInt64)), "target index 3");
  EXPECT_KILN_ERROR(F::cross_entropy(x, make({2}, {-1, 0}, kInt64)), "target index -1");
  EXPECT_KILN_ERROR(F::nll_loss(x, make({2}, {0, 7}, kInt64)), "out of range for 3 classes");
  EXPECT_KILN_ERROR(F::cross_entropy(make({2, 3, 4}, sample(24)), make({2, 3}, sample(6, 0, 1), kInt64)),
                    "does not match input shape [2, 3, 4]");
  EXPECT_KILN_ERROR(F::cross_entropy(x, make({2}, {0, 1}, kInt64), F::CrossEntropyFuncOptions().weight(make({2}, {1, 1}))),
                    "weight");
  EXPECT_KILN_ERROR(F::cross_entropy(x, make({2, 3}, sample(6), kInt64)), "floating point target");
  EXPECT_KILN_ERROR(F::cross_entropy(x, make({2, 3}, sample(6)), F::CrossEntropyFuncOptions().ignore_index(0)),
                    "ignore_index");
  EXPECT_KILN_ERROR(F::cross_entropy(x, make({2}, {0, 1}, kInt64), F::CrossEntropyFuncOptions().label_smoothing(1.5)),
                    "label_smoothing");
  EXPECT_KILN_ERROR(F::cross_entropy(make({}, {1}), make({}, {0}, kInt64)), "at least 1 dimension");
  EXPECT_KILN_ERROR(F::binary_cross_entropy_with_logits(x, make({3}, sample(3))), "must be the same as input shape");
  EXPECT_KILN_ERROR(F::smooth_l1_loss(x, x, F::SmoothL1LossFuncOptions().beta(-1)), "beta");
}
