// CPU <-> CUDA parity of Backend::copy: every dtype conversion (exact:
// identical bits required, IEEE special values and float64 -> 16-bit double
// rounding included) and layout (transposed, permuted, broadcast and sliced
// sources, strided destinations, the same view in place) on one device,
// with poisoned destinations; then the transfers between host and device
// (strided, converting, non-blocking), Backend::allocate and synchronize.
#include <cmath>

#include "cuda/parity_util.h"

namespace {

using namespace kiln;
using namespace kiln::testing::parity;
using kiln::testing::values;

Backend& be(const Tensor& t) { return backend_of(t); }
std::string dn(DType d) { return short_name(d); }

// ---- copy on one device: conversions and layouts ----

Tensor values_for(Generator& g, DType from, DType to, IntArrayRef sizes) {
  if (from == kBool) return bools(g, sizes);
  if (to == kBool) return sprinkle(g, randint(g, -3, 4, sizes, from), 0.3, 0.0);
  if (to == kUInt8 && is_floating_point(from)) return uniform(g, sizes, 0.0, 255.9, from);
  if (from == kUInt8) return randint(g, 0, 256, sizes, from);
  if (from == kInt64 && to == kInt32) return randint(g, -(int64_t{1} << 40), int64_t{1} << 40, sizes, from);
  if (from == kInt32 && to == kUInt8) return randint(g, -300, 300, sizes, from);
  if (from == kInt64) return randint(g, -(int64_t{1} << 40), int64_t{1} << 40, sizes, from);
  if (from == kInt32) return randint(g, -1000000, 1000000, sizes, from);
  const double r = from == kFloat16 || to == kFloat16 ? 60000.0 : 1e6;
  return uniform(g, sizes, -r, r, from);
}

TensorList copy_direct(const Tensor& src, DType to, IntArrayRef sizes) {
  return with_poisoned(sizes, to, src.device(), [&](const Tensor& dst) { be(src).copy(src, dst, false); });
}

std::vector<Case> copy_cases() {
  std::vector<Case> cs;
  const std::vector<std::pair<DType, DType>> conversions = {
      {kFloat32, kBFloat16}, {kFloat32, kFloat16}, {kFloat64, kFloat32}, {kFloat64, kBFloat16}, {kFloat64, kFloat16},
      {kBFloat16, kFloat32}, {kFloat16, kFloat32}, {kBFloat16, kFloat16}, {kFloat16, kFloat64}, {kFloat32, kFloat64},
      {kFloat32, kInt32},    {kFloat64, kInt64},   {kFloat32, kUInt8},    {kFloat32, kBool},    {kBFloat16, kInt32},
      {kInt64, kFloat32},    {kInt32, kFloat64},   {kInt64, kInt32},      {kUInt8, kFloat32},   {kBool, kFloat32},
      {kBool, kInt64},       {kInt32, kBool},      {kInt64, kBFloat16},   {kInt32, kUInt8},     {kFloat64, kFloat64}};
  // Conversions are exact operations: identical bits required.
  for (const auto& [from, to] : conversions) {
    cs.push_back({"copy_" + dn(from) + "_to_" + dn(to),
                  [from, to](Generator& g) { return TensorList{values_for(g, from, to, {37, 53})}; },
                  [to](const TensorList& in) { return copy_direct(in[0], to, in[0].sizes()); }, false, 0.0});
  }
  for (auto [from, to] : std::vector<std::pair<DType, DType>>{
           {kFloat32, kBFloat16}, {kFloat32, kFloat16}, {kFloat64, kFloat16}, {kFloat64, kFloat32}, {kBFloat16, kFloat32}}) {
    cs.push_back({"copy_" + dn(from) + "_to_" + dn(to) + "_special", [from](Generator&) { return TensorList{specials(from)}; },
                  [to](const TensorList& in) { return copy_direct(in[0], to, in[0].sizes()); }, false, 0.0});
  }
  // float64 -> 16-bit goes through float32 on the CPU (two roundings, as
  // torch): x = 1 + 2^-11 + 2^-40 rounds to the float 1 + 2^-11, a half tie
  // that goes to even (1.0), where one rounding would give 1 + 2^-10.
  cs.push_back({"copy_f64_to_16bit_double_rounding",
                [](Generator&) {
                  const double e40 = std::ldexp(1.0, -40);
                  return TensorList{kiln::testing::make(
                      {6}, {1 + std::ldexp(1.0, -11) + e40, 1 + std::ldexp(1.0, -8) + e40, -(1 + std::ldexp(1.0, -11) + e40),
                            1 + 3 * std::ldexp(1.0, -11) - e40, 1024 + 0.5 + e40, 0.1},
                      kFloat64)};
                },
                [](const TensorList& in) {
                  TensorList r = copy_direct(in[0], kFloat16, in[0].sizes());
                  r.push_back(copy_direct(in[0], kBFloat16, in[0].sizes())[0]);
                  return r;
                },
                false, 0.0});
  cs.push_back({"copy_f32_transposed_src", [](Generator& g) { return TensorList{randn(g, {53, 37})}; },
                [](const TensorList& in) { return copy_direct(native::t(in[0]), kFloat32, {37, 53}); }, false, 0.0});
  cs.push_back({"copy_bf16_transposed_to_f32", [](Generator& g) { return TensorList{randn(g, {53, 37}, kBFloat16)}; },
                [](const TensorList& in) { return copy_direct(native::t(in[0]), kFloat32, {37, 53}); }, false, 0.0});
  cs.push_back({"copy_f32_permuted_3d", [](Generator& g) { return TensorList{randn(g, {5, 7, 9})}; },
                [](const TensorList& in) { return copy_direct(native::permute(in[0], {2, 0, 1}), kFloat32, {9, 5, 7}); },
                false, 0.0});
  cs.push_back({"copy_f32_broadcast_src", [](Generator& g) { return TensorList{randn(g, {53})}; },
                [](const TensorList& in) { return copy_direct(native::expand(in[0], {37, 53}), kFloat32, {37, 53}); },
                false, 0.0});
  cs.push_back({"copy_f32_sliced_to_strided_dst", [](Generator& g) { return TensorList{randn(g, {37, 159})}; },
                [](const TensorList& in) {
                  const Tensor src = native::slice(in[0], 1, 2, std::nullopt, 3);  // [37, 53], column stride 3
                  return with_poisoned_strided(37, 53, kFloat16, src.device(),
                                               [&](const Tensor& dst) { be(src).copy(src, dst, false); });
                },
                false, 0.0});
  cs.push_back({"copy_i64_to_transposed_dst", [](Generator& g) { return TensorList{randint(g, -9, 9, {37, 53})}; },
                [](const TensorList& in) {
                  Tensor base = poisoned({53, 37}, kInt64, in[0].device());
                  be(in[0]).copy(in[0], native::t(base), false);
                  return TensorList{base};
                }});
  cs.push_back({"copy_f32_large", [](Generator& g) { return TensorList{randn(g, {(1 << 22) + 1})}; },
                [](const TensorList& in) { return copy_direct(in[0], kFloat32, in[0].sizes()); }, false, 0.0});
  cs.push_back({"copy_same_view", [](Generator& g) { return TensorList{randn(g, {37, 53})}; },
                [](const TensorList& in) {
                  const Tensor x = native::clone(in[0]);
                  be(x).copy(x, x, false);
                  return TensorList{x};
                },
                false, 0.0});
  return cs;
}

KILN_PARITY_SUITE(CopyParity, copy_cases);

// ---- transfers between host and device, allocation, synchronisation ----

// Same values (NaN matching NaN), both read back to the host.
::testing::AssertionResult same_values(const Tensor& a, const Tensor& b) {
  const auto va = values(a), vb = values(b);
  if (va.size() != vb.size()) return ::testing::AssertionFailure() << va.size() << " vs " << vb.size() << " elements";
  for (size_t i = 0; i < va.size(); ++i) {
    if (!(va[i] == vb[i] || (std::isnan(va[i]) && std::isnan(vb[i]))))
      return ::testing::AssertionFailure() << "element " << i << ": " << va[i] << " vs " << vb[i];
  }
  return ::testing::AssertionSuccess();
}

TEST(CudaTransfer, HostToDeviceStridedWithConversion) {
  KILN_SKIP_WITHOUT_CUDA();
  Generator g(11);
  const Tensor src = native::t(randn(g, {31, 17}));  // [17, 31], transposed
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kFloat16, kInt32}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor dst = poisoned({17, 31}, dt, gpu());
    backend(gpu()).copy(src, dst, false);
    EXPECT_TRUE(parity_close(dst, native::to(native::contiguous(src), dt), 0.0));
  }
  // Into a strided device view: the other columns keep their poison.
  Tensor base = poisoned({17, 62}, kFloat32, gpu());
  backend(gpu()).copy(src, native::slice(base, 1, 0, std::nullopt, 2), false);
  Tensor want = poisoned({17, 62}, kFloat32, cpu());
  native::copy_(native::slice(want, 1, 0, std::nullopt, 2), src);
  EXPECT_TRUE(parity_close(base, want, 0.0));
}

TEST(CudaTransfer, DeviceToHostStridedWithConversion) {
  KILN_SKIP_WITHOUT_CUDA();
  Generator g(12);
  const Tensor host = randn(g, {31, 17});
  const Tensor dev = native::t(to_gpu(host));  // [17, 31] transposed on the device
  for (DType dt : {kFloat32, kFloat64, kBFloat16, kInt64}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor base = poisoned({17, 62}, dt, cpu()), want = poisoned({17, 62}, dt, cpu());
    backend(gpu()).copy(dev, native::slice(base, 1, 1, std::nullopt, 2), false);
    native::copy_(native::slice(want, 1, 1, std::nullopt, 2), native::t(host));
    EXPECT_TRUE(same_values(base, want));
  }
}

TEST(CudaTransfer, NonBlockingRoundTripAfterSynchronize) {
  KILN_SKIP_WITHOUT_CUDA();
  Generator g(13);
  const Tensor host = randn(g, {(1 << 22) + 3});
  Tensor dev = native::empty(host.sizes(), TensorOptions().dtype(kFloat32).device(gpu()));
  backend(gpu()).copy(host, dev, true);
  Tensor back = poisoned(host.sizes(), kFloat32, cpu());
  backend(gpu()).copy(dev, back, true);
  backend(gpu()).synchronize(gpu());
  EXPECT_TRUE(same_values(back, host));
}

TEST(CudaTransfer, EveryDtypeRoundTripsExactly) {
  KILN_SKIP_WITHOUT_CUDA();
  Generator g(14);
  for (DType dt : {kFloat64, kFloat32, kFloat16, kBFloat16, kInt64, kInt32, kUInt8, kBool}) {
    SCOPED_TRACE(dtype_name(dt));
    const Tensor host = values_for(g, kFloat64, dt, {1001});
    const Tensor x = native::to(host, dt);
    const Tensor dev = x.to(gpu());  // Tensor::to, the public path
    EXPECT_EQ(dev.device(), gpu());
    EXPECT_EQ(dev.dtype(), dt);
    EXPECT_TRUE(same_values(dev.to(cpu()), x));
  }
}

TEST(CudaTransfer, AllocateAndSynchronize) {
  KILN_SKIP_WITHOUT_CUDA();
  Backend& cuda = backend(gpu());
  EXPECT_EQ(cuda.type(), gpu().type());
  Storage s = cuda.allocate(size_t{1} << 20, gpu());
  ASSERT_TRUE(s != nullptr);
  EXPECT_NE(s->data(), nullptr);
  EXPECT_GE(s->nbytes(), size_t{1} << 20);
  EXPECT_EQ(s->device().type(), gpu().type());
  cuda.synchronize(gpu());
}

}  // namespace
