// Group norm on the GPU, forward and backward. The input is [N, C, HxW]
// (contiguous); group (n, g) is the contiguous block of C / groups channels
// x HxW values of sample n, and its statistics are mean[n, g], rstd[n, g].
//
// Forward: one block per (n, g) takes the statistics as the CPU backend does
// (cpu_norm_util.h: centre mu1 = the first-pass mean, then Σ(x - mu1) and
// Σ(x - mu1)², finished in double) and writes the output from the same
// block while the group is in L1/L2, channel by channel:
//   y = (x - mu1) k2 + k3,  k2 = r w[c],  k3 = b[c] + (mu1 - mean) r w[c].
//
// Backward, with per-(n, c) sums s0 = Σ g and s1 = Σ g (x - mean) over HxW:
//   a = Σ_c w s0, b = Σ_c w s1 over the group's channels, M = (C/groups) HxW,
//   dx = r w g - r³ b / M (x - mean) - r a / M,
//   dweight[c] = Σ_n s1 r,  dbias[c] = Σ_n s0.
// Kernels: the per-(n, c) sums (a block per (n, c) for long HxW, a warp per
// (n, c) for short), the per-group coefficients, dx elementwise, and the
// parameter sums over n; every sum in a fixed order, no atomics.
#include <cmath>

#include "cuda_backend.h"
#include "kernels/norm_util.cuh"
#include "kiln/core/native/elementwise.h"
#include "kiln/core/native/factory.h"

namespace kiln::cuda {

using namespace norm;

namespace {

// Below this HxW a warp, not a block, sums one (n, c).
constexpr int64_t kBlockSumMin = 512;

int threads_for(int64_t len) { return len >= 8192 ? kMaxRowBlock : (len >= 1024 ? 256 : 128); }

// ---- forward ----

template <typename T>
__global__ void __launch_bounds__(kMaxRowBlock) group_norm_kernel(const T* __restrict__ x, T* __restrict__ y,
                                                                  acc_t<T>* __restrict__ mean,
                                                                  acc_t<T>* __restrict__ rstd, Param w, Param b,
                                                                  int64_t blocks, int64_t groups, int64_t cpg,
                                                                  int64_t hw, double eps, bool vec_block,
                                                                  bool vec_hw) {
  using A = acc_t<T>;
  constexpr int V = kVec<T>;
  __shared__ A sh[2 * kMaxWarps];
  const int64_t len = cpg * hw;
  const double n = static_cast<double>(len);
  for (int64_t blk = blockIdx.x; blk < blocks; blk += gridDim.x) {
    const T* xb = x + blk * len;
    T* yb = y + blk * len;
    A s = A(0);
    row_visit1(xb, len, vec_block, [&](int64_t, A v) { s += v; });
    s = block_sum(s, sh);
    const A mu1 = static_cast<A>(static_cast<double>(s) / n);
    A s1 = A(0), s2 = A(0);
    row_visit1(xb, len, vec_block, [&](int64_t, A v) {
      const A c = v - mu1;
      s1 += c;
      s2 += c * c;
    });
    block_sum2(s1, s2, sh);
    const double mu = static_cast<double>(mu1);
    const double m = mu + static_cast<double>(s1) / n;
    const double var = fmax(0.0, (static_cast<double>(s2) - static_cast<double>(s1) * s1 / n) / n);
    const double rs = 1.0 / sqrt(var + eps);
    if (threadIdx.x == 0) {
      mean[blk] = static_cast<A>(m);
      rstd[blk] = static_cast<A>(rs);
    }
    const double shift = (mu - m) * rs;
    const int64_t c0 = (blk % groups) * cpg;
    // Channel k of the group, position i (a pack of V when vec_hw) within it.
    const int64_t units = vec_hw ? hw / V : hw;
    walk_runs(0, cpg, units, threadIdx.x, blockDim.x, [&](int64_t k, int64_t i) {
      const double wk = w.defined() ? load_param<double>(w, c0 + k) : 1.0;
      const double bk = b.defined() ? load_param<double>(b, c0 + k) : 0.0;
      const A k2 = static_cast<A>(rs * wk), k3 = static_cast<A>(bk + shift * wk);
      if (vec_hw) {
        A v[V];
        const int64_t off = k * hw + i * V;
        load_pack(xb + off, v);
#pragma unroll
        for (int j = 0; j < V; ++j) v[j] = (v[j] - mu1) * k2 + k3;
        store_pack(yb + off, v);
      } else {
        const int64_t off = k * hw + i;
        yb[off] = cast<T>((cast<A>(xb[off]) - mu1) * k2 + k3);
      }
    });
  }
}

// ---- backward ----

// s0[nc] = Σ g, s1[nc] = Σ g (x - mean[n, g]) over the HxW values of (n, c).
// One block per (n, c).
template <typename T>
__global__ void __launch_bounds__(kMaxRowBlock) group_norm_sums_block_kernel(
    const T* __restrict__ g, const T* __restrict__ x, const acc_t<T>* __restrict__ mean, acc_t<T>* __restrict__ s0,
    acc_t<T>* __restrict__ s1, int64_t segments, int64_t cpg, int64_t hw, bool vec) {
  using A = acc_t<T>;
  __shared__ A sh[2 * kMaxWarps];
  for (int64_t seg = blockIdx.x; seg < segments; seg += gridDim.x) {
    const A mu = mean[seg / cpg];  // seg = n C + c and (n C + c) / cpg = n groups + c / cpg
    A a = A(0), bsum = A(0);
    row_visit2(g + seg * hw, x + seg * hw, hw, vec, [&](int64_t, A gv, A xv) {
      a += gv;
      bsum += gv * (xv - mu);
    });
    block_sum2(a, bsum, sh);
    if (threadIdx.x == 0) {
      s0[seg] = a;
      s1[seg] = bsum;
    }
  }
}

// As above with one warp per (n, c), for short HxW.
template <typename T>
__global__ void __launch_bounds__(kBlock) group_norm_sums_warp_kernel(const T* __restrict__ g,
                                                                      const T* __restrict__ x,
                                                                      const acc_t<T>* __restrict__ mean,
                                                                      acc_t<T>* __restrict__ s0,
                                                                      acc_t<T>* __restrict__ s1, int64_t segments,
                                                                      int64_t cpg, int64_t hw) {
  using A = acc_t<T>;
  const int lane = threadIdx.x % kWarp;
  const int64_t per_block = blockDim.x / kWarp;
  for (int64_t seg = blockIdx.x * per_block + threadIdx.x / kWarp; seg < segments; seg += gridDim.x * per_block) {
    const A mu = mean[seg / cpg];
    const T* gs = g + seg * hw;
    const T* xs = x + seg * hw;
    A a = A(0), bsum = A(0);
    for (int64_t i = lane; i < hw; i += kWarp) {
      const A gv = cast<A>(gs[i]);
      a += gv;
      bsum += gv * (cast<A>(xs[i]) - mu);
    }
    a = warp_sum(a);
    bsum = warp_sum(bsum);
    if (lane == 0) {
      s0[seg] = a;
      s1[seg] = bsum;
    }
  }
}

// Per group (n, g): dx's coefficients c2 = -r³ b / M and c3 = -r a / M, in
// double as the CPU, stored as coef[2 blk], coef[2 blk + 1].
template <typename A>
__global__ void group_norm_coef_kernel(const A* __restrict__ s0, const A* __restrict__ s1,
                                       const A* __restrict__ rstd, Param w, A* __restrict__ coef, int64_t blocks,
                                       int64_t groups, int64_t cpg, int64_t hw) {
  const double inv_m = 1.0 / static_cast<double>(cpg * hw);
  for (int64_t blk = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; blk < blocks;
       blk += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c0 = (blk % groups) * cpg, base = blk * cpg;  // (n, c0) = n C + c0 = blk cpg
    double a = 0, b = 0;
    for (int64_t k = 0; k < cpg; ++k) {
      const double wk = w.defined() ? load_param<double>(w, c0 + k) : 1.0;
      a += wk * static_cast<double>(s0[base + k]);
      b += wk * static_cast<double>(s1[base + k]);
    }
    const double rs = static_cast<double>(rstd[blk]);
    coef[2 * blk] = static_cast<A>(-rs * rs * rs * b * inv_m);
    coef[2 * blk + 1] = static_cast<A>(-rs * a * inv_m);
  }
}

// dx = g k1 + (x - mean) c2 + c3 with k1 = r w[c], over every element (packs
// of V when HxW allows, so a pack never straddles two channels).
template <typename T>
__global__ void __launch_bounds__(kBlock) group_norm_input_grad_kernel(
    const T* __restrict__ g, const T* __restrict__ x, const acc_t<T>* __restrict__ mean,
    const acc_t<T>* __restrict__ rstd, const acc_t<T>* __restrict__ coef, Param w, T* __restrict__ gi, int64_t units,
    int64_t channels, int64_t cpg, int64_t hw, bool vec) {
  using A = acc_t<T>;
  constexpr int V = kVec<T>;
  const int step = vec ? V : 1;
  for (int64_t u = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < units;
       u += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = u * step, nc = e / hw, c = nc % channels, blk = nc / cpg;
    const double wc = w.defined() ? load_param<double>(w, c) : 1.0;
    const A k1 = static_cast<A>(static_cast<double>(rstd[blk]) * wc);
    const A mu = mean[blk], c2 = coef[2 * blk], c3 = coef[2 * blk + 1];
    if (vec) {
      A gv[V], xv[V];
      load_pack(g + e, gv);
      load_pack(x + e, xv);
#pragma unroll
      for (int j = 0; j < V; ++j) gv[j] = gv[j] * k1 + (xv[j] - mu) * c2 + c3;
      store_pack(gi + e, gv);
    } else {
      gi[e] = cast<T>(cast<A>(g[e]) * k1 + (cast<A>(x[e]) - mu) * c2 + c3);
    }
  }
}

// dweight[c] = Σ_n s1[n, c] r[n, c / cpg], dbias[c] = Σ_n s0[n, c], in n order, in double.
template <typename A>
__global__ void group_norm_param_kernel(const A* __restrict__ s0, const A* __restrict__ s1,
                                        const A* __restrict__ rstd, Param gw, Param gb, int64_t samples,
                                        int64_t channels, int64_t groups, int64_t cpg) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < channels;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double tw = 0, tb = 0;
    for (int64_t n = 0; n < samples; ++n) {
      const int64_t nc = n * channels + c;
      tw += static_cast<double>(s1[nc]) * static_cast<double>(rstd[n * groups + c / cpg]);
      tb += static_cast<double>(s0[nc]);
    }
    if (gw.defined()) store_param(gw, c, tw);
    if (gb.defined()) store_param(gb, c, tb);
  }
}

// ---- host side ----

DType stat_dtype(DType t) { return t == kFloat64 ? kFloat64 : kFloat32; }

struct Shape {
  int64_t n, c, hw, cpg;
};

Shape check_shape(const char* op, const Tensor& in, const Tensor& other, const char* other_name, int64_t groups,
                  const Tensor& mean, const Tensor& rstd) {
  KILN_CHECK(in.sizes().equals(other.sizes()) && in.dtype() == other.dtype() && in.is_contiguous() &&
                 other.is_contiguous(),
             op, ": input ", in.toString(), " and ", other_name, " ", other.toString(),
             " must be contiguous with one shape and dtype");
  KILN_CHECK(in.dim() >= 2 && groups > 0 && in.size(1) % groups == 0 && mean.numel() == in.size(0) * groups &&
                 rstd.numel() == mean.numel(),
             op, ": input ", in.toString(), ", groups ", groups, " and statistics ", mean.toString(), " do not fit");
  for (const Tensor* s : {&mean, &rstd}) {
    KILN_CHECK(s->dtype() == stat_dtype(in.dtype()) && s->is_contiguous(), op, ": statistics must be contiguous ",
               stat_dtype(in.dtype()), " for a ", in.dtype(), " input, got ", s->toString());
  }
  const int64_t n = in.size(0), c = in.size(1);
  return {n, c, n * c == 0 ? 0 : in.numel() / (n * c), c / groups};
}

void check_param(const char* op, const Tensor& p, const Tensor& in) {
  KILN_CHECK(!p.defined() || (p.numel() == in.size(1) && p.is_contiguous() && p.is_floating_point()), op,
             ": parameter ", p.toString(), " must be contiguous floating with ", in.size(1),
             " elements for input ", in.toString());
}

}  // namespace

void CudaBackend::group_norm(const Tensor& in, const Tensor& weight, const Tensor& bias, int64_t groups, double eps,
                             const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  const Shape s = check_shape("group_norm", in, out, "output", groups, mean, rstd);
  check_param("group_norm", weight, in);
  check_param("group_norm", bias, in);
  if (in.numel() == 0) return;  // N == 0 (the native layer rejects HxW == 0 with N > 0)
  DeviceGuard guard(device_index(out));
  const Stream stream = stream_of(out);
  const int64_t blocks = s.n * groups, len = s.cpg * s.hw;
  dispatch_device_floating(in.dtype(), "group_norm", [&]<typename T>() {
    using A = acc_t<T>;
    const T* x = data_of<const T>(in);
    T* y = data_of<T>(out);
    const bool vec_block = len % kVec<T> == 0 && aligned16(x);
    const bool vec_hw = s.hw % kVec<T> == 0 && aligned16(x) && aligned16(y);
    group_norm_kernel<T><<<grid_for(blocks, 1), threads_for(len), 0, stream>>>(
        x, y, data_of<A>(mean), data_of<A>(rstd), param_of(weight), param_of(bias), blocks, groups, s.cpg, s.hw, eps,
        vec_block, vec_hw);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::group_norm_backward(const Tensor& grad_out, const Tensor& in, const Tensor& mean,
                                      const Tensor& rstd, const Tensor& weight, int64_t groups,
                                      const Tensor& grad_in, const Tensor& grad_weight, const Tensor& grad_bias) {
  const Shape s = check_shape("group_norm_backward", in, grad_out, "grad_out", groups, mean, rstd);
  if (grad_in.defined()) check_shape("group_norm_backward", in, grad_in, "grad_in", groups, mean, rstd);
  check_param("group_norm_backward", weight, in);
  check_param("group_norm_backward", grad_weight, in);
  check_param("group_norm_backward", grad_bias, in);
  const bool want_params = grad_weight.defined() || grad_bias.defined();
  if (in.numel() == 0) {  // no samples: the parameter sums over n are empty
    if (grad_weight.defined()) native::fill_(grad_weight, 0);
    if (grad_bias.defined()) native::fill_(grad_bias, 0);
    return;
  }
  if (!grad_in.defined() && !want_params) return;
  DeviceGuard guard(device_index(in));
  const Stream stream = stream_of(in);
  const int64_t segments = s.n * s.c, blocks = s.n * groups;
  const Param w = param_of(weight);
  dispatch_device_floating(in.dtype(), "group_norm_backward", [&]<typename T>() {
    using A = acc_t<T>;
    const T* g = data_of<const T>(grad_out);
    const T* x = data_of<const T>(in);
    const A* mu = data_of<const A>(mean);
    const A* rs = data_of<const A>(rstd);
    const TensorOptions opts = TensorOptions().dtype(stat_dtype(in.dtype())).device(in.device());
    // Temporaries return to the caching allocator in stream order, after the kernels below.
    const Tensor sums = native::empty({2, segments}, opts);
    A* s0 = data_of<A>(sums);
    A* s1 = s0 + segments;
    if (s.hw >= kBlockSumMin) {
      const bool vec = s.hw % kVec<T> == 0 && aligned16(g) && aligned16(x);
      group_norm_sums_block_kernel<T><<<grid_for(segments, 1), threads_for(s.hw), 0, stream>>>(
          g, x, mu, s0, s1, segments, s.cpg, s.hw, vec);
    } else {
      group_norm_sums_warp_kernel<T><<<grid_for(segments, kBlock / kWarp), kBlock, 0, stream>>>(
          g, x, mu, s0, s1, segments, s.cpg, s.hw);
    }
    KILN_CUDA_CHECK_LAUNCH();
    if (grad_in.defined()) {
      const Tensor coef_t = native::empty({blocks, 2}, opts);
      A* coef = data_of<A>(coef_t);
      group_norm_coef_kernel<A><<<grid_for(blocks), kBlock, 0, stream>>>(s0, s1, rs, w, coef, blocks, groups,
                                                                         s.cpg, s.hw);
      KILN_CUDA_CHECK_LAUNCH();
      T* gi = data_of<T>(grad_in);
      const bool vec = s.hw % kVec<T> == 0 && aligned16(g) && aligned16(x) && aligned16(gi);
      const int64_t units = vec ? in.numel() / kVec<T> : in.numel();
      group_norm_input_grad_kernel<T><<<grid_for(units), kBlock, 0, stream>>>(g, x, mu, rs, coef, w, gi, units, s.c,
                                                                              s.cpg, s.hw, vec);
      KILN_CUDA_CHECK_LAUNCH();
    }
    if (want_params) {
      group_norm_param_kernel<A><<<grid_for(s.c), kBlock, 0, stream>>>(
          s0, s1, rs, param_of(grad_weight), param_of(grad_bias), s.n, s.c, groups, s.cpg);
      KILN_CUDA_CHECK_LAUNCH();
    }
  });
}

}  // namespace kiln::cuda
