// CudaBackend::unary: the pointwise unary ops with core/src/cpu/cpu_unary.cpp's
// semantics. Arithmetic runs in opmath_t (float for 16-bit floats); the
// transcendental ops exist only for floating dtypes (the native layer
// promotes integer inputs first), and the dtype/op pairs the CPU rejects are
// rejected here with the same message.
#include <type_traits>

#include "cuda_backend.h"
#include "kernels/elementwise.cuh"
#include "kernels/pointwise_math.cuh"

namespace kiln::cuda {

namespace {

// Ops defined for every dtype (integers keep their dtype, bool only the
// identities); everything else needs a floating dtype.
bool is_exact_op(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: case UnaryOp::Abs: case UnaryOp::Sign: case UnaryOp::Relu:
    case UnaryOp::Floor: case UnaryOp::Ceil: case UnaryOp::Round:
      return true;
    default:
      return false;
  }
}

bool supported(UnaryOp op, DType t) {
  if (op == UnaryOp::LogicalNot) return false;  // has its own path (bool output)
  if (t == kBool) return is_exact_op(op) && op != UnaryOp::Neg;
  if (is_integral(t, false)) return is_exact_op(op);
  return true;
}

template <typename C>
__device__ __forceinline__ C exact_op(UnaryOp op, C x) {
  if constexpr (std::is_same_v<C, bool>) {
    return x;  // abs/sign/relu/rounding leave a bool unchanged
  } else if constexpr (std::is_integral_v<C>) {
    using U = std::make_unsigned_t<C>;
    switch (op) {
      case UnaryOp::Neg:  // through unsigned so that the most negative value wraps, as torch
        return static_cast<C>(U(0) - static_cast<U>(x));
      case UnaryOp::Abs:
        if constexpr (std::is_unsigned_v<C>) return x;
        else return x < 0 ? static_cast<C>(U(0) - static_cast<U>(x)) : x;
      case UnaryOp::Sign:
        if constexpr (std::is_unsigned_v<C>) return static_cast<C>(x != 0);
        else return static_cast<C>((C(0) < x) - (x < C(0)));
      case UnaryOp::Relu:
        if constexpr (std::is_unsigned_v<C>) return x;
        else return x < C(0) ? C(0) : x;
      default:  // floor, ceil, round
        return x;
    }
  } else {
    switch (op) {
      case UnaryOp::Neg: return -x;
      case UnaryOp::Abs: return pm::m_fabs(x);
      // NaN compares false both ways and gives 0, as torch.sign and the CPU.
      case UnaryOp::Sign: return static_cast<C>((C(0) < x) - (x < C(0)));
      // x < 0 is false for NaN (passes through) and -0 (stays -0), as the CPU.
      case UnaryOp::Relu: return x < C(0) ? C(0) : x;
      case UnaryOp::Floor: return pm::m_floor(x);
      case UnaryOp::Ceil: return pm::m_ceil(x);
      default: return pm::m_rint(x);  // Round: halves to even
    }
  }
}

template <typename C>
__device__ __forceinline__ C float_op(UnaryOp op, C x) {
  switch (op) {
    case UnaryOp::Exp: return pm::m_exp(x);
    case UnaryOp::Log: return pm::m_log(x);
    case UnaryOp::Log1p: return pm::m_log1p(x);
    case UnaryOp::Expm1: return pm::m_expm1(x);
    case UnaryOp::Sqrt: return pm::m_sqrt(x);
    case UnaryOp::Rsqrt: return C(1) / pm::m_sqrt(x);  // IEEE divide and sqrt: the CPU's bits
    case UnaryOp::Tanh: return pm::m_tanh(x);
    case UnaryOp::Sigmoid: return pm::sigmoid(x);
    case UnaryOp::GeluErf: return pm::gelu_erf(x);
    case UnaryOp::GeluTanh: return pm::gelu_tanh(x);
    case UnaryOp::Silu: return x * pm::sigmoid(x);
    case UnaryOp::Sin: return pm::m_sin(x);
    case UnaryOp::Cos: return pm::m_cos(x);
    case UnaryOp::Acos: return pm::m_acos(x);
    case UnaryOp::Erf: return pm::m_erf(x);
    case UnaryOp::Reciprocal: return C(1) / x;
    default: return exact_op(op, x);
  }
}

template <typename T>
struct UnaryFn {
  UnaryOp op;
  __device__ __forceinline__ T operator()(T v) const {
    using C = opmath_t<T>;
    const C x = static_cast<C>(v);
    if constexpr (std::is_floating_point_v<C>) {
      return cast<T>(float_op(op, x));
    } else {
      return exact_op(op, x);  // the host admitted only exact ops for this dtype
    }
  }
};

template <typename T>
struct LogicalNotFn {
  __device__ __forceinline__ bool operator()(T v) const { return static_cast<opmath_t<T>>(v) == opmath_t<T>(0); }
};

}  // namespace

void CudaBackend::unary(UnaryOp op, const Tensor& in, const Tensor& out) {
  KILN_CHECK(in.sizes().equals(out.sizes()), op_name(op), ": input shape ", in.sizes(), " != output shape ",
             out.sizes());
  DeviceGuard guard(device_index(out));
  if (op == UnaryOp::LogicalNot) {
    KILN_CHECK(out.dtype() == kBool, "logical_not: the CUDA kernel writes bool, got ", dtype_name(out.dtype()));
    dispatch_device(in.dtype(), "logical_not", [&]<typename T>() {
      launch_elementwise<bool, T>("logical_not", out, {&in}, LogicalNotFn<T>{});
    });
    return;
  }
  KILN_CHECK(in.dtype() == out.dtype(), op_name(op), ": input dtype ", dtype_name(in.dtype()),
             " != output dtype ", dtype_name(out.dtype()));
  KILN_CHECK(supported(op, in.dtype()), op_name(op), ": not implemented for dtype ", dtype_name(in.dtype()));
  dispatch_device(in.dtype(), op_name(op), [&]<typename T>() {
    launch_elementwise<T, T>(op_name(op), out, {&in}, UnaryFn<T>{op});
  });
}

}  // namespace kiln::cuda
