// CudaBackend::binary: arithmetic, comparisons, logical ops and the fused
// activation backwards, with core/src/cpu/cpu_binary.cpp's semantics
// (wrapping signed integer arithmetic, torch's integer pow, NaN-propagating
// minimum/maximum, division only in floating point). Arithmetic runs in
// opmath_t (float for 16-bit floats).
#include <type_traits>

#include "kiln/core/int_pow.h"
#include "cuda_backend.h"
#include "kernels/elementwise.cuh"
#include "kernels/pointwise_math.cuh"

namespace kiln::cuda {

namespace {

// The dtype/op pairs the CPU backend implements (others are rejected with its message).
bool supported(BinaryOp op, DType t) {
  if (produces_bool(op)) return true;
  const bool fl = is_floating_point(t);
  switch (op) {
    case BinaryOp::Add: case BinaryOp::Mul: case BinaryOp::Pow: case BinaryOp::Minimum: case BinaryOp::Maximum:
      return true;
    case BinaryOp::Sub: return t != kBool;  // torch rejects bool - bool; the native layer says so
    case BinaryOp::Div: return fl;          // true division: the native layer computes integers in floating point
    case BinaryOp::ReluBackward: return t != kBool;
    default: return fl;  // the other backwards
  }
}

// Signed overflow wraps (as torch) instead of being undefined.
template <typename C>
__device__ __forceinline__ C wrap_add(C a, C b) {
  if constexpr (std::is_signed_v<C>) {
    using U = std::make_unsigned_t<C>;
    return static_cast<C>(static_cast<U>(a) + static_cast<U>(b));
  } else {
    return static_cast<C>(a + b);
  }
}
template <typename C>
__device__ __forceinline__ C wrap_sub(C a, C b) {
  if constexpr (std::is_signed_v<C>) {
    using U = std::make_unsigned_t<C>;
    return static_cast<C>(static_cast<U>(a) - static_cast<U>(b));
  } else {
    return static_cast<C>(a - b);
  }
}
template <typename C>
__device__ __forceinline__ C wrap_mul(C a, C b) {
  if constexpr (std::is_signed_v<C>) {
    using U = std::make_unsigned_t<C>;
    return static_cast<C>(static_cast<U>(a) * static_cast<U>(b));
  } else {
    // uint8 promotes to int, where 255 * 255 still fits; the cast wraps.
    return static_cast<C>(a * b);
  }
}

// Floating pow. With one exponent for the whole tensor the common exponents
// become multiplies and square roots, as the CPU (and torch) do for a
// constant exponent; the branch is uniform across the grid.
template <typename C>
__device__ __forceinline__ C float_pow(C x, C e, bool single_exponent) {
  if (single_exponent) {
    if (e == C(2)) return x * x;
    if (e == C(1)) return x;
    if (e == C(0.5)) return pm::m_sqrt(x);
    if (e == C(3)) return x * x * x;
    if (e == C(-1)) return C(1) / x;
    if (e == C(-2)) return C(1) / (x * x);
    if (e == C(-0.5)) return C(1) / pm::m_sqrt(x);
  }
  return pm::m_pow(x, e);
}

template <typename T>
struct ArithFn {
  BinaryOp op;
  bool single_exponent;  // b is one value for every element (pow's fast exponents)

  __device__ __forceinline__ T operator()(T av, T bv) const {
    using C = opmath_t<T>;
    const C a = static_cast<C>(av), b = static_cast<C>(bv);
    if constexpr (std::is_same_v<C, bool>) {
      switch (op) {
        case BinaryOp::Add: case BinaryOp::Maximum: return a || b;
        case BinaryOp::Mul: case BinaryOp::Minimum: return a && b;
        default: return int_pow(a, b);  // Pow
      }
    } else if constexpr (std::is_integral_v<C>) {
      switch (op) {
        case BinaryOp::Add: return wrap_add(a, b);
        case BinaryOp::Sub: return wrap_sub(a, b);
        case BinaryOp::Mul: return wrap_mul(a, b);
        case BinaryOp::Pow: return int_pow(a, b);
        case BinaryOp::Minimum: return b < a ? b : a;
        case BinaryOp::Maximum: return b > a ? b : a;
        default: return b <= C(0) ? C(0) : a;  // ReluBackward (a: gradient, b: output)
      }
    } else {
      return cast<T>(compute(a, b));
    }
  }

  template <typename C>
  __device__ __forceinline__ C compute(C a, C b) const {
    switch (op) {
      case BinaryOp::Add: return a + b;
      case BinaryOp::Sub: return a - b;
      case BinaryOp::Mul: return a * b;
      case BinaryOp::Div: return a / b;
      case BinaryOp::Pow: return float_pow(a, b, single_exponent);
      // A NaN on either side wins, as torch.minimum/maximum.
      case BinaryOp::Minimum: return pm::is_nan(a) ? a : pm::is_nan(b) ? b : (b < a ? b : a);
      case BinaryOp::Maximum: return pm::is_nan(a) ? a : pm::is_nan(b) ? b : (b > a ? b : a);
      // The backwards: a is the incoming gradient g, b the forward output y
      // (relu, sigmoid, tanh) or input x (gelu, silu).
      case BinaryOp::ReluBackward: return b <= C(0) ? C(0) : a;  // a NaN y lets g through, as torch
      case BinaryOp::SigmoidBackward: return a * (C(1) - b) * b;
      case BinaryOp::TanhBackward: return a * (C(1) - b * b);
      case BinaryOp::GeluErfBackward: return a * pm::gelu_erf_grad(b);
      case BinaryOp::GeluTanhBackward: return a * pm::gelu_tanh_grad(b);
      default: {  // SiluBackward: s (1 + x (1 - s)), s = sigmoid(x)
        const C s = pm::sigmoid(b);
        return a * s * (C(1) + b * (C(1) - s));
      }
    }
  }
};

// Comparisons and logical ops, written in opmath_t (exact for 16-bit floats).
template <typename T>
struct PredicateFn {
  BinaryOp op;

  __device__ __forceinline__ bool operator()(T av, T bv) const {
    using C = opmath_t<T>;
    const C a = static_cast<C>(av), b = static_cast<C>(bv);
    switch (op) {
      case BinaryOp::Eq: return a == b;
      case BinaryOp::Ne: return a != b;
      case BinaryOp::Lt: return a < b;
      case BinaryOp::Le: return a <= b;
      case BinaryOp::Gt: return a > b;
      case BinaryOp::Ge: return a >= b;
      case BinaryOp::LogicalAnd: return a != C(0) && b != C(0);
      case BinaryOp::LogicalOr: return a != C(0) || b != C(0);
      default: return (a != C(0)) != (b != C(0));  // LogicalXor
    }
  }
};

}  // namespace

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  const char* name = op_name(op);
  KILN_CHECK(a.sizes().equals(out.sizes()) && b.sizes().equals(out.sizes()), name, ": operand shapes ", a.sizes(),
             " and ", b.sizes(), " must equal the output shape ", out.sizes());
  KILN_CHECK(a.dtype() == b.dtype(), name, ": operand dtypes differ (", dtype_name(a.dtype()), " and ",
             dtype_name(b.dtype()), ")");
  const DType want = produces_bool(op) ? kBool : a.dtype();
  KILN_CHECK(out.dtype() == want, name, ": output dtype ", dtype_name(out.dtype()), " should be ", dtype_name(want));
  KILN_CHECK(supported(op, a.dtype()), name, ": not implemented for dtype ", dtype_name(a.dtype()));
  DeviceGuard guard(device_index(out));
  dispatch_device(a.dtype(), name, [&]<typename T>() {
    if (produces_bool(op)) {
      launch_elementwise<bool, T, T>(name, out, {&a, &b}, PredicateFn<T>{op});
    } else {
      const bool single = op == BinaryOp::Pow && is_single_value(b);
      launch_elementwise<T, T, T>(name, out, {&a, &b}, ArithFn<T>{op, single});
    }
  });
}

}  // namespace kiln::cuda
