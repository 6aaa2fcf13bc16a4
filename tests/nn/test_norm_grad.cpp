// Autograd of layer_norm, group_norm and batch_norm: gradcheck (the fused
// backward kernels) and gradgradcheck (the composite create_graph formula)
// in float64, the two backward paths against each other, node names,
// parameter-gradient dtypes with mixed precision, and batch_norm's running
// statistics under autograd. Forward values and the kernels' gradients
// against float64 loops are in tests/core/test_norm.cpp.
#include <kiln/kiln.h>

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

namespace {

// A float64 leaf of `sizes` stored with its last two dims swapped (a transposed view).
Tensor transposed_leaf(std::vector<int64_t> sizes, unsigned seed) {
  const size_t nd = sizes.size();
  std::swap(sizes[nd - 1], sizes[nd - 2]);
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  Tensor base = make(sizes, sample(n, -1, 1, seed));
  return native::transpose(base, static_cast<int64_t>(nd) - 1, static_cast<int64_t>(nd) - 2).requires_grad_(true);
}

// Gradients of sum(fn(inputs) * g) w.r.t. inputs, with or without create_graph.
variable_list grads_of(const std::function<Tensor(const variable_list&)>& fn, const variable_list& inputs,
                       bool create_graph) {
  Tensor y = fn(inputs);
  Tensor g = make(y.sizes(), sample(y.numel(), -1, 1, 99), y.dtype());
  return autograd::grad({y}, inputs, {g}, true, create_graph);
}

void expect_paths_agree(const std::function<Tensor(const variable_list&)>& fn, const variable_list& inputs) {
  const variable_list fused = grads_of(fn, inputs, false);
  const variable_list composite = grads_of(fn, inputs, true);
  ASSERT_EQ(fused.size(), composite.size());
  for (size_t i = 0; i < fused.size(); ++i) {
    EXPECT_TRUE(all_close(fused[i], composite[i], 1e-9, 1e-10)) << "input " << i;
    EXPECT_EQ(fused[i].dtype(), composite[i].dtype());
  }
}

}  // namespace

// ---- layer norm ----

TEST(LayerNormGrad, Gradcheck) {
  auto ln = [](const variable_list& in) { return F::layer_norm(in[0], {4}, in[1], in[2], 1e-5); };
  EXPECT_GRADCHECK(ln, {random_leaf({3, 4}, -1, 1, 1), random_leaf({4}, 0.5, 1.5, 2), random_leaf({4}, -1, 1, 3)});
  EXPECT_GRADGRADCHECK(ln, {random_leaf({3, 4}, -1, 1, 1), random_leaf({4}, 0.5, 1.5, 2), random_leaf({4}, -1, 1, 3)});
  auto ln2 = [](const variable_list& in) { return F::layer_norm(in[0], {2, 3}, in[1], Tensor(), 1e-3); };
  EXPECT_GRADCHECK(ln2, {random_leaf({2, 2, 3}, -1, 1, 4), random_leaf({2, 3}, 0.5, 1.5, 5)});
  EXPECT_GRADGRADCHECK(ln2, {random_leaf({2, 2, 3}, -1, 1, 4), random_leaf({2, 3}, 0.5, 1.5, 5)});
  auto plain = [](const variable_list& in) { return F::layer_norm(in[0], {5}); };
  EXPECT_GRADCHECK(plain, {transposed_leaf({2, 5}, 6)});
  EXPECT_GRADGRADCHECK(plain, {transposed_leaf({2, 5}, 6)});
}

TEST(LayerNormGrad, FusedAndCompositeAgree) {
  auto ln = [](const variable_list& in) { return F::layer_norm(in[0], {6}, in[1], in[2], 1e-5); };
  expect_paths_agree(ln, {random_leaf({4, 6}, -2, 2, 7), random_leaf({6}, 0.5, 1.5, 8), random_leaf({6}, -1, 1, 9)});
}

TEST(LayerNormGrad, NodeNameAndNoGrad) {
  Tensor x = random_leaf({2, 3});
  EXPECT_EQ(F::layer_norm(x, {3}).grad_fn()->name(), "NativeLayerNormBackward0");
  NoGradGuard guard;
  EXPECT_EQ(F::layer_norm(x, {3}).grad_fn(), nullptr);
}

TEST(LayerNormGrad, MixedPrecisionGradientDtypes) {
  Tensor x = make({4, 8}, sample(32, -2, 2, 10), kBFloat16).requires_grad_(true);
  Tensor w = make({8}, sample(8, 0.5, 1.5, 11), kFloat32).requires_grad_(true);
  Tensor b = make({8}, sample(8, -1, 1, 12), kFloat32).requires_grad_(true);
  Tensor y = F::layer_norm(x, {8}, w, b);
  EXPECT_EQ(y.dtype(), kBFloat16);
  y.sum().backward();
  EXPECT_EQ(x.grad().dtype(), kBFloat16);
  EXPECT_EQ(w.grad().dtype(), kFloat32);
  EXPECT_EQ(b.grad().dtype(), kFloat32);
  EXPECT_TRUE(all_close(b.grad(), make({8}, std::vector<double>(8, 4.0)), 0, 0));
}

// ---- group norm ----

TEST(GroupNormGrad, Gradcheck) {
  auto gn = [](const variable_list& in) { return F::group_norm(in[0], 2, in[1], in[2], 1e-5); };
  EXPECT_GRADCHECK(gn, {random_leaf({2, 4, 3}, -1, 1, 20), random_leaf({4}, 0.5, 1.5, 21), random_leaf({4}, -1, 1, 22)});
  EXPECT_GRADGRADCHECK(gn,
                       {random_leaf({2, 4, 3}, -1, 1, 20), random_leaf({4}, 0.5, 1.5, 21), random_leaf({4}, -1, 1, 22)});
  auto gn4 = [](const variable_list& in) { return F::group_norm(in[0], 3, Tensor(), Tensor(), 1e-5); };
  EXPECT_GRADCHECK(gn4, {random_leaf({1, 6, 2, 2}, -1, 1, 23)});
  EXPECT_GRADGRADCHECK(gn4, {random_leaf({1, 6, 2, 2}, -1, 1, 23)});
  auto gnt = [](const variable_list& in) { return F::group_norm(in[0], 1, in[1]); };
  EXPECT_GRADCHECK(gnt, {transposed_leaf({2, 3, 3}, 24), random_leaf({3}, 0.5, 1.5, 25)});
}

TEST(GroupNormGrad, FusedAndCompositeAgree) {
  auto gn = [](const variable_list& in) { return F::group_norm(in[0], 2, in[1], in[2], 1e-5); };
  expect_paths_agree(gn, {random_leaf({3, 4, 2, 3}, -2, 2, 26), random_leaf({4}, 0.5, 1.5, 27),
                          random_leaf({4}, -1, 1, 28)});
  Tensor x = random_leaf({2, 2, 3});
  EXPECT_EQ(F::group_norm(x, 1).grad_fn()->name(), "NativeGroupNormBackward0");
}

// ---- batch norm ----

TEST(BatchNormGrad, GradcheckTraining) {
  auto bn = [](const variable_list& in) {
    return F::batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true, 0.1, 1e-5);
  };
  EXPECT_GRADCHECK(bn, {random_leaf({3, 2, 2}, -1, 1, 30), random_leaf({2}, 0.5, 1.5, 31), random_leaf({2}, -1, 1, 32)});
  EXPECT_GRADGRADCHECK(bn,
                       {random_leaf({3, 2, 2}, -1, 1, 30), random_leaf({2}, 0.5, 1.5, 31), random_leaf({2}, -1, 1, 32)});
  auto bn2 = [](const variable_list& in) { return F::batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true); };
  EXPECT_GRADCHECK(bn2, {random_leaf({4, 3}, -1, 1, 33)});
  EXPECT_GRADGRADCHECK(bn2, {random_leaf({4, 3}, -1, 1, 33)});
  EXPECT_GRADCHECK(bn2, {transposed_leaf({2, 3, 2}, 34)});
}

TEST(BatchNormGrad, GradcheckEval) {
  const Tensor rm = make({2}, {0.3, -0.2}), rv = make({2}, {0.8, 1.7});
  auto bn = [&](const variable_list& in) { return F::batch_norm(in[0], rm, rv, in[1], in[2], false, 0.1, 1e-5); };
  EXPECT_GRADCHECK(bn, {random_leaf({3, 2, 2}, -1, 1, 35), random_leaf({2}, 0.5, 1.5, 36), random_leaf({2}, -1, 1, 37)});
  EXPECT_GRADGRADCHECK(bn,
                       {random_leaf({3, 2, 2}, -1, 1, 35), random_leaf({2}, 0.5, 1.5, 36), random_leaf({2}, -1, 1, 37)});
}

TEST(BatchNormGrad, FusedAndCompositeAgree) {
  auto train = [](const variable_list& in) {
    return F::batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true, 0.1, 1e-5);
  };
  expect_paths_agree(train, {random_leaf({5, 3, 4}, -2, 2, 38), random_leaf({3}, 0.5, 1.5, 39),
                             random_leaf({3}, -1, 1, 40)});
  const Tensor rm = make({3}, {0.3, -0.2, 1}), rv = make({3}, {0.8, 1.7, 0.5});
  auto eval = [&](const variable_list& in) { return F::batch_norm(in[0], rm, rv, in[1], in[2], false, 0.1, 1e-5); };
  expect_paths_agree(eval, {random_leaf({5, 3}, -2, 2, 41), random_leaf({3}, 0.5, 1.5, 42), random_leaf({3}, -1, 1, 43)});
}

TEST(BatchNormGrad, RunningStatsUpdatedWithoutHistory) {
  Tensor x = random_leaf({4, 2}, -1, 1, 44);
  Tensor rm = native::zeros({2}, kFloat64), rv = native::ones({2}, kFloat64);
  Tensor y = F::batch_norm(x, rm, rv, Tensor(), Tensor(), true, 0.5);
  EXPECT_EQ(y.grad_fn()->name(), "NativeBatchNormBackward0");
  EXPECT_FALSE(rm.requires_grad());
  EXPECT_EQ(rm.grad_fn(), nullptr);
  const std::vector<double> xv = values(x);
  for (int64_t c = 0; c < 2; ++c) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < 4; ++i) m += xv[i * 2 + c] / 4;
    for (int64_t i = 0; i < 4; ++i) v += (xv[i * 2 + c] - m) * (xv[i * 2 + c] - m) / 3;
    EXPECT_NEAR(values(rm)[c], 0.5 * m, 1e-12);
    EXPECT_NEAR(values(rv)[c], 0.5 + 0.5 * v, 1e-12);
  }
  // Backward after the update still works (the buffers were not saved).
  y.sum().backward();
  EXPECT_TRUE(x.grad().defined());
}

TEST(BatchNormGrad, MixedPrecision) {
  Tensor x = make({6, 3, 4}, sample(72, -2, 2, 45), kBFloat16).requires_grad_(true);
  Tensor w = make({3}, {1, 2, 3}, kFloat32).requires_grad_(true);
  Tensor rm = native::zeros({3}), rv = native::ones({3});
  Tensor y = F::batch_norm(x, rm, rv, w, Tensor(), true);
  EXPECT_EQ(y.dtype(), kBFloat16);
  (y * y).sum().backward();
  EXPECT_EQ(x.grad().dtype(), kBFloat16);
  EXPECT_EQ(w.grad().dtype(), kFloat32);
  // d/dw sum((w x̂)^2) = 2 w sum(x̂^2) = 2 w * count (x̂ has unit biased variance), up to bf16 rounding of y.
  EXPECT_TRUE(all_close(w.grad(), make({3}, {48, 96, 144}), 2e-2));
}

TEST(NormGrad, EmptyBatchesGiveZeroParameterGradients) {
  Tensor w = random_leaf({4}, 0.5, 1.5, 50), b = random_leaf({4}, -1, 1, 51);
  Tensor x = native::empty({0, 4}, kFloat64).requires_grad_(true);
  F::layer_norm(x, {4}, w, b).sum().backward();
  EXPECT_EQ(x.grad().sizes(), IntArrayRef({0, 4}));
  EXPECT_EQ(values(w.grad()), std::vector<double>(4, 0.0));
  EXPECT_EQ(values(b.grad()), std::vector<double>(4, 0.0));
  Tensor w2 = random_leaf({4}, 0.5, 1.5, 52);
  Tensor x2 = native::empty({0, 4, 3}, kFloat64).requires_grad_(true);
  F::group_norm(x2, 2, w2).sum().backward();
  EXPECT_EQ(values(w2.grad()), std::vector<double>(4, 0.0));
}
