// softmax / log_softmax along one dim, and their backward, on the GPU.
//
// Lines along `dim` of any strides. Arithmetic in opmath_t (float for 16-bit
// floats), max-shifted for stability, exp/log at full precision. Three
// kernels per direction:
//   - warp: a warp per line of at most kMaxWarpLen elements, held in
//     registers, so the input is read once (two passes: max, then sum);
//   - block: a block per longer line: one pass for the max and the sum of
//     exp together (a running maximum whose sum is rescaled when it grows),
//     one pass to write;
//   - strided: when `dim` is not innermost but the lines' neighbours are, a
//     thread per line (consecutive threads, adjacent lines: coalesced) with
//     threadIdx.y splitting each line, combined in shared memory.
// Every combine runs in an order fixed by the launch shape: same bits every
// run.
//
// Special values as the CPU's two-pass formula gives them: a NaN anywhere in
// a line, a +inf, or a line of only -inf makes the whole line NaN; -inf
// elements of an otherwise finite line give 0 (log: -inf).
#include <algorithm>
#include <climits>
#include <cstdint>

#include "cuda_backend.h"
#include "kernels/common.cuh"
#include "kernels/reduce_util.cuh"

namespace kiln::cuda {

namespace {

template <int N>
struct LineArgs {
  StridedIndexer<N> base;  // element offsets of line l's first element in each operand
  int64_t count = 1, len = 1;
  int64_t step[N];  // each operand's stride along dim
  bool log = false;
};

// Elements per lane in the warp kernels: 32 floats or 16 doubles of registers per operand.
template <typename C>
inline constexpr int kPerLane = sizeof(C) == 8 ? 16 : 32;
template <typename C>
inline constexpr int64_t kMaxWarpLen = kWarpSize * kPerLane<C>;

constexpr int kWarpBlock = 256;  // 8 lines per block
constexpr int kLineBlock = 512;
constexpr int kStridedBlock = 256;

// ---- running max and sum of exp(x - max) ----

template <typename C>
struct MaxSum {
  C m, s;
};

template <typename C>
__device__ __forceinline__ MaxSum<C> shfl_down(MaxSum<C> v, int offset) {
  return {kiln::cuda::shfl_down(v.m, offset), kiln::cuda::shfl_down(v.s, offset)};
}

template <typename C>
__device__ __forceinline__ MaxSum<C> shfl_xor(MaxSum<C> v, int mask) {
  return {kiln::cuda::shfl_xor(v.m, mask), kiln::cuda::shfl_xor(v.s, mask)};
}

template <typename C>
__device__ __forceinline__ MaxSum<C> ms_empty() {
  return {-infinity_of<C>(), C(0)};
}

// Adds x. A NaN poisons the state; a new maximum rescales the sum; -inf
// adds nothing (exp(-inf - m) is 0 for any m that matters, and skipping it
// keeps a leading -inf from turning the sum into exp(-inf + inf) = NaN).
template <typename C>
__device__ __forceinline__ MaxSum<C> ms_push(MaxSum<C> st, C x) {
  if (x != x) {
    st.m = x;
    st.s = x;
  } else if (x > st.m) {
    st.s = st.s * exp_op(st.m - x) + C(1);
    st.m = x;
  } else if (x != -infinity_of<C>()) {
    st.s += exp_op(x - st.m);
  }
  return st;
}

// Commutative (bit for bit), so any tree of combines over the same grouping agrees.
template <typename C>
__device__ __forceinline__ MaxSum<C> ms_combine(MaxSum<C> a, MaxSum<C> b) {
  if (a.m != a.m || b.m != b.m) return {quiet_nan_of<C>(), quiet_nan_of<C>()};
  const C m = a.m > b.m ? a.m : b.m;
  const C ninf = -infinity_of<C>();
  const C sa = a.m == ninf ? C(0) : a.s * exp_op(a.m - m);
  const C sb = b.m == ninf ? C(0) : b.s * exp_op(b.m - m);
  return {m, sa + sb};
}

// The two-pass formula's sum is NaN when the max is infinite (inf - inf
// appears in it); the running one never computes that difference.
template <typename C>
__device__ __forceinline__ MaxSum<C> ms_finish(MaxSum<C> st) {
  if (st.m == infinity_of<C>() || st.m == -infinity_of<C>()) st.s = quiet_nan_of<C>();
  return st;
}

template <typename C>
__device__ __forceinline__ C softmax_value(C x, C m, C shift_or_scale, bool log) {
  return log ? x - shift_or_scale : exp_op(x - m) * shift_or_scale;
}

// log: the shift m + log(s); softmax: the scale 1 / s.
template <typename C>
__device__ __forceinline__ C shift_or_scale(C m, C s, bool log) {
  return log ? m + log_op(s) : C(1) / s;
}

// ---- forward ----

template <typename T>
__global__ void __launch_bounds__(kWarpBlock) softmax_warp_kernel(const T* __restrict__ in, T* __restrict__ out,
                                                                  LineArgs<2> a) {
  using C = opmath_t<T>;
  constexpr int P = kPerLane<C>;
  const int lane = threadIdx.x % kWarpSize;
  const int64_t lines_per_block = blockDim.x / kWarpSize;
  const int iters = static_cast<int>((a.len + kWarpSize - 1) / kWarpSize);
  const int64_t n = a.len, si = a.step[0], so = a.step[1];
  for (int64_t l = blockIdx.x * lines_per_block + threadIdx.x / kWarpSize; l < a.count;
       l += static_cast<int64_t>(gridDim.x) * lines_per_block) {
    int64_t off[2];
    a.base.offsets(l, off);
    const T* x = in + off[0];
    C v[P];
    C m = -infinity_of<C>();
#pragma unroll
    for (int k = 0; k < P; ++k) {
      const int64_t i = static_cast<int64_t>(k) * kWarpSize + lane;
      v[k] = k < iters && i < n ? cast<C>(x[i * si]) : -infinity_of<C>();
      m = max_propagate_nan(m, v[k]);
    }
    m = warp_allreduce(m, [](C p, C q) { return max_propagate_nan(p, q); });
    C s = 0;
#pragma unroll
    for (int k = 0; k < P; ++k) {
      const int64_t i = static_cast<int64_t>(k) * kWarpSize + lane;
      if (k < iters && i < n) {
        const C e = exp_op(v[k] - m);
        s += e;
        if (!a.log) v[k] = e;
      }
    }
    s = warp_allreduce(s, [](C p, C q) { return p + q; });
    const C f = shift_or_scale(m, s, a.log);
    T* y = out + off[1];
#pragma unroll
    for (int k = 0; k < P; ++k) {
      const int64_t i = static_cast<int64_t>(k) * kWarpSize + lane;
      if (k < iters && i < n) y[i * so] = cast<T>(a.log ? v[k] - f : v[k] * f);
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kLineBlock) softmax_block_kernel(const T* __restrict__ in, T* __restrict__ out,
                                                                   LineArgs<2> a) {
  using C = opmath_t<T>;
  __shared__ MaxSum<C> scratch[kWarpSize + 1];
  const int64_t n = a.len, si = a.step[0], so = a.step[1];
  for (int64_t l = blockIdx.x; l < a.count; l += gridDim.x) {  // uniform over the block
    int64_t off[2];
    a.base.offsets(l, off);
    const T* x = in + off[0];
    MaxSum<C> st = ms_empty<C>();
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) st = ms_push(st, cast<C>(x[i * si]));
    st = ms_finish(block_allreduce(st, [](MaxSum<C> p, MaxSum<C> q) { return ms_combine(p, q); }, ms_empty<C>(),
                                   scratch));
    const C f = shift_or_scale(st.m, st.s, a.log);
    T* y = out + off[1];
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) y[i * so] = cast<T>(softmax_value(cast<C>(x[i * si]), st.m, f, a.log));
  }
}

template <typename T>
__global__ void __launch_bounds__(kStridedBlock) softmax_strided_kernel(const T* __restrict__ in, T* __restrict__ out,
                                                                        LineArgs<2> a) {
  using C = opmath_t<T>;
  __shared__ MaxSum<C> part[kStridedBlock];
  const int bx = blockDim.x, by = blockDim.y, tx = threadIdx.x, ty = threadIdx.y;
  const int64_t n = a.len, si = a.step[0], so = a.step[1];
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * bx; first < a.count;
       first += static_cast<int64_t>(gridDim.x) * bx) {  // uniform over the block
    const int64_t l = first + tx;
    const bool valid = l < a.count;
    int64_t off[2] = {0, 0};
    MaxSum<C> st = ms_empty<C>();
    if (valid) {
      a.base.offsets(l, off);
      for (int64_t i = ty; i < n; i += by) st = ms_push(st, cast<C>(in[off[0] + i * si]));
    }
    if (by > 1) {
      // Every thread of the column folds the parts in y order: the same bits for all.
      part[ty * bx + tx] = st;
      __syncthreads();
      st = part[tx];
      for (int y = 1; y < by; ++y) st = ms_combine(st, part[y * bx + tx]);
      __syncthreads();
    }
    st = ms_finish(st);
    const C f = shift_or_scale(st.m, st.s, a.log);
    if (valid)
      for (int64_t i = ty; i < n; i += by)
        out[off[1] + i * so] = cast<T>(softmax_value(cast<C>(in[off[0] + i * si]), st.m, f, a.log));
  }
}

// ---- backward: softmax gi = y (g - sum(g y)); log_softmax gi = g - exp(y) sum(g) ----

template <typename C>
__device__ __forceinline__ C backward_term(C g, C y, bool log) {
  return log ? g : g * y;
}

template <typename C>
__device__ __forceinline__ C backward_value(C g, C y, C dot, bool log) {
  return log ? g - exp_op(y) * dot : y * (g - dot);
}

// Operands: 0 grad_out, 1 out (the forward's), 2 grad_in.
template <typename T>
__global__ void __launch_bounds__(kWarpBlock) softmax_backward_warp_kernel(const T* __restrict__ grad, const T* __restrict__ y,
                                                                           T* __restrict__ gi, LineArgs<3> a) {
  using C = opmath_t<T>;
  constexpr int P = kPerLane<C>;
  const int lane = threadIdx.x % kWarpSize;
  const int64_t lines_per_block = blockDim.x / kWarpSize;
  const int iters = static_cast<int>((a.len + kWarpSize - 1) / kWarpSize);
  const int64_t n = a.len;
  for (int64_t l = blockIdx.x * lines_per_block + threadIdx.x / kWarpSize; l < a.count;
       l += static_cast<int64_t>(gridDim.x) * lines_per_block) {
    int64_t off[3];
    a.base.offsets(l, off);
    C gv[P], yv[P];
    C dot = 0;
#pragma unroll
    for (int k = 0; k < P; ++k) {
      const int64_t i = static_cast<int64_t>(k) * kWarpSize + lane;
      const bool in_line = k < iters && i < n;
      gv[k] = in_line ? cast<C>(grad[off[0] + i * a.step[0]]) : C(0);
      yv[k] = in_line ? cast<C>(y[off[1] + i * a.step[1]]) : C(0);
      if (in_line) dot += backward_term(gv[k], yv[k], a.log);
    }
    dot = warp_allreduce(dot, [](C p, C q) { return p + q; });
#pragma unroll
    for (int k = 0; k < P; ++k) {
      const int64_t i = static_cast<int64_t>(k) * kWarpSize + lane;
      if (k < iters && i < n) gi[off[2] + i * a.step[2]] = cast<T>(backward_value(gv[k], yv[k], dot, a.log));
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kLineBlock) softmax_backward_block_kernel(const T* __restrict__ grad, const T* __restrict__ y,
                                                                            T* __restrict__ gi, LineArgs<3> a) {
  using C = opmath_t<T>;
  __shared__ C scratch[kWarpSize + 1];
  const int64_t n = a.len;
  for (int64_t l = blockIdx.x; l < a.count; l += gridDim.x) {  // uniform over the block
    int64_t off[3];
    a.base.offsets(l, off);
    C dot = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      dot += backward_term(cast<C>(grad[off[0] + i * a.step[0]]), cast<C>(y[off[1] + i * a.step[1]]), a.log);
    dot = block_allreduce(dot, [](C p, C q) { return p + q; }, C(0), scratch);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      gi[off[2] + i * a.step[2]] = cast<T>(
          backward_value(cast<C>(grad[off[0] + i * a.step[0]]), cast<C>(y[off[1] + i * a.step[1]]), dot, a.log));
  }
}

template <typename T>
__global__ void __launch_bounds__(kStridedBlock) softmax_backward_strided_kernel(const T* __restrict__ grad,
                                                                                 const T* __restrict__ y,
                                                                                 T* __restrict__ gi, LineArgs<3> a) {
  using C = opmath_t<T>;
  __shared__ C part[kStridedBlock];
  const int bx = blockDim.x, by = blockDim.y, tx = threadIdx.x, ty = threadIdx.y;
  const int64_t n = a.len;
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * bx; first < a.count;
       first += static_cast<int64_t>(gridDim.x) * bx) {  // uniform over the block
    const int64_t l = first + tx;
    const bool valid = l < a.count;
    int64_t off[3] = {0, 0, 0};
    C dot = 0;
    if (valid) {
      a.base.offsets(l, off);
      for (int64_t i = ty; i < n; i += by)
        dot += backward_term(cast<C>(grad[off[0] + i * a.step[0]]), cast<C>(y[off[1] + i * a.step[1]]), a.log);
    }
    if (by > 1) {
      part[ty * bx + tx] = dot;
      __syncthreads();
      dot = part[tx];
      for (int yi = 1; yi < by; ++yi) dot += part[yi * bx + tx];
      __syncthreads();
    }
    if (valid)
      for (int64_t i = ty; i < n; i += by)
        gi[off[2] + i * a.step[2]] = cast<T>(
            backward_value(cast<C>(grad[off[0] + i * a.step[0]]), cast<C>(y[off[1] + i * a.step[1]]), dot, a.log));
  }
}

// ---- planning ----

template <int N>
LineArgs<N> make_lines(const Tensor* const (&ts)[N], int64_t dim, bool log, const char* name) {
  const Tensor& t0 = *ts[0];
  LineArgs<N> a;
  a.log = log;
  a.len = t0.dim() == 0 ? 1 : t0.size(dim);
  for (int k = 0; k < N; ++k) a.step[k] = t0.dim() == 0 ? 0 : ts[k]->stride(dim);
  DimVector shape = t0.sizes().dims();
  if (t0.dim() > 0) shape[dim] = 1;  // dropped by the indexer: it walks the line starts
  a.base = make_indexer<N>(name, shape, ts);
  a.count = 1;
  for (int64_t s : shape) a.count *= s;
  return a;
}

enum class Kernel { Warp, Block, Strided };

template <typename C, int N>
Kernel choose(const LineArgs<N>& a, int64_t sms) {
  const bool line_contiguous = a.step[0] == 1;
  const bool lines_adjacent = a.base.ndim > 0 && a.base.strides[0][a.base.ndim - 1] == 1;
  const Kernel rows = a.len <= kMaxWarpLen<C> ? Kernel::Warp : Kernel::Block;
  if (line_contiguous && a.len > 1) return rows;
  if (lines_adjacent) {
    // Few long lines: a block each (strided loads) keeps more of the GPU busy.
    return a.count < 8 * sms && a.len > 4096 ? Kernel::Block : Kernel::Strided;
  }
  return a.count >= 256 * sms || a.len < 32 ? Kernel::Strided : rows;
}

template <int N>
void launch_geometry(Kernel k, const LineArgs<N>& a, dim3& grid, dim3& block) {
  auto capped = [](int64_t blocks) { return static_cast<unsigned>(std::min<int64_t>(blocks, INT_MAX)); };
  switch (k) {
    case Kernel::Warp: {
      const int64_t per = kWarpBlock / kWarpSize;
      block = dim3(kWarpBlock);
      grid = dim3(capped((a.count + per - 1) / per));
      break;
    }
    case Kernel::Block:
      block = dim3(kLineBlock);
      grid = dim3(capped(a.count));
      break;
    case Kernel::Strided: {
      const int by = a.len >= 64 ? 8 : 1, bx = kStridedBlock / by;
      block = dim3(bx, by);
      grid = dim3(capped((a.count + bx - 1) / bx));
      break;
    }
  }
}

}  // namespace

void CudaBackend::softmax(const Tensor& in, int64_t dim, bool log, const Tensor& out) {
  const char* name = log ? "log_softmax" : "softmax";
  KILN_CHECK(in.sizes().equals(out.sizes()) && in.dtype() == out.dtype(), name, ": input ", in.toString(),
             " and output ", out.toString(), " must match");
  if (out.numel() == 0) return;
  DeviceGuard guard(device_index(out));
  const cudaStream_t stream = stream_of(out);
  const int64_t sms = std::max(1, get_device_properties(device_index(out)).multi_processor_count);
  const Tensor* ts[2] = {&in, &out};
  const LineArgs<2> a = make_lines<2>(ts, dim, log, name);
  dispatch_device_floating(in.dtype(), name, [&]<typename T>() {
    const Kernel k = choose<opmath_t<T>>(a, sms);
    dim3 grid, block;
    launch_geometry(k, a, grid, block);
    const T* x = data_of<const T>(in);
    T* y = data_of<T>(out);
    switch (k) {
      case Kernel::Warp: softmax_warp_kernel<T><<<grid, block, 0, stream>>>(x, y, a); break;
      case Kernel::Block: softmax_block_kernel<T><<<grid, block, 0, stream>>>(x, y, a); break;
      case Kernel::Strided: softmax_strided_kernel<T><<<grid, block, 0, stream>>>(x, y, a); break;
    }
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::softmax_backward(const Tensor& grad_out, const Tensor& out, int64_t dim, bool log,
                                   const Tensor& grad_in) {
  const char* name = log ? "log_softmax_backward" : "softmax_backward";
  KILN_CHECK(grad_out.sizes().equals(out.sizes()) && grad_in.sizes().equals(out.sizes()) &&
                 grad_out.dtype() == out.dtype() && grad_in.dtype() == out.dtype(),
             name, ": grad ", grad_out.toString(), ", output ", out.toString(), " and grad_in ", grad_in.toString(),
             " must match");
  if (grad_in.numel() == 0) return;
  DeviceGuard guard(device_index(grad_in));
  const cudaStream_t stream = stream_of(grad_in);
  const int64_t sms = std::max(1, get_device_properties(device_index(grad_in)).multi_processor_count);
  const Tensor* ts[3] = {&grad_out, &out, &grad_in};
  const LineArgs<3> a = make_lines<3>(ts, dim, log, name);
  dispatch_device_floating(out.dtype(), name, [&]<typename T>() {
    const Kernel k = choose<opmath_t<T>>(a, sms);
    dim3 grid, block;
    launch_geometry(k, a, grid, block);
    const T* g = data_of<const T>(grad_out);
    const T* y = data_of<const T>(out);
    T* gi = data_of<T>(grad_in);
    switch (k) {
      case Kernel::Warp: softmax_backward_warp_kernel<T><<<grid, block, 0, stream>>>(g, y, gi, a); break;
      case Kernel::Block: softmax_backward_block_kernel<T><<<grid, block, 0, stream>>>(g, y, gi, a); break;
      case Kernel::Strided: softmax_backward_strided_kernel<T><<<grid, block, 0, stream>>>(g, y, gi, a); break;
    }
    KILN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace kiln::cuda
