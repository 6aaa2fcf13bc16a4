#pragma once
// What the CPU convolution kernels share: the geometry of one call, the
// range of output columns whose kernel tap lands inside the input, and a
// summation the compiler vectorises.
#include <algorithm>
#include <cstdint>

#include "kiln/core/backend.h"

namespace kiln::cpu {

struct ConvGeom {
  int64_t N = 0, C = 0, H = 0, W = 0;          // input
  int64_t Cout = 0, Cg = 0, Cog = 0, kh = 0, kw = 0;  // weight; Cg/Cog: channels per group
  int64_t Ho = 0, Wo = 0, groups = 1;
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;

  int64_t P() const { return Ho * Wo; }  // output positions per plane
  int64_t K() const { return Cg * kh * kw; }
  // The input's channel planes already are im2col's matrix.
  bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
  // One input channel per group (channel multiplier Cog).
  bool depthwise() const { return groups > 1 && Cg == 1; }
};

// Reads the geometry of input [N, C, H, W], a weight of sizes `weight` and
// out [N, Cout, Ho, Wo], checking they agree.
ConvGeom conv_geometry(const char* op, const Tensor& input, IntArrayRef weight, const Tensor& out,
                       const Conv2dParams& p);

// Output columns ow in [lo, hi) whose input column ow * sw + off lies in [0, W).
struct OwRange {
  int64_t lo, hi;
};
inline OwRange valid_ow(const ConvGeom& g, int64_t off) {
  const int64_t lo = off >= 0 ? 0 : (-off + g.sw - 1) / g.sw;
  const int64_t hi = g.W - 1 - off < 0 ? 0 : (g.W - 1 - off) / g.sw + 1;
  const int64_t h = std::min(hi, g.Wo);
  return {std::min(lo, h), h};
}

// Sum of x[0, n) in 16 interleaved partial sums: each lane is an exact
// sequence of adds, so it vectorises without reassociation flags.
template <typename T>
inline T lane_sum(const T* x, int64_t n) {
  constexpr int kLanes = 16;
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += x[i + k];
  T total = 0;
  for (; i < n; ++i) total += x[i];
  for (int k = 0; k < kLanes; ++k) total += acc[k];
  return total;
}

// Sum of a[q] * b[q * stride] for q in [0, n), as lane_sum.
template <typename T>
inline T lane_dot(const T* a, const T* b, int64_t stride, int64_t n) {
  constexpr int kLanes = 16;
  T acc[kLanes] = {};
  int64_t i = 0;
  if (stride == 1) {
    for (; i + kLanes <= n; i += kLanes)
      for (int k = 0; k < kLanes; ++k) acc[k] += a[i + k] * b[i + k];
  }
  T total = 0;
  for (; i < n; ++i) total += a[i] * b[i * stride];
  for (int k = 0; k < kLanes; ++k) total += acc[k];
  return total;
}

// Direct loops for depthwise convolutions (cpu_conv_depthwise.cpp); same
// contracts as the backend's conv2d kernels, T float or double.
template <typename T>
void depthwise_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, const ConvGeom& g,
                       const Tensor& out);
template <typename T>
void depthwise_backward_input(const Tensor& grad_out, const Tensor& weight, const ConvGeom& g,
                              const Tensor& grad_input);
template <typename T>
void depthwise_backward_weight(const Tensor& grad_out, const Tensor& input, const ConvGeom& g,
                               const Tensor& grad_weight);

// The AVX-512 float32 path (cpu_conv_avx512.cpp): available when the build
// targets AVX-512; otherwise every call goes through BLAS.
bool packed_conv_available();
// out = conv(in, w) + bias (bias may be null); not for depthwise geometry.
void packed_conv_forward(const float* in, const float* w, const float* bias, const ConvGeom& g, float* out);
// grad_in = d(conv)/d(input) applied to grad_out when the convolution has
// stride 1 and padding at most d*(k-1) per dim; false (nothing written) otherwise.
bool packed_conv_backward_input(const float* grad_out, const float* w, const ConvGeom& g, float* grad_in);
// grad_weight (overwritten) = d(conv)/d(weight) applied to grad_out; not for depthwise geometry.
void packed_conv_backward_weight(const float* grad_out, const float* in, const ConvGeom& g, float* grad_weight);

}  // namespace kiln::cpu
