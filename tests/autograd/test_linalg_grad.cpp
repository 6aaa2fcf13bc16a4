// Gradients of the matrix products: gradcheck over matmul's 1-D / 2-D /
// batched / broadcast cases, non-contiguous and expanded operands, double
// backward, and closed-form gradients computed with loops in the test.
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
// A [b, rows, cols] leaf whose last two dims are transposed in memory.
Tensor transposed_batch_leaf(int64_t b, int64_t rows, int64_t cols, unsigned seed = 5) {
  Tensor storage = make({b, cols, rows}, sample(b * rows * cols, -1, 1, seed));
  return native::transpose(storage, 1, 2).requires_grad_(true);
}
// Every other column of a [rows, 2 * cols] tensor.
Tensor sliced_leaf(int64_t rows, int64_t cols, unsigned seed = 6) {
  Tensor storage = make({rows, 2 * cols}, sample(rows * 2 * cols, -1, 1, seed));
  return native::slice(storage, 1, 0, std::nullopt, 2).requires_grad_(true);
}

// A [n] leaf reading every other element of its storage.
Tensor strided_vector_leaf(int64_t n, unsigned seed = 7) {
  Tensor storage = make({2 * n}, sample(2 * n, -1, 1, seed));
  return native::slice(storage, 0, 0, std::nullopt, 2).requires_grad_(true);
}

// Row-major [m, n] product of row-major [m, k] and [k, n] value arrays.
std::vector<double> matprod(const std::vector<double>& a, const std::vector<double>& b, int64_t m, int64_t k,
                            int64_t n) {
  std::vector<double> out(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p) out[i * n + j] += a[i * k + p] * b[p * n + j];
  return out;
}
std::vector<double> transposed(const std::vector<double>& a, int64_t m, int64_t n) {
  std::vector<double> out(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) out[j * m + i] = a[i * n + j];
  return out;
}
}  // namespace

TEST(LinalgGrad, Mm) {
  auto mm = [](const variable_list& in) { return in[0].mm(in[1]); };
  EXPECT_GRADCHECK(mm, {random_leaf({2, 3}), random_leaf({3, 4}, -1, 1, 2)});
  EXPECT_GRADCHECK(mm, {transposed_leaf(2, 3), sliced_leaf(3, 4)});
  EXPECT_GRADCHECK(mm, {random_leaf({2, 3}), make({3, 4}, sample(12))});  // b a constant
  EXPECT_GRADGRADCHECK(mm, {random_leaf({2, 3}), random_leaf({3, 4}, -1, 1, 2)});
  EXPECT_GRADGRADCHECK(mm, {transposed_leaf(3, 2), random_leaf({2, 2}, -1, 1, 2)});
  EXPECT_EQ(kiln::mm(random_leaf({2, 3}), random_leaf({3, 1})).grad_fn()->name(), "MmBackward0");
}

TEST(LinalgGrad, MmClosedForm) {
  // d/dA sum(A @ B) = ones @ B^T; d/dB sum(A @ B) = A^T @ ones.
  const auto av = sample(6, -1, 1, 11), bv = sample(12, -1, 1, 12);
  Tensor a = leaf({2, 3}, av), b = leaf({3, 4}, bv);
  a.mm(b).sum().backward();
  const std::vector<double> ones_24(8, 1.0), ones_24t(8, 1.0);
  EXPECT_TRUE(all_close(a.grad(), make({2, 3}, matprod(ones_24, transposed(bv, 3, 4), 2, 4, 3))));
  EXPECT_TRUE(all_close(b.grad(), make({3, 4}, matprod(transposed(av, 2, 3), ones_24t, 3, 2, 4))));
  // A weighted sum: d/dA sum(W * (A @ B)) = W @ B^T.
  const auto wv = sample(8, -1, 1, 13);
  Tensor a2 = leaf({2, 3}, av);
  (a2.mm(make({3, 4}, bv)) * make({2, 4}, wv)).sum().backward();
  EXPECT_TRUE(all_close(a2.grad(), make({2, 3}, matprod(wv, transposed(bv, 3, 4), 2, 4, 3))));
}

TEST(LinalgGrad, MmFloat32) {
  const auto av = sample(6, -1, 1, 21), bv = sample(12, -1, 1, 22);
  Tensor a = make({2, 3}, av, kFloat32).requires_grad_(true);
  Tensor b = make({3, 4}, bv, kFloat32).requires_grad_(true);
  a.mm(b).sum().backward();
  EXPECT_EQ(a.grad().dtype(), kFloat32);
  EXPECT_EQ(b.grad().dtype(), kFloat32);
  EXPECT_TRUE(all_close(a.grad(), make({2, 3}, matprod(std::vector<double>(8, 1.0), transposed(bv, 3, 4), 2, 4, 3)),
                        1e-5, 1e-6));
}

TEST(LinalgGrad, Bmm) {
  auto bmm = [](const variable_list& in) { return in[0].bmm(in[1]); };
  EXPECT_GRADCHECK(bmm, {random_leaf({2, 2, 3}), random_leaf({2, 3, 4}, -1, 1, 2)});
  EXPECT_GRADCHECK(bmm, {transposed_batch_leaf(2, 2, 3), transposed_batch_leaf(2, 3, 2, 8)});
  // Expanded inside fn: one matrix shared across the batch.
  auto shared = [](const variable_list& in) { return in[0].bmm(in[1].unsqueeze(0).expand({3, 3, 2})); };
  EXPECT_GRADCHECK(shared, {random_leaf({3, 2, 3}), random_leaf({3, 2}, -1, 1, 2)});
  EXPECT_GRADGRADCHECK(bmm, {random_leaf({2, 2, 3}), random_leaf({2, 3, 2}, -1, 1, 2)});
  EXPECT_EQ(kiln::bmm(random_leaf({1, 2, 3}), random_leaf({1, 3, 1})).grad_fn()->name(), "BmmBackward0");
}

TEST(LinalgGrad, MatmulVectorCases) {
  auto mat = [](const variable_list& in) { return in[0].matmul(in[1]); };
  EXPECT_GRADCHECK(mat, {random_leaf({4}), random_leaf({4}, -1, 1, 2)});          // dot
  EXPECT_GRADCHECK(mat, {random_leaf({3, 4}), random_leaf({4}, -1, 1, 2)});       // mv
  EXPECT_GRADCHECK(mat, {random_leaf({4}), random_leaf({4, 3}, -1, 1, 2)});       // vector @ matrix
  EXPECT_GRADCHECK(mat, {random_leaf({2, 3}), random_leaf({3, 4}, -1, 1, 2)});    // mm
  EXPECT_GRADCHECK(mat, {transposed_leaf(3, 4), strided_vector_leaf(4)});  // non-contiguous operands
  EXPECT_GRADCHECK(mat, {strided_vector_leaf(3), transposed_leaf(3, 4)});
  EXPECT_GRADGRADCHECK(mat, {random_leaf({4}), random_leaf({4}, -1, 1, 2)});
  EXPECT_GRADGRADCHECK(mat, {random_leaf({3, 4}), random_leaf({4}, -1, 1, 2)});
  EXPECT_GRADGRADCHECK(mat, {random_leaf({4}), random_leaf({4, 3}, -1, 1, 2)});
  EXPECT_EQ(kiln::matmul(random_leaf({4}), random_leaf({4})).grad_fn()->name(), "DotBackward0");
  EXPECT_EQ(kiln::matmul(random_leaf({3, 4}), random_leaf({4})).grad_fn()->name(), "MvBackward0");
  EXPECT_EQ(kiln::matmul(random_leaf({3, 4}), random_leaf({4, 2})).grad_fn()->name(), "MmBackward0");
  // Closed form: d/da (a . b) = b.
  const auto bv = sample(4, -1, 1, 9);
  Tensor a = random_leaf({4});
  a.matmul(make({4}, bv)).backward();
  EXPECT_TRUE(all_close(a.grad(), make({4}, bv)));
}

TEST(LinalgGrad, MatmulBatched) {
  auto mat = [](const variable_list& in) { return in[0].matmul(in[1]); };
  EXPECT_GRADCHECK(mat, {random_leaf({2, 2, 3}), random_leaf({2, 3, 4}, -1, 1, 2)});  // bmm
  EXPECT_GRADCHECK(mat, {random_leaf({2, 2, 3}), random_leaf({3, 4}, -1, 1, 2)});     // folded into one mm
  EXPECT_GRADCHECK(mat, {random_leaf({2, 3}), random_leaf({2, 3, 4}, -1, 1, 2)});     // matrix @ batch
  EXPECT_GRADCHECK(mat, {random_leaf({3}), random_leaf({2, 3, 4}, -1, 1, 2)});        // vector @ batch
  EXPECT_GRADCHECK(mat, {random_leaf({2, 4, 3}), random_leaf({3}, -1, 1, 2)});        // batch @ vector
  EXPECT_GRADCHECK(mat, {random_leaf({2, 1, 4, 3}), random_leaf({3}, -1, 1, 2)});     // 4-D @ vector
  EXPECT_GRADCHECK(mat, {random_leaf({2, 1, 2, 3}), random_leaf({3, 3, 2}, -1, 1, 2)});  // broadcast batch dims
  EXPECT_GRADCHECK(mat, {random_leaf({1, 2, 3}), random_leaf({2, 1, 3, 2}, -1, 1, 2)});  // broadcast both ways
  EXPECT_GRADCHECK(mat, {transposed_batch_leaf(2, 2, 3), random_leaf({3, 2}, -1, 1, 2)});  // not foldable
  EXPECT_GRADCHECK(mat, {transposed_batch_leaf(2, 2, 3), transposed_batch_leaf(2, 3, 2, 8)});
  // Expanded inside fn: batch dims that are stride-0 copies of one matrix.
  auto expanded = [](const variable_list& in) { return in[0].expand({3, 2, 3}).matmul(in[1]); };
  EXPECT_GRADCHECK(expanded, {random_leaf({2, 3}), random_leaf({3, 3, 2}, -1, 1, 2)});
  EXPECT_GRADGRADCHECK(mat, {random_leaf({2, 1, 2, 3}), random_leaf({3, 3, 2}, -1, 1, 2)});
  EXPECT_GRADGRADCHECK(mat, {random_leaf({2, 2, 3}), random_leaf({3, 2}, -1, 1, 2)});
  EXPECT_GRADGRADCHECK(mat, {random_leaf({3}), random_leaf({2, 3, 2}, -1, 1, 2)});
  EXPECT_EQ(kiln::matmul(random_leaf({2, 2, 3}), random_leaf({3, 2})).grad_fn()->name(), "UnsafeViewBackward0");
}

TEST(LinalgGrad, MatmulBroadcastClosedForm) {
  // a [2, 1, 2, 3] @ b [3, 3, 2] -> [2, 3, 2, 2]: b's gradient is summed over
  // the leading dim of 2, a's over the broadcast dim of 3.
  const auto av = sample(12, -1, 1, 31), bv = sample(18, -1, 1, 32);
  Tensor a = leaf({2, 1, 2, 3}, av), b = leaf({3, 3, 2}, bv);
  a.matmul(b).sum().backward();
  std::vector<double> ga(12, 0.0), gb(18, 0.0);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int m = 0; m < 2; ++m)
        for (int k = 0; k < 3; ++k)
          for (int n = 0; n < 2; ++n) {
            ga[(i * 2 + m) * 3 + k] += bv[(j * 3 + k) * 2 + n];
            gb[(j * 3 + k) * 2 + n] += av[(i * 2 + m) * 3 + k];
          }
  EXPECT_TRUE(all_close(a.grad(), make({2, 1, 2, 3}, ga)));
  EXPECT_TRUE(all_close(b.grad(), make({3, 3, 2}, gb)));
}

TEST(LinalgGrad, MatmulEmpty) {
  // K == 0: the product is zeros and the gradients are empty.
  Tensor a = leaf({2, 0}, {}), b = leaf({0, 3}, {});
  Tensor y = a.matmul(b);
  EXPECT_EQ(values(y), std::vector<double>(6, 0.0));
  y.sum().backward();
  EXPECT_EQ(a.grad().sizes(), IntArrayRef({2, 0}));
  EXPECT_EQ(b.grad().sizes(), IntArrayRef({0, 3}));
  // An empty batch.
  Tensor c = leaf({0, 2, 3}, {}), d = random_leaf({3, 2});
  c.matmul(d).sum().backward();
  EXPECT_EQ(c.grad().sizes(), IntArrayRef({0, 2, 3}));
  EXPECT_EQ(values(d.grad()), std::vector<double>(6, 0.0));
}

TEST(LinalgGrad, MatmulErrors) {
  EXPECT_KILN_ERROR(kiln::matmul(random_leaf({2, 3}), random_leaf({2, 3})), "cannot be multiplied (2x3 and 2x3)");
  EXPECT_KILN_ERROR(kiln::matmul(random_leaf({2, 2, 3}), random_leaf({3, 3, 2})), "matmul");
  EXPECT_KILN_ERROR(kiln::mm(random_leaf({2, 3}), random_leaf({2, 3})), "mm");
}

TEST(LinalgGrad, Addmm) {
  auto addmm = [](const variable_list& in) { return kiln::addmm(in[0], in[1], in[2], 0.5, 2.0); };
  auto plain = [](const variable_list& in) { return kiln::addmm(in[0], in[1], in[2]); };
  EXPECT_GRADCHECK(addmm, {random_leaf({2, 4}), random_leaf({2, 3}, -1, 1, 2), random_leaf({3, 4}, -1, 1, 3)});
  EXPECT_GRADCHECK(plain, {random_leaf({4}), random_leaf({2, 3}, -1, 1, 2), random_leaf({3, 4}, -1, 1, 3)});
  EXPECT_GRADCHECK(addmm, {random_leaf({2, 1}), transposed_leaf(2, 3), sliced_leaf(3, 4)});  // broadcast input
  EXPECT_GRADGRADCHECK(addmm, {random_leaf({4}), random_leaf({2, 3}, -1, 1, 2), random_leaf({3, 4}, -1, 1, 3)});
  Tensor input = random_leaf({4});
  Tensor y = kiln::addmm(input, random_leaf({2, 3}), random_leaf({3, 4}), 0.5, 2.0);
  EXPECT_EQ(y.grad_fn()->name(), "AddmmBackward0");
  y.sum().backward();
  EXPECT_EQ(values(input.grad()), std::vector<double>(4, 1.0));  // beta * (2 rows)
  // beta == 0: the input gets a zero gradient.
  Tensor input0 = random_leaf({2, 4});
  kiln::addmm(input0, random_leaf({2, 3}), random_leaf({3, 4}), 0, 1).sum().backward();
  EXPECT_EQ(values(input0.grad()), std::vector<double>(8, 0.0));
}

TEST(LinalgGrad, Baddbmm) {
  auto baddbmm = [](const variable_list& in) { return kiln::baddbmm(in[0], in[1], in[2], -1.5, 0.5); };
  EXPECT_GRADCHECK(baddbmm,
                   {random_leaf({2, 2, 4}), random_leaf({2, 2, 3}, -1, 1, 2), random_leaf({2, 3, 4}, -1, 1, 3)});
  EXPECT_GRADCHECK(baddbmm, {random_leaf({2, 4}), transposed_batch_leaf(2, 2, 3), random_leaf({2, 3, 4}, -1, 1, 3)});
  EXPECT_GRADCHECK(baddbmm, {random_leaf({1}), random_leaf({2, 2, 3}, -1, 1, 2), random_leaf({2, 3, 4}, -1, 1, 3)});
  EXPECT_GRADGRADCHECK(baddbmm,
                       {random_leaf({2, 4}), random_leaf({2, 2, 3}, -1, 1, 2), random_leaf({2, 3, 4}, -1, 1, 3)});
  Tensor input = random_leaf({1});
  Tensor y = kiln::baddbmm(input, random_leaf({2, 2, 3}), random_leaf({2, 3, 4}), -1.5, 0.5);
  EXPECT_EQ(y.grad_fn()->name(), "BaddbmmBackward0");
  y.sum().backward();
  EXPECT_EQ(values(input.grad()), std::vector<double>{-1.5 * 16});
}

TEST(LinalgGrad, Linear) {
  auto lin = [](const variable_list& in) { return kiln::linear(in[0], in[1], in[2]); };
  auto nobias = [](const variable_list& in) { return kiln::linear(in[0], in[1]); };
  EXPECT_GRADCHECK(lin, {random_leaf({2, 3}), random_leaf({4, 3}, -1, 1, 2), random_leaf({4}, -1, 1, 3)});
  EXPECT_GRADCHECK(lin, {random_leaf({2, 2, 3}), random_leaf({4, 3}, -1, 1, 2), random_leaf({4}, -1, 1, 3)});
  EXPECT_GRADCHECK(lin, {random_leaf({3}), random_leaf({4, 3}, -1, 1, 2), random_leaf({4}, -1, 1, 3)});  // 1-D x
  EXPECT_GRADCHECK(nobias, {random_leaf({2, 2, 3}), transposed_leaf(4, 3)});
  EXPECT_GRADCHECK(nobias, {transposed_batch_leaf(2, 2, 3), random_leaf({4, 3}, -1, 1, 2)});  // not foldable
  EXPECT_GRADCHECK(lin, {transposed_leaf(2, 3), random_leaf({4, 3}, -1, 1, 2), random_leaf({1}, -1, 1, 3)});
  EXPECT_GRADGRADCHECK(lin, {random_leaf({2, 2, 3}), random_leaf({4, 3}, -1, 1, 2), random_leaf({4}, -1, 1, 3)});
  EXPECT_GRADGRADCHECK(nobias, {random_leaf({2, 3}), random_leaf({4, 3}, -1, 1, 2)});
}

TEST(LinalgGrad, LinearClosedForm) {
  // y = x W^T + b with x [2, 2, 3]: gx = g W, gW = g^T x over the 4 rows,
  // gb = g summed over rows. g = ones except a weight per row.
  const auto xv = sample(12, -1, 1, 41), wv = sample(6, -1, 1, 42);
  Tensor x = leaf({2, 2, 3}, xv), w = leaf({2, 3}, wv), b = leaf({2}, {0.5, -0.5});
  const std::vector<double> gv = {1, 2, 3, 4, 5, 6, 7, 8};  // [4 rows, 2 out]
  (kiln::linear(x, w, b) * make({2, 2, 2}, gv)).sum().backward();
  EXPECT_TRUE(all_close(x.grad(), make({2, 2, 3}, matprod(gv, wv, 4, 2, 3))));
  EXPECT_TRUE(all_close(w.grad(), make({2, 3}, matprod(transposed(gv, 4, 2), xv, 2, 4, 3))));
  EXPECT_TRUE(all_close(b.grad(), make({2}, {1 + 3 + 5 + 7, 2 + 4 + 6 + 8})));
  // Only the bias requires grad: x and W are not saved, still correct.
  Tensor b2 = leaf({2}, {0, 0});
  kiln::linear(make({2, 3}, sample(6)), make({2, 3}, wv), b2).sum().backward();
  EXPECT_EQ(values(b2.grad()), (std::vector<double>{2, 2}));
}
