// embedding: rows looked up for indices of any shape (int64 and int32), the
// gradient accumulated per row with repeats, padding_idx rows getting none
// (negative padding_idx counted from the end), double backward, and errors
// naming the bad index.
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

Tensor idx(IntArrayRef shape, const std::vector<int64_t>& v, DType d = kInt64) {
  return native::to(native::reshape(native::tensor(v), shape), d);
}

}  // namespace

TEST(Embedding, LooksUpRowsForAnyIndexShape) {
  const std::vector<double> wv = sample(5 * 3, -1, 1, 1);
  const Tensor w = make({5, 3}, wv);
  for (DType d : {kInt64, kInt32}) {
    const Tensor out = F::embedding(idx({2, 3}, {4, 0, 2, 2, 1, 4}, d), w);
    EXPECT_EQ(out.sizes(), IntArrayRef({2, 3, 3}));
    const std::vector<int64_t> rows = {4, 0, 2, 2, 1, 4};
    std::vector<double> expect;
    for (int64_t r : rows)
      for (int64_t k = 0; k < 3; ++k) expect.push_back(wv[r * 3 + k]);
    EXPECT_EQ(values(out), expect);
  }
  // 0-dim index: one row; empty indices: an empty result.
  EXPECT_EQ(F::embedding(native::scalar_tensor(Scalar(int64_t{3}), kInt64), w).sizes(), IntArrayRef({3}));
  EXPECT_EQ(F::embedding(native::empty({0}, kInt64), w).sizes(), IntArrayRef({0, 3}));
  // Strided indices and f32 weights.
  const Tensor strided = native::slice(idx({6}, {1, 9, 3, 9, 0, 9}), 0, 0, 6, 2);
  EXPECT_EQ(values(F::embedding(strided, native::to(w, kFloat32))),
            values(native::to(make({3, 3}, {wv[3], wv[4], wv[5], wv[9], wv[10], wv[11], wv[0], wv[1], wv[2]}),
                              kFloat32)));
}

TEST(Embedding, GradientAccumulatesRowsAndSkipsPadding) {
  Tensor w = random_leaf({4, 2});
  const Tensor ix = idx({5}, {1, 3, 1, 0, 3});
  Tensor y = F::embedding(ix, w, 3);
  EXPECT_EQ(y.grad_fn()->name(), "EmbeddingBackward0");
  // The padding row is still looked up in the forward, as torch.
  EXPECT_EQ(values(native::select(y, 0, 1)), values(native::select(w, 0, 3)));
  const std::vector<double> gv = sample(10, -1, 1, 7);
  y.backward(make({5, 2}, gv));
  const std::vector<double> expect = {gv[6], gv[7], gv[0] + gv[4], gv[1] + gv[5], 0, 0, 0, 0};
  EXPECT_TRUE(all_close(w.grad(), make({4, 2}, expect), 1e-15, 0));
  // A negative padding_idx counts from the end: -1 is row 3 here.
  Tensor w2 = random_leaf({4, 2});
  F::embedding(ix, w2, -1).backward(make({5, 2}, gv));
  EXPECT_TRUE(all_close(w2.grad(), make({4, 2}, expect), 1e-15, 0));
}

TEST(Embedding, Gradcheck) {
  const Tensor ix = idx({2, 3}, {0, 2, 2, 1, 0, 2});
  auto fn = [&](const variable_list& in) { return F::embedding(ix, in[0]); };
  EXPECT_GRADCHECK(fn, {random_leaf({3, 2})});
  // padding_idx's zero gradient is a rule, not the derivative: the checked lookups avoid row 1.
  const Tensor ix2 = idx({4}, {0, 2, 2, 0});
  auto padded = [&](const variable_list& in) { return F::embedding(ix2, in[0], 1) * in[0].sum(); };
  EXPECT_GRADCHECK(padded, {random_leaf({3, 2})});
  EXPECT_GRADGRADCHECK(padded, {random_leaf({3, 2})});
}

TEST(Embedding, Errors) {
  const Tensor w = native::zeros({3, 2});
  EXPECT_KILN_ERROR(F::embedding(idx({2}, {1, 5}), w), "index 5 is out of range for num_embeddings 3");
  EXPECT_KILN_ERROR(F::embedding(idx({1}, {-1}), w), "index -1 is out of range for num_embeddings 3");
  EXPECT_KILN_ERROR(F::embedding(idx({1}, {1}), w, 3), "padding_idx 3 must be within num_embeddings");
  EXPECT_KILN_ERROR(F::embedding(idx({1}, {1}), w, -4), "padding_idx -4 must be within num_embeddings");
  EXPECT_KILN_ERROR(F::embedding(native::ones({1}), w), "expected int64 or int32 indices, got float32");
  EXPECT_KILN_ERROR(F::embedding(idx({1}, {1}), native::zeros({3})), "'weight' must be 2-D");
}
