// Layer norm on the GPU, forward and backward: the input is M contiguous
// rows of D values, statistics are per row.
//
// Rows of up to 1024 values go one per warp, held in registers (32 slots a
// lane, in 16-byte packs), so the two statistics passes and the output pass
// read memory once. Longer rows, and rows that cannot be read in packs (D
// not a multiple of the pack, unaligned data), go one per block and are
// re-read from L1/L2 for each pass.
//
// Statistics follow the CPU backend (cpu_norm_util.h): the first-pass mean
// mu1, rounded to the accumulation type, is the centre; the sums Σ(x - mu1)
// and Σ(x - mu1)² give mean = mu1 + Σ(x - mu1)/D and the biased variance
// (Σ(x - mu1)² - (Σ(x - mu1))²/D)/D, finished in double. Outputs are formed
// as (x - mu1) r + (mu1 - mean) r, which keeps the digits that x - mean
// would lose when |mean| is large against the spread.
//
// Backward per row with A = Σ g w and B = Σ g w (x - mean):
//   dx = r w g - r³ B / D (x - mean) - r A / D,
// and dweight = Σ_rows g (x - mean) r, dbias = Σ_rows g as column sums:
// per-chunk partials into a temporary, then each column's partials added in
// chunk order (no atomics; the same bits every run).
#include <cmath>

#include "cuda_backend.h"
#include "kernels/norm_util.cuh"
#include "kiln/core/native/elementwise.h"
#include "kiln/core/native/factory.h"

namespace kiln::cuda {

using namespace norm;

namespace {

// ---- one row per warp ----

constexpr int kSlots = 32;              // values per lane: rows up to 32 x 32
constexpr int64_t kWarpRowMax = kSlots * kWarp;

// Element of the row held in slot j of `lane`: packs of V consecutive values
// interleaved across lanes (the warp path needs D a multiple of V and
// 16-byte aligned rows; other rows take the block path, which keeps a
// second, scalar copy of these loops out of the compile).
template <typename T>
__device__ __forceinline__ int slot_index(int j, int lane) {
  constexpr int V = kVec<T>;
  return ((j / V) * kWarp + lane) * V + j % V;
}

// Slots past the row's end read as 0.
template <typename T>
__device__ __forceinline__ void load_slots(const T* p, int d, int lane, acc_t<T> (&v)[kSlots]) {
  using A = acc_t<T>;
  constexpr int V = kVec<T>;
#pragma unroll
  for (int k = 0; k < kSlots / V; ++k) {
    const int e = (k * kWarp + lane) * V;
    A t[V];
    if (e < d) {
      load_pack(p + e, t);
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) t[j] = A(0);
    }
#pragma unroll
    for (int j = 0; j < V; ++j) v[k * V + j] = t[j];
  }
}

template <typename T>
__device__ __forceinline__ void store_slots(T* p, int d, int lane, const acc_t<T> (&v)[kSlots]) {
  using A = acc_t<T>;
  constexpr int V = kVec<T>;
#pragma unroll
  for (int k = 0; k < kSlots / V; ++k) {
    const int e = (k * kWarp + lane) * V;
    if (e < d) {
      A t[V];
#pragma unroll
      for (int j = 0; j < V; ++j) t[j] = v[k * V + j];
      store_pack(p + e, t);
    }
  }
}

// The corrected two-pass moments from the centre mu1 and the sums around it
// (cpu_norm_util.h's finish_moments); fmax keeps the CPU's max(0, var),
// which also maps a NaN variance to 0.
struct RowStats {
  double mean, rstd;
};

__device__ __forceinline__ RowStats finish(double mu1, double s1, double s2, double n, double eps) {
  const double mean = mu1 + s1 / n;
  const double var = fmax(0.0, (s2 - s1 * s1 / n) / n);
  return {mean, 1.0 / sqrt(var + eps)};
}

template <typename T>
__global__ void __launch_bounds__(kBlock) layer_norm_warp_kernel(
    const T* __restrict__ x, T* __restrict__ y, acc_t<T>* __restrict__ mean, acc_t<T>* __restrict__ rstd, Param w,
    Param b, int64_t rows, int d, double eps) {
  using A = acc_t<T>;
  const int lane = threadIdx.x % kWarp;
  const int64_t per_block = blockDim.x / kWarp;
  for (int64_t row = blockIdx.x * per_block + threadIdx.x / kWarp; row < rows; row += gridDim.x * per_block) {
    A v[kSlots];
    load_slots(x + row * d, d, lane, v);
    A s = A(0);
#pragma unroll
    for (int j = 0; j < kSlots; ++j) s += v[j];  // empty slots hold 0
    s = warp_sum(s);
    const A mu1 = static_cast<A>(static_cast<double>(s) / d);
    A s1 = A(0), s2 = A(0);
#pragma unroll
    for (int j = 0; j < kSlots; ++j) {
      if (slot_index<T>(j, lane) < d) {
        const A c = v[j] - mu1;
        s1 += c;
        s2 += c * c;
      }
    }
    s1 = warp_sum(s1);
    s2 = warp_sum(s2);
    const RowStats st = finish(mu1, s1, s2, d, eps);
    if (lane == 0) {
      mean[row] = static_cast<A>(st.mean);
      rstd[row] = static_cast<A>(st.rstd);
    }
    const A r = static_cast<A>(st.rstd), sh = static_cast<A>((static_cast<double>(mu1) - st.mean) * st.rstd);
#pragma unroll
    for (int j = 0; j < kSlots; ++j) {
      const int e = slot_index<T>(j, lane);
      if (e < d) {
        A t = (v[j] - mu1) * r + sh;
        if (w.defined()) t *= load_param<A>(w, e);
        if (b.defined()) t += load_param<A>(b, e);
        v[j] = t;
      }
    }
    store_slots(y + row * d, d, lane, v);
  }
}

template <typename T>
__global__ void __launch_bounds__(kBlock) layer_norm_backward_warp_kernel(
    const T* __restrict__ g, const T* __restrict__ x, const acc_t<T>* __restrict__ mean,
    const acc_t<T>* __restrict__ rstd, Param w, T* __restrict__ gi, int64_t rows, int d) {
  using A = acc_t<T>;
  const int lane = threadIdx.x % kWarp;
  const int64_t per_block = blockDim.x / kWarp;
  const double inv_d = 1.0 / d;
  for (int64_t row = blockIdx.x * per_block + threadIdx.x / kWarp; row < rows; row += gridDim.x * per_block) {
    A gv[kSlots], xv[kSlots];
    load_slots(g + row * d, d, lane, gv);
    load_slots(x + row * d, d, lane, xv);
    const A mu = mean[row], rs = rstd[row];
    A sa = A(0), sb = A(0);
#pragma unroll
    for (int j = 0; j < kSlots; ++j) {
      const int e = slot_index<T>(j, lane);
      if (e < d) {
        const A ge = w.defined() ? gv[j] * load_param<A>(w, e) : gv[j];
        sa += ge;
        sb += ge * (xv[j] - mu);
      }
    }
    sa = warp_sum(sa);
    sb = warp_sum(sb);
    const double rsd = static_cast<double>(rs);
    const A c2 = static_cast<A>(-rsd * rsd * rsd * static_cast<double>(sb) * inv_d);
    const A c3 = static_cast<A>(-rsd * static_cast<double>(sa) * inv_d);
#pragma unroll
    for (int j = 0; j < kSlots; ++j) {
      const int e = slot_index<T>(j, lane);
      if (e < d) {
        const A k1 = w.defined() ? rs * load_param<A>(w, e) : rs;
        gv[j] = gv[j] * k1 + (xv[j] - mu) * c2 + c3;
      }
    }
    store_slots(gi + row * d, d, lane, gv);
  }
}

// ---- one row per block ----

template <typename T>
__global__ void __launch_bounds__(kMaxRowBlock) layer_norm_block_kernel(
    const T* __restrict__ x, T* __restrict__ y, acc_t<T>* __restrict__ mean, acc_t<T>* __restrict__ rstd, Param w,
    Param b, int64_t rows, int64_t d, double eps, bool vec) {
  using A = acc_t<T>;
  __shared__ A sh[2 * kMaxWarps];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * d;
    A s = A(0);
    row_visit1(xr, d, vec, [&](int64_t, A v) { s += v; });
    s = block_sum(s, sh);
    const A mu1 = static_cast<A>(static_cast<double>(s) / static_cast<double>(d));
    A s1 = A(0), s2 = A(0);
    row_visit1(xr, d, vec, [&](int64_t, A v) {
      const A c = v - mu1;
      s1 += c;
      s2 += c * c;
    });
    block_sum2(s1, s2, sh);
    const RowStats st = finish(mu1, s1, s2, static_cast<double>(d), eps);
    if (threadIdx.x == 0) {
      mean[row] = static_cast<A>(st.mean);
      rstd[row] = static_cast<A>(st.rstd);
    }
    const A r = static_cast<A>(st.rstd), shift = static_cast<A>((static_cast<double>(mu1) - st.mean) * st.rstd);
    row_map<false>(xr, xr, y + row * d, d, vec, [&](int64_t e, A, A v) {
      A t = (v - mu1) * r + shift;
      if (w.defined()) t *= load_param<A>(w, e);
      if (b.defined()) t += load_param<A>(b, e);
      return t;
    });
  }
}

template <typename T>
__global__ void __launch_bounds__(kMaxRowBlock) layer_norm_backward_block_kernel(
    const T* __restrict__ g, const T* __restrict__ x, const acc_t<T>* __restrict__ mean,
    const acc_t<T>* __restrict__ rstd, Param w, T* __restrict__ gi, int64_t rows, int64_t d, bool vec) {
  using A = acc_t<T>;
  __shared__ A sh[2 * kMaxWarps];
  const double inv_d = 1.0 / static_cast<double>(d);
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* gr = g + row * d;
    const T* xr = x + row * d;
    const A mu = mean[row], rs = rstd[row];
    A sa = A(0), sb = A(0);
    row_visit2(gr, xr, d, vec, [&](int64_t e, A gv, A xv) {
      const A ge = w.defined() ? gv * load_param<A>(w, e) : gv;
      sa += ge;
      sb += ge * (xv - mu);
    });
    block_sum2(sa, sb, sh);
    const double rsd = static_cast<double>(rs);
    const A c2 = static_cast<A>(-rsd * rsd * rsd * static_cast<double>(sb) * inv_d);
    const A c3 = static_cast<A>(-rsd * static_cast<double>(sa) * inv_d);
    row_map<true>(gr, xr, gi + row * d, d, vec, [&](int64_t e, A gv, A xv) {
      const A k1 = w.defined() ? rs * load_param<A>(w, e) : rs;
      return gv * k1 + (xv - mu) * c2 + c3;
    });
  }
}

// ---- parameter gradients: column sums over rows ----

// Block (column tile, row chunk): per column, Σ g (x - mean) r and Σ g over
// the chunk's rows, row lanes combined in lane order. pw / pb may be null.
template <typename T>
__global__ void __launch_bounds__(kColTile * kRowLanes) layer_norm_param_partial_kernel(
    const T* __restrict__ g, const T* __restrict__ x, const acc_t<T>* __restrict__ mean,
    const acc_t<T>* __restrict__ rstd, acc_t<T>* __restrict__ pw, acc_t<T>* __restrict__ pb, int64_t rows,
    int64_t d, int64_t rows_per_chunk) {
  using A = acc_t<T>;
  __shared__ A sw[kRowLanes][kColTile + 1], sb[kRowLanes][kColTile + 1];
  const int tx = threadIdx.x % kColTile, ty = threadIdx.x / kColTile;
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kColTile + tx;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_chunk;
  const int64_t r1 = std::min(rows, r0 + rows_per_chunk);
  A aw = A(0), ab = A(0);
  if (col < d) {
    for (int64_t r = r0 + ty; r < r1; r += kRowLanes) {
      const A gv = cast<A>(g[r * d + col]), xv = cast<A>(x[r * d + col]);
      aw += gv * ((xv - mean[r]) * rstd[r]);
      ab += gv;
    }
  }
  sw[ty][tx] = aw;
  sb[ty][tx] = ab;
  __syncthreads();
  if (ty == 0 && col < d) {
    A tw = A(0), tb = A(0);
#pragma unroll
    for (int k = 0; k < kRowLanes; ++k) {
      tw += sw[k][tx];
      tb += sb[k][tx];
    }
    const int64_t at = static_cast<int64_t>(blockIdx.y) * d + col;
    if (pw != nullptr) pw[at] = tw;
    if (pb != nullptr) pb[at] = tb;
  }
}

// Each column's chunk partials in chunk order, in double, stored in the
// parameters' dtype.
template <typename A>
__global__ void param_final_kernel(const A* __restrict__ pw, const A* __restrict__ pb, Param gw, Param gb,
                                   int64_t chunks, int64_t d) {
  for (int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; col < d;
       col += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double tw = 0, tb = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      if (pw != nullptr) tw += static_cast<double>(pw[c * d + col]);
      if (pb != nullptr) tb += static_cast<double>(pb[c * d + col]);
    }
    if (pw != nullptr) store_param(gw, col, tw);
    if (pb != nullptr) store_param(gb, col, tb);
  }
}

// ---- host side ----

DType stat_dtype(DType t) { return t == kFloat64 ? kFloat64 : kFloat32; }

void check_same(const char* op, const Tensor& a, const char* na, const Tensor& b, const char* nb) {
  KILN_CHECK(a.sizes().equals(b.sizes()) && a.dtype() == b.dtype() && a.is_contiguous() && b.is_contiguous(), op,
             ": ", na, " ", a.toString(), " and ", nb, " ", b.toString(),
             " must be contiguous with one shape and dtype");
}

void check_stat(const char* op, const Tensor& s, const Tensor& in, int64_t count) {
  KILN_CHECK(s.dtype() == stat_dtype(in.dtype()) && s.is_contiguous() && s.numel() == count, op,
             ": statistics must be contiguous ", stat_dtype(in.dtype()), " with ", count, " elements for input ",
             in.toString(), ", got ", s.toString());
}

void check_param(const char* op, const Tensor& p, const Tensor& in, int64_t d) {
  KILN_CHECK(!p.defined() || (p.numel() == d && p.is_contiguous() && p.is_floating_point()), op, ": parameter ",
             p.toString(), " must be contiguous floating with ", d, " elements for input ", in.toString());
}

// Same grid cap as grid_for: enough blocks to fill the GPU several times.
unsigned blocks_for(int64_t items, int64_t per_block) { return grid_for(items, static_cast<int>(per_block)); }

// Threads of a row's block: a warp for short rows (the unaligned rows the
// warp path leaves here), about 8 values a thread, up to kMaxRowBlock.
int block_threads(int64_t d) {
  int t = kWarp;
  while (t < kMaxRowBlock && t * 8 < d) t *= 2;
  return t;
}

}  // namespace

void CudaBackend::layer_norm(const Tensor& in, const Tensor& weight, const Tensor& bias, double eps,
                             const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  check_same("layer_norm", in, "input", out, "output");
  const int64_t rows = mean.numel();
  check_stat("layer_norm", mean, in, rows);
  check_stat("layer_norm", rstd, in, rows);
  if (rows == 0) return;
  const int64_t d = in.numel() / rows;
  check_param("layer_norm", weight, in, d);
  check_param("layer_norm", bias, in, d);
  DeviceGuard guard(device_index(out));
  const Stream stream = stream_of(out);
  const Param w = param_of(weight), b = param_of(bias);
  dispatch_device_floating(in.dtype(), "layer_norm", [&]<typename T>() {
    using A = acc_t<T>;
    const T* x = data_of<const T>(in);
    T* y = data_of<T>(out);
    const bool vec = d % kVec<T> == 0 && aligned16(x) && aligned16(y);
    if (vec && d <= kWarpRowMax) {
      const int64_t per_block = kBlock / kWarp;
      layer_norm_warp_kernel<T><<<blocks_for(rows, per_block), kBlock, 0, stream>>>(
          x, y, data_of<A>(mean), data_of<A>(rstd), w, b, rows, static_cast<int>(d), eps);
    } else {
      layer_norm_block_kernel<T><<<blocks_for(rows, 1), block_threads(d), 0, stream>>>(
          x, y, data_of<A>(mean), data_of<A>(rstd), w, b, rows, d, eps, vec);
    }
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::layer_norm_backward(const Tensor& grad_out, const Tensor& in, const Tensor& mean,
                                      const Tensor& rstd, const Tensor& weight, const Tensor& grad_in,
                                      const Tensor& grad_weight, const Tensor& grad_bias) {
  check_same("layer_norm_backward", in, "input", grad_out, "grad_out");
  if (grad_in.defined()) check_same("layer_norm_backward", in, "input", grad_in, "grad_in");
  const int64_t rows = mean.numel();
  check_stat("layer_norm_backward", mean, in, rows);
  check_stat("layer_norm_backward", rstd, in, rows);
  if (rows == 0) {  // no rows: the column sums are empty sums
    if (grad_weight.defined() && grad_weight.numel() > 0) native::fill_(grad_weight, 0);
    if (grad_bias.defined() && grad_bias.numel() > 0) native::fill_(grad_bias, 0);
    return;
  }
  const int64_t d = in.numel() / rows;
  check_param("layer_norm_backward", weight, in, d);
  check_param("layer_norm_backward", grad_weight, in, d);
  check_param("layer_norm_backward", grad_bias, in, d);
  if (d == 0) return;
  DeviceGuard guard(device_index(in));
  const Stream stream = stream_of(in);
  const Param w = param_of(weight);
  dispatch_device_floating(in.dtype(), "layer_norm_backward", [&]<typename T>() {
    using A = acc_t<T>;
    const T* g = data_of<const T>(grad_out);
    const T* x = data_of<const T>(in);
    const A* mu = data_of<const A>(mean);
    const A* rs = data_of<const A>(rstd);
    if (grad_in.defined()) {
      T* gi = data_of<T>(grad_in);
      const bool vec = d % kVec<T> == 0 && aligned16(g) && aligned16(x) && aligned16(gi);
      if (vec && d <= kWarpRowMax) {
        const int64_t per_block = kBlock / kWarp;
        layer_norm_backward_warp_kernel<T><<<blocks_for(rows, per_block), kBlock, 0, stream>>>(
            g, x, mu, rs, w, gi, rows, static_cast<int>(d));
      } else {
        layer_norm_backward_block_kernel<T><<<blocks_for(rows, 1), block_threads(d), 0, stream>>>(
            g, x, mu, rs, w, gi, rows, d, vec);
      }
      KILN_CUDA_CHECK_LAUNCH();
    }
    const bool want_w = grad_weight.defined(), want_b = grad_bias.defined();
    if (!want_w && !want_b) return;
    const ColSplit split = col_split(rows, d);
    const TensorOptions opts = TensorOptions().dtype(stat_dtype(in.dtype())).device(in.device());
    // The temporaries go back to the caching allocator in stream order, after the kernels that use them.
    const Tensor part_w = want_w ? native::empty({split.chunks, d}, opts) : Tensor();
    const Tensor part_b = want_b ? native::empty({split.chunks, d}, opts) : Tensor();
    A* pw = want_w ? data_of<A>(part_w) : nullptr;
    A* pb = want_b ? data_of<A>(part_b) : nullptr;
    const dim3 grid(static_cast<unsigned>(ceil_div(d, kColTile)), static_cast<unsigned>(split.chunks));
    layer_norm_param_partial_kernel<T><<<grid, kColTile * kRowLanes, 0, stream>>>(g, x, mu, rs, pw, pb, rows, d,
                                                                                   split.rows_per_chunk);
    KILN_CUDA_CHECK_LAUNCH();
    param_final_kernel<A><<<grid_for(d), kBlock, 0, stream>>>(pw, pb, param_of(grad_weight), param_of(grad_bias),
                                                              split.chunks, d);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace kiln::cuda
