// Fused log-softmax + cross-entropy on the GPU: logits [N, C] contiguous,
// loss/lse/grad_loss/weight in the stat dtype (opmath_t: float for
// f32/f16/bf16, double for f64), as core/src/cpu/cpu_cross_entropy.cpp.
//
// Forward: rows of up to kMaxWarpRow classes go one per warp (8 per block),
// longer rows one per block. Two passes over the row: the NaN-aware max,
// then the sum of exp(x - max) and, with label smoothing, the weighted sum
// of x - max, each reduced with reduce_util.cuh's shuffle trees (fixed
// order: the same bits every run). The smoothing term uses
// sum_c w_c (lse - x_c) = W log(s) - sum_c w_c (x_c - max), whose parts
// have one sign each (no cancellation for large logits).
//
// Backward needs no reduction: with the saved lse every element is
//   g (a exp(x - lse) - b w_c) - [c == t] g (1 - ls) w_t,
// a = (1 - ls) w_t + (ls / C) W, b = ls / C; one pass, a group of threads
// per row sized to the row, column chunks spread over blockIdx.y when rows
// are few and long.
//
// Targets outside [0, C) other than ignore_index are rejected by the
// native layer; here they give a NaN loss and a zero gradient rather than
// a read outside the row.
#include <algorithm>
#include <climits>

#include "cuda_backend.h"
#include "kernels/common.cuh"
#include "kernels/reduce_util.cuh"
#include "kiln/core/native/reduce.h"

namespace kiln::cuda {

namespace {

constexpr int kWarpRowsBlock = 256;  // 8 rows per block, a warp each
constexpr int kRowBlock = 512;       // one row per block
constexpr int64_t kMaxWarpRow = 1024;
constexpr int kBackwardBlock = 256;

struct CeArgs {
  const int64_t* target;
  int64_t n = 0, c = 0, ignore = 0;
  double ls = 0.0;
};

// Every thread of the row's group (its warp, or the block) gets the result.
template <bool kWarpRows, typename V, typename F>
__device__ __forceinline__ V row_allreduce(V v, F combine, V identity, V* scratch) {
  if constexpr (kWarpRows) {
    return warp_allreduce(v, combine);
  } else {
    return block_allreduce(v, combine, identity, scratch);
  }
}

template <typename T, bool kWarpRows>
__global__ void __launch_bounds__(kWarpRows ? kWarpRowsBlock : kRowBlock)
    ce_forward_kernel(const T* __restrict__ x, const opmath_t<T>* __restrict__ w,
                      const opmath_t<T>* __restrict__ w_sum, opmath_t<T>* __restrict__ loss,
                      opmath_t<T>* __restrict__ lse, CeArgs a) {
  using C = opmath_t<T>;
  __shared__ C scratch[kWarpSize + 1];
  const int64_t rows_per_block = kWarpRows ? blockDim.x / kWarpSize : 1;
  const int64_t sub = kWarpRows ? threadIdx.x / kWarpSize : 0;
  const int64_t lane = kWarpRows ? threadIdx.x % kWarpSize : threadIdx.x;
  const int64_t width = kWarpRows ? kWarpSize : blockDim.x;
  const bool smooth = a.ls > 0.0;  // uniform: the reductions below are reached by every thread or none
  auto max_op = [](C p, C q) { return max_propagate_nan(p, q); };
  auto sum_op = [](C p, C q) { return p + q; };
  // The loop bound is uniform over the row's group (a warp or the block).
  for (int64_t row = blockIdx.x * rows_per_block + sub; row < a.n; row += gridDim.x * rows_per_block) {
    const T* xr = x + row * a.c;
    C m = -infinity_of<C>();
    for (int64_t i = lane; i < a.c; i += width) m = max_propagate_nan(m, cast<C>(xr[i]));
    m = row_allreduce<kWarpRows>(m, max_op, -infinity_of<C>(), scratch);
    C s = 0, dot = 0;
    for (int64_t i = lane; i < a.c; i += width) {
      const C v = cast<C>(xr[i]) - m;
      s += exp_op(v);
      if (smooth) dot += (w != nullptr ? w[i] : C(1)) * v;
    }
    s = row_allreduce<kWarpRows>(s, sum_op, C(0), scratch);
    if (smooth) dot = row_allreduce<kWarpRows>(dot, sum_op, C(0), scratch);
    if (lane != 0) continue;
    const C log_s = log_op(s);
    lse[row] = m + log_s;
    const int64_t t = a.target[row];
    C v = 0;
    if (t != a.ignore) {
      if (t < 0 || t >= a.c) {
        v = quiet_nan_of<C>();
      } else {
        // lse - x[t], with the exact difference m - x[t] formed first.
        v = (w != nullptr ? w[t] : C(1)) * ((m - cast<C>(xr[t])) + log_s);
        if (smooth) {
          const C big_w = w != nullptr ? *w_sum : static_cast<C>(a.c);  // w_sum is defined when smoothing
          v = static_cast<C>(1.0 - a.ls) * v + static_cast<C>(a.ls / static_cast<double>(a.c)) * (big_w * log_s - dot);
        }
      }
    }
    loss[row] = v;
  }
}

// Threads [k * row_threads, (k + 1) * row_threads) of a block take one row;
// blockIdx.y picks a chunk of its columns.
template <typename T>
__global__ void __launch_bounds__(kBackwardBlock)
    ce_backward_kernel(const opmath_t<T>* __restrict__ g, const T* __restrict__ x, const opmath_t<T>* __restrict__ w,
                       const opmath_t<T>* __restrict__ w_sum, const opmath_t<T>* __restrict__ lse,
                       T* __restrict__ gi, CeArgs a, int row_threads) {
  using C = opmath_t<T>;
  const int64_t rows_per_block = blockDim.x / row_threads;
  const int64_t sub = threadIdx.x / row_threads;
  const int64_t first_col = static_cast<int64_t>(blockIdx.y) * row_threads + threadIdx.x % row_threads;
  const int64_t col_step = static_cast<int64_t>(gridDim.y) * row_threads;
  const C share = a.c == 0 ? C(0) : static_cast<C>(a.ls / static_cast<double>(a.c));
  const C keep = static_cast<C>(1.0 - a.ls);
  for (int64_t row = blockIdx.x * rows_per_block + sub; row < a.n; row += gridDim.x * rows_per_block) {
    const T* xr = x + row * a.c;
    T* gr = gi + row * a.c;
    const int64_t t = a.target[row];
    if (t == a.ignore || t < 0 || t >= a.c) {
      for (int64_t i = first_col; i < a.c; i += col_step) gr[i] = cast<T>(C(0));
      continue;
    }
    const C gd = g[row], wt = w != nullptr ? w[t] : C(1);
    // W is only computed (and w_sum only defined) when smoothing uses it.
    const C big_w = w != nullptr && a.ls > 0.0 ? *w_sum : static_cast<C>(a.c);
    const C coef_p = gd * (keep * wt + share * big_w);
    const C coef_w = gd * share;  // 0 without smoothing: then w_c is never read
    const C hot = gd * keep * wt;
    const C shift = lse[row];
    for (int64_t i = first_col; i < a.c; i += col_step) {
      C v = coef_p * exp_op(cast<C>(xr[i]) - shift);
      if (coef_w != C(0)) v -= coef_w * (w != nullptr ? w[i] : C(1));
      if (i == t) v -= hot;
      gr[i] = cast<T>(v);
    }
  }
}

void check_stat(const char* op, const Tensor& logits, std::initializer_list<const Tensor*> stats) {
  const DType sd = logits.dtype() == kFloat64 ? kFloat64 : kFloat32;
  for (const Tensor* t : stats) {
    KILN_CHECK(!t->defined() || t->dtype() == sd, op, " (CUDA): ", t->toString(), " must be in the stat dtype ", sd,
               " for logits ", logits.toString());
  }
}

// W = sum_c w_c on the device when the kernels will read it (smoothing with
// weights), else undefined.
Tensor weight_sum(const Tensor& weight, double ls) {
  return weight.defined() && ls > 0.0 ? native::sum(weight) : Tensor();
}

template <typename C>
const C* ptr_or_null(const Tensor& t) {
  return t.defined() ? data_of<const C>(t) : nullptr;
}

CeArgs make_args(const Tensor& logits, const Tensor& target, int64_t ignore_index, double ls) {
  CeArgs a;
  a.target = data_of<const int64_t>(target);
  a.n = logits.size(0);
  a.c = logits.size(1);
  a.ignore = ignore_index;
  a.ls = ls;
  return a;
}

}  // namespace

void CudaBackend::cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                                double label_smoothing, const Tensor& loss, const Tensor& lse) {
  check_stat("cross_entropy", logits, {&weight, &loss, &lse});
  if (logits.size(0) == 0) return;
  DeviceGuard guard(device_index(loss));
  const cudaStream_t stream = stream_of(loss);
  const CeArgs a = make_args(logits, target, ignore_index, label_smoothing);
  const Tensor w_sum = weight_sum(weight, label_smoothing);
  dispatch_device_floating(logits.dtype(), "cross_entropy", [&]<typename T>() {
    using C = opmath_t<T>;
    const T* x = data_of<const T>(logits);
    const C* w = ptr_or_null<C>(weight);
    const C* ws = ptr_or_null<C>(w_sum);
    C* out = data_of<C>(loss);
    C* out_lse = data_of<C>(lse);
    if (a.c <= kMaxWarpRow) {
      const unsigned grid = grid_for(a.n * kWarpSize, kWarpRowsBlock);  // a warp per row, capped
      ce_forward_kernel<T, true><<<grid, kWarpRowsBlock, 0, stream>>>(x, w, ws, out, out_lse, a);
    } else {
      ce_forward_kernel<T, false><<<grid_for(a.n * kRowBlock, kRowBlock), kRowBlock, 0, stream>>>(x, w, ws, out,
                                                                                                 out_lse, a);
    }
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::cross_entropy_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& target,
                                         const Tensor& weight, const Tensor& lse, int64_t ignore_index,
                                         double label_smoothing, const Tensor& grad_logits) {
  check_stat("cross_entropy_backward", logits, {&grad_loss, &weight, &lse});
  KILN_CHECK(grad_logits.dtype() == logits.dtype() && grad_logits.sizes().equals(logits.sizes()),
             "cross_entropy_backward (CUDA): grad_logits ", grad_logits.toString(), " must match logits ",
             logits.toString());
  if (grad_logits.numel() == 0) return;
  DeviceGuard guard(device_index(grad_logits));
  const cudaStream_t stream = stream_of(grad_logits);
  const CeArgs a = make_args(logits, target, ignore_index, label_smoothing);
  const Tensor w_sum = weight_sum(weight, label_smoothing);
  // Threads per row: the row's length rounded up to a power of two, at most a block.
  int row_threads = 1;
  while (row_threads < kBackwardBlock && row_threads < a.c) row_threads *= 2;
  const unsigned row_blocks = grid_for(a.n * row_threads, kBackwardBlock);
  // Few rows: split each row's columns over more blocks to fill the GPU.
  const int64_t sms = std::max(1, get_device_properties(device_index(grad_logits)).multi_processor_count);
  const int64_t col_chunks_max = (a.c + row_threads - 1) / row_threads;
  const int64_t want = (4 * sms + row_blocks - 1) / row_blocks;
  const unsigned col_chunks = static_cast<unsigned>(std::clamp<int64_t>(std::min(want, col_chunks_max), 1, 65535));
  dispatch_device_floating(logits.dtype(), "cross_entropy_backward", [&]<typename T>() {
    using C = opmath_t<T>;
    ce_backward_kernel<T><<<dim3(row_blocks, col_chunks), kBackwardBlock, 0, stream>>>(
        data_of<const C>(grad_loss), data_of<const T>(logits), ptr_or_null<C>(weight), ptr_or_null<C>(w_sum),
        data_of<const C>(lse), data_of<T>(grad_logits), a, row_threads);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace kiln::cuda
