// Unary pointwise kernels and clamp. Arithmetic runs in compute_t<T>
// (float for the 16-bit floats); the transcendental ops exist only for
// floating dtypes because the native layer promotes integer inputs first.
#include <cmath>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_loops.h"
#include "cpu/cpu_math.h"

namespace kiln::cpu {

namespace {

template <typename C>
inline C gelu_erf(C x) {
  return C(0.5) * x * gelu_cdf2(x);
}

template <typename C>
inline C gelu_tanh(C x) {
  const C k = C(0.79788456080286535588);  // sqrt(2 / pi)
  return C(0.5) * x * (C(1) + fast_tanh(k * (x + C(0.044715) * x * x * x)));
}

// Ops defined for every dtype (integers keep their dtype).
template <typename T>
bool run_exact_op(UnaryOp op, const StridedLoop<2>& loop) {
  using C = compute_t<T>;
  if constexpr (std::is_same_v<T, bool>) {
    // abs/sign/relu/rounding leave a bool unchanged; neg is rejected by the native layer.
    switch (op) {
      case UnaryOp::Abs: case UnaryOp::Sign: case UnaryOp::Relu:
      case UnaryOp::Floor: case UnaryOp::Ceil: case UnaryOp::Round:
        unary_loop<T, T>(loop, [](C x) { return x; });
        return true;
      default:
        return false;
    }
  } else {
    switch (op) {
      case UnaryOp::Neg:
        if constexpr (std::is_integral_v<C>) {
          // Through unsigned so that negating the most negative value wraps, as torch.
          using U = std::make_unsigned_t<C>;
          unary_loop<T, T>(loop, [](C x) { return static_cast<C>(U(0) - static_cast<U>(x)); });
        } else {
          unary_loop<T, T>(loop, [](C x) { return -x; });
        }
        return true;
      case UnaryOp::Abs:
        if constexpr (std::is_unsigned_v<C>) {
          unary_loop<T, T>(loop, [](C x) { return x; });
        } else if constexpr (std::is_integral_v<C>) {
          using U = std::make_unsigned_t<C>;
          unary_loop<T, T>(loop, [](C x) { return x < 0 ? static_cast<C>(U(0) - static_cast<U>(x)) : x; });
        } else {
          unary_loop<T, T>(loop, [](C x) { return std::fabs(x); });
        }
        return true;
      case UnaryOp::Sign:
        if constexpr (std::is_unsigned_v<C>) {
          unary_loop<T, T>(loop, [](C x) { return static_cast<C>(x != 0); });
        } else {
          // NaN compares false both ways and gives 0, as torch.sign.
          unary_loop<T, T>(loop, [](C x) { return static_cast<C>((C(0) < x) - (x < C(0))); });
        }
        return true;
      case UnaryOp::Relu:
        if constexpr (std::is_unsigned_v<C>) {
          unary_loop<T, T>(loop, [](C x) { return x; });
        } else {
          // x < 0 is false for NaN, so NaN passes through as torch.relu.
          unary_loop<T, T>(loop, [](C x) { return x < C(0) ? C(0) : x; });
        }
        return true;
      case UnaryOp::Floor: case UnaryOp::Ceil: case UnaryOp::Round:
        if constexpr (std::is_integral_v<C>) {
          unary_loop<T, T>(loop, [](C x) { return x; });
        } else if (op == UnaryOp::Floor) {
          unary_loop<T, T>(loop, [](C x) { return std::floor(x); });
        } else if (op == UnaryOp::Ceil) {
          unary_loop<T, T>(loop, [](C x) { return std::ceil(x); });
        } else {
          // rint in the default rounding mode: halves go to even, as torch.round.
          unary_loop<T, T>(loop, [](C x) { return std::rint(x); });
        }
        return true;
      default:
        return false;
    }
  }
}

template <typename T>
bool run_float_op(UnaryOp op, const StridedLoop<2>& loop) {
  using C = compute_t<T>;
  if constexpr (!std::is_floating_point_v<C>) {
    return false;
  } else {
    switch (op) {
      case UnaryOp::Exp: unary_loop<T, T>(loop, [](C x) { return fast_exp(x); }); return true;
      case UnaryOp::Log: unary_loop<T, T>(loop, [](C x) { return std::log(x); }); return true;
      case UnaryOp::Log1p: unary_loop<T, T>(loop, [](C x) { return std::log1p(x); }); return true;
      case UnaryOp::Expm1: unary_loop<T, T>(loop, [](C x) { return std::expm1(x); }); return true;
      case UnaryOp::Sqrt: unary_loop<T, T>(loop, [](C x) { return std::sqrt(x); }); return true;
      case UnaryOp::Rsqrt: unary_loop<T, T>(loop, [](C x) { return C(1) / std::sqrt(x); }); return true;
      case UnaryOp::Tanh: unary_loop<T, T>(loop, [](C x) { return fast_tanh(x); }); return true;
      case UnaryOp::Sigmoid: unary_loop<T, T>(loop, [](C x) { return fast_sigmoid(x); }); return true;
      case UnaryOp::GeluErf: unary_loop<T, T>(loop, [](C x) { return gelu_erf(x); }); return true;
      case UnaryOp::GeluTanh: unary_loop<T, T>(loop, [](C x) { return gelu_tanh(x); }); return true;
      case UnaryOp::Silu: unary_loop<T, T>(loop, [](C x) { return x * fast_sigmoid(x); }); return true;
      case UnaryOp::Sin: unary_loop<T, T>(loop, [](C x) { return std::sin(x); }); return true;
      case UnaryOp::Cos: unary_loop<T, T>(loop, [](C x) { return std::cos(x); }); return true;
      case UnaryOp::Acos: unary_loop<T, T>(loop, [](C x) { return std::acos(x); }); return true;
      case UnaryOp::Erf: unary_loop<T, T>(loop, [](C x) { return fast_erf(x); }); return true;
      case UnaryOp::Reciprocal: unary_loop<T, T>(loop, [](C x) { return C(1) / x; }); return true;
      default: return false;
    }
  }
}

}  // namespace

void CpuBackend::unary(UnaryOp op, const Tensor& in, const Tensor& out) {
  KILN_CHECK(in.sizes().equals(out.sizes()), op_name(op), ": input shape ", in.sizes(), " != output shape ",
             out.sizes());
  StridedLoop<2> loop({&out, &in});
  if (op == UnaryOp::LogicalNot) {
    KILN_CHECK(out.dtype() == kBool, "logical_not: the CPU kernel writes bool, got ", dtype_name(out.dtype()));
    dispatch_all(in.dtype(), "logical_not", [&]<typename T>() {
      unary_loop<T, bool>(loop, [](compute_t<T> x) { return x == compute_t<T>(0); });
    });
    return;
  }
  KILN_CHECK(in.dtype() == out.dtype(), op_name(op), ": input dtype ", dtype_name(in.dtype()),
             " != output dtype ", dtype_name(out.dtype()));
  const bool done = dispatch_all(in.dtype(), op_name(op), [&]<typename T>() {
    return run_exact_op<T>(op, loop) || run_float_op<T>(op, loop);
  });
  KILN_CHECK(done, op_name(op), ": not implemented for dtype ", dtype_name(in.dtype()));
}

void CpuBackend::clamp(const Tensor& in, const std::optional<Scalar>& min, const std::optional<Scalar>& max,
                       const Tensor& out) {
  KILN_CHECK(in.sizes().equals(out.sizes()) && in.dtype() == out.dtype(), "clamp: input ", in.toString(),
             " and output ", out.toString(), " must match");
  StridedLoop<2> loop({&out, &in});
  dispatch_all(in.dtype(), "clamp", [&]<typename T>() {
    using C = compute_t<T>;
    const bool has_lo = min.has_value(), has_hi = max.has_value();
    const C lo = has_lo ? min->to<C>() : C(0), hi = has_hi ? max->to<C>() : C(0);
    // Lower bound first, then upper, so min > max gives max (torch). A NaN
    // input or bound makes the result NaN.
    if (has_lo && has_hi) {
      unary_loop<T, T>(loop, [lo, hi](C x) {
        C v = (x < lo || is_nan(lo)) ? lo : x;
        return (v > hi || is_nan(hi)) ? hi : v;
      });
    } else if (has_lo) {
      unary_loop<T, T>(loop, [lo](C x) { return (x < lo || is_nan(lo)) ? lo : x; });
    } else if (has_hi) {
      unary_loop<T, T>(loop, [hi](C x) { return (x > hi || is_nan(hi)) ? hi : x; });
    } else {
      unary_loop<T, T>(loop, [](C x) { return x; });
    }
  });
}

}  // namespace kiln::cpu
