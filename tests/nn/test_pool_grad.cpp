// Gradients of nn::functional max/avg/adaptive pooling: gradcheck and
// gradgradcheck in float64 over padding, dilation, ceil_mode, unbatched and
// non-contiguous inputs; closed-form gradients (ties go to the first
// maximum, overlapping windows add up); grad_fn names; reduced precision.
#include <kiln/kiln.h>

#include <vector>

#include "autograd/gradcheck_util.h"

using namespace kiln;
using autograd::variable_list;
using kiln::testing::all_close;
using kiln::testing::leaf;
using kiln::testing::make;
using kiln::testing::random_leaf;
using kiln::testing::sample;
using kiln::testing::values;
namespace F = kiln::nn::functional;

namespace {

// A float64 [N, C, H, W] leaf whose memory is [N, H, W, C] (non-contiguous).
Tensor channels_last_leaf(int64_t n, int64_t c, int64_t h, int64_t w, unsigned seed) {
  Tensor t = make({n, h, w, c}, sample(n * c * h * w, -1, 1, seed));
  return native::permute(t, {0, 3, 1, 2}).requires_grad_(true);
}

std::string grad_fn_name(const Tensor& t) { return t.grad_fn() ? t.grad_fn()->name() : "(none)"; }

}  // namespace

TEST(PoolGrad, MaxPoolGradcheck) {
  const std::vector<F::MaxPool2dFuncOptions> opts = {
      F::MaxPool2dFuncOptions(2),
      F::MaxPool2dFuncOptions(3).stride(2).padding(1).ceil_mode(true),
      F::MaxPool2dFuncOptions({2, 3}).stride({1, 2}).padding({1, 1}).dilation({2, 1}),
      F::MaxPool2dFuncOptions(3).stride(1),  // overlapping windows share maxima
  };
  for (const auto& o : opts) {
    auto fn = [&](const variable_list& in) { return F::max_pool2d(in[0], o); };
    EXPECT_GRADCHECK(fn, {random_leaf({2, 2, 5, 6}, -1, 1, 3)});
    EXPECT_GRADGRADCHECK(fn, {random_leaf({1, 2, 5, 6}, -1, 1, 4)});
    EXPECT_GRADCHECK(fn, {random_leaf({2, 5, 6}, -1, 1, 5)});  // unbatched
    EXPECT_GRADCHECK(fn, {channels_last_leaf(1, 3, 5, 6, 6)});
  }
}

TEST(PoolGrad, MaxPoolClosedFormTiesAndOverlap) {
  // Ties: every window of ones picks its first position; overlapping 2x2
  // windows with stride 1 over a 3x3 plane of ones pick (0,0), (0,1), (1,0), (1,1).
  Tensor x = leaf({1, 1, 3, 3}, std::vector<double>(9, 1.0));
  F::max_pool2d(x, F::MaxPool2dFuncOptions(2).stride(1)).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1, 1, 0, 1, 1, 0, 0, 0, 0}));
  // One large value in the middle wins all four overlapping windows.
  Tensor y = leaf({1, 1, 3, 3}, {0, 0, 0, 0, 5, 0, 0, 0, 0});
  Tensor out = F::max_pool2d(y, F::MaxPool2dFuncOptions(2).stride(1));
  (out * make({1, 1, 2, 2}, {1, 2, 3, 4})).sum().backward();
  EXPECT_EQ(values(y.grad()), (std::vector<double>{0, 0, 0, 0, 10, 0, 0, 0, 0}));
}

TEST(PoolGrad, MaxPoolWithIndicesAndNames) {
  Tensor x = random_leaf({2, 3, 6, 5}, -1, 1, 7);
  auto opt = F::MaxPool2dFuncOptions(3).stride(2).padding(1);
  auto [out, idx] = F::max_pool2d_with_indices(x, opt);
  auto [nout, nidx] = native::max_pool2d_with_indices(x, 3, 2, 1);
  EXPECT_TRUE(all_close(out, nout, 0, 0));
  EXPECT_EQ(values(idx), values(nidx));
  EXPECT_EQ(idx.dtype(), kInt64);
  EXPECT_FALSE(idx.requires_grad());
  EXPECT_EQ(grad_fn_name(out), "MaxPool2DWithIndicesBackward0");
  Tensor g = random_leaf(out.sizes().vec(), -1, 1, 8);
  auto grads = autograd::grad({out}, {x}, {g}, std::nullopt, /*create_graph=*/true);
  EXPECT_EQ(grad_fn_name(grads[0]), "MaxPool2DWithIndicesBackwardBackward0");
  // The gradient scatters g to the indices.
  std::vector<double> expect(x.numel(), 0), gv = values(g), iv = values(idx);
  for (int64_t k = 0; k < out.numel(); ++k) expect[(k / 9) * 30 + static_cast<int64_t>(iv[k])] += gv[k];
  EXPECT_TRUE(all_close(grads[0], make(x.sizes(), expect), 1e-15, 1e-15));
  // Its derivative with respect to g is the gather at the indices.
  Tensor w = random_leaf(x.sizes().vec(), -1, 1, 9);
  auto gg = autograd::grad({(grads[0] * w).sum()}, {g}, {}, std::nullopt, true);
  EXPECT_EQ(grad_fn_name(gg[0]), "GatherBackward0");
  EXPECT_TRUE(all_close(gg[0], native::max_pool2d_gather(w, idx), 0, 0));
  // Defaults: stride = kernel_size.
  EXPECT_EQ(F::MaxPool2dFuncOptions(3).stride(), nn::ExpandingArray<2>(3));
  EXPECT_EQ(F::max_pool2d(x, F::MaxPool2dFuncOptions(2)).sizes(), IntArrayRef({2, 3, 3, 2}));
}

TEST(PoolGrad, AvgPoolGradcheck) {
  const std::vector<F::AvgPool2dFuncOptions> opts = {
      F::AvgPool2dFuncOptions(2),
      F::AvgPool2dFuncOptions(3).stride(2).padding(1).ceil_mode(true),
      F::AvgPool2dFuncOptions(3).stride(2).padding(1).ceil_mode(true).count_include_pad(false),
      F::AvgPool2dFuncOptions({2, 3}).stride({1, 2}).padding({1, 1}).divisor_override(4),
  };
  for (const auto& o : opts) {
    auto fn = [&](const variable_list& in) { return F::avg_pool2d(in[0], o); };
    EXPECT_GRADCHECK(fn, {random_leaf({2, 2, 5, 6}, -1, 1, 3)});
    EXPECT_GRADGRADCHECK(fn, {random_leaf({1, 2, 5, 6}, -1, 1, 4)});
    EXPECT_GRADCHECK(fn, {random_leaf({2, 5, 6}, -1, 1, 5)});
    EXPECT_GRADCHECK(fn, {channels_last_leaf(1, 3, 5, 6, 6)});
  }
  Tensor x = random_leaf({1, 2, 5, 5});
  Tensor out = F::avg_pool2d(x, F::AvgPool2dFuncOptions(2));
  EXPECT_EQ(grad_fn_name(out), "AvgPool2DBackward0");
  auto g = autograd::grad({out}, {x}, {native::ones_like(out)}, std::nullopt, true);
  EXPECT_EQ(grad_fn_name(g[0]), "(none)");  // ones do not require grad: nothing to record
  Tensor go = random_leaf(out.sizes().vec(), -1, 1, 2);
  auto g2 = autograd::grad({out}, {x}, {go}, std::nullopt, true);
  EXPECT_EQ(grad_fn_name(g2[0]), "AvgPool2DBackwardBackward0");
}

TEST(PoolGrad, AvgPoolClosedForm) {
  // 3x3 plane, kernel 2, stride 1, padding 0: input (i, j) is in
  // (windows covering it) windows, each weighing 1/4.
  Tensor x = random_leaf({1, 1, 3, 3});
  F::avg_pool2d(x, F::AvgPool2dFuncOptions(2).stride(1)).sum().backward();
  EXPECT_TRUE(all_close(x.grad(), make({1, 1, 3, 3}, {0.25, 0.5, 0.25, 0.5, 1, 0.5, 0.25, 0.5, 0.25}), 1e-15));
  // count_include_pad=false with padding 1 on a 2x2 plane, kernel 2, stride 2:
  // every window holds exactly one input, so each input gets weight 1.
  Tensor y = random_leaf({1, 1, 2, 2});
  F::avg_pool2d(y, F::AvgPool2dFuncOptions(2).padding(1).count_include_pad(false)).sum().backward();
  EXPECT_EQ(values(y.grad()), (std::vector<double>{1, 1, 1, 1}));
}

TEST(PoolGrad, AdaptiveAvgPoolGradcheck) {
  for (auto os : {std::vector<int64_t>{3, 2}, {1, 1}, {4, 7}, {5, 6}}) {
    auto fn = [&](const variable_list& in) { return F::adaptive_avg_pool2d(in[0], IntArrayRef(os)); };
    EXPECT_GRADCHECK(fn, {random_leaf({2, 2, 5, 6}, -1, 1, 3)});
    EXPECT_GRADGRADCHECK(fn, {random_leaf({1, 2, 5, 6}, -1, 1, 4)});
    EXPECT_GRADCHECK(fn, {random_leaf({2, 5, 6}, -1, 1, 5)});
    EXPECT_GRADCHECK(fn, {channels_last_leaf(1, 3, 5, 6, 6)});
  }
  // Overlapping bins: 5 rows into 3 bins are [0, 2), [1, 4), [3, 5).
  Tensor x = random_leaf({1, 1, 5, 1});
  Tensor out = F::adaptive_avg_pool2d(x, {3, 1});
  EXPECT_EQ(grad_fn_name(out), "AdaptiveAvgPool2DBackward0");
  out.sum().backward();
  EXPECT_TRUE(all_close(x.grad(), make({1, 1, 5, 1}, {0.5, 0.5 + 1.0 / 3, 1.0 / 3, 1.0 / 3 + 0.5, 0.5}), 1e-15));
}

TEST(PoolGrad, ReducedPrecisionAndErrors) {
  for (DType d : {kFloat32, kBFloat16}) {
    Tensor x = native::to(make({1, 2, 4, 4}, sample(32, -1, 1, 2)), d).requires_grad_(true);
    Tensor y = F::max_pool2d(x, F::MaxPool2dFuncOptions(2)) + F::avg_pool2d(x, F::AvgPool2dFuncOptions(2)) +
               F::adaptive_avg_pool2d(x, 2);
    EXPECT_EQ(y.dtype(), d);
    y.sum().backward();
    EXPECT_EQ(x.grad().dtype(), d);
    // Each input: 1/4 from avg, 1/4 from adaptive, and 1 where it is its window's maximum.
    auto gv = values(x.grad());
    for (int64_t k = 0; k < 32; ++k) EXPECT_TRUE(gv[k] == 0.5 || gv[k] == 1.5) << gv[k];
  }
  Tensor x = random_leaf({1, 1, 5, 5});
  EXPECT_KILN_ERROR(F::max_pool2d(x, F::MaxPool2dFuncOptions(3).padding(2)), "padding should be at most half");
  EXPECT_KILN_ERROR(F::avg_pool2d(x, F::AvgPool2dFuncOptions(7)), "too small");
  EXPECT_KILN_ERROR(F::adaptive_avg_pool2d(random_leaf({5, 5}), 2), "got shape [5, 5]");
}
