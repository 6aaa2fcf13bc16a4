// Gradients of joining, splitting, index-driven and reshuffling ops:
// gradcheck (int32 / int64 indices, repeated indices, negative dims,
// non-contiguous inputs), double backward, and closed-form gradients where
// the expected values are worked out by hand or with loops in the test.
#include <kiln/kiln.h>

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
Tensor longs(IntArrayRef sizes, const std::vector<double>& vals) { return make(sizes, vals, kInt64); }
Tensor ints(IntArrayRef sizes, const std::vector<double>& vals) { return make(sizes, vals, kInt32); }
}  // namespace

// ---- joining and splitting ----

TEST(IndexingGrad, Cat) {
  auto cat3 = [](const variable_list& in) { return kiln::cat({in[0], in[1], in[2]}, 0); };
  auto cat_last = [](const variable_list& in) { return kiln::cat({in[0], in[1], in[2]}, -1); };
  EXPECT_GRADCHECK(cat3, {random_leaf({2, 3}), random_leaf({1, 3}, -1, 1, 2), transposed_leaf(2, 3)});
  EXPECT_GRADCHECK(cat_last, {random_leaf({2, 1}), transposed_leaf(2, 3), random_leaf({2, 2}, -1, 1, 2)});
  // A constant among the inputs gets no gradient.
  EXPECT_GRADCHECK(cat3, {random_leaf({2, 3}), make({1, 3}, sample(3)), random_leaf({1, 3}, -1, 1, 2)});
  auto expanded = [](const variable_list& in) { return kiln::cat({in[0].expand({2, 3}), in[1]}, 1); };
  EXPECT_GRADCHECK(expanded, {random_leaf({1, 3}), random_leaf({2, 2}, -1, 1, 2)});
  EXPECT_GRADGRADCHECK(cat_last, {random_leaf({2, 1}), transposed_leaf(2, 3), random_leaf({2, 2}, -1, 1, 2)});
  EXPECT_EQ(kiln::cat({random_leaf({2})}).grad_fn()->name(), "CatBackward0");
}

TEST(IndexingGrad, CatClosedForm) {
  // Each input gets its own slice of the output's gradient.
  Tensor a = random_leaf({2, 1}), b = random_leaf({2, 2}, -1, 1, 2);
  (kiln::cat({a, b}, 1) * make({2, 3}, {1, 2, 3, 4, 5, 6})).sum().backward();
  EXPECT_EQ(values(a.grad()), (std::vector<double>{1, 4}));
  EXPECT_EQ(values(b.grad()), (std::vector<double>{2, 3, 5, 6}));
  // Legacy empty [0] inputs are skipped by the forward and get an empty gradient.
  Tensor x = random_leaf({2, 3}), e = leaf({0}, {});
  kiln::cat({e, x, e}, 1).sum().backward();
  EXPECT_EQ(values(x.grad()), std::vector<double>(6, 1.0));
  EXPECT_EQ(e.grad().sizes(), IntArrayRef({0}));
  // Mixed dtypes promote; each gradient comes back in its input's dtype.
  Tensor f = make({2}, {1, 2}, kFloat32).requires_grad_(true), d = random_leaf({3});
  Tensor y = kiln::cat({f, d});
  EXPECT_EQ(y.dtype(), kFloat64);
  (y * make({5}, {1, 2, 3, 4, 5})).sum().backward();
  EXPECT_EQ(f.grad().dtype(), kFloat32);
  EXPECT_EQ(values(f.grad()), (std::vector<double>{1, 2}));
  EXPECT_EQ(values(d.grad()), (std::vector<double>{3, 4, 5}));
}

TEST(IndexingGrad, Stack) {
  auto stack0 = [](const variable_list& in) { return kiln::stack({in[0], in[1]}, 0); };
  auto stack_last = [](const variable_list& in) { return kiln::stack({in[0], in[1], in[2]}, -1); };
  auto stack1 = [](const variable_list& in) { return kiln::stack({in[0], in[1]}, 1); };
  EXPECT_GRADCHECK(stack0, {random_leaf({2, 3}), transposed_leaf(2, 3)});
  EXPECT_GRADCHECK(stack_last, {random_leaf({2, 3}), transposed_leaf(2, 3), random_leaf({2, 3}, -1, 1, 2)});
  EXPECT_GRADCHECK(stack1, {random_leaf({3}), random_leaf({3}, -1, 1, 2)});
  EXPECT_GRADGRADCHECK(stack_last, {random_leaf({2, 3}), transposed_leaf(2, 3), random_leaf({2, 3}, -1, 1, 2)});
  Tensor a = random_leaf({2}), b = random_leaf({2}, -1, 1, 2);
  Tensor y = kiln::stack({a, b}, 1);  // [[a0, b0], [a1, b1]]
  EXPECT_EQ(y.grad_fn()->name(), "StackBackward0");
  (y * make({2, 2}, {1, 2, 3, 4})).sum().backward();
  EXPECT_EQ(values(a.grad()), (std::vector<double>{1, 3}));
  EXPECT_EQ(values(b.grad()), (std::vector<double>{2, 4}));
}

TEST(IndexingGrad, SplitAndChunk) {
  auto split = [](const variable_list& in) {
    auto p = in[0].split(2, -1);  // [3, 2], [3, 2], [3, 1]
    return p[0] * p[1] + p[2];
  };
  auto split_sizes = [](const variable_list& in) {
    auto p = in[0].split({1, 4}, 1);
    return p[1] * p[0];
  };
  auto with_sizes = [](const variable_list& in) {
    auto p = kiln::split_with_sizes(in[0], {2, 0, 3}, -1);
    return p[0].sum() * p[2].sum() + p[1].sum();
  };
  auto chunk = [](const variable_list& in) {
    auto p = in[0].chunk(3, 0);  // [2, ...], [2, ...], [1, ...]
    return p[0] * p[1] + p[2];
  };
  EXPECT_GRADCHECK(split, {random_leaf({3, 5})});
  EXPECT_GRADCHECK(split, {transposed_leaf(3, 5)});
  EXPECT_GRADCHECK(split_sizes, {random_leaf({3, 5})});
  EXPECT_GRADCHECK(with_sizes, {transposed_leaf(2, 5)});
  EXPECT_GRADCHECK(chunk, {random_leaf({5, 2})});
  // The pieces are narrow views of the input, as torch.
  Tensor x = random_leaf({4, 3});
  auto pieces = kiln::chunk(x, 2, 0);
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[1].data_ptr<double>(), x.data_ptr<double>() + 6);
  EXPECT_EQ(pieces[1].grad_fn()->name(), "SliceBackward0");
  (pieces[1] * 2.0).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2}));
  EXPECT_KILN_ERROR(kiln::split_with_sizes(x, {1, 2}, 0), "split_with_sizes");
}

// ---- index-driven ----

TEST(IndexingGrad, IndexSelect) {
  auto sel0 = [](const variable_list& in) { return in[0].index_select(0, in[1]); };
  auto sel_last = [](const variable_list& in) { return in[0].index_select(-1, in[1]); };
  // Repeated indices: their gradients accumulate.
  EXPECT_GRADCHECK(sel0, {random_leaf({4, 3}), longs({5}, {0, 2, 2, 3, 0})});
  EXPECT_GRADCHECK(sel0, {random_leaf({4, 3}), ints({3}, {3, 3, 1})});
  EXPECT_GRADCHECK(sel_last, {transposed_leaf(3, 4), longs({4}, {3, 1, 1, 0})});
  EXPECT_GRADCHECK(sel_last, {transposed_leaf(3, 4), ints({2}, {2, 2})});
  EXPECT_GRADCHECK(sel0, {random_leaf({4, 3}), longs({}, {2})});     // 0-dim index
  EXPECT_GRADCHECK(sel0, {leaf({}, {1.5}), longs({1}, {0})});        // 0-dim input
  EXPECT_GRADCHECK(sel0, {random_leaf({4, 3}), longs({0}, {})});     // no indices
  EXPECT_GRADGRADCHECK(sel0, {random_leaf({4, 3}), longs({5}, {0, 2, 2, 3, 0})});
  EXPECT_GRADGRADCHECK(sel_last, {transposed_leaf(3, 4), ints({3}, {3, 1, 3})});
  Tensor x = random_leaf({4, 2});
  Tensor y = x.index_select(0, longs({6}, {0, 2, 2, 3, 0, 2}));
  EXPECT_EQ(y.grad_fn()->name(), "IndexSelectBackward0");
  y.sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 2, 0, 0, 3, 3, 1, 1}));
  EXPECT_KILN_ERROR(random_leaf({4}).index_select(0, make({1}, {0}, kFloat32)), "index_select");
}

TEST(IndexingGrad, Gather) {
  auto gather1 = [](const variable_list& in) { return in[0].gather(1, in[1]); };
  auto gather_neg = [](const variable_list& in) { return in[0].gather(-2, in[1]); };
  EXPECT_GRADCHECK(gather1, {random_leaf({3, 4}), longs({3, 2}, {0, 0, 3, 1, 2, 2})});
  EXPECT_GRADCHECK(gather1, {transposed_leaf(3, 4), longs({2, 3}, {1, 1, 1, 0, 3, 0})});  // index smaller than self
  EXPECT_GRADCHECK(gather_neg, {random_leaf({3, 4}), longs({2, 4}, {0, 1, 2, 2, 2, 2, 0, 1})});
  EXPECT_GRADGRADCHECK(gather1, {random_leaf({3, 4}), longs({3, 2}, {0, 0, 3, 1, 2, 2})});
  Tensor x = random_leaf({2, 3});
  Tensor y = x.gather(1, longs({2, 4}, {0, 0, 2, 0, 1, 1, 1, 2}));
  EXPECT_EQ(y.grad_fn()->name(), "GatherBackward0");
  (y * make({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8})).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1 + 2 + 4, 0, 3, 0, 5 + 6 + 7, 8}));
  EXPECT_KILN_ERROR(x.gather(1, ints({2, 1}, {0, 0})), "gather");
}

TEST(IndexingGrad, Scatter) {
  auto scatter1 = [](const variable_list& in) { return in[0].scatter(1, in[1], in[2]); };
  auto scatter_neg = [](const variable_list& in) { return in[0].scatter(-2, in[1], in[2]); };
  auto scatter_value = [](const variable_list& in) { return in[0].scatter(1, in[1], 2.5); };
  const Tensor idx = longs({3, 2}, {0, 2, 1, 3, 3, 0});  // no position written twice
  EXPECT_GRADCHECK(scatter1, {random_leaf({3, 4}), idx, random_leaf({3, 2}, -1, 1, 2)});
  EXPECT_GRADCHECK(scatter1, {transposed_leaf(3, 4), idx, transposed_leaf(3, 2, -1, 1, 5)});
  // src larger than index: the elements never read get a zero gradient.
  EXPECT_GRADCHECK(scatter1, {random_leaf({3, 4}), idx, random_leaf({4, 3}, -1, 1, 2)});
  EXPECT_GRADCHECK(scatter_neg, {random_leaf({3, 2}), longs({2, 2}, {2, 0, 0, 1}), random_leaf({2, 2}, -1, 1, 2)});
  EXPECT_GRADCHECK(scatter_value, {random_leaf({3, 4}), idx});
  EXPECT_GRADGRADCHECK(scatter1, {random_leaf({3, 4}), idx, random_leaf({3, 2}, -1, 1, 2)});

  Tensor x = random_leaf({2, 3}), src = random_leaf({2, 3}, -1, 1, 2);
  Tensor y = x.scatter(1, longs({2, 2}, {2, 0, 1, 2}), src);
  EXPECT_EQ(y.grad_fn()->name(), "ScatterBackward0");
  (y * make({2, 3}, {1, 2, 3, 4, 5, 6})).sum().backward();
  // Overwritten positions give x nothing; src[i][j] gets the weight where it landed.
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 2, 0, 4, 0, 0}));
  EXPECT_EQ(values(src.grad()), (std::vector<double>{3, 1, 0, 5, 6, 0}));
  // An empty index writes nothing: self gets all of the gradient, src none.
  Tensor x0 = random_leaf({3, 2}), src0 = random_leaf({3, 2}, -1, 1, 2);
  x0.scatter(1, longs({3, 0}, {}), src0).sum().backward();
  EXPECT_EQ(values(x0.grad()), std::vector<double>(6, 1.0));
  EXPECT_EQ(values(src0.grad()), std::vector<double>(6, 0.0));
  Tensor z = random_leaf({2, 3});
  Tensor w = z.scatter(0, longs({1, 2}, {1, 0}), 7.0);
  EXPECT_EQ(w.grad_fn()->name(), "ScatterBackward1");
  w.sum().backward();
  EXPECT_EQ(values(z.grad()), (std::vector<double>{1, 0, 1, 0, 1, 1}));
}

TEST(IndexingGrad, ScatterAdd) {
  auto sa = [](const variable_list& in) { return in[0].scatter_add(0, in[1], in[2]); };
  const Tensor idx = longs({4, 2}, {0, 1, 2, 2, 0, 0, 1, 2});  // repeated targets accumulate
  EXPECT_GRADCHECK(sa, {random_leaf({3, 2}), idx, random_leaf({4, 2}, -1, 1, 2)});
  EXPECT_GRADCHECK(sa, {transposed_leaf(3, 2), idx, transposed_leaf(4, 2, -1, 1, 6)});
  EXPECT_GRADCHECK(sa, {random_leaf({3, 2}), longs({2, 1}, {2, 2}), random_leaf({3, 3}, -1, 1, 2)});
  EXPECT_GRADGRADCHECK(sa, {random_leaf({3, 2}), idx, random_leaf({4, 2}, -1, 1, 2)});
  Tensor x = random_leaf({3, 2}), src = random_leaf({4, 2}, -1, 1, 2);
  Tensor y = x.scatter_add(0, idx, src);
  EXPECT_EQ(y.grad_fn()->name(), "ScatterAddBackward0");
  const std::vector<double> wv = {1, 2, 3, 4, 5, 6};
  (y * make({3, 2}, wv)).sum().backward();
  EXPECT_EQ(values(x.grad()), wv);
  // src[i][j] gets W[idx[i][j]][j].
  EXPECT_EQ(values(src.grad()), (std::vector<double>{1, 4, 5, 6, 1, 2, 3, 6}));
}

TEST(IndexingGrad, IndexAdd) {
  auto ia = [](const variable_list& in) { return in[0].index_add(0, in[1], in[2], 2.0); };
  auto ia_last = [](const variable_list& in) { return in[0].index_add(-1, in[1], in[2]); };
  EXPECT_GRADCHECK(ia, {random_leaf({3, 2}), longs({4}, {0, 2, 0, 1}), random_leaf({4, 2}, -1, 1, 2)});
  EXPECT_GRADCHECK(ia, {random_leaf({3, 2}), ints({4}, {2, 2, 2, 1}), transposed_leaf(4, 2)});
  EXPECT_GRADCHECK(ia_last, {transposed_leaf(2, 3), ints({2}, {2, 2}), random_leaf({2, 2}, -1, 1, 2)});
  EXPECT_GRADCHECK(ia_last, {leaf({}, {0.5}), longs({}, {0}), leaf({}, {1.5})});  // 0-dim
  auto expanded = [](const variable_list& in) { return in[0].index_add(0, in[1], in[2].expand({3, 2})); };
  EXPECT_GRADCHECK(expanded, {random_leaf({3, 2}), longs({3}, {1, 1, 0}), random_leaf({2}, -1, 1, 2)});
  EXPECT_GRADGRADCHECK(ia, {random_leaf({3, 2}), longs({4}, {0, 2, 0, 1}), random_leaf({4, 2}, -1, 1, 2)});
  Tensor x = random_leaf({3, 2}), src = random_leaf({4, 2}, -1, 1, 2);
  Tensor y = x.index_add(0, longs({4}, {0, 2, 0, 1}), src, -3);
  EXPECT_EQ(y.grad_fn()->name(), "IndexAddBackward0");
  const std::vector<double> wv = {1, 2, 3, 4, 5, 6};
  (y * make({3, 2}, wv)).sum().backward();
  EXPECT_EQ(values(x.grad()), wv);
  // source row i gets alpha * W[index[i]].
  EXPECT_EQ(values(src.grad()), (std::vector<double>{-3, -6, -15, -18, -3, -6, -9, -12}));
}

TEST(IndexingGrad, OneHotIsNotDifferentiable) {
  Tensor y = kiln::one_hot(longs({3}, {0, 2, 1}), 4);
  EXPECT_EQ(y.dtype(), kInt64);
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(values(y), (std::vector<double>{1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0}));
  EXPECT_EQ(kiln::one_hot(longs({2}, {1, 3})).sizes(), IntArrayRef({2, 4}));
  EXPECT_KILN_ERROR(kiln::one_hot(ints({1}, {0}), 2), "one_hot");
}

// ---- reshuffling ----

TEST(IndexingGrad, Pad) {
  auto pad_last = [](const variable_list& in) { return kiln::pad(in[0], {1, 2}); };
  auto pad_mixed = [](const variable_list& in) { return kiln::pad(in[0], {1, -1, -1, 2}); };
  auto pad_value = [](const variable_list& in) { return kiln::pad(in[0], {0, 0, 2, 1}, 3.0); };
  auto pad_trim = [](const variable_list& in) { return kiln::pad(in[0], {-1, -2}); };
  EXPECT_GRADCHECK(pad_last, {random_leaf({2, 3})});
  EXPECT_GRADCHECK(pad_mixed, {random_leaf({3, 4})});
  EXPECT_GRADCHECK(pad_mixed, {transposed_leaf(3, 4)});
  EXPECT_GRADCHECK(pad_value, {random_leaf({2, 2, 3})});
  EXPECT_GRADCHECK(pad_trim, {random_leaf({2, 5})});
  EXPECT_GRADGRADCHECK(pad_mixed, {random_leaf({3, 4})});
  Tensor x = random_leaf({2, 3});
  Tensor y = kiln::pad(x, {-1, 1});  // [x[:, 1], x[:, 2], 0]
  EXPECT_EQ(y.grad_fn()->name(), "ConstantPadNdBackward0");
  (y * make({2, 3}, {1, 2, 3, 4, 5, 6})).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 1, 2, 0, 4, 5}));
  // Trimmed away entirely: a zero gradient of the input's shape.
  Tensor z = random_leaf({3});
  Tensor e = kiln::pad(z, {-2, -1});
  EXPECT_EQ(e.sizes(), IntArrayRef({0}));
  e.sum().backward();
  EXPECT_EQ(values(z.grad()), std::vector<double>(3, 0.0));
}

TEST(IndexingGrad, Flip) {
  auto flip = [](const variable_list& in) { return in[0].flip({0, -1}); };
  auto flip_one = [](const variable_list& in) { return in[0].flip({1}); };
  EXPECT_GRADCHECK(flip, {random_leaf({2, 3, 2})});
  EXPECT_GRADCHECK(flip_one, {transposed_leaf(3, 4)});
  EXPECT_GRADGRADCHECK(flip, {random_leaf({2, 3})});
  Tensor x = random_leaf({2, 3});
  Tensor y = x.flip({-1});
  EXPECT_EQ(y.grad_fn()->name(), "FlipBackward0");
  (y * make({2, 3}, {1, 2, 3, 4, 5, 6})).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{3, 2, 1, 6, 5, 4}));
  EXPECT_EQ(longs({2}, {1, 2}).flip({0}).grad_fn(), nullptr);  // integer: never recorded
}

TEST(IndexingGrad, Repeat) {
  auto rep = [](const variable_list& in) { return in[0].repeat({2, 1, 2}); };
  auto rep_same = [](const variable_list& in) { return in[0].repeat({3, 2}); };
  EXPECT_GRADCHECK(rep, {random_leaf({2, 3})});
  EXPECT_GRADCHECK(rep, {transposed_leaf(2, 3)});
  EXPECT_GRADCHECK(rep_same, {random_leaf({2})});
  EXPECT_GRADCHECK(rep_same, {random_leaf({2, 2})});
  EXPECT_GRADGRADCHECK(rep, {random_leaf({2, 3})});
  Tensor x = random_leaf({2});
  Tensor y = x.repeat({2, 3});  // [[x0 x1 x0 x1 x0 x1] x 2]
  EXPECT_EQ(y.grad_fn()->name(), "RepeatBackward0");
  (y * make({2, 6}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1 + 3 + 5 + 7 + 9 + 11, 2 + 4 + 6 + 8 + 10 + 12}));
  Tensor z = random_leaf({2, 2});
  z.repeat({0, 2}).sum().backward();  // no copies at all
  EXPECT_EQ(values(z.grad()), std::vector<double>(4, 0.0));
}

TEST(IndexingGrad, Roll) {
  auto roll2 = [](const variable_list& in) { return in[0].roll({1, -2}, {0, 1}); };
  auto roll_flat = [](const variable_list& in) { return in[0].roll({2}); };
  auto roll_neg = [](const variable_list& in) { return in[0].roll({5}, {-1}); };
  EXPECT_GRADCHECK(roll2, {random_leaf({3, 4})});
  EXPECT_GRADCHECK(roll2, {transposed_leaf(3, 4)});
  EXPECT_GRADCHECK(roll_flat, {random_leaf({2, 3})});
  EXPECT_GRADCHECK(roll_neg, {random_leaf({2, 3})});
  EXPECT_GRADGRADCHECK(roll2, {random_leaf({3, 4})});
  Tensor x = random_leaf({4});
  Tensor y = x.roll({1});  // [x3, x0, x1, x2]
  EXPECT_EQ(y.grad_fn()->name(), "RollBackward0");
  (y * make({4}, {1, 2, 3, 4})).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 3, 4, 1}));
}

TEST(IndexingGrad, TrilTriu) {
  auto tril = [](const variable_list& in) { return in[0].tril(); };
  auto tril_neg = [](const variable_list& in) { return in[0].tril(-1); };
  auto triu_pos = [](const variable_list& in) { return in[0].triu(1); };
  auto triu = [](const variable_list& in) { return in[0].triu(); };
  EXPECT_GRADCHECK(tril, {random_leaf({3, 4})});
  EXPECT_GRADCHECK(tril_neg, {transposed_leaf(4, 3)});
  EXPECT_GRADCHECK(triu_pos, {random_leaf({2, 3, 3})});
  EXPECT_GRADCHECK(triu, {transposed_leaf(3, 2)});
  EXPECT_GRADGRADCHECK(triu_pos, {random_leaf({3, 3})});
  Tensor x = random_leaf({3, 3});
  Tensor y = x.tril();
  EXPECT_EQ(y.grad_fn()->name(), "TrilBackward0");
  y.sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1, 0, 0, 1, 1, 0, 1, 1, 1}));
  Tensor z = random_leaf({2, 3});
  Tensor w = z.triu(1);
  EXPECT_EQ(w.grad_fn()->name(), "TriuBackward0");
  w.sum().backward();
  EXPECT_EQ(values(z.grad()), (std::vector<double>{0, 1, 1, 0, 0, 1}));
}
