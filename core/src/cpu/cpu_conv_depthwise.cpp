// Depthwise convolutions (groups > 1, one input channel per group, Cog
// output channels per input channel) as direct loops: each input value meets
// only kH*kW weights per output channel, far too little reuse for a GEMM.
// The loops run along output rows, so for stride 1 every tap is a
// contiguous multiply-add over a row that the compiler vectorises.
// Threads take whole planes, so no two threads ever write the same memory.
#include <algorithm>

#include "cpu/cpu_conv.h"
#include "cpu/strided_loop.h"

namespace kiln::cpu {

namespace {
int64_t plane_grain(const ConvGeom& g) {
  return std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(g.P() * g.kh * g.kw, 1));
}
}  // namespace

template <typename T>
void depthwise_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, const ConvGeom& g,
                       const Tensor& out) {
  const T* in = input.data_ptr<T>();
  const T* w = weight.data_ptr<T>();
  const T* b = bias.defined() ? bias.data_ptr<T>() : nullptr;
  T* o = out.data_ptr<T>();
  const int64_t kk = g.kh * g.kw;
  parallel_for(g.N * g.Cout, plane_grain(g), [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane) {
      const int64_t n = plane / g.Cout, oc = plane % g.Cout, ic = oc / g.Cog;
      const T* src = in + (n * g.C + ic) * g.H * g.W;
      const T* wk = w + oc * kk;
      T* dst = o + plane * g.P();
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        T* orow = dst + oh * g.Wo;
        std::fill(orow, orow + g.Wo, b != nullptr ? b[oc] : T(0));
        for (int64_t i = 0; i < g.kh; ++i) {
          const int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          const T* irow = src + ih * g.W;
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t off = j * g.dw - g.pw;
            const OwRange r = valid_ow(g, off);
            const T wv = wk[i * g.kw + j];
            if (g.sw == 1) {
              for (int64_t ow = r.lo; ow < r.hi; ++ow) orow[ow] += wv * irow[ow + off];
            } else {
              for (int64_t ow = r.lo; ow < r.hi; ++ow) orow[ow] += wv * irow[ow * g.sw + off];
            }
          }
        }
      }
    }
  });
}

template <typename T>
void depthwise_backward_input(const Tensor& grad_out, const Tensor& weight, const ConvGeom& g,
                              const Tensor& grad_input) {
  const T* go = grad_out.data_ptr<T>();
  const T* w = weight.data_ptr<T>();
  T* gi = grad_input.data_ptr<T>();
  const int64_t kk = g.kh * g.kw;
  // One thread per input plane: it gathers from the Cog output planes fed by it.
  parallel_for(g.N * g.C, std::max<int64_t>(1, plane_grain(g) / g.Cog), [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane) {
      const int64_t n = plane / g.C, ic = plane % g.C;
      T* dst = gi + plane * g.H * g.W;
      std::fill(dst, dst + g.H * g.W, T(0));
      for (int64_t m = 0; m < g.Cog; ++m) {
        const int64_t oc = ic * g.Cog + m;
        const T* src = go + (n * g.Cout + oc) * g.P();
        const T* wk = w + oc * kk;
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          const T* grow = src + oh * g.Wo;
          for (int64_t i = 0; i < g.kh; ++i) {
            const int64_t ih = oh * g.sh - g.ph + i * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            T* irow = dst + ih * g.W;
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t off = j * g.dw - g.pw;
              const OwRange r = valid_ow(g, off);
              const T wv = wk[i * g.kw + j];
              if (g.sw == 1) {
                for (int64_t ow = r.lo; ow < r.hi; ++ow) irow[ow + off] += wv * grow[ow];
              } else {
                for (int64_t ow = r.lo; ow < r.hi; ++ow) irow[ow * g.sw + off] += wv * grow[ow];
              }
            }
          }
        }
      }
    }
  });
}

template <typename T>
void depthwise_backward_weight(const Tensor& grad_out, const Tensor& input, const ConvGeom& g,
                               const Tensor& grad_weight) {
  const T* go = grad_out.data_ptr<T>();
  const T* in = input.data_ptr<T>();
  T* gw = grad_weight.data_ptr<T>();
  const int64_t kk = g.kh * g.kw;
  // One thread per output channel: it owns that channel's kH*kW weights.
  parallel_for(g.Cout, std::max<int64_t>(1, plane_grain(g) / std::max<int64_t>(g.N, 1)), [&](int64_t c0, int64_t c1) {
    for (int64_t oc = c0; oc < c1; ++oc) {
      const int64_t ic = oc / g.Cog;
      for (int64_t i = 0; i < g.kh; ++i) {
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t off = j * g.dw - g.pw;
          const OwRange r = valid_ow(g, off);
          T total = 0;
          if (r.hi > r.lo) {
            for (int64_t n = 0; n < g.N; ++n) {
              const T* grad = go + (n * g.Cout + oc) * g.P();
              const T* src = in + (n * g.C + ic) * g.H * g.W;
              for (int64_t oh = 0; oh < g.Ho; ++oh) {
                const int64_t ih = oh * g.sh - g.ph + i * g.dh;
                if (ih < 0 || ih >= g.H) continue;
                total += lane_dot(grad + oh * g.Wo + r.lo, src + ih * g.W + r.lo * g.sw + off, g.sw, r.hi - r.lo);
              }
            }
          }
          gw[oc * kk + i * g.kw + j] = total;
        }
      }
    }
  });
}

template void depthwise_forward<float>(const Tensor&, const Tensor&, const Tensor&, const ConvGeom&, const Tensor&);
template void depthwise_forward<double>(const Tensor&, const Tensor&, const Tensor&, const ConvGeom&, const Tensor&);
template void depthwise_backward_input<float>(const Tensor&, const Tensor&, const ConvGeom&, const Tensor&);
template void depthwise_backward_input<double>(const Tensor&, const Tensor&, const ConvGeom&, const Tensor&);
template void depthwise_backward_weight<float>(const Tensor&, const Tensor&, const ConvGeom&, const Tensor&);
template void depthwise_backward_weight<double>(const Tensor&, const Tensor&, const ConvGeom&, const Tensor&);

}  // namespace kiln::cpu
