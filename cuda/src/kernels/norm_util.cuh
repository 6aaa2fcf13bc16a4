#pragma once
// Shared pieces of the normalisation kernels (layer_norm.cu, group_norm.cu,
// batch_norm.cu): warp and block sums, Welford merges, parameters read and
// written in their own dtype, 16-byte vector access, and the row split of
// the two-stage column reductions.
//
// Determinism: every reduction here combines values in an order fixed by
// the launch shape (butterfly within a warp, warps in index order), never by
// timing, so one input gives the same bits on every run. No float atomics.
#include <cstdint>

#include "kernels/common.cuh"

namespace kiln::cuda::norm {

// Accumulation (and statistics) type: float for f16/bf16/f32, double for f64,
// as the CPU backend's compute type and stat dtype.
template <typename T>
using acc_t = opmath_t<T>;

inline constexpr unsigned kFullMask = 0xffffffffu;
inline constexpr int kWarp = 32;
inline constexpr int kMaxWarps = 32;  // 1024 threads
// Largest block for one row / group / channel: 512 threads leave 128
// registers a thread, enough for the row loops without spilling.
inline constexpr int kMaxRowBlock = 512;

// ---- sums ----

// Butterfly sum: every lane ends with the same bits (a + b == b + a at each
// level), so no broadcast is needed afterwards.
template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

// Block-wide sums of two values, returned to every thread. blockDim.x is a
// multiple of 32. `sh` holds 2 * kMaxWarps values and may be reused by the
// next call (the leading barrier protects it).
template <typename A>
__device__ __forceinline__ void block_sum2(A& a, A& b, A* sh) {
  a = warp_sum(a);
  b = warp_sum(b);
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp, nw = blockDim.x / kWarp;
  __syncthreads();
  if (lane == 0) {
    sh[warp] = a;
    sh[kMaxWarps + warp] = b;
  }
  __syncthreads();
  // Every warp sums the per-warp partials itself: all threads get the same bits.
  a = warp_sum(lane < nw ? sh[lane] : A(0));
  b = warp_sum(lane < nw ? sh[kMaxWarps + lane] : A(0));
}

template <typename A>
__device__ __forceinline__ A block_sum(A a, A* sh) {
  A unused = A(0);
  block_sum2(a, unused, sh);
  return a;
}

// ---- Welford ----

// Running mean and sum of squared deviations of `n` values.
// No member initialisers: states live in __shared__ arrays, which cannot
// have constructors; start one with reset().
template <typename A>
struct Welford {
  A mean, m2;
  int64_t n;

  __device__ __forceinline__ void reset() {
    mean = A(0);
    m2 = A(0);
    n = 0;
  }
  __device__ __forceinline__ void add(A x) {
    ++n;
    const A d = x - mean;
    mean += d / static_cast<A>(n);
    m2 += d * (x - mean);
  }
  // Chan et al.'s parallel combination; `o` is the later part in the fixed order.
  __device__ __forceinline__ void merge(A om, A om2, int64_t on) {
    if (on == 0) return;
    if (n == 0) {
      mean = om;
      m2 = om2;
      n = on;
      return;
    }
    const int64_t t = n + on;
    const A d = om - mean, f = static_cast<A>(on) / static_cast<A>(t);
    mean += d * f;
    m2 += om2 + d * d * static_cast<A>(n) * f;
    n = t;
  }
};

// Merges a warp's states in a fixed tree; lane 0 holds the result.
template <typename A>
__device__ __forceinline__ void warp_merge(Welford<A>& w) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const A om = __shfl_down_sync(kFullMask, w.mean, o);
    const A om2 = __shfl_down_sync(kFullMask, w.m2, o);
    const int64_t on = __shfl_down_sync(kFullMask, static_cast<long long>(w.n), o);
    w.merge(om, om2, on);
  }
}

// Block-wide merge; thread 0 holds the result. `sh` holds kMaxWarps states.
template <typename A>
__device__ __forceinline__ void block_merge(Welford<A>& w, Welford<A>* sh) {
  warp_merge(w);
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp, nw = blockDim.x / kWarp;
  __syncthreads();
  if (lane == 0) sh[warp] = w;
  __syncthreads();
  if (warp == 0) {
    if (lane < nw) {
      w = sh[lane];
    } else {
      w.reset();
    }
    warp_merge(w);
  }
}

// ---- parameters in their own dtype ----

// weight / bias / their gradients: f32, f64, f16 or bf16 independently of
// the input (torch's mixed f16/bf16 input with f32 parameters). The dtype is
// a runtime value, switched on inside the kernels (uniform across a launch)
// rather than multiplying the instantiations.
enum ParamKind : int { kNone = 0, kF32, kF64, kF16, kBF16 };

struct Param {
  void* p = nullptr;
  int kind = kNone;
  __host__ __device__ bool defined() const { return kind != kNone; }
};

inline Param param_of(const Tensor& t) {
  if (!t.defined() || t.numel() == 0) return {};
  switch (t.dtype()) {
    case kFloat32: return {t.data_ptr(), kF32};
    case kFloat64: return {t.data_ptr(), kF64};
    case kFloat16: return {t.data_ptr(), kF16};
    case kBFloat16: return {t.data_ptr(), kBF16};
    default: break;
  }
  KILN_ERROR("norm (CUDA): parameter ", t.toString(), " must be floating-point");
}

template <typename A>
__device__ __forceinline__ A load_param(const Param& q, int64_t i) {
  switch (q.kind) {
    case kF32: return static_cast<A>(static_cast<const float*>(q.p)[i]);
    case kF64: return static_cast<A>(static_cast<const double*>(q.p)[i]);
    case kF16: return static_cast<A>(__half2float(static_cast<const __half*>(q.p)[i]));
    case kBF16: return static_cast<A>(__bfloat162float(static_cast<const __nv_bfloat16*>(q.p)[i]));
    default: return A(0);
  }
}

// One rounding from double, as the CPU's store_values.
__device__ __forceinline__ void store_param(const Param& q, int64_t i, double v) {
  switch (q.kind) {
    case kF32: static_cast<float*>(q.p)[i] = static_cast<float>(v); break;
    case kF64: static_cast<double*>(q.p)[i] = v; break;
    case kF16: static_cast<__half*>(q.p)[i] = cast<__half>(v); break;
    case kBF16: static_cast<__nv_bfloat16*>(q.p)[i] = cast<__nv_bfloat16>(v); break;
    default: break;
  }
}

// ---- 16-byte vector access ----

template <typename T>
inline constexpr int kVec = static_cast<int>(16 / sizeof(T));

template <typename T>
struct alignas(16) Pack {
  T v[kVec<T>];
};

// V values of T at p (16-byte aligned) as the accumulation type.
template <typename T>
__device__ __forceinline__ void load_pack(const T* p, acc_t<T> (&out)[kVec<T>]) {
  const Pack<T> k = *reinterpret_cast<const Pack<T>*>(p);
#pragma unroll
  for (int j = 0; j < kVec<T>; ++j) out[j] = cast<acc_t<T>>(k.v[j]);
}

template <typename T>
__device__ __forceinline__ void store_pack(T* p, const acc_t<T> (&in)[kVec<T>]) {
  Pack<T> k;
#pragma unroll
  for (int j = 0; j < kVec<T>; ++j) k.v[j] = cast<T>(in[j]);
  *reinterpret_cast<Pack<T>*>(p) = k;
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// ---- one row across a block ----

// The block's threads visit the d contiguous values of a row (two rows of
// one layout for row_visit2), in packs of kVec<T> when `vec` (d a multiple
// of the pack and every pointer 16-byte aligned): f(e, value...) per element
// e, values in the accumulation type.
template <typename T, typename F>
__device__ __forceinline__ void row_visit1(const T* a, int64_t d, bool vec, F&& f) {
  using A = acc_t<T>;
  constexpr int V = kVec<T>;
  if (vec) {
    for (int64_t p = threadIdx.x; p < d / V; p += blockDim.x) {
      A va[V];
      load_pack(a + p * V, va);
#pragma unroll
      for (int j = 0; j < V; ++j) f(p * V + j, va[j]);
    }
  } else {
    for (int64_t e = threadIdx.x; e < d; e += blockDim.x) f(e, cast<A>(a[e]));
  }
}

template <typename T, typename F>
__device__ __forceinline__ void row_visit2(const T* a, const T* b, int64_t d, bool vec, F&& f) {
  using A = acc_t<T>;
  constexpr int V = kVec<T>;
  if (vec) {
    for (int64_t p = threadIdx.x; p < d / V; p += blockDim.x) {
      A va[V], vb[V];
      load_pack(a + p * V, va);
      load_pack(b + p * V, vb);
#pragma unroll
      for (int j = 0; j < V; ++j) f(p * V + j, va[j], vb[j]);
    }
  } else {
    for (int64_t e = threadIdx.x; e < d; e += blockDim.x) f(e, cast<A>(a[e]), cast<A>(b[e]));
  }
}

// y[e] = f(e, g[e], x[e]) over a row (g unread and passed as 0 unless G).
template <bool G, typename T, typename F>
__device__ __forceinline__ void row_map(const T* g, const T* x, T* y, int64_t d, bool vec, F&& f) {
  using A = acc_t<T>;
  constexpr int V = kVec<T>;
  if (vec) {
    for (int64_t p = threadIdx.x; p < d / V; p += blockDim.x) {
      A vg[V], vx[V];
      if constexpr (G) load_pack(g + p * V, vg);
      load_pack(x + p * V, vx);
#pragma unroll
      for (int j = 0; j < V; ++j) vx[j] = f(p * V + j, G ? vg[j] : A(0), vx[j]);
      store_pack(y + p * V, vx);
    }
  } else {
    for (int64_t e = threadIdx.x; e < d; e += blockDim.x) {
      y[e] = cast<T>(f(e, G ? cast<A>(g[e]) : A(0), cast<A>(x[e])));
    }
  }
}

// ---- walking runs ----

// Calls f(run, i) for the positions start, start + stride, ... of the runs
// [run0, run1) of `len` items each, in row-major (run, i) order, without a
// division per position.
template <typename F>
__device__ __forceinline__ void walk_runs(int64_t run0, int64_t run1, int64_t len, int64_t start, int64_t stride,
                                          F&& f) {
  if (len <= 0) return;
  const int64_t q = stride / len, r = stride % len;
  int64_t run = run0 + start / len, i = start % len;
  while (run < run1) {
    f(run, i);
    run += q;
    i += r;
    if (i >= len) {
      i -= len;
      ++run;
    }
  }
}

// ---- column reductions over rows ----

// A [rows, cols] column reduction runs in blocks of 32 columns x 8 row lanes
// over chunks of rows; each (chunk, column) partial goes to a temporary and a
// second kernel adds a column's partials in chunk order. The chunking is a
// function of the shape only (never of the device), so results are the same
// on every GPU.
inline constexpr int kColTile = 32;
inline constexpr int kRowLanes = 8;

struct ColSplit {
  int64_t chunks = 1, rows_per_chunk = 1;
};

inline ColSplit col_split(int64_t rows, int64_t cols) {
  const int64_t tiles = (cols + kColTile - 1) / kColTile;
  // About 1024 blocks in all, each covering at least 32 rows when there are.
  int64_t chunks = std::max<int64_t>(1, (1024 + tiles - 1) / tiles);
  chunks = std::min<int64_t>(chunks, std::max<int64_t>(1, (rows + 31) / 32));
  chunks = std::min<int64_t>(chunks, 65535);
  ColSplit s;
  s.rows_per_chunk = std::max<int64_t>(1, (rows + chunks - 1) / chunks);
  s.chunks = std::max<int64_t>(1, (rows + s.rows_per_chunk - 1) / s.rows_per_chunk);
  return s;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace kiln::cuda::norm
