// Gradients of the differentiable views and copies: gradcheck on contiguous,
// transposed and sliced inputs, closed forms, double backward.
#include <kiln/kiln.h>

#include "autograd/gradcheck_util.h"

using namespace kiln;
using autograd::variable_list;
using kiln::testing::leaf;
using kiln::testing::make;
using kiln::testing::random_leaf;
using kiln::testing::transposed_leaf;
using kiln::testing::sample;
using kiln::testing::values;

namespace {
// A [n] float64 leaf reading every other element of its storage.
Tensor strided_leaf(int64_t n, unsigned seed = 4) {
  Tensor storage = make({2 * n}, sample(2 * n, -1, 1, seed));
  return native::slice(storage, 0, 0, std::nullopt, 2).requires_grad_(true);
}
}  // namespace

TEST(ViewGrad, InputsForTheseTestsAreNonContiguousLeaves) {
  Tensor a = transposed_leaf(2, 3);
  EXPECT_FALSE(a.is_contiguous());
  EXPECT_TRUE(a.is_leaf());
  EXPECT_FALSE(strided_leaf(3).is_contiguous());
}

TEST(ViewGrad, ViewAndReshape) {
  Tensor x = random_leaf({2, 3});
  auto view = [](const variable_list& in) { return in[0].view({3, 2}); };
  auto view_infer = [](const variable_list& in) { return in[0].view({-1}); };
  auto reshape = [](const variable_list& in) { return in[0].reshape({6, 1}); };
  EXPECT_GRADCHECK(view, {x});
  EXPECT_GRADCHECK(view_infer, {x});
  EXPECT_GRADCHECK(reshape, {x});
  // A transposed input cannot be viewed as [6]: reshape copies.
  Tensor xt = transposed_leaf(2, 3);
  EXPECT_EQ(xt.reshape({6}).grad_fn()->name(), "UnsafeViewBackward0");
  EXPECT_GRADCHECK(reshape, {xt});
  EXPECT_KILN_ERROR(xt.view({6}), "view");
  auto as = [](const variable_list& in) { return in[0].view_as(in[1]) * in[1]; };
  EXPECT_GRADCHECK(as, {x, random_leaf({3, 2}, -1, 1, 7)});
  auto reshape_as = [](const variable_list& in) { return in[0].reshape_as(in[1]); };
  EXPECT_GRADCHECK(reshape_as, {xt, make({6}, sample(6))});
}

TEST(ViewGrad, PermuteTransposeT) {
  Tensor x = random_leaf({2, 3, 4});
  auto permute = [](const variable_list& in) { return in[0].permute({2, 0, 1}); };
  auto transpose = [](const variable_list& in) { return in[0].transpose(0, -1); };
  auto t = [](const variable_list& in) { return in[0].t(); };
  EXPECT_GRADCHECK(permute, {x});
  EXPECT_GRADCHECK(transpose, {x});
  EXPECT_GRADCHECK(t, {transposed_leaf(2, 3)});
  EXPECT_GRADCHECK(t, {strided_leaf(3)});  // 1-D: unchanged
  // Closed form: a weighted sum through a permute puts each weight back in place.
  Tensor y = random_leaf({2, 3});
  Tensor w = make({3, 2}, {1, 2, 3, 4, 5, 6});
  (y.permute({1, 0}) * w).sum().backward();
  EXPECT_EQ(values(y.grad()), (std::vector<double>{1, 3, 5, 2, 4, 6}));
}

TEST(ViewGrad, SqueezeUnsqueeze) {
  Tensor x = random_leaf({2, 1, 3, 1});
  auto squeeze_all = [](const variable_list& in) { return in[0].squeeze(); };
  auto squeeze_dim = [](const variable_list& in) { return in[0].squeeze(1); };
  auto squeeze_noop = [](const variable_list& in) { return in[0].squeeze(0); };
  auto unsqueeze = [](const variable_list& in) { return in[0].unsqueeze(-1); };
  EXPECT_GRADCHECK(squeeze_all, {x});
  EXPECT_GRADCHECK(squeeze_dim, {x});
  EXPECT_GRADCHECK(squeeze_noop, {x});
  EXPECT_GRADCHECK(unsqueeze, {transposed_leaf(3, 2)});
  EXPECT_EQ(x.squeeze().grad_fn()->name(), "SqueezeBackward0");
  EXPECT_EQ(x.squeeze(1).grad_fn()->name(), "SqueezeBackward1");
}

TEST(ViewGrad, ExpandSumsOverExpandedDims) {
  Tensor x = leaf({3, 1}, {1, 2, 3});
  x.expand({2, 3, 4}).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{8, 8, 8}));
  auto expand = [](const variable_list& in) { return in[0].expand({2, 3, 4}) * in[1]; };
  EXPECT_GRADCHECK(expand, {random_leaf({3, 1}), random_leaf({2, 3, 4}, -1, 1, 9)});
  auto expand_as = [](const variable_list& in) { return in[0].expand_as(in[1]); };
  EXPECT_GRADCHECK(expand_as, {strided_leaf(4), make({3, 4}, sample(12))});
  auto keep = [](const variable_list& in) { return in[0].expand({-1, 2}); };
  EXPECT_GRADCHECK(keep, {random_leaf({3, 1})});
}

TEST(ViewGrad, SliceNarrowSelect) {
  Tensor x = random_leaf({4, 5});
  auto slice = [](const variable_list& in) { return in[0].slice(1, 1, 5, 2); };
  auto slice_neg = [](const variable_list& in) { return in[0].slice(0, -3, -1); };
  auto slice_clamped = [](const variable_list& in) { return in[0].slice(1, 2, 100); };
  auto narrow = [](const variable_list& in) { return in[0].narrow(1, -3, 2); };
  auto select = [](const variable_list& in) { return in[0].select(0, -1); };
  auto index = [](const variable_list& in) { return in[0][1]; };
  for (const Tensor& input : {x, transposed_leaf(4, 5)}) {
    EXPECT_GRADCHECK(slice, {input});
    EXPECT_GRADCHECK(slice_neg, {input});
    EXPECT_GRADCHECK(slice_clamped, {input});
    EXPECT_GRADCHECK(narrow, {input});
    EXPECT_GRADCHECK(select, {input});
    EXPECT_GRADCHECK(index, {input});
  }
  // Closed forms: the gradient is the incoming one scattered into zeros.
  Tensor y = random_leaf({2, 4});
  y.slice(1, 0, std::nullopt, 2).sum().backward();
  EXPECT_EQ(values(y.grad()), (std::vector<double>{1, 0, 1, 0, 1, 0, 1, 0}));
  y.set_grad(Tensor());
  (y.select(1, 2) * make({2}, {5, 7})).sum().backward();
  EXPECT_EQ(values(y.grad()), (std::vector<double>{0, 0, 5, 0, 0, 0, 7, 0}));
}

TEST(ViewGrad, FlattenUnflatten) {
  Tensor x = random_leaf({2, 3, 2});
  auto flatten = [](const variable_list& in) { return in[0].flatten(); };
  auto flatten_mid = [](const variable_list& in) { return in[0].flatten(1); };
  auto unflatten = [](const variable_list& in) { return in[0].unflatten(1, {2, -1}); };
  EXPECT_GRADCHECK(flatten, {x});
  EXPECT_GRADCHECK(flatten_mid, {x});
  EXPECT_GRADCHECK(flatten, {transposed_leaf(3, 2)});
  EXPECT_GRADCHECK(unflatten, {random_leaf({3, 4})});
  Tensor s = leaf({}, {2});
  EXPECT_EQ(s.flatten().sizes(), IntArrayRef({1}));
  EXPECT_GRADCHECK(flatten, {s});
}

TEST(ViewGrad, AsStrided) {
  Tensor x = random_leaf({6});
  auto window = [](const variable_list& in) { return in[0].as_strided({2, 3}, {3, 1}); };
  // Overlapping windows: elements read twice get both gradients.
  auto overlap = [](const variable_list& in) { return in[0].as_strided({3, 3}, {1, 1}, 1); };
  EXPECT_GRADCHECK(window, {x});
  EXPECT_GRADCHECK(overlap, {x});
  Tensor y = leaf({4}, {1, 2, 3, 4});
  y.as_strided({2, 2}, {1, 1}).sum().backward();  // reads 0,1,1,2
  EXPECT_EQ(values(y.grad()), (std::vector<double>{1, 2, 1, 0}));
  auto of_view = [](const variable_list& in) { return in[0].t().as_strided({2, 2}, {2, 1}); };
  EXPECT_GRADCHECK(of_view, {random_leaf({2, 2})});
}

TEST(ViewGrad, CopiesAndConversions) {
  Tensor x = transposed_leaf(2, 3);
  auto contiguous = [](const variable_list& in) { return in[0].contiguous(); };
  auto clone = [](const variable_list& in) { return in[0].clone() * in[0]; };
  EXPECT_GRADCHECK(contiguous, {x});
  EXPECT_GRADCHECK(clone, {x});
  Tensor c = random_leaf({2});
  EXPECT_TRUE(c.contiguous().is_same(c));   // already contiguous: the tensor itself
  EXPECT_TRUE(c.to(kFloat64).is_same(c));
  // Through float32 and back: looser tolerances for float32's rounding.
  auto through_f32 = [](const variable_list& in) { return (in[0].to(kFloat32) * 3.0f).to(kFloat64); };
  EXPECT_EQ(autograd::gradcheck_report([&](const variable_list& in) { return variable_list{through_f32(in)}; }, {x},
                                       {1e-3, 1e-3, 1e-3, false}),
            "");
  Tensor y = random_leaf({3});
  y.to(kFloat32).sum().backward();
  EXPECT_EQ(y.grad().dtype(), kFloat64);
  EXPECT_EQ(values(y.grad()), (std::vector<double>{1, 1, 1}));
  auto to_options = [](const variable_list& in) { return in[0].to(TensorOptions().dtype(kFloat64).device(kCPU)); };
  EXPECT_GRADCHECK(to_options, {y});
}

TEST(ViewGrad, SumTo) {
  auto sum_to = [](const variable_list& in) { return kiln::sum_to(in[0], {3, 1}); };
  EXPECT_GRADCHECK(sum_to, {random_leaf({2, 3, 4})});
  Tensor x = random_leaf({2, 3});
  EXPECT_TRUE(kiln::sum_to(x, {2, 3}).is_same(x));
}

TEST(ViewGrad, DoubleBackward) {
  auto slice = [](const variable_list& in) { return in[0].slice(1, 1, 4, 2) * in[0].slice(1, 0, 3, 2); };
  auto select = [](const variable_list& in) { return in[0].select(0, 1) * in[0].select(0, 0); };
  auto expand = [](const variable_list& in) { return in[0].expand({3, 2}) * in[1]; };
  auto perm = [](const variable_list& in) { return in[0].permute({1, 0}).reshape({-1}) * in[0].view({-1}); };
  Tensor x = random_leaf({2, 4});
  EXPECT_GRADGRADCHECK(slice, {x});
  EXPECT_GRADGRADCHECK(select, {x});
  EXPECT_GRADGRADCHECK(expand, {random_leaf({1, 2}), random_leaf({3, 2}, -1, 1, 5)});
  EXPECT_GRADGRADCHECK(perm, {random_leaf({3, 2})});
  auto strided = [](const variable_list& in) {
    Tensor w = in[0].as_strided({2, 2}, {1, 1});
    return w * w;
  };
  EXPECT_GRADGRADCHECK(strided, {random_leaf({3})});
}

TEST(ViewGrad, ViewsOfTensorsWithoutGradStayCheap) {
  Tensor x = make({2, 3}, sample(6));
  Tensor v = x.t();
  EXPECT_FALSE(v.requires_grad());
  EXPECT_EQ(v.grad_fn(), nullptr);
  EXPECT_EQ(v.storage(), x.storage());
}
