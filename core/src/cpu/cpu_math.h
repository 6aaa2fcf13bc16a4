#pragma once
// exp, tanh and erf for float written without branches or library calls, so that
// GCC vectorises the loops calling them (glibc's vector math is only offered
// under -ffast-math). They stay within a few ulp of the exact result, keep
// inf/NaN/subnormal behaviour, and are what softmax, sigmoid, silu and
// friends run on. Doubles use the C library.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace kiln::cpu {

// Forced: these must inline into the kernels' loops to vectorise, and GCC's
// size heuristics otherwise give up on the larger callers (the GELU backward).
#define KILN_MATH_INLINE inline __attribute__((always_inline))

// exp(x) = 2^n exp(r), n = round(x / ln 2), |r| <= ln 2 / 2, exp(r) by a
// degree-7 polynomial (Cephes' coefficients).
KILN_MATH_INLINE float exp_f32(float x) {
  const float xc = std::min(std::max(x, -104.0f), 89.0f);  // exp is 0 / inf beyond; NaN passes through
  const float shifter = 12582912.0f;                       // 1.5 * 2^23: adding it rounds to an integer
  const float n = (xc * 1.44269504088896341f + shifter) - shifter;
  float r = xc - n * 0.693359375f;  // ln 2 in two parts keeps r exact
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n as two factors so that results in the subnormal range survive.
  const auto ni = static_cast<int32_t>(n);
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  return p * std::bit_cast<float>((n1 + 127) << 23) * std::bit_cast<float>((n2 + 127) << 23);
}

// tanh: an odd polynomial near 0 (where 1 - 2/(e^2x + 1) would cancel), the
// exp form elsewhere.
KILN_MATH_INLINE float tanh_f32(float x) {
  const float ax = std::fabs(x);
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  const float big = std::copysign(1.0f - 2.0f / (exp_f32(2.0f * ax) + 1.0f), x);
  return ax < 0.625f ? small : big;
}

// a * b + c, fused where the hardware has FMA (one rounding, one
// instruction); the error bounds below hold either way.
KILN_MATH_INLINE float madd(float a, float b, float c) {
#ifdef __FMA__
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// exp(x + xl) for a tiny correction xl (|xl| <= ~1e-5 |x|), folded into the
// argument reduction so that it is never lost to rounding x + xl. Same
// scheme as exp_f32 with fused steps; used where the argument carries a
// rounding error of its own that must not be amplified (erfc's -z^2).
KILN_MATH_INLINE float exp_sum_f32(float x, float xl) {
  const float xc = std::min(std::max(x, -104.0f), 89.0f);
  const float shifter = 12582912.0f;
  const float n = madd(xc, 1.44269504088896341f, shifter) - shifter;
  float r = madd(n, -0.693359375f, xc);  // exact: n has few bits, 0.693359375 has 9
  r = madd(n, 2.12194440e-4f, r) + xl;
  float p = 1.9875691500e-4f;
  p = madd(p, r, 1.3981999507e-3f);
  p = madd(p, r, 8.3334519073e-3f);
  p = madd(p, r, 4.1665795894e-2f);
  p = madd(p, r, 1.6666665459e-1f);
  p = madd(p, r, 5.0000001201e-1f);
  p = madd(p * r, r, r) + 1.0f;
  const auto ni = static_cast<int32_t>(n);
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  return p * std::bit_cast<float>((n1 + 127) << 23) * std::bit_cast<float>((n2 + 127) << 23);
}

// erfc(z) for 0 <= z <= 15, given z^2 = zz_hi + zz_lo exactly: Numerical
// Recipes' Chebyshev fit erfc(z) = t exp(p(t) - z^2), t = 1 / (1 + z/2)
// (relative error 1.2e-7). p - z^2 is formed as an exact two-term sum whose
// small part rides into exp's reduction: rounding it (~z^2 ulp) would
// otherwise cost up to 1e-5 relative, and a second exp costs twice as much.
KILN_MATH_INLINE float erfc_core_f32(float z, float zz_hi, float zz_lo) {
  const float t = 1.0f / madd(0.5f, z, 1.0f);
  float p = 0.17087277f;
  p = madd(p, t, -0.82215223f);
  p = madd(p, t, 1.48851587f);
  p = madd(p, t, -1.13520398f);
  p = madd(p, t, 0.27886807f);
  p = madd(p, t, -0.18628806f);
  p = madd(p, t, 0.09678418f);
  p = madd(p, t, 0.37409196f);
  p = madd(p, t, 1.00002368f);
  p = madd(p, t, -1.26551223f);
  // Knuth's two-sum: s + e == p - zz_hi exactly, whatever their magnitudes.
  const float s = p - zz_hi;
  const float pb = s - p;
  const float e = (p - (s - pb)) + (-zz_hi - pb);
  return t * exp_sum_f32(s, e - zz_lo);
}

// erf(x) for |x| <= 1: Cephes' odd polynomial.
KILN_MATH_INLINE float erf_small_f32(float x) {
  const float z = x * x;
  float p = 7.853861353153693e-5f;
  p = madd(p, z, -8.010193625184903e-4f);
  p = madd(p, z, 5.188327685732524e-3f);
  p = madd(p, z, -2.685381193529856e-2f);
  p = madd(p, z, 1.128358514861418e-1f);
  p = madd(p, z, -3.761262582423300e-1f);
  p = madd(p, z, 1.128379165726710e0f);
  return x * p;
}

KILN_MATH_INLINE float erf_f32(float x) {
  const float ax = std::min(std::fabs(x), 15.0f);  // erf is +-1 in float beyond; NaN passes through
  const float hi = ax * ax, lo = std::fma(ax, ax, -hi);
  const float big = std::copysign(1.0f - erfc_core_f32(ax, hi, lo), x);
  return std::fabs(x) <= 1.0f ? erf_small_f32(x) : big;
}

constexpr float kSqrtHalf = 0.70710678118654752440f;

// 1 + erf(x / sqrt 2), GELU's cdf doubled, from c = erfc(|x| / sqrt 2):
// c for negative x (no cancellation), 2 - c for positive x (c <= 1 there, so
// its error stays absolute-small), with (x / sqrt 2)^2 = x^2 / 2 split
// exactly from x. One formula over the whole range keeps it branch-free.
KILN_MATH_INLINE float gelu_cdf2_f32(float x) {
  const float ax = std::min(std::fabs(x), 21.0f);
  const float hi = ax * ax, lo = std::fma(ax, ax, -hi);
  const float c = erfc_core_f32(ax * kSqrtHalf, 0.5f * hi, 0.5f * lo);
  const float z = x * kSqrtHalf;
  const float big = x < 0.0f ? c : 2.0f - c;
  return z >= -0.5f && z <= 1.0f ? 1.0f + erf_small_f32(z) : big;
}

// exp(-x^2 / 2), the Gaussian kernel, with x^2 split exactly.
KILN_MATH_INLINE float exp_neg_half_square_f32(float x) {
  const float hi = x * x, lo = std::fma(x, x, -hi);
  return exp_sum_f32(-0.5f * hi, -0.5f * lo);
}

template <typename C>
KILN_MATH_INLINE C fast_exp(C x) {
  if constexpr (std::is_same_v<C, float>) {
    return exp_f32(x);
  } else {
    return std::exp(x);
  }
}

template <typename C>
KILN_MATH_INLINE C fast_tanh(C x) {
  if constexpr (std::is_same_v<C, float>) {
    return tanh_f32(x);
  } else {
    return std::tanh(x);
  }
}

template <typename C>
KILN_MATH_INLINE C fast_erf(C x) {
  if constexpr (std::is_same_v<C, float>) {
    return erf_f32(x);
  } else {
    return std::erf(x);
  }
}

template <typename C>
KILN_MATH_INLINE C gelu_cdf2(C x) {
  if constexpr (std::is_same_v<C, float>) {
    return gelu_cdf2_f32(x);
  } else {
    const C z = x * C(0.70710678118654752440);
    return x < 0 ? std::erfc(-z) : C(1) + std::erf(z);
  }
}

template <typename C>
KILN_MATH_INLINE C exp_neg_half_square(C x) {
  if constexpr (std::is_same_v<C, float>) {
    return exp_neg_half_square_f32(x);
  } else {
    return std::exp(C(-0.5) * x * x);
  }
}

// d/dx [x Phi(x)] = Phi(x) + x phi(x): the GELU (erf form) derivative.
template <typename C>
KILN_MATH_INLINE C gelu_erf_grad(C x) {
  return C(0.5) * gelu_cdf2(x) + x * exp_neg_half_square(x) * C(0.39894228040143267794);  // 1/sqrt(2 pi)
}

// 1 / (1 + e^-x) from e = e^-|x|, so that it neither overflows nor loses
// the tail for very negative x.
template <typename C>
KILN_MATH_INLINE C fast_sigmoid(C x) {
  const C e = fast_exp(-std::fabs(x));
  const C s = C(1) / (C(1) + e);
  return x >= C(0) ? s : e * s;
}

}  // namespace kiln::cpu
