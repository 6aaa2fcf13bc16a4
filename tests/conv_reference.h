#pragma once
// A naive float64 2-D convolution written straight from the definition
//   y[n, o, oh, ow] = b[o] + sum_{c, i, j} x[n, g*Cg + c, oh*s - p + i*d, ow*s - p + j*d] * w[o, c, i, j]
// (g = o / (Cout/groups), zero outside the input), with its input, weight
// and bias gradients accumulated in the same loop nest. The conv suites
// compare Kiln's kernels against it.
#include <cstdint>
#include <vector>

#include "test_util.h"

namespace kiln::testing {

struct ConvSpec {
  int64_t stride[2] = {1, 1};
  int64_t padding[2] = {0, 0};
  int64_t dilation[2] = {1, 1};
  int64_t groups = 1;
};

// Output sizes of input [N, C, H, W] and weight [Cout, Cg, kH, kW].
inline std::vector<int64_t> conv_ref_shape(IntArrayRef x, IntArrayRef w, const ConvSpec& s) {
  std::vector<int64_t> out{x[0], w[0], 0, 0};
  for (int d = 0; d < 2; ++d)
    out[2 + d] = (x[2 + d] + 2 * s.padding[d] - s.dilation[d] * (w[2 + d] - 1) - 1) / s.stride[d] + 1;
  return out;
}

struct ConvRef {
  std::vector<double> y, gx, gw, gb;
};

// x, w, b (empty: no bias) and go (empty: no gradients) hold row-major values.
inline ConvRef conv_reference(const std::vector<double>& x, IntArrayRef xs, const std::vector<double>& w,
                              IntArrayRef ws, const std::vector<double>& b, const std::vector<double>& go,
                              const ConvSpec& s) {
  const auto ys = conv_ref_shape(xs, ws, s);
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3];
  const int64_t O = ws[0], Cg = ws[1], KH = ws[2], KW = ws[3];
  const int64_t Ho = ys[2], Wo = ys[3], Og = O / s.groups;
  ConvRef r;
  r.y.assign(static_cast<size_t>(N * O * Ho * Wo), 0.0);
  if (!go.empty()) {
    r.gx.assign(x.size(), 0.0);
    r.gw.assign(w.size(), 0.0);
    r.gb.assign(static_cast<size_t>(O), 0.0);
  }
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const size_t yi = static_cast<size_t>(((n * O + o) * Ho + oh) * Wo + ow);
          double acc = b.empty() ? 0.0 : b[static_cast<size_t>(o)];
          const double g = go.empty() ? 0.0 : go[yi];
          if (!go.empty()) r.gb[static_cast<size_t>(o)] += g;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t ih = oh * s.stride[0] - s.padding[0] + i * s.dilation[0];
                const int64_t iw = ow * s.stride[1] - s.padding[1] + j * s.dilation[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const int64_t ic = (o / Og) * Cg + c;
                const size_t xi = static_cast<size_t>(((n * C + ic) * H + ih) * W + iw);
                const size_t wi = static_cast<size_t>(((o * Cg + c) * KH + i) * KW + j);
                acc += x[xi] * w[wi];
                if (!go.empty()) {
                  r.gx[xi] += g * w[wi];
                  r.gw[wi] += g * x[xi];
                }
              }
          r.y[yi] = acc;
        }
  return r;
}

}  // namespace kiln::testing
