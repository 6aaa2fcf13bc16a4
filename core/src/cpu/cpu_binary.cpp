// Binary pointwise kernels (arithmetic, comparisons, logical ops, the fused
// activation backwards) and where.
#include <cmath>
#include <cstring>

#include "kiln/core/int_pow.h"
#include "cpu/cpu_backend.h"
#include "cpu/cpu_loops.h"
#include "cpu/cpu_math.h"

namespace kiln::cpu {

namespace {

// Signed overflow wraps (as torch) instead of being undefined.
template <typename C, typename F>
inline C wrapping(C a, C b, F f) {
  if constexpr (std::is_integral_v<C> && std::is_signed_v<C>) {
    using U = std::make_unsigned_t<C>;
    return static_cast<C>(f(static_cast<U>(a), static_cast<U>(b)));
  } else {
    return static_cast<C>(f(a, b));
  }
}

// pow with one exponent for the whole contiguous run: the common exponents
// become multiplies and square roots (as torch does) instead of std::pow.
template <typename T>
struct PowScalarExponent {
  bool operator()(char* const* p, const int64_t* s, int64_t n) const {
    using C = compute_t<T>;
    if (s[0] != sizeof(T) || s[1] != sizeof(T) || s[2] != 0) return false;
    T* o = reinterpret_cast<T*>(p[0]);
    const T* x = reinterpret_cast<const T*>(p[1]);
    const C e = load(*reinterpret_cast<const T*>(p[2]));
    if (e == C(2)) {
      map1(o, x, n, [](C v) { return v * v; });
    } else if (e == C(1)) {
      map1(o, x, n, [](C v) { return v; });
    } else if (e == C(0.5)) {
      map1(o, x, n, [](C v) { return std::sqrt(v); });
    } else if (e == C(3)) {
      map1(o, x, n, [](C v) { return v * v * v; });
    } else if (e == C(-1)) {
      map1(o, x, n, [](C v) { return C(1) / v; });
    } else if (e == C(-2)) {
      map1(o, x, n, [](C v) { return C(1) / (v * v); });
    } else if (e == C(-0.5)) {
      map1(o, x, n, [](C v) { return C(1) / std::sqrt(v); });
    } else {
      map1(o, x, n, [e](C v) { return std::pow(v, e); });
    }
    return true;
  }
};

template <typename T>
bool run_arith(BinaryOp op, const StridedLoop<3>& loop) {
  using C = compute_t<T>;
  constexpr bool is_bool = std::is_same_v<T, bool>;
  constexpr bool fl = std::is_floating_point_v<C>;
  switch (op) {
    case BinaryOp::Add:
      if constexpr (is_bool) {
        binary_loop<T, T>(loop, [](C a, C b) { return a || b; });
      } else {
        binary_loop<T, T>(loop, [](C a, C b) { return wrapping(a, b, [](auto x, auto y) { return x + y; }); });
      }
      return true;
    case BinaryOp::Sub:
      if constexpr (is_bool) {
        return false;  // torch rejects bool - bool; the native layer says so
      } else {
        binary_loop<T, T>(loop, [](C a, C b) { return wrapping(a, b, [](auto x, auto y) { return x - y; }); });
        return true;
      }
    case BinaryOp::Mul:
      if constexpr (is_bool) {
        binary_loop<T, T>(loop, [](C a, C b) { return a && b; });
      } else {
        binary_loop<T, T>(loop, [](C a, C b) { return wrapping(a, b, [](auto x, auto y) { return x * y; }); });
      }
      return true;
    case BinaryOp::Div:
      if constexpr (fl) {
        binary_loop<T, T>(loop, [](C a, C b) { return a / b; });
        return true;
      } else {
        return false;  // true division: the native layer computes integers in floating point
      }
    case BinaryOp::Pow:
      if constexpr (fl) {
        binary_loop<T, T>(loop, [](C a, C b) { return std::pow(a, b); }, PowScalarExponent<T>{});
      } else {
        binary_loop<T, T>(loop, [](C a, C b) { return int_pow(a, b); });
      }
      return true;
    case BinaryOp::Minimum:
      if constexpr (is_bool) {
        binary_loop<T, T>(loop, [](C a, C b) { return a && b; });
      } else {
        // A NaN on either side wins, as torch.minimum.
        binary_loop<T, T>(loop, [](C a, C b) { return is_nan(a) ? a : is_nan(b) ? b : (b < a ? b : a); });
      }
      return true;
    case BinaryOp::Maximum:
      if constexpr (is_bool) {
        binary_loop<T, T>(loop, [](C a, C b) { return a || b; });
      } else {
        binary_loop<T, T>(loop, [](C a, C b) { return is_nan(a) ? a : is_nan(b) ? b : (b > a ? b : a); });
      }
      return true;
    default:
      return false;
  }
}

template <typename T>
bool run_predicate(BinaryOp op, const StridedLoop<3>& loop) {
  using C = compute_t<T>;
  switch (op) {
    case BinaryOp::Eq: binary_loop<T, bool>(loop, [](C a, C b) { return a == b; }); return true;
    case BinaryOp::Ne: binary_loop<T, bool>(loop, [](C a, C b) { return a != b; }); return true;
    case BinaryOp::Lt: binary_loop<T, bool>(loop, [](C a, C b) { return a < b; }); return true;
    case BinaryOp::Le: binary_loop<T, bool>(loop, [](C a, C b) { return a <= b; }); return true;
    case BinaryOp::Gt: binary_loop<T, bool>(loop, [](C a, C b) { return a > b; }); return true;
    case BinaryOp::Ge: binary_loop<T, bool>(loop, [](C a, C b) { return a >= b; }); return true;
    case BinaryOp::LogicalAnd:
      binary_loop<T, bool>(loop, [](C a, C b) { return a != C(0) && b != C(0); });
      return true;
    case BinaryOp::LogicalOr:
      binary_loop<T, bool>(loop, [](C a, C b) { return a != C(0) || b != C(0); });
      return true;
    case BinaryOp::LogicalXor:
      binary_loop<T, bool>(loop, [](C a, C b) { return (a != C(0)) != (b != C(0)); });
      return true;
    default:
      return false;
  }
}

// The fused backwards: a is the incoming gradient g, b the forward input x
// or output y (see backend.h).
template <typename T>
bool run_backward(BinaryOp op, const StridedLoop<3>& loop) {
  using C = compute_t<T>;
  if constexpr (std::is_same_v<T, bool>) {
    return false;
  } else {
    if (op == BinaryOp::ReluBackward) {  // zero where y <= 0 (a NaN y lets g through, as torch)
      binary_loop<T, T>(loop, [](C g, C y) { return y <= C(0) ? C(0) : g; });
      return true;
    }
    if constexpr (!std::is_floating_point_v<C>) {
      return false;
    } else {
      switch (op) {
        case BinaryOp::SigmoidBackward:  // y (1 - y)
          binary_loop<T, T>(loop, [](C g, C y) { return g * (C(1) - y) * y; });
          return true;
        case BinaryOp::TanhBackward:  // 1 - y^2
          binary_loop<T, T>(loop, [](C g, C y) { return g * (C(1) - y * y); });
          return true;
        case BinaryOp::GeluErfBackward:  // Phi(x) + x phi(x)
          binary_loop<T, T>(loop, [](C g, C x) { return g * gelu_erf_grad(x); });
          return true;
        case BinaryOp::GeluTanhBackward:
          binary_loop<T, T>(loop, [](C g, C x) {
            const C k = C(0.79788456080286535588), c = C(0.044715);
            const C t = fast_tanh(k * (x + c * x * x * x));
            const C dinner = k * (C(1) + C(3) * c * x * x);
            return g * (C(0.5) * (C(1) + t) + C(0.5) * x * (C(1) - t * t) * dinner);
          });
          return true;
        case BinaryOp::SiluBackward:  // s (1 + x (1 - s)), s = sigmoid(x)
          binary_loop<T, T>(loop, [](C g, C x) {
            const C s = fast_sigmoid(x);
            return g * s * (C(1) + x * (C(1) - s));
          });
          return true;
        default:
          return false;
      }
    }
  }
}

}  // namespace

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  KILN_CHECK(a.sizes().equals(out.sizes()) && b.sizes().equals(out.sizes()), op_name(op), ": operand shapes ",
             a.sizes(), " and ", b.sizes(), " must equal the output shape ", out.sizes());
  KILN_CHECK(a.dtype() == b.dtype(), op_name(op), ": operand dtypes differ (", dtype_name(a.dtype()), " and ",
             dtype_name(b.dtype()), ")");
  const DType want = produces_bool(op) ? kBool : a.dtype();
  KILN_CHECK(out.dtype() == want, op_name(op), ": output dtype ", dtype_name(out.dtype()), " should be ",
             dtype_name(want));
  StridedLoop<3> loop({&out, &a, &b});
  const bool done = dispatch_all(a.dtype(), op_name(op), [&]<typename T>() {
    return run_arith<T>(op, loop) || run_predicate<T>(op, loop) || run_backward<T>(op, loop);
  });
  KILN_CHECK(done, op_name(op), ": not implemented for dtype ", dtype_name(a.dtype()));
}

namespace {
// where only moves bits, so it is instantiated per element size.
template <typename W>
void where_loop(const StridedLoop<4>& loop) {
  loop.run([](char* const* p, const int64_t* s, int64_t n) {
    constexpr int64_t w = sizeof(W);
    if (s[0] == w && s[1] == 1) {
      W* o = reinterpret_cast<W*>(p[0]);
      const bool* c = reinterpret_cast<const bool*>(p[1]);
      const W* a = reinterpret_cast<const W*>(p[2]);
      const W* b = reinterpret_cast<const W*>(p[3]);
      if (s[2] == w && s[3] == w) {
        for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? a[i] : b[i];
        return;
      }
      if (s[2] == w && s[3] == 0) {
        const W bv = *b;
        for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? a[i] : bv;
        return;
      }
      if (s[2] == 0 && s[3] == w) {
        const W av = *a;
        for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? av : b[i];
        return;
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      const bool c = *reinterpret_cast<const bool*>(p[1] + i * s[1]);
      const char* src = c ? p[2] + i * s[2] : p[3] + i * s[3];
      std::memcpy(p[0] + i * s[0], src, w);
    }
  });
}
}  // namespace

void CpuBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  KILN_CHECK(cond.dtype() == kBool, "where: condition must be bool, got ", dtype_name(cond.dtype()));
  KILN_CHECK(a.dtype() == out.dtype() && b.dtype() == out.dtype(), "where: operand dtypes ", dtype_name(a.dtype()),
             ", ", dtype_name(b.dtype()), " must equal the output dtype ", dtype_name(out.dtype()));
  KILN_CHECK(cond.sizes().equals(out.sizes()) && a.sizes().equals(out.sizes()) && b.sizes().equals(out.sizes()),
             "where: operand shapes ", cond.sizes(), ", ", a.sizes(), ", ", b.sizes(), " must equal the output shape ",
             out.sizes());
  StridedLoop<4> loop({&out, &cond, &a, &b});
  switch (out.element_size()) {
    case 1: where_loop<uint8_t>(loop); break;
    case 2: where_loop<uint16_t>(loop); break;
    case 4: where_loop<uint32_t>(loop); break;
    case 8: where_loop<uint64_t>(loop); break;
    default: KILN_ERROR("where: unsupported element size ", out.element_size());
  }
}

}  // namespace kiln::cpu
