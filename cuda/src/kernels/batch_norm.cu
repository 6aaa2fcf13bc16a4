// Batch norm on the GPU: per-channel statistics, the affine map, and the
// training-mode backward. The input is [N, C, HxW] (contiguous); channel c
// is N runs of HxW values, one per sample.
//
// Per-channel reductions are two-stage with partials in a double temporary
// and a final kernel that combines a channel's partials in a fixed order
// (no atomics; the same bits every run). The first stage has two layouts,
// as on the CPU:
// - long runs (HxW >= kLongRun): blocks (channel, split of the samples),
//   threads walking the split's runs of that channel;
// - short runs (BatchNorm1d's [N, C], tiny maps): a channel's values are
//   spread across every row, so blocks of 32 columns x 8 row lanes sweep
//   chunks of rows over the C x HxW columns, coalesced along the columns.
// Statistics use Welford's update and Chan's merge (float, double for f64),
// stable without a second pass. The elementwise kernels (output, grad_in)
// work in 16-byte packs when HxW and the pointers allow.
//
// Backward with count M = N HxW per channel, sums Σg and Σ g (x - mean):
//   dx = w r (g - Σg / M - (x - mean) r² Σg(x - mean) / M)
//   dweight = r Σ g (x - mean),  dbias = Σ g.
#include <cmath>
#include <limits>

#include "cuda_backend.h"
#include "kernels/norm_util.cuh"
#include "kiln/core/native/elementwise.h"
#include "kiln/core/native/factory.h"

namespace kiln::cuda {

using namespace norm;

namespace {

constexpr int64_t kLongRun = 32;

struct Layout {
  int64_t n, c, hw;
  int64_t cols() const { return c * hw; }
  int64_t count() const { return n * hw; }
};

Layout layout_of(const Tensor& in) {
  const int64_t n = in.size(0), c = in.size(1);
  return {n, c, n * c == 0 ? 0 : in.numel() / (n * c)};
}

// Where the first stage leaves channel c's partial p (of P): part[c sc + (p / q) sp + p % q].
struct PartIndex {
  int64_t parts, sc, q, sp;
  __host__ __device__ int64_t at(int64_t c, int64_t p) const { return c * sc + (p / q) * sp + p % q; }
};

// How the first stage covers the tensor.
struct Plan {
  bool long_runs;
  int64_t splits = 1, per_split = 1;  // long: samples per block
  ColSplit rows;                      // short: row chunks
  PartIndex index;
  int64_t total_parts;
};

Plan plan_for(const Layout& l) {
  Plan p;
  p.long_runs = l.hw >= kLongRun;
  if (p.long_runs) {
    // About 1024 blocks in all, each with at least 2048 values; a function of the shape only.
    int64_t s = std::max<int64_t>(1, ceil_div(1024, l.c));
    s = std::min<int64_t>({s, l.n, std::max<int64_t>(1, l.count() / 2048), 65535});
    p.per_split = ceil_div(l.n, s);
    p.splits = ceil_div(l.n, p.per_split);
    p.index = {p.splits, p.splits, 1, 1};
  } else {
    p.rows = col_split(l.n, l.cols());
    p.index = {p.rows.chunks * l.hw, l.hw, l.hw, l.cols()};
  }
  p.total_parts = l.c * p.index.parts;
  return p;
}

int threads_for(int64_t len) { return len >= 8192 ? kMaxRowBlock : (len >= 1024 ? 256 : 128); }

// ---- statistics ----

// Long runs: block (c, split) merges the split's values of channel c.
template <typename T>
__global__ void __launch_bounds__(kMaxRowBlock) stats_long_kernel(const T* __restrict__ x, double* __restrict__ pm,
                                                                  double* __restrict__ pm2, double* __restrict__ pn,
                                                                  int64_t n, int64_t channels, int64_t hw,
                                                                  int64_t per_split, int64_t splits, bool vec) {
  using A = acc_t<T>;
  constexpr int V = kVec<T>;
  __shared__ Welford<A> sh[kMaxWarps];
  const int64_t c = blockIdx.x, s = blockIdx.y;
  const int64_t n0 = s * per_split, n1 = std::min(n, n0 + per_split);
  Welford<A> w;
  w.reset();
  const int64_t units = vec ? hw / V : hw;
  walk_runs(n0, n1, units, threadIdx.x, blockDim.x, [&](int64_t sample, int64_t i) {
    const int64_t run = (sample * channels + c) * hw;
    if (vec) {
      A v[V];
      load_pack(x + run + i * V, v);
#pragma unroll
      for (int j = 0; j < V; ++j) w.add(v[j]);
    } else {
      w.add(cast<A>(x[run + i]));
    }
  });
  block_merge(w, sh);
  if (threadIdx.x == 0) {
    const int64_t at = c * splits + s;
    pm[at] = static_cast<double>(w.mean);
    pm2[at] = static_cast<double>(w.m2);
    pn[at] = static_cast<double>(w.n);
  }
}

// Short runs: block (column tile, row chunk), column k = c HxW + i of the
// [N, C HxW] matrix; the 8 row lanes merged in lane order.
template <typename T>
__global__ void __launch_bounds__(kColTile * kRowLanes) stats_short_kernel(const T* __restrict__ x,
                                                                           double* __restrict__ pm,
                                                                           double* __restrict__ pm2,
                                                                           double* __restrict__ pn, int64_t rows,
                                                                           int64_t cols, int64_t rows_per_chunk) {
  using A = acc_t<T>;
  __shared__ Welford<A> sh[kRowLanes][kColTile];
  const int tx = threadIdx.x % kColTile, ty = threadIdx.x / kColTile;
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kColTile + tx;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_chunk, r1 = std::min(rows, r0 + rows_per_chunk);
  Welford<A> w;
  w.reset();
  if (col < cols) {
    for (int64_t r = r0 + ty; r < r1; r += kRowLanes) w.add(cast<A>(x[r * cols + col]));
  }
  sh[ty][tx] = w;
  __syncthreads();
  if (ty == 0 && col < cols) {
    for (int k = 1; k < kRowLanes; ++k) w.merge(sh[k][tx].mean, sh[k][tx].m2, sh[k][tx].n);
    const int64_t at = static_cast<int64_t>(blockIdx.y) * cols + col;
    pm[at] = static_cast<double>(w.mean);
    pm2[at] = static_cast<double>(w.m2);
    pn[at] = static_cast<double>(w.n);
  }
}

// Per channel: the partials merged in order, in double; biased variance.
template <typename A>
__global__ void stats_final_kernel(const double* __restrict__ pm, const double* __restrict__ pm2,
                                   const double* __restrict__ pn, PartIndex ix, A* __restrict__ mean,
                                   A* __restrict__ var, int64_t channels) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < channels;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double m = 0, m2 = 0, cnt = 0;
    for (int64_t p = 0; p < ix.parts; ++p) {
      const int64_t at = ix.at(c, p);
      const double on = pn[at];
      if (on == 0) continue;
      const double t = cnt + on, d = pm[at] - m, f = on / t;
      m += d * f;
      m2 += pm2[at] + d * d * cnt * f;
      cnt = t;
    }
    // 0 / 0 = NaN for an empty channel and fmax(0, NaN) = 0, as the CPU's max(0, var).
    mean[c] = static_cast<A>(cnt == 0 ? std::numeric_limits<double>::quiet_NaN() : m);
    var[c] = static_cast<A>(fmax(0.0, m2 / cnt));
  }
}

// ---- backward sums ----

// Long runs: Σ g and Σ g (x - mean[c]) over the split's values of channel c.
template <typename T>
__global__ void __launch_bounds__(kMaxRowBlock) sums_long_kernel(const T* __restrict__ g, const T* __restrict__ x,
                                                                 const acc_t<T>* __restrict__ mean,
                                                                 double* __restrict__ ps0, double* __restrict__ ps1,
                                                                 int64_t n, int64_t channels, int64_t hw,
                                                                 int64_t per_split, int64_t splits, bool vec) {
  using A = acc_t<T>;
  constexpr int V = kVec<T>;
  __shared__ A sh[2 * kMaxWarps];
  const int64_t c = blockIdx.x, s = blockIdx.y;
  const int64_t n0 = s * per_split, n1 = std::min(n, n0 + per_split);
  const A mu = mean[c];
  A a = A(0), b = A(0);
  const int64_t units = vec ? hw / V : hw;
  walk_runs(n0, n1, units, threadIdx.x, blockDim.x, [&](int64_t sample, int64_t i) {
    const int64_t run = (sample * channels + c) * hw;
    if (vec) {
      A gv[V], xv[V];
      load_pack(g + run + i * V, gv);
      load_pack(x + run + i * V, xv);
#pragma unroll
      for (int j = 0; j < V; ++j) {
        a += gv[j];
        b += gv[j] * (xv[j] - mu);
      }
    } else {
      const A gv = cast<A>(g[run + i]);
      a += gv;
      b += gv * (cast<A>(x[run + i]) - mu);
    }
  });
  block_sum2(a, b, sh);
  if (threadIdx.x == 0) {
    ps0[c * splits + s] = static_cast<double>(a);
    ps1[c * splits + s] = static_cast<double>(b);
  }
}

template <typename T>
__global__ void __launch_bounds__(kColTile * kRowLanes) sums_short_kernel(
    const T* __restrict__ g, const T* __restrict__ x, const acc_t<T>* __restrict__ mean, double* __restrict__ ps0,
    double* __restrict__ ps1, int64_t rows, int64_t cols, int64_t hw, int64_t rows_per_chunk) {
  using A = acc_t<T>;
  __shared__ A sa[kRowLanes][kColTile + 1], sb[kRowLanes][kColTile + 1];
  const int tx = threadIdx.x % kColTile, ty = threadIdx.x / kColTile;
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kColTile + tx;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_chunk, r1 = std::min(rows, r0 + rows_per_chunk);
  A a = A(0), b = A(0);
  if (col < cols) {
    const A mu = mean[col / hw];
    for (int64_t r = r0 + ty; r < r1; r += kRowLanes) {
      const A gv = cast<A>(g[r * cols + col]);
      a += gv;
      b += gv * (cast<A>(x[r * cols + col]) - mu);
    }
  }
  sa[ty][tx] = a;
  sb[ty][tx] = b;
  __syncthreads();
  if (ty == 0 && col < cols) {
    for (int k = 1; k < kRowLanes; ++k) {
      a += sa[k][tx];
      b += sb[k][tx];
    }
    const int64_t at = static_cast<int64_t>(blockIdx.y) * cols + col;
    ps0[at] = static_cast<double>(a);
    ps1[at] = static_cast<double>(b);
  }
}

// Per channel: Σg and Σg(x - mean) from the partials in order; the parameter
// gradients, and (coef non-null) dx's coefficients k1, k2, k3 as coef[3c..3c+2].
template <typename A>
__global__ void sums_final_kernel(const double* __restrict__ ps0, const double* __restrict__ ps1, PartIndex ix,
                                  const A* __restrict__ invstd, Param w, Param gw, Param gb, A* __restrict__ coef,
                                  int64_t channels, double count) {
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < channels;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double sg = 0, sgx = 0;
    for (int64_t p = 0; p < ix.parts; ++p) {
      const int64_t at = ix.at(c, p);
      sg += ps0[at];
      sgx += ps1[at];
    }
    const double r = static_cast<double>(invstd[c]);
    if (gw.defined()) store_param(gw, c, sgx * r);
    if (gb.defined()) store_param(gb, c, sg);
    if (coef != nullptr) {
      const double wr = (w.defined() ? load_param<double>(w, c) : 1.0) * r;
      coef[3 * c] = static_cast<A>(wr);
      coef[3 * c + 1] = static_cast<A>(-wr * r * r * sgx / count);
      coef[3 * c + 2] = static_cast<A>(-wr * sg / count);
    }
  }
}

// ---- elementwise ----

// out = (x - mean[c]) k2 + k3 with k2 = invstd[c] w[c], k3 = b[c].
template <typename T>
__global__ void __launch_bounds__(kBlock) apply_kernel(const T* __restrict__ x, const acc_t<T>* __restrict__ mean,
                                                       const acc_t<T>* __restrict__ invstd, Param w, Param b,
                                                       T* __restrict__ y, int64_t units, int64_t channels,
                                                       int64_t hw, bool vec) {
  using A = acc_t<T>;
  constexpr int V = kVec<T>;
  const int step = vec ? V : 1;
  for (int64_t u = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < units;
       u += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = u * step, c = (e / hw) % channels;
    const double wc = w.defined() ? load_param<double>(w, c) : 1.0;
    const A k2 = static_cast<A>(static_cast<double>(invstd[c]) * wc);
    const A k3 = b.defined() ? load_param<A>(b, c) : A(0);
    const A mu = mean[c];
    if (vec) {
      A v[V];
      load_pack(x + e, v);
#pragma unroll
      for (int j = 0; j < V; ++j) v[j] = (v[j] - mu) * k2 + k3;
      store_pack(y + e, v);
    } else {
      y[e] = cast<T>((cast<A>(x[e]) - mu) * k2 + k3);
    }
  }
}

// dx = g k1 + (x - mean[c]) k2 + k3 with the channel's coefficients.
template <typename T>
__global__ void __launch_bounds__(kBlock) input_grad_kernel(const T* __restrict__ g, const T* __restrict__ x,
                                                            const acc_t<T>* __restrict__ mean,
                                                            const acc_t<T>* __restrict__ coef, T* __restrict__ gi,
                                                            int64_t units, int64_t channels, int64_t hw, bool vec) {
  using A = acc_t<T>;
  constexpr int V = kVec<T>;
  const int step = vec ? V : 1;
  for (int64_t u = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < units;
       u += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t e = u * step, c = (e / hw) % channels;
    const A mu = mean[c], k1 = coef[3 * c], k2 = coef[3 * c + 1], k3 = coef[3 * c + 2];
    if (vec) {
      A gv[V], xv[V];
      load_pack(g + e, gv);
      load_pack(x + e, xv);
#pragma unroll
      for (int j = 0; j < V; ++j) gv[j] = gv[j] * k1 + (xv[j] - mu) * k2 + k3;
      store_pack(gi + e, gv);
    } else {
      gi[e] = cast<T>(cast<A>(g[e]) * k1 + (cast<A>(x[e]) - mu) * k2 + k3);
    }
  }
}

// ---- host side ----

DType stat_dtype(DType t) { return t == kFloat64 ? kFloat64 : kFloat32; }

void check_input(const char* op, const Tensor& in) {
  KILN_CHECK(in.dim() >= 2 && in.is_contiguous(), op, ": input must be contiguous [N, C, *], got ", in.toString());
}

void check_like(const char* op, const Tensor& t, const Tensor& in) {
  KILN_CHECK(!t.defined() || (t.sizes().equals(in.sizes()) && t.dtype() == in.dtype() && t.is_contiguous()), op,
             ": ", t.toString(), " must match input ", in.toString());
}

void check_channel(const char* op, const Tensor& in, const Tensor& t, bool stat) {
  if (!t.defined()) return;
  KILN_CHECK(t.numel() == in.size(1) && t.is_contiguous() && t.is_floating_point(), op, ": per-channel tensor ",
             t.toString(), " must be contiguous with ", in.size(1), " elements for input ", in.toString());
  KILN_CHECK(!stat || t.dtype() == stat_dtype(in.dtype()), op, ": statistics must be ", stat_dtype(in.dtype()),
             " for a ", in.dtype(), " input, got ", t.toString());
}

// Elementwise launch geometry: packs of V when a pack never straddles two
// channels (HxW a multiple of V) and every pointer is 16-byte aligned.
template <typename T>
bool use_packs(const Layout& l, std::initializer_list<const void*> ptrs) {
  if (l.hw % kVec<T> != 0) return false;
  for (const void* p : ptrs) {
    if (!aligned16(p)) return false;
  }
  return true;
}

}  // namespace

void CudaBackend::batch_norm_stats(const Tensor& in, const Tensor& mean, const Tensor& var) {
  check_input("batch_norm_stats", in);
  check_channel("batch_norm_stats", in, mean, true);
  check_channel("batch_norm_stats", in, var, true);
  const Layout l = layout_of(in);
  if (l.c == 0) return;
  if (l.count() == 0) {  // as the CPU: mean 0 / 0, variance max(0, NaN) = 0
    native::fill_(mean, std::numeric_limits<double>::quiet_NaN());
    native::fill_(var, 0);
    return;
  }
  DeviceGuard guard(device_index(in));
  const Stream stream = stream_of(in);
  const Plan plan = plan_for(l);
  // Partial means, M2s and counts in double; freed to the caching allocator in stream order.
  const Tensor part = native::empty({3, plan.total_parts}, TensorOptions().dtype(kFloat64).device(in.device()));
  double* pm = data_of<double>(part);
  double* pm2 = pm + plan.total_parts;
  double* pn = pm2 + plan.total_parts;
  dispatch_device_floating(in.dtype(), "batch_norm_stats", [&]<typename T>() {
    using A = acc_t<T>;
    const T* x = data_of<const T>(in);
    if (plan.long_runs) {
      const bool vec = use_packs<T>(l, {x});
      const dim3 grid(static_cast<unsigned>(l.c), static_cast<unsigned>(plan.splits));
      stats_long_kernel<T><<<grid, threads_for(plan.per_split * l.hw), 0, stream>>>(
          x, pm, pm2, pn, l.n, l.c, l.hw, plan.per_split, plan.splits, vec);
    } else {
      const dim3 grid(static_cast<unsigned>(ceil_div(l.cols(), kColTile)), static_cast<unsigned>(plan.rows.chunks));
      stats_short_kernel<T><<<grid, kColTile * kRowLanes, 0, stream>>>(x, pm, pm2, pn, l.n, l.cols(),
                                                                        plan.rows.rows_per_chunk);
    }
    KILN_CUDA_CHECK_LAUNCH();
    stats_final_kernel<A><<<grid_for(l.c), kBlock, 0, stream>>>(pm, pm2, pn, plan.index, data_of<A>(mean),
                                                                data_of<A>(var), l.c);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::batch_norm_apply(const Tensor& in, const Tensor& mean, const Tensor& invstd, const Tensor& weight,
                                   const Tensor& bias, const Tensor& out) {
  check_input("batch_norm_apply", in);
  KILN_CHECK(out.sizes().equals(in.sizes()) && out.dtype() == in.dtype() && out.is_contiguous(),
             "batch_norm_apply: output ", out.toString(), " must match input ", in.toString());
  for (const Tensor* t : {&mean, &invstd}) check_channel("batch_norm_apply", in, *t, true);
  for (const Tensor* t : {&weight, &bias}) check_channel("batch_norm_apply", in, *t, false);
  if (in.numel() == 0) return;
  DeviceGuard guard(device_index(out));
  const Stream stream = stream_of(out);
  const Layout l = layout_of(in);
  dispatch_device_floating(in.dtype(), "batch_norm_apply", [&]<typename T>() {
    using A = acc_t<T>;
    const T* x = data_of<const T>(in);
    T* y = data_of<T>(out);
    const bool vec = use_packs<T>(l, {x, y});
    const int64_t units = vec ? in.numel() / kVec<T> : in.numel();
    apply_kernel<T><<<grid_for(units), kBlock, 0, stream>>>(x, data_of<const A>(mean), data_of<const A>(invstd),
                                                            param_of(weight), param_of(bias), y, units, l.c, l.hw,
                                                            vec);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::batch_norm_backward(const Tensor& grad_out, const Tensor& in, const Tensor& mean,
                                      const Tensor& invstd, const Tensor& weight, const Tensor& grad_in,
                                      const Tensor& grad_weight, const Tensor& grad_bias) {
  check_input("batch_norm_backward", in);
  check_like("batch_norm_backward", grad_out, in);
  check_like("batch_norm_backward", grad_in, in);
  for (const Tensor* t : {&mean, &invstd}) check_channel("batch_norm_backward", in, *t, true);
  for (const Tensor* t : {&weight, &grad_weight, &grad_bias}) check_channel("batch_norm_backward", in, *t, false);
  const Layout l = layout_of(in);
  if (l.c == 0) return;
  if (l.count() == 0) {  // empty sums: zero parameter gradients; grad_in is empty
    if (grad_weight.defined()) native::fill_(grad_weight, 0);
    if (grad_bias.defined()) native::fill_(grad_bias, 0);
    return;
  }
  if (!grad_in.defined() && !grad_weight.defined() && !grad_bias.defined()) return;
  DeviceGuard guard(device_index(in));
  const Stream stream = stream_of(in);
  const Plan plan = plan_for(l);
  // Temporaries go back to the caching allocator in stream order, after the kernels below.
  const Tensor part = native::empty({2, plan.total_parts}, TensorOptions().dtype(kFloat64).device(in.device()));
  double* ps0 = data_of<double>(part);
  double* ps1 = ps0 + plan.total_parts;
  dispatch_device_floating(in.dtype(), "batch_norm_backward", [&]<typename T>() {
    using A = acc_t<T>;
    const T* g = data_of<const T>(grad_out);
    const T* x = data_of<const T>(in);
    const A* mu = data_of<const A>(mean);
    if (plan.long_runs) {
      const bool vec = use_packs<T>(l, {g, x});
      const dim3 grid(static_cast<unsigned>(l.c), static_cast<unsigned>(plan.splits));
      sums_long_kernel<T><<<grid, threads_for(plan.per_split * l.hw), 0, stream>>>(
          g, x, mu, ps0, ps1, l.n, l.c, l.hw, plan.per_split, plan.splits, vec);
    } else {
      const dim3 grid(static_cast<unsigned>(ceil_div(l.cols(), kColTile)), static_cast<unsigned>(plan.rows.chunks));
      sums_short_kernel<T><<<grid, kColTile * kRowLanes, 0, stream>>>(g, x, mu, ps0, ps1, l.n, l.cols(), l.hw,
                                                                       plan.rows.rows_per_chunk);
    }
    KILN_CUDA_CHECK_LAUNCH();
    Tensor coef_t;
    A* coef = nullptr;
    if (grad_in.defined()) {
      coef_t = native::empty({l.c, 3}, TensorOptions().dtype(stat_dtype(in.dtype())).device(in.device()));
      coef = data_of<A>(coef_t);
    }
    sums_final_kernel<A><<<grid_for(l.c), kBlock, 0, stream>>>(ps0, ps1, plan.index, data_of<const A>(invstd),
                                                               param_of(weight), param_of(grad_weight),
                                                               param_of(grad_bias), coef, l.c,
                                                               static_cast<double>(l.count()));
    KILN_CUDA_CHECK_LAUNCH();
    if (grad_in.defined()) {
      T* gi = data_of<T>(grad_in);
      const bool vec = use_packs<T>(l, {g, x, gi});
      const int64_t units = vec ? in.numel() / kVec<T> : in.numel();
      input_grad_kernel<T><<<grid_for(units), kBlock, 0, stream>>>(g, x, mu, coef, gi, units, l.c, l.hw, vec);
      KILN_CUDA_CHECK_LAUNCH();
    }
  });
}

}  // namespace kiln::cuda
