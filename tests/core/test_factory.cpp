// Factories: zeros/ones/full/arange/linspace/empty_strided/from_blob/tensor/
// scalar_tensor and the *_like forms, against closed-form values.
#include <cmath>

#include "kiln/core/native.h"
#include "test_util.h"

using namespace kiln;
using kiln::testing::values;

namespace {
// Restores the default dtype when a test changes it.
struct DefaultDtypeGuard {
  DType saved = default_dtype();
  ~DefaultDtypeGuard() { set_default_dtype(saved); }
};
}  // namespace

TEST(Factory, ZerosOnesFull) {
  Tensor z = native::zeros({2, 3});
  EXPECT_EQ(z.dtype(), kFloat32);
  EXPECT_EQ(z.sizes(), IntArrayRef({2, 3}));
  EXPECT_TRUE(z.is_contiguous());
  EXPECT_EQ(values(z), std::vector<double>(6, 0.0));
  EXPECT_EQ(values(native::ones({4}, dtype(kInt32))), std::vector<double>(4, 1.0));
  EXPECT_EQ(native::ones({4}, dtype(kInt32)).dtype(), kInt32);
  // full infers the dtype from the value as torch.full does.
  EXPECT_EQ(native::full({2}, 3).dtype(), kInt64);
  EXPECT_EQ(native::full({2}, 2.5).dtype(), kFloat32);
  EXPECT_EQ(native::full({2}, true).dtype(), kBool);
  EXPECT_EQ(values(native::full({2, 2}, -1.25, dtype(kFloat64))), std::vector<double>(4, -1.25));
  EXPECT_EQ(values(native::full({3}, 7, dtype(kFloat16))), std::vector<double>(3, 7.0));
  EXPECT_EQ(native::zeros({}).dim(), 0);
  EXPECT_EQ(native::zeros({0, 4}).numel(), 0);
  EXPECT_KILN_ERROR(native::zeros({2, -1}), "negative dimension -1");
  {
    DefaultDtypeGuard guard;
    set_default_dtype(kFloat64);
    EXPECT_EQ(native::zeros({1}).dtype(), kFloat64);
    EXPECT_EQ(native::full({1}, 0.5).dtype(), kFloat64);
    EXPECT_KILN_ERROR(set_default_dtype(kInt32), "floating-point");
  }
  EXPECT_EQ(native::zeros({1}).dtype(), kFloat32);
}

TEST(Factory, LikeForms) {
  Tensor x = native::t(native::ones({2, 3}, dtype(kFloat64)));  // non-contiguous [3, 2]
  Tensor e = native::empty_like(x);
  EXPECT_EQ(e.sizes(), IntArrayRef({3, 2}));
  EXPECT_EQ(e.dtype(), kFloat64);
  EXPECT_EQ(native::empty_like(x, dtype(kInt32)).dtype(), kInt32);
  EXPECT_EQ(values(native::zeros_like(x)), std::vector<double>(6, 0.0));
  EXPECT_EQ(values(native::ones_like(x)), std::vector<double>(6, 1.0));
  Tensor f = native::full_like(x, 4);
  EXPECT_EQ(f.dtype(), kFloat64);  // the tensor's dtype, not the value's
  EXPECT_EQ(values(f), std::vector<double>(6, 4.0));
}

TEST(Factory, ArangeDtypeAndLength) {
  Tensor a = native::arange(5);
  EXPECT_EQ(a.dtype(), kInt64);
  EXPECT_EQ(values(a), (std::vector<double>{0, 1, 2, 3, 4}));
  Tensor f = native::arange(0, 1, 0.25);
  EXPECT_EQ(f.dtype(), kFloat32);
  EXPECT_EQ(values(f), (std::vector<double>{0, 0.25, 0.5, 0.75}));
  EXPECT_EQ(native::arange(2.0).dtype(), kFloat32);
  EXPECT_EQ(native::arange(5, dtype(kFloat64)).dtype(), kFloat64);
  // Negative step.
  EXPECT_EQ(values(native::arange(5, 0, -1)), (std::vector<double>{5, 4, 3, 2, 1}));
  EXPECT_EQ(values(native::arange(1.0, -1.0, -0.5)), (std::vector<double>{1, 0.5, 0, -0.5}));
  // Length is ceil((end - start) / step), computed in double.
  EXPECT_EQ(native::arange(1, 2.5, 0.5).numel(), 3);
  EXPECT_EQ(native::arange(-1, 1, 0.3).numel(), 7);
  EXPECT_EQ(native::arange(0, 1, 0.1).numel(), 10);
  EXPECT_EQ(native::arange(0, 10, 3).numel(), 4);
  EXPECT_EQ(native::arange(3, 3).numel(), 0);
  // Values are start + i * step (not accumulated), each rounded once.
  auto v = values(native::arange(-1, 1, 0.3, dtype(kFloat64)));
  for (int i = 0; i < 7; ++i) EXPECT_EQ(v[i], -1.0 + i * 0.3);
  auto vf = values(native::arange(0, 1, 0.1));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(vf[i], static_cast<double>(static_cast<float>(i * 0.1)));
  EXPECT_KILN_ERROR(native::arange(0, 10, 0), "step must be nonzero");
  EXPECT_KILN_ERROR(native::arange(10, 0, 3), "inconsistent with step sign");
  EXPECT_KILN_ERROR(native::arange(0, 1, -1), "inconsistent with step sign");
  EXPECT_KILN_ERROR(native::arange(0.0, INFINITY), "unsupported range");
}

namespace {
// torch's linspace in float: the first half counts up from start, the
// second down from end, both from a step computed once in float.
std::vector<double> torch_linspace_f32(float start, float end, int64_t steps) {
  std::vector<double> out;
  if (steps == 1) return {static_cast<double>(start)};
  const float step = (end - start) / static_cast<float>(steps - 1);
  for (int64_t i = 0; i < steps; ++i) {
    const float v = i < steps / 2 ? start + step * static_cast<float>(i)
                                  : end - step * static_cast<float>(steps - 1 - i);
    out.push_back(v);
  }
  return out;
}
}  // namespace

TEST(Factory, Linspace) {
  EXPECT_EQ(values(native::linspace(0, 1, 5)), (std::vector<double>{0, 0.25, 0.5, 0.75, 1}));
  EXPECT_EQ(native::linspace(0, 1, 5).dtype(), kFloat32);  // default dtype even for integer ends
  EXPECT_EQ(values(native::linspace(3, 10, 1)), (std::vector<double>{3}));
  EXPECT_EQ(native::linspace(0, 1, 0).numel(), 0);
  EXPECT_KILN_ERROR(native::linspace(0, 1, -1), "non-negative");
  // The ends are exact and the values match torch's two-sided formula bit for bit.
  for (auto [a, b, n] : {std::tuple{-1.0f, 1.0f, 4}, {0.0f, 1.0f, 7}, {0.1f, 0.7f, 10}, {-3.3f, 17.1f, 9},
                         {5.0f, -2.0f, 6}}) {
    auto got = values(native::linspace(a, b, n));
    EXPECT_EQ(got, torch_linspace_f32(a, b, n)) << a << " " << b << " " << n;
    EXPECT_EQ(got.front(), static_cast<double>(a));
    EXPECT_EQ(got.back(), static_cast<double>(b));
  }
  // float64 in double arithmetic.
  auto d = values(native::linspace(0.1, 0.7, 4, dtype(kFloat64)));
  const double step = (0.7 - 0.1) / 3;
  EXPECT_EQ(d, (std::vector<double>{0.1, 0.1 + step, 0.7 - step, 0.7}));
  // Integers: truncated ends, double step, truncated values.
  EXPECT_EQ(values(native::linspace(0, 10, 4, dtype(kInt64))), (std::vector<double>{0, 3, 6, 10}));
  EXPECT_EQ(values(native::linspace(0.5, 3.7, 4, dtype(kInt64))), (std::vector<double>{0, 1, 2, 3}));
  EXPECT_EQ(values(native::linspace(10, 0, 4, dtype(kInt32))), (std::vector<double>{10, 6, 3, 0}));
}

TEST(Factory, EmptyStrided) {
  Tensor t = native::empty_strided({2, 3}, {1, 2}, dtype(kFloat64));
  EXPECT_EQ(t.sizes(), IntArrayRef({2, 3}));
  EXPECT_EQ(t.strides(), IntArrayRef({1, 2}));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.storage()->nbytes(), 6u * 8u);
  native::copy_(t, native::reshape(native::arange(6, dtype(kFloat64)), {2, 3}));
  EXPECT_EQ(values(t), (std::vector<double>{0, 1, 2, 3, 4, 5}));
  // Gaps and overlaps: storage covers exactly the furthest element.
  EXPECT_EQ(native::empty_strided({2, 2}, {10, 1}, dtype(kFloat32)).storage()->nbytes(), 12u * 4u);
  EXPECT_EQ(native::empty_strided({3}, {0}, dtype(kFloat32)).storage()->nbytes(), 4u);
  EXPECT_EQ(native::empty_strided({0, 5}, {5, 1}).storage()->nbytes(), 0u);
  EXPECT_KILN_ERROR(native::empty_strided({2}, {1, 1}), "strides");
}

TEST(Factory, FromBlobSharesMemoryAndCallsDeleter) {
  std::vector<float> buf = {1, 2, 3, 4, 5, 6};
  Tensor t = native::from_blob(buf.data(), {2, 3}, dtype(kFloat32));
  EXPECT_EQ(t.data_ptr(), static_cast<void*>(buf.data()));
  EXPECT_EQ(values(t), (std::vector<double>{1, 2, 3, 4, 5, 6}));
  buf[4] = 50;  // no copy: the tensor sees writes to the buffer and vice versa
  EXPECT_EQ(values(t)[4], 50.0);
  native::copy_(native::select(t, 0, 0), native::scalar_tensor(9.0));
  EXPECT_EQ(buf[0], 9.0f);
  // Strided wrap: every other element.
  Tensor s = native::from_blob(buf.data(), {3}, {2}, dtype(kFloat32));
  EXPECT_EQ(values(s), (std::vector<double>{9, 9, 50}));
  // The deleter runs once, when the last view of the storage goes away.
  int calls = 0;
  void* seen = nullptr;
  {
    auto* owned = new double[4]{1, 2, 3, 4};
    Tensor o = native::from_blob(
        owned, {4},
        [&](void* p) {
          ++calls;
          seen = p;
          delete[] static_cast<double*>(p);
        },
        dtype(kFloat64));
    Tensor view = native::narrow(o, 0, 1, 2);
    o = Tensor();
    EXPECT_EQ(calls, 0);
    EXPECT_EQ(values(view), (std::vector<double>{2, 3}));
    seen = nullptr;
    view = Tensor();
    EXPECT_EQ(calls, 1);
    EXPECT_NE(seen, nullptr);
  }
  EXPECT_EQ(calls, 1);
}

TEST(Factory, TensorFromVectorForEveryType) {
  auto check = [](const Tensor& t, DType dt, const std::vector<double>& expect) {
    EXPECT_EQ(t.dtype(), dt);
    EXPECT_EQ(t.dim(), 1);
    EXPECT_EQ(values(t), expect);
  };
  check(native::tensor(std::vector<double>{1.5, -2}), kFloat64, {1.5, -2});
  check(native::tensor(std::vector<float>{1.5f, -2}), kFloat32, {1.5, -2});
  check(native::tensor(std::vector<Half>{Half(1.5f), Half(-2.0f)}), kFloat16, {1.5, -2});
  check(native::tensor(std::vector<BFloat16>{BFloat16(1.5f), BFloat16(-2.0f)}), kBFloat16, {1.5, -2});
  check(native::tensor(std::vector<int64_t>{int64_t{1} << 40, -3}), kInt64, {static_cast<double>(int64_t{1} << 40), -3});
  check(native::tensor(std::vector<int32_t>{7, -3}), kInt32, {7, -3});
  check(native::tensor(std::vector<uint8_t>{255, 0}), kUInt8, {255, 0});
  check(native::tensor(std::vector<bool>{true, false, true}), kBool, {1, 0, 1});
  check(native::tensor(std::vector<double>{}), kFloat64, {});
  // With a dtype: converted.
  check(native::tensor(std::vector<int64_t>{1, 2}, dtype(kFloat32)), kFloat32, {1, 2});
  check(native::tensor(std::vector<double>{0.0, 2.5}, dtype(kBool)), kBool, {0, 1});
  // int64 keeps all 64 bits.
  Tensor big = native::tensor(std::vector<int64_t>{(int64_t{1} << 62) + 1});
  EXPECT_EQ(big.item<int64_t>(), (int64_t{1} << 62) + 1);
}

TEST(Factory, ScalarTensor) {
  Tensor d = native::scalar_tensor(2.5);
  EXPECT_EQ(d.dim(), 0);
  EXPECT_EQ(d.dtype(), kFloat32);
  EXPECT_EQ(d.item<double>(), 2.5);
  EXPECT_EQ(native::scalar_tensor(3).dtype(), kInt64);
  EXPECT_EQ(native::scalar_tensor(true).dtype(), kBool);
  Tensor o = native::scalar_tensor(3, dtype(kFloat64));
  EXPECT_EQ(o.dtype(), kFloat64);
  EXPECT_EQ(o.item<double>(), 3.0);
  EXPECT_EQ(native::scalar_tensor(int64_t{1} << 60).item<int64_t>(), int64_t{1} << 60);
}
