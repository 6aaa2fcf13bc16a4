#pragma once
// exp and tanh for float written without branches or library calls, so that
// GCC vectorises the loops calling them (glibc's vector math is only offered
// under -ffast-math). Both stay within ~2 ulp of the exact result, keep
// inf/NaN/subnormal behaviour, and are what softmax, sigmoid, silu and
// friends run on. Doubles use the C library.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace kiln::cpu {

// exp(x) = 2^n exp(r), n = round(x / ln 2), |r| <= ln 2 / 2, exp(r) by a
// degree-7 polynomial (Cephes' coefficients).
inline float exp_f32(float x) {
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
inline float tanh_f32(float x) {
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

template <typename C>
inline C fast_exp(C x) {
  if constexpr (std::is_same_v<C, float>) {
    return exp_f32(x);
  } else {
    return std::exp(x);
  }
}

template <typename C>
inline C fast_tanh(C x) {
  if constexpr (std::is_same_v<C, float>) {
    return tanh_f32(x);
  } else {
    return std::tanh(x);
  }
}

}  // namespace kiln::cpu
