// CudaBackend::where and CudaBackend::clamp, as core/src/cpu/cpu_binary.cpp
// and cpu_unary.cpp define them.
#include <cstdint>
#include <type_traits>

#include "cuda_backend.h"
#include "kernels/elementwise.cuh"
#include "kernels/pointwise_math.cuh"

namespace kiln::cuda {

namespace {

// where only moves bits, so it is instantiated per element size, not dtype.
template <typename W>
struct WhereFn {
  __device__ __forceinline__ W operator()(bool c, W a, W b) const { return c ? a : b; }
};

template <typename W>
void launch_where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  launch_elementwise<W, bool, W, W>("where", out, {&cond, &a, &b}, WhereFn<W>{});
}

// Bounds are compared in opmath_t, as the CPU's compute_t: a 16-bit tensor is
// clamped against the float value of the bound, and the bound itself is
// rounded to the dtype only when it is the result.
template <typename T>
struct ClampFn {
  using C = opmath_t<T>;
  C lo, hi;
  bool has_lo, has_hi;

  __device__ __forceinline__ T operator()(T v) const {
    // Lower bound first, then upper, so min > max gives max (torch). A NaN
    // input or bound makes the result NaN.
    C x = static_cast<C>(v);
    if (has_lo && (x < lo || pm::is_nan(lo))) x = lo;
    if (has_hi && (x > hi || pm::is_nan(hi))) x = hi;
    return cast<T>(x);
  }
};

}  // namespace

void CudaBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  KILN_CHECK(cond.dtype() == kBool, "where: condition must be bool, got ", dtype_name(cond.dtype()));
  KILN_CHECK(a.dtype() == out.dtype() && b.dtype() == out.dtype(), "where: operand dtypes ", dtype_name(a.dtype()),
             ", ", dtype_name(b.dtype()), " must equal the output dtype ", dtype_name(out.dtype()));
  KILN_CHECK(cond.sizes().equals(out.sizes()) && a.sizes().equals(out.sizes()) && b.sizes().equals(out.sizes()),
             "where: operand shapes ", cond.sizes(), ", ", a.sizes(), ", ", b.sizes(), " must equal the output shape ",
             out.sizes());
  DeviceGuard guard(device_index(out));
  switch (out.element_size()) {
    case 1: launch_where<uint8_t>(cond, a, b, out); break;
    case 2: launch_where<uint16_t>(cond, a, b, out); break;
    case 4: launch_where<uint32_t>(cond, a, b, out); break;
    case 8: launch_where<uint64_t>(cond, a, b, out); break;
    default: KILN_ERROR("where: unsupported element size ", out.element_size());
  }
}

void CudaBackend::clamp(const Tensor& in, const std::optional<Scalar>& min, const std::optional<Scalar>& max,
                        const Tensor& out) {
  KILN_CHECK(in.sizes().equals(out.sizes()) && in.dtype() == out.dtype(), "clamp: input ", in.toString(),
             " and output ", out.toString(), " must match");
  DeviceGuard guard(device_index(out));
  dispatch_device(in.dtype(), "clamp", [&]<typename T>() {
    using C = opmath_t<T>;
    ClampFn<T> f{C(0), C(0), min.has_value(), max.has_value()};
    if (f.has_lo) f.lo = min->to<C>();
    if (f.has_hi) f.hi = max->to<C>();
    launch_elementwise<T, T>("clamp", out, {&in}, f);
  });
}

}  // namespace kiln::cuda
