#pragma once
// Device counterparts of the activation formulas in core/src/cpu/cpu_math.h
// (and the GELU/sigmoid definitions of cpu_unary.cpp / cpu_binary.cpp): the
// same formulas in the same precision (float for 16-bit inputs), built on
// CUDA's math library (each within a few ulp) rather than the CPU's
// vectorisable polynomials, so results agree with the CPU to rounding, not
// bit for bit. Overloads on float and double only: callers compute in opmath_t.
#include <cuda_runtime.h>

#include <type_traits>

namespace kiln::cuda::pm {

// One name per function for both precisions, so templated formulas read as the CPU's.
__device__ __forceinline__ float m_exp(float x) { return ::expf(x); }
__device__ __forceinline__ double m_exp(double x) { return ::exp(x); }
__device__ __forceinline__ float m_log(float x) { return ::logf(x); }
__device__ __forceinline__ double m_log(double x) { return ::log(x); }
__device__ __forceinline__ float m_log1p(float x) { return ::log1pf(x); }
__device__ __forceinline__ double m_log1p(double x) { return ::log1p(x); }
__device__ __forceinline__ float m_expm1(float x) { return ::expm1f(x); }
__device__ __forceinline__ double m_expm1(double x) { return ::expm1(x); }
// IEEE square root (nvcc's default -prec-sqrt=true): identical to the CPU's.
__device__ __forceinline__ float m_sqrt(float x) { return ::sqrtf(x); }
__device__ __forceinline__ double m_sqrt(double x) { return ::sqrt(x); }
__device__ __forceinline__ float m_tanh(float x) { return ::tanhf(x); }
__device__ __forceinline__ double m_tanh(double x) { return ::tanh(x); }
__device__ __forceinline__ float m_sin(float x) { return ::sinf(x); }
__device__ __forceinline__ double m_sin(double x) { return ::sin(x); }
__device__ __forceinline__ float m_cos(float x) { return ::cosf(x); }
__device__ __forceinline__ double m_cos(double x) { return ::cos(x); }
__device__ __forceinline__ float m_acos(float x) { return ::acosf(x); }
__device__ __forceinline__ double m_acos(double x) { return ::acos(x); }
__device__ __forceinline__ float m_erf(float x) { return ::erff(x); }
__device__ __forceinline__ double m_erf(double x) { return ::erf(x); }
__device__ __forceinline__ float m_fabs(float x) { return ::fabsf(x); }
__device__ __forceinline__ double m_fabs(double x) { return ::fabs(x); }
__device__ __forceinline__ float m_floor(float x) { return ::floorf(x); }
__device__ __forceinline__ double m_floor(double x) { return ::floor(x); }
__device__ __forceinline__ float m_ceil(float x) { return ::ceilf(x); }
__device__ __forceinline__ double m_ceil(double x) { return ::ceil(x); }
// rint in the default rounding mode: halves to even, as torch.round and the CPU's std::rint.
__device__ __forceinline__ float m_rint(float x) { return ::rintf(x); }
__device__ __forceinline__ double m_rint(double x) { return ::rint(x); }
__device__ __forceinline__ float m_pow(float x, float y) { return ::powf(x, y); }
__device__ __forceinline__ double m_pow(double x, double y) { return ::pow(x, y); }

template <typename C>
__device__ __forceinline__ bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>) {
    return v != v;
  } else {
    return false;
  }
}

constexpr double kSqrtHalf = 0.70710678118654752440;
constexpr double kTwoOverSqrtPi = 1.12837916709551257390;
constexpr double kInvSqrtTwoPi = 0.39894228040143267794;
constexpr double kSqrtTwoOverPi = 0.79788456080286535588;

// 1 + erf(x / sqrt 2): GELU's cdf doubled. Negative x takes erfc(|x| / sqrt 2),
// which does not cancel (as the CPU).
__device__ __forceinline__ double gelu_cdf2(double x) {
  const double z = x * kSqrtHalf;
  return x < 0 ? ::erfc(-z) : 1.0 + ::erf(z);
}

__device__ __forceinline__ float gelu_cdf2(float x) {
  constexpr float k_hi = static_cast<float>(kSqrtHalf);
  constexpr float k_lo = static_cast<float>(kSqrtHalf - static_cast<double>(k_hi));
  const float z = x * k_hi;
  if (!(x < 0.0f)) return 1.0f + ::erff(z);  // NaN lands here and stays NaN
  // erfc(a) has relative condition number ~2a^2, so z's own rounding (and
  // that of 1/sqrt 2) would cost up to ~1e-5 in the far tail; the CPU splits
  // x^2 exactly for the same reason. The exact argument is a + d, and to
  // first order erfc(a + d) = erfc(a) - d * 2/sqrt(pi) * exp(-a^2).
  const float a = -z;
  const float d = -(fmaf(x, k_hi, -z) + x * k_lo);
  return fmaf(-d * static_cast<float>(kTwoOverSqrtPi), ::expf(-a * a), ::erfcf(a));
}

// exp(-x^2 / 2), the Gaussian kernel.
__device__ __forceinline__ double exp_neg_half_square(double x) { return ::exp(-0.5 * x * x); }

__device__ __forceinline__ float exp_neg_half_square(float x) {
  // x^2 = hi + lo exactly; exp(-hi/2 - lo/2) = exp(-hi/2) (1 - lo/2) to
  // float precision, which keeps hi's rounding from being amplified (the
  // CPU folds lo into its exp reduction instead). Beyond |x| = 20 the
  // result is 0 (and lo would be meaningless); NaN gives 0 here, and the
  // callers' other factor of x carries the NaN.
  if (!(::fabsf(x) < 20.0f)) return 0.0f;
  const float hi = x * x, lo = fmaf(x, x, -hi);
  const float e = ::expf(-0.5f * hi);
  return fmaf(e, -0.5f * lo, e);
}

template <typename C>
__device__ __forceinline__ C gelu_erf(C x) {
  return C(0.5) * x * gelu_cdf2(x);
}

template <typename C>
__device__ __forceinline__ C gelu_tanh(C x) {
  const C k = C(kSqrtTwoOverPi);
  return C(0.5) * x * (C(1) + m_tanh(k * (x + C(0.044715) * x * x * x)));
}

// d/dx [x Phi(x)] = Phi(x) + x phi(x).
template <typename C>
__device__ __forceinline__ C gelu_erf_grad(C x) {
  return C(0.5) * gelu_cdf2(x) + x * exp_neg_half_square(x) * C(kInvSqrtTwoPi);
}

template <typename C>
__device__ __forceinline__ C gelu_tanh_grad(C x) {
  const C k = C(kSqrtTwoOverPi), c = C(0.044715);
  const C t = m_tanh(k * (x + c * x * x * x));
  const C dinner = k * (C(1) + C(3) * c * x * x);
  return C(0.5) * (C(1) + t) + C(0.5) * x * (C(1) - t * t) * dinner;
}

// 1 / (1 + e^-x) from e = e^-|x|: no overflow, and the tail survives for
// very negative x (as the CPU's fast_sigmoid).
template <typename C>
__device__ __forceinline__ C sigmoid(C x) {
  const C e = m_exp(-m_fabs(x));
  const C s = C(1) / (C(1) + e);
  return x >= C(0) ? s : e * s;
}

}  // namespace kiln::cuda::pm
