// torch's type promotion through the pointwise ops: the result dtypes torch
// gives for tensor/tensor, tensor/0-dim and tensor/number mixes, with values.
#include "kiln/core/native.h"
#include "test_util.h"

using namespace kiln;
using kiln::testing::make;
using kiln::testing::values;

namespace {
Tensor t(DType d) { return make({2}, {1, 2}, d); }
Tensor zero_dim(double v, DType d) { return native::scalar_tensor(v, dtype(d)); }
}  // namespace

TEST(TypePromotion, TensorTensorMatrix) {
  struct Case {
    DType a, b, expect;
  };
  const Case cases[] = {
      {kInt32, kFloat32, kFloat32},   {kInt64, kFloat16, kFloat16},  {kUInt8, kInt32, kInt32},
      {kUInt8, kBool, kUInt8},        {kBool, kBool, kBool},         {kInt32, kInt64, kInt64},
      {kFloat16, kBFloat16, kFloat32}, {kFloat16, kFloat32, kFloat32}, {kBFloat16, kFloat64, kFloat64},
      {kFloat32, kFloat64, kFloat64}, {kBool, kFloat16, kFloat16},   {kUInt8, kFloat64, kFloat64},
  };
  for (const auto& c : cases) {
    Tensor r = native::add(t(c.a), t(c.b));
    EXPECT_EQ(r.dtype(), c.expect) << dtype_name(c.a) << " + " << dtype_name(c.b);
    EXPECT_EQ(native::add(t(c.b), t(c.a)).dtype(), c.expect);
    if (c.a != kBool && c.b != kBool) {
      EXPECT_EQ(values(r), (std::vector<double>{2, 4}));
    }
  }
}

TEST(TypePromotion, NumbersOnlyChangeTheCategory) {
  // int64 tensor + 2.5 -> default float dtype; int32 tensor + 3 -> int32.
  Tensor a = native::add(t(kInt64), 2.5);
  EXPECT_EQ(a.dtype(), kFloat32);
  EXPECT_EQ(values(a), (std::vector<double>{3.5, 4.5}));
  EXPECT_EQ(native::add(t(kInt32), 3).dtype(), kInt32);
  EXPECT_EQ(native::add(t(kUInt8), 3).dtype(), kUInt8);
  EXPECT_EQ(native::mul(t(kFloat16), 2.5).dtype(), kFloat16);
  EXPECT_EQ(native::mul(t(kBFloat16), 1000000).dtype(), kBFloat16);
  EXPECT_EQ(native::add(t(kBool), 1).dtype(), kInt64);
  EXPECT_EQ(native::add(t(kBool), 1.5).dtype(), kFloat32);
  EXPECT_EQ(native::binary(BinaryOp::Add, t(kBool), true).dtype(), kBool);
  EXPECT_EQ(native::binary(BinaryOp::Sub, 1.0, t(kInt32)).dtype(), kFloat32);
}

TEST(TypePromotion, DefaultDtypeDecidesFloatNumbers) {
  set_default_dtype(kFloat64);
  EXPECT_EQ(native::add(t(kInt64), 2.5).dtype(), kFloat64);
  EXPECT_EQ(native::div(t(kInt32), t(kInt32)).dtype(), kFloat64);
  EXPECT_EQ(native::unary(UnaryOp::Exp, t(kInt32)).dtype(), kFloat64);
  EXPECT_EQ(native::add(t(kFloat32), 2.5).dtype(), kFloat32);  // a float tensor keeps its own
  set_default_dtype(kFloat32);
}

TEST(TypePromotion, ZeroDimTensorsRankBelowDimensionedOnes) {
  // 0-dim float64 + float32 tensor -> float32 (same category: the dimensioned tensor wins).
  EXPECT_EQ(native::add(zero_dim(1, kFloat64), t(kFloat32)).dtype(), kFloat32);
  EXPECT_EQ(native::add(t(kFloat16), zero_dim(1, kFloat64)).dtype(), kFloat16);
  EXPECT_EQ(native::add(t(kInt32), zero_dim(1, kInt64)).dtype(), kInt32);
  // A higher category wins with its own dtype.
  EXPECT_EQ(native::add(t(kInt32), zero_dim(1, kFloat64)).dtype(), kFloat64);
  EXPECT_EQ(native::add(t(kUInt8), zero_dim(1, kFloat16)).dtype(), kFloat16);
  // Two 0-dim tensors promote normally.
  EXPECT_EQ(native::add(zero_dim(1, kFloat64), zero_dim(1, kFloat32)).dtype(), kFloat64);
  EXPECT_EQ(native::add(zero_dim(1, kInt32), 2.5).dtype(), kFloat32);
}

TEST(TypePromotion, DivisionAndComparisons) {
  EXPECT_EQ(native::div(t(kInt64), t(kInt64)).dtype(), kFloat32);
  EXPECT_EQ(native::div(t(kBool), t(kBool)).dtype(), kFloat32);
  EXPECT_EQ(native::binary(BinaryOp::Div, t(kInt32), 2).dtype(), kFloat32);
  EXPECT_EQ(values(native::binary(BinaryOp::Div, t(kInt32), 2)), (std::vector<double>{0.5, 1}));
  EXPECT_EQ(native::binary(BinaryOp::Div, t(kFloat16), 2).dtype(), kFloat16);
  EXPECT_EQ(native::binary(BinaryOp::Lt, t(kInt32), 1.5).dtype(), kBool);
  // 1 < 1.5 compares as floats (promotion happens before the comparison).
  EXPECT_EQ(values(native::binary(BinaryOp::Lt, t(kInt32), 1.5)), (std::vector<double>{1, 0}));
  EXPECT_EQ(native::binary(BinaryOp::LogicalAnd, t(kInt32), t(kFloat32)).dtype(), kBool);
}

TEST(TypePromotion, InPlaceRules) {
  // The result dtype must cast to the output's dtype: float into int is refused.
  EXPECT_KILN_ERROR(native::binary_(BinaryOp::Add, t(kInt64), 2.5), "result type float32");
  EXPECT_KILN_ERROR(native::binary_(BinaryOp::Mul, t(kInt32), t(kFloat16)), "float16");
  EXPECT_KILN_ERROR(native::binary_(BinaryOp::Add, t(kBool), t(kUInt8)), "bool");
  // Float into a narrower float tensor is fine.
  Tensor h = t(kFloat16);
  native::binary_(BinaryOp::Add, h, t(kFloat64));
  EXPECT_EQ(h.dtype(), kFloat16);
  EXPECT_EQ(values(h), (std::vector<double>{2, 4}));
  // Ints into floats too.
  Tensor f = t(kFloat32);
  native::binary_(BinaryOp::Mul, f, t(kInt64));
  EXPECT_EQ(values(f), (std::vector<double>{1, 4}));
}

TEST(TypePromotion, WhereAndClamp) {
  Tensor c = make({2}, {1, 0}, kBool);
  EXPECT_EQ(native::where(c, t(kInt32), t(kFloat16)).dtype(), kFloat16);
  EXPECT_EQ(native::where(c, t(kInt32), t(kInt64)).dtype(), kInt64);
  EXPECT_EQ(native::where(c, t(kFloat16), 2.5).dtype(), kFloat16);
  EXPECT_EQ(native::where(c, t(kInt32), 2).dtype(), kInt32);
  EXPECT_EQ(native::clamp(t(kUInt8), 0, 1).dtype(), kUInt8);
  EXPECT_EQ(native::clamp(t(kInt32), 0.5, std::nullopt).dtype(), kFloat32);
  EXPECT_EQ(native::clamp(t(kFloat16), 0.5, 1e10).dtype(), kFloat16);
}
