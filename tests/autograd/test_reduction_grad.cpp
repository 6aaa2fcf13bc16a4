// Gradients of the reductions: gradcheck for every differentiable one over
// all/specific/negative dims, keepdim, non-contiguous, expanded and 0-dim
// inputs; closed forms at the edge points (ties, zeros in prod, zero norms,
// zero std); double backward; forward values against kiln::native.
#include <kiln/kiln.h>

#include <cmath>
#include <functional>
#include <limits>

#include "autograd/gradcheck_util.h"

using namespace kiln;
using autograd::variable_list;
using kiln::testing::all_close;
using kiln::testing::leaf;
using kiln::testing::make;
using kiln::testing::random_leaf;
using kiln::testing::transposed_leaf;
using kiln::testing::sample;
using kiln::testing::values;

namespace {

using Fn = std::function<Tensor(const variable_list&)>;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// [rows, cols] view of a [cols, rows] buffer: non-contiguous.
// [2, 3, 4] leaf reading every other element along the last dim of a [2, 3, 8] buffer.
Tensor sliced_leaf(double lo = -1, double hi = 1, unsigned seed = 5) {
  Tensor storage = make({2, 3, 8}, sample(48, lo, hi, seed));
  return native::slice(storage, 2, 0, 8, 2).requires_grad_(true);
}
// Magnitudes in [lo, hi] with random signs (away from 0 where an op has a kink).
Tensor signed_leaf(IntArrayRef sizes, double lo, double hi, unsigned seed = 2) {
  std::vector<double> mag = sample(numel_of(sizes), lo, hi, seed);
  std::vector<double> sgn = sample(numel_of(sizes), -1, 1, seed + 100);
  for (size_t i = 0; i < mag.size(); ++i) mag[i] = sgn[i] < 0 ? -mag[i] : mag[i];
  return make(sizes, mag).requires_grad_(true);
}
Tensor scalar_leaf(double v) { return native::scalar_tensor(v, kFloat64).requires_grad_(true); }

// The gradient of sum(fn(x)) with respect to a fresh leaf holding x's values.
Tensor grad_of(const std::function<Tensor(const Tensor&)>& fn, const Tensor& x) {
  Tensor l = native::clone(x).requires_grad_(true);
  fn(l).sum().backward();
  return l.grad();
}

// Every fn gradchecked on a contiguous [2, 3, 4], a sliced [2, 3, 4] and a
// transposed [4, 3] (dims are given for rank 3; `fn2` is used for rank 2).
void check_family(const std::vector<Fn>& fn3, const std::vector<Fn>& fn2, double lo, double hi) {
  Tensor x = random_leaf({2, 3, 4}, lo, hi, 11);
  Tensor s = sliced_leaf(lo, hi);
  Tensor t = transposed_leaf(4, 3, lo, hi);
  for (const Fn& f : fn3) {
    EXPECT_GRADCHECK(f, {x});
    EXPECT_GRADCHECK(f, {s});
  }
  for (const Fn& f : fn2) EXPECT_GRADCHECK(f, {t});
}

}  // namespace

// ---- sum / mean ----

TEST(ReductionGrad, SumMeanGradcheck) {
  check_family({[](const variable_list& in) { return in[0].sum(); },
                [](const variable_list& in) { return in[0].sum({1}); },
                [](const variable_list& in) { return in[0].sum({0, 2}, true); },
                [](const variable_list& in) { return in[0].sum({-1, -3}); },
                [](const variable_list& in) { return in[0].mean(); },
                [](const variable_list& in) { return in[0].mean({1}, true); },
                [](const variable_list& in) { return in[0].mean({-1}); },
                [](const variable_list& in) { return in[0].mean({0, 2}); }},
               {[](const variable_list& in) { return in[0].sum({0}); },
                [](const variable_list& in) { return in[0].mean({-1}, true); }},
               -1, 1);
  // Expanded inside fn: the broadcast copies all feed the reduction.
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].expand({3, 2, 4}).sum({0, 2}); },
                   {random_leaf({2, 1})});
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].expand({3, 4}).mean({1}); }, {random_leaf({3, 1})});
  // 0-dim: all dims, dim 0 and -1, with and without keepdim.
  Tensor x0 = scalar_leaf(0.7);
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].sum(); }, {x0});
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].sum({0}); }, {x0});
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].sum({-1}, true); }, {x0});
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].mean({0}); }, {x0});
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].mean(); }, {x0});
}

TEST(ReductionGrad, SumMeanDoubleBackward) {
  Tensor x = random_leaf({3, 4}, -1, 1, 4);
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return in[0].sum({1}); }, {x});
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return (in[0] * in[0]).sum({-1}, true); }, {x});
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return (in[0] * in[0]).sum(); }, {x});
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return in[0].mean({0}); }, {x});
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return (in[0] * in[0]).mean({0}, true); }, {x});
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return (in[0] * in[0]).mean(); }, {x});
}

TEST(ReductionGrad, SumMeanClosedForms) {
  Tensor x = make({2, 3}, sample(6));
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return t.mean(); }, x), native::full({2, 3}, 1.0 / 6, kFloat64)));
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return t.mean({1}); }, x), native::full({2, 3}, 1.0 / 3, kFloat64)));
  EXPECT_TRUE(
      all_close(grad_of([](const Tensor& t) { return t.mean({0}, true); }, x), native::full({2, 3}, 0.5, kFloat64)));
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return t.sum({-1}); }, x), native::ones({2, 3}, kFloat64)));
  // A dtype: the gradient comes back in the input's dtype.
  Tensor xf = make({2, 3}, sample(6), kFloat32).requires_grad_(true);
  Tensor s = xf.sum({1}, false, kFloat64);
  EXPECT_EQ(s.dtype(), kFloat64);
  (s * 2.0).sum().backward();
  EXPECT_EQ(xf.grad().dtype(), kFloat32);
  EXPECT_TRUE(all_close(xf.grad(), native::full({2, 3}, 2.0, kFloat32)));
}

// ---- prod ----

TEST(ReductionGrad, ProdGradcheck) {
  check_family({[](const variable_list& in) { return in[0].prod(); },
                [](const variable_list& in) { return in[0].prod(1); },
                [](const variable_list& in) { return in[0].prod(-1, true); },
                [](const variable_list& in) { return in[0].prod(0, false, kFloat64); }},
               {[](const variable_list& in) { return in[0].prod(0); },
                [](const variable_list& in) { return in[0].prod(); }},
               0.5, 1.5);
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].expand({3, 2, 2}).prod(0); }, {random_leaf({2, 1}, 0.5, 1.5)});
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].prod(); }, {signed_leaf({2, 3}, 0.5, 1.5)});
  Tensor x0 = scalar_leaf(-0.7);
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].prod(); }, {x0});
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].prod(0); }, {x0});
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].prod(-1, true); }, {x0});
}

TEST(ReductionGrad, ProdWithZeros) {
  // Rows with no, one, two and three zeros. prod is multilinear, so central
  // differences are exact even at zeros, to first and second order.
  Tensor x = leaf({4, 3}, {2, -1.5, 3, 0, 2, -3, 0, 0, 5, 0, 0, 0});
  Tensor xt = native::t(make({3, 4}, {2, 0, 0, 0, -1.5, 2, 0, 0, 3, -3, 5, 0})).requires_grad_(true);
  for (const Tensor& in : {x, xt}) {
    EXPECT_GRADCHECK([](const variable_list& v) { return v[0].prod(1); }, {in});
    EXPECT_GRADCHECK([](const variable_list& v) { return v[0].prod(0, true); }, {in});
    EXPECT_GRADGRADCHECK([](const variable_list& v) { return v[0].prod(1); }, {in});
    EXPECT_GRADGRADCHECK([](const variable_list& v) { return v[0].prod(0); }, {in});
  }
  for (const auto& v : std::vector<std::vector<double>>{{2, 0, 3, -1}, {0, 2, 0, 3}, {0, 0, 0, 2}}) {
    EXPECT_GRADCHECK([](const variable_list& in) { return in[0].prod(); }, {leaf({2, 2}, v)});
    EXPECT_GRADGRADCHECK([](const variable_list& in) { return in[0].prod(); }, {leaf({2, 2}, v)});
  }
  // Closed forms: the product of the others for a lone zero, 0 with two or more.
  auto rows = [](const Tensor& t) { return t.prod(1); };
  EXPECT_TRUE(all_close(grad_of(rows, x), make({4, 3}, {-4.5, 6, -3, -6, 0, 0, 0, 0, 0, 0, 0, 0})));
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return t.prod(); }, make({3}, {2, 0, 3})), make({3}, {0, 6, 0})));
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return t.prod(); }, make({3}, {0, 2, 0})), make({3}, {0, 0, 0})));
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return t.prod(0); }, make({1}, {0})), make({1}, {1})));
}

TEST(ReductionGrad, ProdDtypeAndNames) {
  Tensor xf = make({2, 2}, {1, 2, 3, 4}, kFloat32).requires_grad_(true);
  Tensor p = xf.prod(kFloat64);
  EXPECT_EQ(p.dtype(), kFloat64);
  p.backward();
  EXPECT_EQ(xf.grad().dtype(), kFloat32);
  EXPECT_TRUE(all_close(xf.grad(), make({2, 2}, {24, 12, 8, 6}, kFloat32)));
  Tensor x = random_leaf({2, 3});
  EXPECT_EQ(x.prod().grad_fn()->name(), "ProdBackward0");
  EXPECT_EQ(x.prod(1).grad_fn()->name(), "ProdBackward1");
  // Integer inputs never require grad.
  EXPECT_FALSE(kiln::prod(native::ones({2}, kInt64)).requires_grad());
}

// ---- max / min / amax / amin ----

TEST(ReductionGrad, MaxMinGradcheck) {
  // Distinct values: away from the ties where max is not differentiable.
  check_family({[](const variable_list& in) { return in[0].max(); },
                [](const variable_list& in) { return kiln::min(in[0]); },
                [](const variable_list& in) { return std::get<0>(in[0].max(1)); },
                [](const variable_list& in) { return std::get<0>(in[0].max(-1, true)); },
                [](const variable_list& in) { return std::get<0>(kiln::min(in[0], 0)); },
                [](const variable_list& in) { return std::get<0>(kiln::min(in[0], -2, true)); },
                [](const variable_list& in) { return in[0].amax({1}); },
                [](const variable_list& in) { return in[0].amax({0, 2}, true); },
                [](const variable_list& in) { return kiln::amax(in[0]); },
                [](const variable_list& in) { return kiln::amin(in[0], {-1}); },
                [](const variable_list& in) { return kiln::amin(in[0], {-3, -1}, true); }},
               {[](const variable_list& in) { return in[0].max(); },
                [](const variable_list& in) { return std::get<0>(in[0].max(0)); },
                [](const variable_list& in) { return std::get<0>(kiln::min(in[0], -1, true)); },
                [](const variable_list& in) { return in[0].amax({0}); },
                [](const variable_list& in) { return kiln::amin(in[0], {1}, true); }},
               -1, 1);
  // Expanded along a kept dim.
  EXPECT_GRADCHECK([](const variable_list& in) { return std::get<0>(in[0].expand({3, 4}).max(1)); }, {random_leaf({1, 4})});
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].expand({3, 4}).amax({1}); }, {random_leaf({1, 4})});
  Tensor x0 = scalar_leaf(0.3);
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].max(); }, {x0});
  EXPECT_GRADCHECK([](const variable_list& in) { return std::get<0>(in[0].max(0)); }, {x0});
  EXPECT_GRADCHECK([](const variable_list& in) { return std::get<0>(kiln::min(in[0], -1, true)); }, {x0});
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].amax({0}); }, {x0});
  EXPECT_GRADCHECK([](const variable_list& in) { return kiln::amin(in[0]); }, {x0});
  // Linear in the incoming gradient: double backward holds too.
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return std::get<0>(in[0].max(1)); }, {random_leaf({3, 4})});
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return in[0].amax({0}); }, {random_leaf({3, 4})});
}

TEST(ReductionGrad, MaxMinTiesAndNaN) {
  // max()/min(): ties split the gradient evenly.
  Tensor x = make({2, 3}, {1, 3, 3, 2, -1, 3});
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return t.max(); }, x), make({2, 3}, {0, 1. / 3, 1. / 3, 0, 0, 1. / 3})));
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return kiln::min(t); }, make({4}, {2, -1, -1, 5})),
                        make({4}, {0, 0.5, 0.5, 0})));
  // A NaN is the max and takes the whole gradient.
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return t.max(); }, make({3}, {1, kNaN, 2})), make({3}, {0, 1, 0})));
  // amax/amin: ties split evenly within each reduced slice.
  Tensor y = make({2, 3}, {1, 3, 3, 2, 2, 0});
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return t.amax({1}); }, y), make({2, 3}, {0, .5, .5, .5, .5, 0})));
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return kiln::amin(t, {0}, true); }, y),
                        make({2, 3}, {1, 0, 0, 0, 1, 1})));
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return kiln::amax(t); }, y), make({2, 3}, {0, .5, .5, 0, 0, 0})));
  // max(dim): the whole gradient goes to the returned index.
  Tensor z = leaf({2, 3}, {1, 3, 3, 4, 4, 4});
  auto [v, i] = z.max(1);
  EXPECT_TRUE(all_close(v, make({2}, {3, 4})));
  EXPECT_FALSE(i.requires_grad());
  (v * make({2}, {2, 5})).sum().backward();
  std::vector<double> expect(6, 0.0);
  auto idx = values(i);
  expect[static_cast<size_t>(idx[0])] = 2;
  expect[3 + static_cast<size_t>(idx[1])] = 5;
  EXPECT_TRUE(all_close(z.grad(), make({2, 3}, expect)));
  EXPECT_EQ(idx[0], values(native::argmax(make({3}, {1, 3, 3})))[0]);
}

TEST(ReductionGrad, MaxMinNamesAndErrors) {
  Tensor x = random_leaf({2, 3});
  EXPECT_EQ(x.max().grad_fn()->name(), "MaxBackward1");
  EXPECT_EQ(kiln::min(x).grad_fn()->name(), "MinBackward1");
  EXPECT_EQ(std::get<0>(x.max(0)).grad_fn()->name(), "MaxBackward0");
  EXPECT_EQ(std::get<0>(kiln::min(x, 0)).grad_fn()->name(), "MinBackward0");
  EXPECT_EQ(x.amax({0}).grad_fn()->name(), "AmaxBackward0");
  EXPECT_EQ(kiln::amin(x, {0}).grad_fn()->name(), "AminBackward0");
  Tensor empty = native::zeros({0, 3}, kFloat64).requires_grad_(true);
  EXPECT_KILN_ERROR(kiln::max(empty), "max(): Expected reduction dim to be specified for input.numel() == 0");
  EXPECT_KILN_ERROR(kiln::min(empty), "min(): Expected reduction dim to be specified");
  EXPECT_KILN_ERROR(kiln::max(x, 2), "dimension out of range");
}

// ---- argmax / argmin / all / any ----

TEST(ReductionGrad, NonDifferentiable) {
  Tensor x = random_leaf({3, 4});
  Tensor a = kiln::argmax(x, 1);
  EXPECT_FALSE(a.requires_grad());
  EXPECT_EQ(a.dtype(), kInt64);
  EXPECT_EQ(values(a), values(native::argmax(x, 1)));
  EXPECT_EQ(values(kiln::argmin(x)), values(native::argmin(x)));
  EXPECT_EQ(values(kiln::argmax(x, -1, true)), values(native::argmax(x, -1, true)));
  Tensor b = x > 0.0;
  EXPECT_EQ(values(kiln::all(b)), values(native::all(b)));
  EXPECT_EQ(values(kiln::all(b, 1)), values(native::all(b, {1})));
  EXPECT_EQ(values(kiln::any(b, 0, true)), values(native::any(b, {0}, true)));
  EXPECT_EQ(kiln::any(x).dtype(), kBool);
  EXPECT_FALSE(kiln::any(x).requires_grad());
  EXPECT_FALSE(kiln::all(x, 0).requires_grad());
}

// ---- var / std ----

TEST(ReductionGrad, VarStdGradcheck) {
  check_family({[](const variable_list& in) { return kiln::var(in[0]); },
                [](const variable_list& in) { return kiln::var(in[0], false); },
                [](const variable_list& in) { return kiln::var(in[0], {1}, true); },
                [](const variable_list& in) { return kiln::var(in[0], {0, 2}, true, true); },
                [](const variable_list& in) { return kiln::var(in[0], {-1}, false, false); },
                [](const variable_list& in) { return kiln::std(in[0]); },
                [](const variable_list& in) { return kiln::std(in[0], false); },
                [](const variable_list& in) { return kiln::std(in[0], {1}, true, true); },
                [](const variable_list& in) { return kiln::std(in[0], {-3, -1}, false); }},
               {[](const variable_list& in) { return kiln::var(in[0], {0}, true); },
                [](const variable_list& in) { return kiln::std(in[0], {-1}, false, true); }},
               -1, 1);
  EXPECT_GRADCHECK([](const variable_list& in) { return kiln::var(in[0].expand({2, 3, 4}), {1, 2}); },
                   {random_leaf({2, 1, 4})});
  EXPECT_GRADCHECK([](const variable_list& in) { return kiln::std(in[0].expand({3, 4}), {0}, false); },
                   {random_leaf({3, 1})});
  // Double backward.
  Tensor x = random_leaf({3, 4}, -1, 1, 8);
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return kiln::var(in[0]); }, {x});
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return kiln::var(in[0], {1}, false, true); }, {x});
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return kiln::var(in[0], {-2}, true); }, {x});
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return kiln::std(in[0], {1}, true); }, {x});
}

TEST(ReductionGrad, VarStdClosedForms) {
  // d var / dx = 2 (x - mean) / (n - correction); d std = that / (2 std).
  std::vector<double> v = {1, 4, 2, 7};
  const double mean = 3.5;
  double ss = 0;
  for (double a : v) ss += (a - mean) * (a - mean);
  for (bool unbiased : {true, false}) {
    const double dof = unbiased ? 3 : 4;
    std::vector<double> gv, gs;
    for (double a : v) {
      gv.push_back(2 * (a - mean) / dof);
      gs.push_back((a - mean) / dof / std::sqrt(ss / dof));
    }
    Tensor x = make({4}, v);
    EXPECT_TRUE(all_close(grad_of([unbiased](const Tensor& t) { return kiln::var(t, unbiased); }, x), make({4}, gv)));
    EXPECT_TRUE(all_close(grad_of([unbiased](const Tensor& t) { return kiln::std(t, unbiased); }, x), make({4}, gs)));
  }
  // A zero std gives a zero gradient (not NaN), as torch.
  Tensor c = make({2, 3}, {2, 2, 2, 1, 5, 3});
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return kiln::std(t, {1}, true); }, c),
                        make({2, 3}, {0, 0, 0, -0.5, 0.5, 0})));
  // One element, unbiased: var is NaN and so is its gradient (2 / 0 * 0), as torch.
  auto g1 = values(grad_of([](const Tensor& t) { return kiln::var(t); }, make({1}, {3})));
  EXPECT_TRUE(std::isnan(g1[0]));
  // 0-dim, biased: var 0, gradient 0.
  Tensor x0 = scalar_leaf(1.5);
  kiln::var(x0, false).backward();
  EXPECT_EQ(values(x0.grad())[0], 0.0);
  Tensor s0 = scalar_leaf(1.5);
  kiln::std(s0, {0}, false).backward();
  EXPECT_EQ(values(s0.grad())[0], 0.0);
  EXPECT_EQ(kiln::var(random_leaf({2, 2})).grad_fn()->name(), "VarBackward0");
  EXPECT_EQ(kiln::std(random_leaf({2, 2}), {0}, true).grad_fn()->name(), "StdBackward0");
}

// ---- norm ----

TEST(ReductionGrad, NormGradcheck) {
  for (double p : {2.0, 1.0, 3.0, 1.5, 0.5, 4.0, -1.0, kInf, -kInf}) {
    check_family({[p](const variable_list& in) { return kiln::norm(in[0], p); },
                  [p](const variable_list& in) { return kiln::norm(in[0], p, {1}); },
                  [p](const variable_list& in) { return kiln::norm(in[0], p, {0, 2}, true); },
                  [p](const variable_list& in) { return kiln::norm(in[0], p, {-1}); }},
                 {[p](const variable_list& in) { return kiln::norm(in[0], p, {0}, true); }}, 0.2, 1.5);
    EXPECT_GRADCHECK([p](const variable_list& in) { return kiln::norm(in[0], p, {1}); }, {signed_leaf({3, 4}, 0.2, 1.5)});
  }
  EXPECT_GRADCHECK([](const variable_list& in) { return kiln::norm(in[0].expand({3, 4}), 2, {0}); }, {random_leaf({1, 4})});
  EXPECT_GRADCHECK([](const variable_list& in) { return kiln::norm(in[0], 2); }, {scalar_leaf(-0.6)});
  EXPECT_GRADCHECK([](const variable_list& in) { return kiln::norm(in[0], 3, {0}); }, {scalar_leaf(0.6)});
  // p = 0 counts non-zeros: piecewise constant, zero gradient.
  EXPECT_GRADCHECK([](const variable_list& in) { return kiln::norm(in[0], 0, {1}); }, {random_leaf({2, 3})});
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return kiln::norm(in[0], 2, {1}); }, {random_leaf({2, 3})});
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return kiln::norm(in[0], 3); }, {signed_leaf({2, 3}, 0.2, 1)});
}

TEST(ReductionGrad, NormClosedForms) {
  Tensor x = make({2, 2}, {3, -4, 0, 0});
  // p = 2: x / ||x||, and 0 where the norm is 0.
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return kiln::norm(t, 2, {1}); }, x),
                        make({2, 2}, {0.6, -0.8, 0, 0})));
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return kiln::norm(t); }, native::zeros({3}, kFloat64)),
                        native::zeros({3}, kFloat64)));
  // p = 1: sign(x), 0 at 0.
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return kiln::norm(t, 1, {1}); }, x), make({2, 2}, {1, -1, 0, 0})));
  // p = inf: the elements with max |x| share evenly, with their sign.
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return kiln::norm(t, kInf); }, make({3}, {-3, 3, 1})),
                        make({3}, {-0.5, 0.5, 0})));
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return kiln::norm(t, -kInf); }, make({3}, {-3, 3, 1})),
                        make({3}, {0, 0, 1})));
  // General p: sign(x) |x|^(p-1) / ||x||^(p-1); at a zero norm, 0.
  const double n3 = std::cbrt(27.0 + 64.0);
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return kiln::norm(t, 3, {1}); }, x),
                        make({2, 2}, {9 / (n3 * n3), -16 / (n3 * n3), 0, 0})));
  const double n15 = std::pow(std::pow(3, 1.5) + std::pow(4, 1.5), 1 / 1.5);
  EXPECT_TRUE(all_close(grad_of([](const Tensor& t) { return kiln::norm(t, 1.5, {1}); }, x),
                        make({2, 2}, {std::sqrt(3 / n15), -std::sqrt(4 / n15), 0, 0})));
  // p < 1 at a zero element: subgradient 0 there.
  auto g = values(grad_of([](const Tensor& t) { return kiln::norm(t, 0.5); }, make({3}, {4, 0, 1})));
  EXPECT_DOUBLE_EQ(g[1], 0.0);
  EXPECT_NEAR(g[0], std::pow(4, -0.5) * std::pow(9, 0.5), 1e-12);  // |x|^(p-1) ||x||^(1-p), ||x|| = (2 + 0 + 1)^2
  Tensor x2 = random_leaf({2});
  EXPECT_EQ(kiln::norm(x2).grad_fn()->name(), "NormBackward0");
  EXPECT_EQ(kiln::norm(x2, 2, {0}).grad_fn()->name(), "NormBackward1");
}

// ---- logsumexp ----

TEST(ReductionGrad, LogsumexpGradcheck) {
  check_family({[](const variable_list& in) { return kiln::logsumexp(in[0], {1}); },
                [](const variable_list& in) { return kiln::logsumexp(in[0], {0, 2}, true); },
                [](const variable_list& in) { return kiln::logsumexp(in[0], {-1}); },
                [](const variable_list& in) { return kiln::logsumexp(in[0], {0, 1, 2}); }},
               {[](const variable_list& in) { return kiln::logsumexp(in[0], {0}); },
                [](const variable_list& in) { return kiln::logsumexp(in[0], {-1}, true); }},
               -2, 2);
  EXPECT_GRADCHECK([](const variable_list& in) { return kiln::logsumexp(in[0].expand({3, 4}), {1}); }, {random_leaf({3, 1})});
  EXPECT_GRADCHECK([](const variable_list& in) { return kiln::logsumexp(in[0], {0}); }, {scalar_leaf(0.4)});
  Tensor x = random_leaf({3, 4}, -2, 2, 9);
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return kiln::logsumexp(in[0], {1}); }, {x});
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return kiln::logsumexp(in[0], {0, 1}, true); }, {x});
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return kiln::logsumexp(transpose(in[0], 0, 1), {-1}); }, {x});
}

TEST(ReductionGrad, LogsumexpClosedForms) {
  // The gradient is the softmax over the reduced dims, even for huge inputs.
  std::vector<double> v = {1000, 1001, 999, -5, 0, 5};
  Tensor g = grad_of([](const Tensor& t) { return kiln::logsumexp(t, {1}); }, make({2, 3}, v));
  std::vector<double> expect;
  for (int r = 0; r < 2; ++r) {
    double m = std::max({v[3 * r], v[3 * r + 1], v[3 * r + 2]}), s = 0;
    for (int c = 0; c < 3; ++c) s += std::exp(v[3 * r + c] - m);
    for (int c = 0; c < 3; ++c) expect.push_back(std::exp(v[3 * r + c] - m) / s);
  }
  EXPECT_TRUE(all_close(g, make({2, 3}, expect), 1e-12, 1e-15));
  EXPECT_EQ(kiln::logsumexp(random_leaf({2}), {0}).grad_fn()->name(), "LogsumexpBackward0");
}

// ---- forward values ----

TEST(ReductionGrad, ForwardMatchesNative) {
  Tensor x = sliced_leaf(0.2, 1.5);
  Tensor n = native::contiguous(x);
  auto same = [](const Tensor& a, const Tensor& b) {
    EXPECT_TRUE(a.requires_grad());
    return all_close(a, b, 0, 0);
  };
  EXPECT_TRUE(same(x.prod(), native::prod(n)));
  EXPECT_TRUE(same(x.prod(1, true), native::prod(n, {1}, true)));
  EXPECT_TRUE(same(x.max(), native::amax(n)));
  EXPECT_TRUE(same(kiln::min(x), native::amin(n)));
  EXPECT_TRUE(same(std::get<0>(x.max(-1)), std::get<0>(native::max(n, -1))));
  EXPECT_EQ(values(std::get<1>(kiln::min(x, 0, true))), values(std::get<1>(native::min(n, 0, true))));
  EXPECT_TRUE(same(x.amax({0, 2}, true), native::amax(n, {0, 2}, true)));
  EXPECT_TRUE(same(kiln::amin(x, {1}), native::amin(n, {1})));
  EXPECT_TRUE(same(kiln::var(x, {1}, false), native::var(n, {1}, false)));
  EXPECT_TRUE(same(kiln::std(x), native::std(n)));
  EXPECT_TRUE(same(kiln::norm(x, 3, {2}), native::norm(n, 3, {2})));
  EXPECT_TRUE(same(kiln::norm(x), native::norm(n)));
  EXPECT_TRUE(same(kiln::logsumexp(x, {0}), native::logsumexp(n, {0})));
  // And one independent check: prod and var of a small row by hand.
  Tensor r = leaf({4}, {1.5, -2, 0.5, 3});
  EXPECT_TRUE(all_close(r.prod(), native::scalar_tensor(-4.5, kFloat64)));
  EXPECT_TRUE(all_close(kiln::var(r), native::scalar_tensor(13.25 / 3, kFloat64), 1e-12));
  // 16-bit floats: the gradient comes back in the input's dtype.
  Tensor h = make({2, 3}, {1, 2, 3, 4, 5, 6}, kBFloat16).requires_grad_(true);
  kiln::logsumexp(h, {1}).sum().backward();
  EXPECT_EQ(h.grad().dtype(), kBFloat16);
}

TEST(ReductionGrad, EmptyInputs) {
  // Reductions of empty tensors still backpropagate an (empty) gradient of the input's shape.
  auto check = [](const std::function<Tensor(const Tensor&)>& fn, IntArrayRef sizes) {
    Tensor x = native::zeros(sizes, kFloat64).requires_grad_(true);
    Tensor y = fn(x);
    ASSERT_TRUE(y.requires_grad());
    y.sum().backward();
    ASSERT_TRUE(x.grad().defined());
    EXPECT_TRUE(x.grad().sizes().equals(sizes));
  };
  check([](const Tensor& t) { return t.sum(); }, {0, 3});
  check([](const Tensor& t) { return t.mean({0}); }, {0, 3});
  check([](const Tensor& t) { return t.prod(); }, {0, 3});
  check([](const Tensor& t) { return t.prod(1); }, {2, 0});
  check([](const Tensor& t) { return t.amax({1}); }, {0, 3});
  check([](const Tensor& t) { return std::get<0>(t.max(1)); }, {0, 3});
  check([](const Tensor& t) { return kiln::var(t, {0}, true); }, {0, 3});
  check([](const Tensor& t) { return kiln::norm(t, 2, {1}); }, {2, 0});
  check([](const Tensor& t) { return kiln::logsumexp(t, {1}); }, {2, 0});
  // Values as torch: prod over an empty dim is 1, logsumexp -inf, norm 0.
  Tensor e = native::zeros({2, 0}, kFloat64).requires_grad_(true);
  EXPECT_TRUE(all_close(e.prod(1), native::ones({2}, kFloat64)));
  EXPECT_TRUE(all_close(kiln::logsumexp(e, {1}), native::full({2}, -kInf, kFloat64)));
  EXPECT_TRUE(all_close(kiln::norm(e, 2, {1}), native::zeros({2}, kFloat64)));
  EXPECT_KILN_ERROR(kiln::amax(e, {1}), "amax");
}
