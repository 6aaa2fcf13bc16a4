// argmax / argmin (and max/min with indices) along one dim on the GPU.
//
// Each output scans its line along `dim` for the best (value, index) pair:
// NaN beats everything, otherwise the larger (max) or smaller (min) value,
// and between equals the smaller index. That order is total, so combining
// partial results in any grouping gives torch's answer (the first index of
// the first NaN, else of the first extreme) and the same bits every run.
// Layouts as reduce.cu: a warp or block per output when the line is
// contiguous (16-byte loads) or the outputs are few, a thread per output
// when the kept dims are innermost, and grid.y splits of long lines whose
// (value, index) results a second launch reduces. Values compare in
// opmath_t (float for 16-bit floats, which is exact), one instantiation per
// dtype.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <limits>

#include "cuda_backend.h"
#include "kernels/common.cuh"
#include "kernels/reduce_util.cuh"
#include "kiln/core/native/factory.h"

namespace kiln::cuda {

namespace {

template <typename C>
struct ArgPair {
  C v;
  int64_t i;
};

template <typename C>
__device__ __forceinline__ ArgPair<C> shfl_down(ArgPair<C> p, int offset) {
  return {kiln::cuda::shfl_down(p.v, offset), kiln::cuda::shfl_down(p.i, offset)};
}

template <typename C>
__device__ __forceinline__ ArgPair<C> shfl_xor(ArgPair<C> p, int mask) {
  return {kiln::cuda::shfl_xor(p.v, mask), kiln::cuda::shfl_xor(p.i, mask)};
}

// The better of a and b in the total order described above.
template <typename C>
__device__ __forceinline__ ArgPair<C> pick(ArgPair<C> a, ArgPair<C> b, bool is_max) {
  bool take;
  if constexpr (std::is_floating_point_v<C>) {
    const bool an = a.v != a.v, bn = b.v != b.v;
    if (an || bn) {
      take = an && bn ? b.i < a.i : bn;
    } else if (a.v == b.v) {
      take = b.i < a.i;
    } else {
      take = is_max ? b.v > a.v : b.v < a.v;
    }
  } else {
    take = a.v == b.v ? b.i < a.i : is_max ? b.v > a.v : b.v < a.v;
  }
  return take ? b : a;
}

// Loses to every element: the worst value with an index past any real one.
template <typename C>
__device__ __forceinline__ ArgPair<C> worst(bool is_max) {
  C v;
  if constexpr (std::is_floating_point_v<C>) {
    v = is_max ? -infinity_of<C>() : infinity_of<C>();
  } else {
    v = is_max ? std::numeric_limits<C>::lowest() : std::numeric_limits<C>::max();
  }
  return {v, LLONG_MAX};
}

struct ArgArgs {
  StridedIndexer<3> kept;  // element offsets of output o's line start [0], its index [1] and value [2]
  int64_t num_out = 1;
  int64_t len = 1, step = 0;  // positions along dim and the input stride between them
  int64_t chunk = 1;          // positions per split (grid.y)
  int64_t split_stride = 0;   // output offset between the splits' results
  // Second pass: the index each input position stands for, at the input's
  // offsets; null in the first pass (the position is the index).
  const int64_t* in_idx = nullptr;
  bool is_max = true, has_values = false;
};

// Positions [r0, r1) of a contiguous line p (p[0] is position r0), thread t
// of tpr taking every tpr-th 16-byte vector.
template <typename T, typename C>
__device__ __forceinline__ ArgPair<C> scan_contiguous(const T* p, int64_t r0, int64_t r1, int t, int tpr, bool is_max,
                                                      ArgPair<C> best) {
  constexpr int V = kVec<T>;
  const int64_t n = r1 - r0;
  const int64_t mis = static_cast<int64_t>((reinterpret_cast<uintptr_t>(p) % 16) / sizeof(T));
  const int64_t head = std::min<int64_t>(n, mis == 0 ? 0 : V - mis);
  if (t < head) best = pick(best, ArgPair<C>{cast<C>(p[t]), r0 + t}, is_max);
  const T* q = p + head;
  const int64_t nvec = (n - head) / V;
  for (int64_t i = t; i < nvec; i += tpr) {
    T x[V];
    load_vec(q + i * V, x);
    const int64_t first = r0 + head + i * V;
#pragma unroll
    for (int k = 0; k < V; ++k) best = pick(best, ArgPair<C>{cast<C>(x[k]), first + k}, is_max);
  }
  for (int64_t j = head + nvec * V + t; j < n; j += tpr) best = pick(best, ArgPair<C>{cast<C>(p[j]), r0 + j}, is_max);
  return best;
}

template <typename T, typename C>
__device__ __forceinline__ ArgPair<C> scan_strided(const T* p, const int64_t* idx, int64_t step, int64_t r0, int64_t r1,
                                                   int64_t t, int64_t tstep, bool is_max, ArgPair<C> best) {
  for (int64_t r = r0 + t; r < r1; r += tstep) {
    const int64_t off = r * step;
    best = pick(best, ArgPair<C>{cast<C>(p[off]), idx ? idx[off] : r}, is_max);
  }
  return best;
}

template <typename T, typename C>
__device__ __forceinline__ void store_pair(int64_t* idx_out, T* val_out, const int64_t (&off)[3], int64_t shift,
                                           bool has_values, ArgPair<C> best) {
  idx_out[off[1] + shift] = best.i;
  if (has_values) val_out[off[2] + shift] = cast<T>(best.v);
}

constexpr int kRowBlock = 512;
constexpr int kWarpRowBlock = 256;
constexpr int kColBlock = 256;

template <typename T>
__global__ void __launch_bounds__(kRowBlock) arg_rows_kernel(const T* __restrict__ in, int64_t* __restrict__ idx_out,
                                                             T* __restrict__ val_out, ArgArgs a, bool warp_rows) {
  using C = opmath_t<T>;
  __shared__ ArgPair<C> scratch[kWarpSize + 1];
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int tpr = warp_rows ? kWarpSize : static_cast<int>(blockDim.x);
  const int t = warp_rows ? lane : static_cast<int>(threadIdx.x);
  const int64_t rows_per_block = warp_rows ? blockDim.x / kWarpSize : 1;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * a.chunk;
  const int64_t r1 = std::min(a.len, r0 + a.chunk);
  const bool contiguous = a.step == 1 && a.in_idx == nullptr;
  const bool is_max = a.is_max;
  auto combine = [is_max](ArgPair<C> x, ArgPair<C> y) { return pick(x, y, is_max); };
  // The loop bound is uniform over the warp (warp_rows) or the block.
  for (int64_t row = blockIdx.x * rows_per_block + (warp_rows ? warp : 0); row < a.num_out;
       row += static_cast<int64_t>(gridDim.x) * rows_per_block) {
    int64_t off[3];
    a.kept.offsets(row, off);
    ArgPair<C> best = worst<C>(is_max);
    if (contiguous) {
      best = scan_contiguous(in + off[0] + r0, r0, r1, t, tpr, is_max, best);
    } else {
      best = scan_strided(in + off[0], a.in_idx ? a.in_idx + off[0] : nullptr, a.step, r0, r1, t, tpr, is_max, best);
    }
    best = warp_rows ? warp_reduce(best, combine) : block_reduce(best, combine, worst<C>(is_max), scratch);
    if (t == 0) store_pair(idx_out, val_out, off, blockIdx.y * a.split_stride, a.has_values, best);
  }
}

template <typename T>
__global__ void __launch_bounds__(kColBlock) arg_cols_kernel(const T* __restrict__ in, int64_t* __restrict__ idx_out,
                                                             T* __restrict__ val_out, ArgArgs a) {
  using C = opmath_t<T>;
  __shared__ ArgPair<C> partial[kColBlock];
  const int bx = blockDim.x, by = blockDim.y, tx = threadIdx.x, ty = threadIdx.y;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * a.chunk;
  const int64_t r1 = std::min(a.len, r0 + a.chunk);
  const bool is_max = a.is_max;
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * bx; base < a.num_out;
       base += static_cast<int64_t>(gridDim.x) * bx) {
    const int64_t o = base + tx;
    int64_t off[3] = {0, 0, 0};
    ArgPair<C> best = worst<C>(is_max);
    if (o < a.num_out) {
      a.kept.offsets(o, off);
      best = scan_strided(in + off[0], a.in_idx ? a.in_idx + off[0] : nullptr, a.step, r0, r1, ty, by, is_max, best);
    }
    if (by > 1) {
      partial[ty * bx + tx] = best;
      __syncthreads();
      if (ty == 0)
        for (int y = 1; y < by; ++y) best = pick(best, partial[y * bx + tx], is_max);
      __syncthreads();
    }
    if (ty == 0 && o < a.num_out) store_pair(idx_out, val_out, off, blockIdx.y * a.split_stride, a.has_values, best);
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void set_contiguous(StridedIndexer<3>& ix, int k, int64_t scale) {
  int64_t s = scale;
  for (int d = ix.ndim - 1; d >= 0; --d) {
    ix.strides[k][d] = s;
    s *= ix.sizes[d];
  }
}

// As reduce.cu's launch_reduce: pick rows or columns, maybe split the line
// into grid.y pieces whose (value, index) results a second pass reduces.
template <typename T>
void launch_arg(const T* in, int64_t* idx_out, T* val_out, const ArgArgs& args, const Tensor& like,
                cudaStream_t stream, bool allow_split) {
  ArgArgs a = args;
  const int64_t sms = std::max(1, get_device_properties(device_index(like)).multi_processor_count);
  const bool line_contiguous = a.step == 1 && a.len > 1;
  const bool kept_contiguous = a.kept.ndim > 0 && a.kept.strides[0][a.kept.ndim - 1] == 1;
  bool rows;
  if (a.len <= 1) {
    rows = false;
  } else if (line_contiguous) {
    rows = !(a.len < kWarpSize && a.num_out >= kWarpSize * sms);
  } else if (kept_contiguous) {
    rows = false;
  } else {
    rows = a.num_out < 256 * sms;
  }

  int64_t splits = 1;
  dim3 grid, block;
  bool warp_rows = false;
  auto split = [&](int64_t want, int64_t min_per) {
    const int64_t s = std::clamp<int64_t>(std::min(want, a.len / min_per), 1, 1024);
    if (s == 1) return int64_t(1);
    a.chunk = ceil_div(ceil_div(a.len, s), 16) * 16;  // keeps 16-byte alignment of contiguous lines
    return ceil_div(a.len, a.chunk);
  };
  if (rows) {
    warp_rows = a.len <= 2048 || a.num_out >= 64 * sms;
    const int64_t per_block = warp_rows ? kWarpRowBlock / kWarpSize : 1;
    block = dim3(warp_rows ? kWarpRowBlock : kRowBlock);
    if (!warp_rows && allow_split && a.num_out < 4 * sms) splits = split(ceil_div(4 * sms, a.num_out), 8192);
    grid = dim3(static_cast<unsigned>(std::min<int64_t>(ceil_div(a.num_out, per_block), INT_MAX)),
                static_cast<unsigned>(splits));
  } else {
    const bool wide = a.num_out >= 2048 * sms || a.len < 64;
    const int bx = wide ? kColBlock : kWarpSize, by = kColBlock / bx;
    const int64_t blocks_x = ceil_div(a.num_out, bx);
    if (allow_split && a.len > 1 && blocks_x < 8 * sms) splits = split(ceil_div(8 * sms, blocks_x), 64 * by);
    block = dim3(bx, by);
    grid = dim3(static_cast<unsigned>(std::min<int64_t>(blocks_x, INT_MAX)), static_cast<unsigned>(splits));
  }

  Tensor temp_idx, temp_val;
  int64_t* idx_dst = idx_out;
  T* val_dst = val_out;
  if (splits > 1) {
    // Results [num_out, splits] (rows) or [splits, num_out] (columns); the
    // values are kept even for argmax: the second pass compares them.
    temp_idx = native::empty({a.num_out * splits}, TensorOptions().dtype(kInt64).device(like.device()));
    temp_val = native::empty({a.num_out * splits}, TensorOptions().dtype(like.dtype()).device(like.device()));
    idx_dst = static_cast<int64_t*>(temp_idx.data_ptr());
    val_dst = static_cast<T*>(temp_val.data_ptr());
    set_contiguous(a.kept, 1, rows ? splits : 1);
    set_contiguous(a.kept, 2, rows ? splits : 1);
    a.split_stride = rows ? 1 : a.num_out;
    a.has_values = true;
  }
  if (rows) {
    arg_rows_kernel<T><<<grid, block, 0, stream>>>(in, idx_dst, val_dst, a, warp_rows);
  } else {
    arg_cols_kernel<T><<<grid, block, 0, stream>>>(in, idx_dst, val_dst, a);
  }
  KILN_CUDA_CHECK_LAUNCH();
  if (splits == 1) return;

  ArgArgs f = args;  // the original outputs
  set_contiguous(f.kept, 0, rows ? splits : 1);
  f.len = f.chunk = splits;
  f.step = rows ? 1 : a.num_out;
  f.in_idx = idx_dst;
  launch_arg<T>(val_dst, idx_out, val_out, f, like, stream, false);
}

}  // namespace

void CudaBackend::arg_reduce(ArgReduceOp op, const Tensor& in, int64_t dim, const Tensor& values,
                             const Tensor& indices) {
  const char* name = op == ArgReduceOp::Max ? "argmax" : "argmin";
  KILN_CHECK(indices.dtype() == kInt64, name, ": indices must be int64");
  KILN_CHECK(!values.defined() || values.dtype() == in.dtype(), name, ": values must have the input's dtype");
  KILN_CHECK(indices.dim() == in.dim() && (!values.defined() || values.dim() == in.dim()), name,
             ": indices/values must have the input's rank ", in.dim());
  if (indices.numel() == 0) return;
  ArgArgs a;
  a.is_max = op == ArgReduceOp::Max;
  a.has_values = values.defined();
  a.len = in.dim() == 0 ? 1 : in.size(dim);
  a.step = in.dim() == 0 ? 0 : in.stride(dim);
  KILN_CHECK(a.len > 0, name, ": cannot reduce over an empty dim of shape ", in.sizes());
  a.chunk = a.len;
  a.num_out = indices.numel();
  // The lines' starts: every dim but `dim` (set to size 1, so dropped).
  DimVector shape = in.sizes().dims();
  if (in.dim() > 0) shape[dim] = 1;
  const Tensor* ops[3] = {&in, &indices, values.defined() ? &values : &indices};
  a.kept = make_indexer<3>(name, shape, ops);
  DeviceGuard guard(device_index(indices));
  const cudaStream_t stream = stream_of(indices);
  dispatch_device(in.dtype(), name, [&]<typename T>() {
    launch_arg<T>(data_of<const T>(in), data_of<int64_t>(indices), values.defined() ? data_of<T>(values) : nullptr, a,
                  in, stream, true);
  });
}

}  // namespace kiln::cuda
