// Gradients of softmax and log_softmax: gradcheck over dims (negative too),
// non-contiguous, expanded and 0-dim inputs; double backward; the fused
// backward kernel against the composite formula; closed forms; dtype.
#include <kiln/kiln.h>

#include <cmath>
#include <functional>

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

// [2, 3, 4] leaf reading every other element along dim 1 of a [2, 6, 4] buffer.
Tensor sliced_leaf(unsigned seed = 5) {
  Tensor storage = make({2, 6, 4}, sample(48, -2, 2, seed));
  return native::slice(storage, 1, 0, 6, 2).requires_grad_(true);
}

// Naive float64 softmax (or log_softmax) of row-major [rows, n] values along the last dim.
std::vector<double> reference(const std::vector<double>& v, int64_t n, bool log) {
  std::vector<double> out(v.size());
  for (size_t r = 0; r < v.size() / n; ++r) {
    double m = -INFINITY, s = 0;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, v[r * n + i]);
    for (int64_t i = 0; i < n; ++i) s += std::exp(v[r * n + i] - m);
    for (int64_t i = 0; i < n; ++i) {
      const double z = v[r * n + i] - m;
      out[r * n + i] = log ? z - std::log(s) : std::exp(z) / s;
    }
  }
  return out;
}

std::vector<Fn> all_dims(bool log) {
  std::vector<Fn> fns;
  for (int64_t d : {0, 1, 2, -1, -2, -3}) {
    fns.push_back([d, log](const variable_list& in) { return log ? in[0].log_softmax(d) : in[0].softmax(d); });
  }
  return fns;
}

}  // namespace

TEST(SoftmaxGrad, Gradcheck) {
  Tensor x = random_leaf({2, 3, 4}, -2, 2, 7);
  Tensor s = sliced_leaf();
  EXPECT_FALSE(s.is_contiguous());
  for (bool log : {false, true}) {
    for (const Fn& f : all_dims(log)) {
      EXPECT_GRADCHECK(f, {x});
      EXPECT_GRADCHECK(f, {s});
    }
  }
  Tensor t = transposed_leaf(3, 4);
  for (int64_t d : {0, 1, -1}) {
    EXPECT_GRADCHECK([d](const variable_list& in) { return kiln::softmax(in[0], d); }, {t});
    EXPECT_GRADCHECK([d](const variable_list& in) { return kiln::log_softmax(in[0], d); }, {t});
  }
  // Expanded inside fn, along the softmax dim and along another one.
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].expand({3, 4}).softmax(0); }, {random_leaf({1, 4})});
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].expand({3, 4}).softmax(1); }, {random_leaf({1, 4})});
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].expand({3, 4}).log_softmax(-1); }, {random_leaf({3, 1})});
  // Weighted, so the gradient of the (constant) sum of softmax is not all that is checked.
  EXPECT_GRADCHECK([](const variable_list& in) { return (in[0].softmax(1) * in[1]).sum(); },
                   {random_leaf({2, 5}), make({2, 5}, sample(10, -1, 1, 9))});
  // 0-dim: softmax is 1, log_softmax 0, both with zero gradient.
  Tensor x0 = native::scalar_tensor(0.7, kFloat64).requires_grad_(true);
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].softmax(0); }, {x0});
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].log_softmax(-1); }, {x0});
  // A length-1 dim.
  EXPECT_GRADCHECK([](const variable_list& in) { return in[0].softmax(1); }, {random_leaf({3, 1})});
}

TEST(SoftmaxGrad, DoubleBackward) {
  Tensor x = random_leaf({3, 4}, -2, 2, 11);
  for (int64_t d : {0, 1, -1}) {
    EXPECT_GRADGRADCHECK([d](const variable_list& in) { return in[0].softmax(d); }, {x});
    EXPECT_GRADGRADCHECK([d](const variable_list& in) { return in[0].log_softmax(d); }, {x});
  }
  Tensor t = transposed_leaf(3, 4, -1, 1, 12);
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return in[0].softmax(0); }, {t});
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return in[0].log_softmax(1); }, {t});
  EXPECT_GRADGRADCHECK([](const variable_list& in) { return (in[0].softmax(1) * in[1]).sum(); },
                       {random_leaf({2, 5}), make({2, 5}, sample(10, -1, 1, 9))});
}

TEST(SoftmaxGrad, FusedKernelMatchesComposite) {
  // A plain backward runs native::softmax_backward; with create_graph the
  // composite formula runs. Both must give the same gradient.
  Tensor x = make({3, 5}, sample(15, -3, 3, 13));
  Tensor w = make({3, 5}, sample(15, -1, 1, 14));
  for (bool log : {false, true}) {
    for (int64_t d : {0, 1}) {
      Tensor a = native::clone(x).requires_grad_(true);
      Tensor b = native::clone(x).requires_grad_(true);
      auto f = [&](const Tensor& in) { return ((log ? in.log_softmax(d) : in.softmax(d)) * w).sum(); };
      f(a).backward();
      f(b).backward(Tensor(), std::nullopt, /*create_graph=*/true);
      EXPECT_FALSE(a.grad().requires_grad());
      EXPECT_TRUE(b.grad().requires_grad());
      EXPECT_TRUE(all_close(a.grad(), b.grad().detach(), 1e-12, 1e-14));
    }
  }
}

TEST(SoftmaxGrad, ClosedForms) {
  // d softmax_i / dx_j = y_i (delta_ij - y_j): with weights w, dx = y (w - sum(w y)).
  std::vector<double> v = {1, 2, 3, -1, 0, 1000};
  std::vector<double> wv = {0.5, -1, 2, 1, 1, 3};
  Tensor w = make({2, 3}, wv);
  auto y = reference(v, 3, false);
  std::vector<double> expect(6);
  for (int r = 0; r < 2; ++r) {
    double dot = 0;
    for (int i = 0; i < 3; ++i) dot += wv[3 * r + i] * y[3 * r + i];
    for (int i = 0; i < 3; ++i) expect[3 * r + i] = y[3 * r + i] * (wv[3 * r + i] - dot);
  }
  Tensor x = leaf({2, 3}, v);
  (x.softmax(1) * w).sum().backward();
  EXPECT_TRUE(all_close(x.grad(), make({2, 3}, expect), 1e-12, 1e-15));
  // log_softmax: dx = w - softmax * sum(w).
  for (int r = 0; r < 2; ++r) {
    const double s = wv[3 * r] + wv[3 * r + 1] + wv[3 * r + 2];
    for (int i = 0; i < 3; ++i) expect[3 * r + i] = wv[3 * r + i] - y[3 * r + i] * s;
  }
  Tensor xl = leaf({2, 3}, v);
  (xl.log_softmax(-1) * w).sum().backward();
  EXPECT_TRUE(all_close(xl.grad(), make({2, 3}, expect), 1e-12, 1e-15));
  // The sum of a softmax is constant: zero gradient.
  Tensor xs = leaf({2, 3}, v);
  xs.softmax(1).sum().backward();
  EXPECT_TRUE(all_close(xs.grad(), native::zeros({2, 3}, kFloat64), 0, 1e-15));
}

TEST(SoftmaxGrad, ForwardValuesAndNames) {
  Tensor x = sliced_leaf();
  Tensor c = native::contiguous(x);
  for (bool log : {false, true}) {
    Tensor y = log ? kiln::log_softmax(x, -1) : kiln::softmax(x, -1);
    EXPECT_TRUE(y.requires_grad());
    EXPECT_EQ(y.grad_fn()->name(), log ? "LogSoftmaxBackward0" : "SoftmaxBackward0");
    EXPECT_TRUE(all_close(y, log ? native::log_softmax(c, -1) : native::softmax(c, -1), 0, 0));
    EXPECT_TRUE(all_close(y, make({2, 3, 4}, reference(values(x), 4, log)), 1e-12, 1e-15));
  }
  Tensor x0 = native::scalar_tensor(3.0, kFloat64).requires_grad_(true);
  EXPECT_EQ(values(x0.softmax(0))[0], 1.0);
  EXPECT_EQ(values(x0.log_softmax(0))[0], 0.0);
  EXPECT_KILN_ERROR(kiln::softmax(random_leaf({2, 3}), 2), "dimension out of range");
  EXPECT_KILN_ERROR(kiln::softmax(native::ones({2}, kInt64), 0), "softmax");
}

TEST(SoftmaxGrad, DtypeAndLowPrecision) {
  // With a dtype the input is converted first: the result is in that dtype,
  // the gradient in the input's.
  std::vector<double> v = sample(8, -2, 2, 17);
  Tensor xf = make({2, 4}, v, kFloat32).requires_grad_(true);
  Tensor y = kiln::softmax(xf, 1, kFloat64);
  EXPECT_EQ(y.dtype(), kFloat64);
  EXPECT_EQ(y.grad_fn()->name(), "SoftmaxBackward0");
  Tensor w = make({2, 4}, sample(8, -1, 1, 18));
  (y * w).sum().backward();
  EXPECT_EQ(xf.grad().dtype(), kFloat32);
  // Reference: the float64 gradient at the float32-rounded inputs.
  Tensor xd = native::to(native::to(make({2, 4}, v), kFloat32), kFloat64).requires_grad_(true);
  (xd.softmax(1) * w).sum().backward();
  EXPECT_TRUE(all_close(xf.grad(), xd.grad(), 1e-6, 1e-7));
  // float32 and bfloat16 without a dtype stay in that dtype, close to float64.
  for (DType dt : {kFloat32, kBFloat16}) {
    const double tol = dt == kFloat32 ? 1e-5 : 2e-2;
    Tensor xl = make({2, 4}, v, dt).requires_grad_(true);
    (xl.log_softmax(0) * native::to(w, dt)).sum().backward();
    EXPECT_EQ(xl.grad().dtype(), dt);
    Tensor xr = native::to(native::to(make({2, 4}, v), dt), kFloat64).requires_grad_(true);
    (xr.log_softmax(0) * native::to(native::to(w, dt), kFloat64)).sum().backward();
    EXPECT_TRUE(all_close(xl.grad(), xr.grad(), tol, tol));
  }
}

TEST(SoftmaxGrad, EmptyInput) {
  for (bool log : {false, true}) {
    Tensor x = native::zeros({0, 3}, kFloat64).requires_grad_(true);
    Tensor y = log ? x.log_softmax(1) : x.softmax(0);
    EXPECT_TRUE(y.sizes().equals({0, 3}));
    y.sum().backward();
    EXPECT_TRUE(x.grad().sizes().equals({0, 3}));
  }
}
