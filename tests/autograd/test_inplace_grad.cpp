// In-place ops under autograd: each differentiable in-place op is
// gradchecked on a non-leaf (where it rebases history), plus the fills that
// cut the history and the operators +=, -=, *=, /=.
#include <kiln/kiln.h>

#include "autograd/gradcheck_util.h"

using namespace kiln;
using autograd::variable_list;
using kiln::testing::leaf;
using kiln::testing::make;
using kiln::testing::random_leaf;
using kiln::testing::values;

TEST(InplaceGrad, ArithmeticOnNonLeaves) {
  Tensor x = random_leaf({2, 3}, 0.5, 2, 1);
  Tensor w = random_leaf({3}, 0.5, 2, 2);
  std::vector<std::function<Tensor(const variable_list&)>> ops = {
      [](const variable_list& in) { Tensor y = in[0] * 1.0; y.add_(in[1], 2.0); return y; },
      [](const variable_list& in) { Tensor y = in[0] * 1.0; y.add_(3.0, 2); return y; },
      [](const variable_list& in) { Tensor y = in[0] * 1.0; y.sub_(in[1], 0.5); return y; },
      [](const variable_list& in) { Tensor y = in[0] * 1.0; y.sub_(1.0); return y; },
      [](const variable_list& in) { Tensor y = in[0] * 1.0; y.mul_(in[1]); return y; },
      [](const variable_list& in) { Tensor y = in[0] * 1.0; y.mul_(-2.0); return y; },
      [](const variable_list& in) { Tensor y = in[0] * 1.0; y.div_(in[1]); return y; },
      [](const variable_list& in) { Tensor y = in[0] * 1.0; y.div_(4.0); return y; },
      [](const variable_list& in) { Tensor y = in[0] * in[1]; y.pow_(1.5); return y; },
      [](const variable_list& in) { Tensor y = in[0] * 1.0; y += in[1]; y -= 1.0; y *= in[1]; y /= 2.0; return y; },
      [](const variable_list& in) { Tensor y = in[0] * 1.0; y *= 3.0; y /= in[1]; y += 1.0; y -= in[1]; return y; },
  };
  for (size_t i = 0; i < ops.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_GRADCHECK(ops[i], {x, w});
  }
}

TEST(InplaceGrad, UnaryOnNonLeaves) {
  Tensor x = random_leaf({2, 3}, 0.2, 2);
  Tensor s = random_leaf({2, 3}, -2, 2, 5);
  auto exp_ = [](const variable_list& in) { Tensor y = in[0] * 1.0; y.exp_(); return y; };
  auto sqrt_ = [](const variable_list& in) { Tensor y = in[0] * 2.0; y.sqrt_(); return y; };
  auto neg_ = [](const variable_list& in) { Tensor y = in[0] * 2.0; y.neg_(); return y; };
  auto sigmoid_ = [](const variable_list& in) { Tensor y = in[0] * 1.0; y.sigmoid_(); return y; };
  auto tanh_ = [](const variable_list& in) { Tensor y = in[0] * 1.0; y.tanh_(); return y; };
  auto relu_ = [](const variable_list& in) { Tensor y = in[0] * 1.0; y.relu_(); return y; };
  auto clamp_ = [](const variable_list& in) { Tensor y = in[0] * 1.0; y.clamp_(-1.0, 1.0); return y; };
  auto clamp_min_ = [](const variable_list& in) { Tensor y = in[0] * 1.0; y.clamp_min_(0.3); return y; };
  auto clamp_max_ = [](const variable_list& in) { Tensor y = in[0] * 1.0; y.clamp_max_(-0.3); return y; };
  for (auto f : {+exp_, +sqrt_}) EXPECT_GRADCHECK(f, {x});
  for (auto f : {+neg_, +sigmoid_, +tanh_, +relu_, +clamp_, +clamp_min_, +clamp_max_}) EXPECT_GRADCHECK(f, {s});
}

TEST(InplaceGrad, MaskedFillAndCopy) {
  Tensor x = random_leaf({2, 3});
  Tensor src = random_leaf({3}, -1, 1, 8);
  Tensor mask = native::to(make({3}, {1, 0, 1}), kBool);
  auto masked_fill_ = [&](const variable_list& in) { Tensor y = in[0] * 1.0; y.masked_fill_(mask, 2.0); return y; };
  auto copy_ = [](const variable_list& in) { Tensor y = in[0] * 1.0; y.copy_(in[1]); return y * in[0]; };
  EXPECT_GRADCHECK(masked_fill_, {x});
  EXPECT_GRADCHECK(copy_, {x, src});
  // copy_ into a plain buffer makes it a non-leaf that carries src's gradient.
  Tensor buf = native::zeros({2, 3}, kFloat64);
  buf.copy_(src);
  EXPECT_EQ(buf.grad_fn()->name(), "CopyBackwards");
  (buf * 2.0).sum().backward();
  EXPECT_EQ(values(src.grad()), (std::vector<double>{4, 4, 4}));
  // Converting copies carry the gradient back in the source's dtype.
  Tensor f32 = native::zeros({3}, kFloat32);
  Tensor s = random_leaf({3});
  f32.copy_(s);
  f32.sum().backward();
  EXPECT_EQ(s.grad().dtype(), kFloat64);
  EXPECT_EQ(values(s.grad()), (std::vector<double>{1, 1, 1}));
}

TEST(InplaceGrad, FillsCutTheHistory) {
  Tensor x = random_leaf({3});
  Tensor a = x * 2.0;
  a.zero_();
  EXPECT_EQ(a.grad_fn()->name(), "ZeroBackward0");
  Tensor b = x * 2.0;
  b.fill_(1.5);
  Tensor c = x * 2.0;
  c.uniform_(0, 1);
  Tensor d = x * 2.0;
  d.normal_();
  Tensor e = x * 2.0;
  e.bernoulli_(0.5);
  (a + b + c + d + e + x).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1, 1, 1}));  // only the direct x term
  EXPECT_EQ(values(b), (std::vector<double>{1.5, 1.5, 1.5}));
}

TEST(InplaceGrad, IndexAddAndScatterAdd) {
  Tensor x = random_leaf({4, 2});
  Tensor src = random_leaf({3, 2}, -1, 1, 7);
  Tensor index = native::tensor(std::vector<int64_t>{0, 2, 0});
  auto index_add_ = [&](const variable_list& in) {
    Tensor y = in[0] * 1.0;
    y.index_add_(0, index, in[1], 1.5);
    return y;
  };
  EXPECT_GRADCHECK(index_add_, {x, src});
  Tensor gidx = native::reshape(native::tensor(std::vector<int64_t>{3, 1, 0, 0, 2, 3}), {3, 2});
  auto scatter_add_ = [&](const variable_list& in) {
    Tensor y = in[0] * 1.0;
    y.scatter_add_(0, gidx, in[1]);
    return y;
  };
  EXPECT_GRADCHECK(scatter_add_, {x, src});
}

TEST(InplaceGrad, SavedInputOverwrittenInPlaceIsAnError) {
  Tensor x = random_leaf({3}, 0.5, 1);
  Tensor y = x * 1.0;
  Tensor z = y.log();  // saves y
  y.mul_(2.0);
  EXPECT_KILN_ERROR(z.sum().backward(), "modified by an inplace operation");
}

TEST(InplaceGrad, InPlaceWithoutGradIsPlainWrite) {
  Tensor x = make({3}, {1, 2, 3});
  Tensor& r = x.add_(1.0);
  EXPECT_TRUE(r.is_same(x));
  EXPECT_FALSE(x.requires_grad());
  EXPECT_EQ(x.grad_fn(), nullptr);
  EXPECT_EQ(values(x), (std::vector<double>{2, 3, 4}));
}
