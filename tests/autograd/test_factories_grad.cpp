// kiln:: factories honour TensorOptions::requires_grad and otherwise match kiln::native.
#include <kiln/kiln.h>

#include "autograd/gradcheck_util.h"

using namespace kiln;
using kiln::testing::values;

TEST(FactoriesGrad, RequiresGradFromOptions) {
  const TensorOptions opts = dtype(kFloat64).requires_grad(true);
  for (const Tensor& t : {kiln::empty({2}, opts), kiln::zeros({2}, opts), kiln::ones({2}, opts),
                          kiln::full({2}, 3.0, opts), kiln::rand({2}, opts), kiln::randn({2}, opts),
                          kiln::arange(0.0, 2.0, 1.0, opts), kiln::linspace(0, 1, 2, opts),
                          kiln::tensor(std::vector<double>{1, 2}, opts), kiln::scalar_tensor(1.5, opts),
                          kiln::empty_strided({2}, {1}, opts)}) {
    EXPECT_TRUE(t.requires_grad());
    EXPECT_TRUE(t.is_leaf());
    EXPECT_EQ(t.dtype(), kFloat64);
  }
  EXPECT_FALSE(kiln::zeros({2}).requires_grad());
  EXPECT_EQ(kiln::zeros({2}).dtype(), default_dtype());
  Tensor x = kiln::ones({3}, opts);
  (x * 2.0).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 2, 2}));
}

TEST(FactoriesGrad, ValuesMatchNative) {
  EXPECT_EQ(values(kiln::full({2, 2}, 7)), values(native::full({2, 2}, 7)));
  EXPECT_EQ(kiln::full({2}, 7).dtype(), kInt64);  // an integer fill value gives int64, as torch.full
  EXPECT_EQ(values(kiln::arange(5)), (std::vector<double>{0, 1, 2, 3, 4}));
  EXPECT_EQ(kiln::arange(5).dtype(), kInt64);
  EXPECT_EQ(values(kiln::linspace(0, 1, 5)), (std::vector<double>{0, 0.25, 0.5, 0.75, 1}));
  Generator g1(7), g2(7);
  EXPECT_EQ(values(kiln::randn({4}, {}, &g1)), values(native::randn({4}, {}, &g2)));
  Tensor i = kiln::randint(0, 10, {100});
  EXPECT_EQ(i.dtype(), kInt64);
  for (double v : values(i)) EXPECT_TRUE(v >= 0 && v < 10);
  Tensor b = kiln::bernoulli({50}, 1.0);
  for (double v : values(b)) EXPECT_EQ(v, 1.0);
}

TEST(FactoriesGrad, LikeFactories) {
  Tensor t = native::ones({2, 3}, kFloat32);
  EXPECT_EQ(kiln::zeros_like(t).sizes(), IntArrayRef({2, 3}));
  EXPECT_EQ(kiln::zeros_like(t).dtype(), kFloat32);
  EXPECT_EQ(values(kiln::ones_like(t)), std::vector<double>(6, 1.0));
  EXPECT_EQ(values(kiln::full_like(t, 2.5)), std::vector<double>(6, 2.5));
  EXPECT_EQ(kiln::empty_like(t).dtype(), kFloat32);
  Tensor d = kiln::zeros_like(t, dtype(kFloat64).requires_grad(true));
  EXPECT_EQ(d.dtype(), kFloat64);
  EXPECT_TRUE(d.requires_grad());
  EXPECT_TRUE(kiln::ones_like(t, requires_grad()).requires_grad());
  EXPECT_EQ(kiln::full_like(t, 1, dtype(kInt32)).dtype(), kInt32);
  EXPECT_EQ(kiln::empty_like(t, dtype(kFloat16)).dtype(), kFloat16);
  EXPECT_EQ(kiln::rand_like(t).dtype(), kFloat32);
  EXPECT_EQ(kiln::randn_like(t).sizes(), IntArrayRef({2, 3}));
  // A like-factory does not copy requires_grad from its argument.
  Tensor r = native::ones({2}, kFloat64).requires_grad_();
  EXPECT_FALSE(kiln::zeros_like(r).requires_grad());
}

TEST(FactoriesGrad, IntegerTensorsCannotRequireGrad) {
  EXPECT_KILN_ERROR(kiln::zeros({2}, dtype(kInt64).requires_grad(true)), "only Tensors of floating point dtype");
  EXPECT_KILN_ERROR(kiln::arange(3, requires_grad()), "only Tensors of floating point dtype");
  EXPECT_KILN_ERROR(kiln::randint(0, 3, {2}, requires_grad()), "only Tensors of floating point dtype");
}

TEST(FactoriesGrad, FromBlobAndTensor) {
  std::vector<float> data = {1, 2, 3, 4, 5, 6};
  Tensor t = kiln::from_blob(data.data(), {2, 3}, dtype(kFloat32).requires_grad(true));
  EXPECT_TRUE(t.requires_grad());
  EXPECT_EQ(t.data_ptr(), data.data());
  Tensor s = kiln::from_blob(data.data(), {3}, {2}, dtype(kFloat32));
  EXPECT_EQ(values(s), (std::vector<double>{1, 3, 5}));
  bool freed = false;
  {
    Tensor owned = kiln::from_blob(data.data(), {6}, [&](void*) { freed = true; }, dtype(kFloat32));
  }
  EXPECT_TRUE(freed);
  Tensor v = kiln::tensor(std::vector<int64_t>{1, 2, 3});
  EXPECT_EQ(v.dtype(), kInt64);
  Tensor f = kiln::tensor(std::vector<float>{1, 2}, dtype(kFloat64));
  EXPECT_EQ(f.dtype(), kFloat64);
  Tensor bools = kiln::tensor(std::vector<bool>{true, false});
  EXPECT_EQ(bools.dtype(), kBool);
}
