// Reductions (sum, prod, max, min, all, any) on the GPU.
//
// The input is seen as [num_out kept positions] x [num_red reduced
// positions]: kept dims merged where input and output step evenly across
// them (make_indexer), reduced dims ordered by stride and merged, so a
// contiguous reduced block is one inner run. Two kernels:
//   - rows: a warp (short rows, or many of them) or a block per output walks
//     the reduced range, with 16-byte loads when it is one contiguous run;
//   - columns: a thread per output (consecutive threads, consecutive
//     outputs: coalesced when the kept dims are innermost, e.g. a sum over
//     the batch of [N, C]); threadIdx.y splits the reduced range when there
//     are too few outputs to fill the GPU.
// When even that leaves the GPU idle (a full reduction of a large tensor)
// the reduced range is cut into grid.y splits whose results go to a
// temporary; a second launch reduces them. No atomics: every combine
// happens in an order fixed by the shapes, so results are the same bits on
// every run.
//
// Accumulation: double for floating inputs or outputs (as the CPU backend,
// whose float sums and products accumulate in double: parity with it, and
// on sm_80/sm_90 the f64 adds cost nothing in a bandwidth-bound loop),
// int64 (wrapping) otherwise. Max/min compare in that type too, exactly.
// All/any reduce (x != 0) as 0/1 with and/or. The op is a runtime value
// (a uniform branch), so kernels are instantiated per (input, accumulator)
// type only: 12 pairs.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>

#include "cuda_backend.h"
#include "kernels/common.cuh"
#include "kernels/reduce_util.cuh"
#include "kiln/core/native/factory.h"

namespace kiln::cuda {

namespace {

// Reduced dims, outer to inner: the inner one is walked directly, the outer
// ones (each step of them starts a new inner run) through div/mod.
struct RedDims {
  int n = 0;  // outer dims
  int64_t outer_size[kMaxDims];
  int64_t outer_stride[kMaxDims];
  int64_t inner = 1, inner_stride = 0;  // elements

  __device__ __forceinline__ int64_t outer_offset(int64_t j) const {
    int64_t off = 0;
    for (int d = n - 1; d >= 0; --d) {
      off += (j % outer_size[d]) * outer_stride[d];
      j /= outer_size[d];
    }
    return off;
  }
};

struct ReduceArgs {
  StridedIndexer<2> kept;  // element offsets of output o's first input [0] and of o itself [1]
  RedDims red;
  int64_t num_out = 1, num_red = 1;
  int64_t chunk = 1;         // reduced positions per split (grid.y); num_red when unsplit
  int64_t split_stride = 0;  // output offset between the splits' results
  DType out_dtype = kFloat32;
  ReduceOp op = ReduceOp::Sum;
};

// ---- the ops, on the accumulator type A (double or int64) ----

template <typename A>
__device__ __forceinline__ A identity_of(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return A(0);
    case ReduceOp::Prod: return A(1);
    case ReduceOp::Max:
      if constexpr (std::is_floating_point_v<A>) return -infinity_of<A>();
      else return static_cast<A>(LLONG_MIN);
    case ReduceOp::Min:
      if constexpr (std::is_floating_point_v<A>) return infinity_of<A>();
      else return static_cast<A>(LLONG_MAX);
    case ReduceOp::All: return A(1);
    case ReduceOp::Any: return A(0);
  }
  return A(0);
}

// Integer sums and products wrap (two's complement), as the CPU's.
template <typename A>
__device__ __forceinline__ A add_op(A a, A b) {
  if constexpr (std::is_integral_v<A>) return static_cast<A>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  else return a + b;
}

template <typename A>
__device__ __forceinline__ A mul_op(A a, A b) {
  if constexpr (std::is_integral_v<A>) return static_cast<A>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  else return a * b;
}

template <typename A>
__device__ __forceinline__ A combine_op(ReduceOp op, A a, A b) {
  switch (op) {
    case ReduceOp::Sum: return add_op(a, b);
    case ReduceOp::Prod: return mul_op(a, b);
    case ReduceOp::Max: return max_propagate_nan(a, b);
    case ReduceOp::Min: return min_propagate_nan(a, b);
    case ReduceOp::All: return (a != A(0) && b != A(0)) ? A(1) : A(0);
    case ReduceOp::Any: return (a != A(0) || b != A(0)) ? A(1) : A(0);
  }
  return a;
}

// acc combined with N loaded elements, the op switched once per call (once
// per 16-byte vector in the contiguous loop, not once per element).
template <typename A, typename T, int N>
__device__ __forceinline__ A fold(ReduceOp op, A acc, const T (&x)[N]) {
  switch (op) {
    case ReduceOp::Sum:
#pragma unroll
      for (int k = 0; k < N; ++k) acc = add_op(acc, cast<A>(x[k]));
      return acc;
    case ReduceOp::Prod:
#pragma unroll
      for (int k = 0; k < N; ++k) acc = mul_op(acc, cast<A>(x[k]));
      return acc;
    case ReduceOp::Max:
#pragma unroll
      for (int k = 0; k < N; ++k) acc = max_propagate_nan(acc, cast<A>(x[k]));
      return acc;
    case ReduceOp::Min:
#pragma unroll
      for (int k = 0; k < N; ++k) acc = min_propagate_nan(acc, cast<A>(x[k]));
      return acc;
    case ReduceOp::All: {
      bool all = acc != A(0);
#pragma unroll
      for (int k = 0; k < N; ++k) all = all && cast<bool>(x[k]);
      return all ? A(1) : A(0);
    }
    case ReduceOp::Any: {
      bool any = acc != A(0);
#pragma unroll
      for (int k = 0; k < N; ++k) any = any || cast<bool>(x[k]);
      return any ? A(1) : A(0);
    }
  }
  return acc;
}

template <typename A, typename T>
__device__ __forceinline__ A fold1(ReduceOp op, A acc, T x) {
  const T one[1] = {x};
  return fold(op, acc, one);
}

// Writes v converted to the output's dtype (a uniform branch: the output
// dtype is not a template parameter, which keeps the instantiations to 12).
template <typename A>
__device__ __forceinline__ void store_as(void* out, int64_t off, DType dt, A v) {
  switch (dt) {
    case DType::Float64: static_cast<double*>(out)[off] = cast<double>(v); break;
    case DType::Float32: static_cast<float*>(out)[off] = cast<float>(v); break;
    case DType::Float16: static_cast<__half*>(out)[off] = cast<__half>(v); break;
    case DType::BFloat16: static_cast<__nv_bfloat16*>(out)[off] = cast<__nv_bfloat16>(v); break;
    case DType::Int64: static_cast<int64_t*>(out)[off] = cast<int64_t>(v); break;
    case DType::Int32: static_cast<int32_t*>(out)[off] = cast<int32_t>(v); break;
    case DType::UInt8: static_cast<uint8_t*>(out)[off] = cast<uint8_t>(v); break;
    case DType::Bool: static_cast<bool*>(out)[off] = cast<bool>(v); break;
  }
}

// ---- per-thread folds over a range of reduced positions ----

// Positions [0, n) of a contiguous run p, thread t of tpr taking every
// tpr-th 16-byte vector (four in flight), scalars before the first 16-byte
// boundary and after the last whole vector.
template <typename T, typename A>
__device__ __forceinline__ A fold_contiguous(const T* p, int64_t n, int t, int tpr, ReduceOp op, A acc) {
  constexpr int V = kVec<T>;
  const int64_t mis = static_cast<int64_t>((reinterpret_cast<uintptr_t>(p) % 16) / sizeof(T));
  const int64_t head = std::min<int64_t>(n, mis == 0 ? 0 : V - mis);
  if (t < head) acc = fold1(op, acc, p[t]);
  const T* q = p + head;
  const int64_t nvec = (n - head) / V;
  int64_t i = t;
  for (; i + 3 * tpr < nvec; i += 4 * tpr) {
    T x0[V], x1[V], x2[V], x3[V];
    load_vec(q + i * V, x0);
    load_vec(q + (i + tpr) * V, x1);
    load_vec(q + (i + 2 * tpr) * V, x2);
    load_vec(q + (i + 3 * tpr) * V, x3);
    acc = fold(op, acc, x0);
    acc = fold(op, acc, x1);
    acc = fold(op, acc, x2);
    acc = fold(op, acc, x3);
  }
  for (; i < nvec; i += tpr) {
    T x[V];
    load_vec(q + i * V, x);
    acc = fold(op, acc, x);
  }
  for (int64_t j = head + nvec * V + t; j < n; j += tpr) acc = fold1(op, acc, p[j]);
  return acc;
}

// Positions r0 + t, r0 + t + step, ... below r1 of any reduced layout; the
// outer offset is recomputed only when a step crosses into another inner run.
template <typename T, typename A>
__device__ __forceinline__ A fold_strided(const T* p, const RedDims& red, int64_t r0, int64_t r1, int64_t t,
                                          int64_t step, ReduceOp op, A acc) {
  int64_t r = r0 + t;
  if (r >= r1) return acc;
  int64_t j = r / red.inner, i = r % red.inner;
  const T* run = p + red.outer_offset(j);
  for (;;) {
    acc = fold1(op, acc, run[i * red.inner_stride]);
    r += step;
    if (r >= r1) break;
    i += step;
    if (i >= red.inner) {
      j += i / red.inner;
      i %= red.inner;
      run = p + red.outer_offset(j);
    }
  }
  return acc;
}

// ---- kernels ----

constexpr int kRowBlock = 512;    // block per row
constexpr int kWarpRowBlock = 256;  // warp per row: 8 rows per block
constexpr int kColBlock = 256;

// One output per warp (warp_rows) or per block; grid.y splits the reduced range.
template <typename T, typename A>
__global__ void __launch_bounds__(kRowBlock) reduce_rows_kernel(const T* __restrict__ in, void* __restrict__ out,
                                                                ReduceArgs a, bool warp_rows) {
  __shared__ A scratch[kWarpSize + 1];
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int tpr = warp_rows ? kWarpSize : static_cast<int>(blockDim.x);
  const int t = warp_rows ? lane : static_cast<int>(threadIdx.x);
  const int64_t rows_per_block = warp_rows ? blockDim.x / kWarpSize : 1;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * a.chunk;
  const int64_t r1 = std::min(a.num_red, r0 + a.chunk);
  const bool contiguous = a.red.n == 0 && a.red.inner_stride == 1;
  const ReduceOp op = a.op;
  auto combine = [op](A x, A y) { return combine_op(op, x, y); };
  // The loop bound is uniform over the warp (warp_rows) or the block.
  for (int64_t row = blockIdx.x * rows_per_block + (warp_rows ? warp : 0); row < a.num_out;
       row += static_cast<int64_t>(gridDim.x) * rows_per_block) {
    int64_t off[2];
    a.kept.offsets(row, off);
    A acc = identity_of<A>(op);
    if (contiguous) {
      acc = fold_contiguous(in + off[0] + r0, r1 - r0, t, tpr, op, acc);
    } else {
      acc = fold_strided(in + off[0], a.red, r0, r1, t, tpr, op, acc);
    }
    acc = warp_rows ? warp_reduce(acc, combine) : block_reduce(acc, combine, identity_of<A>(op), scratch);
    if (t == 0) store_as(out, off[1] + static_cast<int64_t>(blockIdx.y) * a.split_stride, a.out_dtype, acc);
  }
}

// One output per threadIdx.x; the blockDim.y threads of a column take
// interleaved reduced positions and are combined in y order.
template <typename T, typename A>
__global__ void __launch_bounds__(kColBlock) reduce_cols_kernel(const T* __restrict__ in, void* __restrict__ out,
                                                                ReduceArgs a) {
  __shared__ A partial[kColBlock];
  const int bx = blockDim.x, by = blockDim.y, tx = threadIdx.x, ty = threadIdx.y;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * a.chunk;
  const int64_t r1 = std::min(a.num_red, r0 + a.chunk);
  const ReduceOp op = a.op;
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * bx; base < a.num_out;
       base += static_cast<int64_t>(gridDim.x) * bx) {
    const int64_t o = base + tx;
    int64_t off[2] = {0, 0};
    A acc = identity_of<A>(op);
    if (o < a.num_out) {
      a.kept.offsets(o, off);
      acc = fold_strided(in + off[0], a.red, r0, r1, ty, by, op, acc);
    }
    if (by > 1) {
      partial[ty * bx + tx] = acc;
      __syncthreads();
      if (ty == 0)
        for (int y = 1; y < by; ++y) acc = combine_op(op, acc, partial[y * bx + tx]);
      __syncthreads();
    }
    if (ty == 0 && o < a.num_out)
      store_as(out, off[1] + static_cast<int64_t>(blockIdx.y) * a.split_stride, a.out_dtype, acc);
  }
}

// ---- planning ----

ReduceArgs make_args(ReduceOp op, const Tensor& in, const Tensor& out, const char* name) {
  KILN_CHECK(in.dim() == out.dim(), name, ": output rank ", out.dim(), " != input rank ", in.dim());
  ReduceArgs a;
  a.op = op;
  a.out_dtype = out.dtype();
  struct Dim {
    int64_t size, stride;
  };
  std::vector<Dim> red;
  for (int64_t d = 0; d < in.dim(); ++d) {
    const bool reduced = out.size(d) == 1 && in.size(d) != 1;
    KILN_CHECK(reduced || out.size(d) == in.size(d), name, ": output shape ", out.sizes(),
               " does not fit input shape ", in.sizes());
    if (reduced) red.push_back({in.size(d), in.stride(d)});
  }
  const Tensor* ops[2] = {&in, &out};
  a.kept = make_indexer<2>(name, out.sizes(), ops);
  a.num_out = out.numel();
  // The order of a reduction is free: walk the reduced dims largest stride
  // first and merge those that step evenly into each other.
  std::stable_sort(red.begin(), red.end(), [](const Dim& x, const Dim& y) { return x.stride > y.stride; });
  std::vector<Dim> merged;
  for (const Dim& r : red) {
    if (!merged.empty() && merged.back().stride == r.stride * r.size) {
      merged.back().size *= r.size;
      merged.back().stride = r.stride;
    } else {
      merged.push_back(r);
    }
  }
  a.num_red = 1;
  for (const Dim& r : merged) a.num_red *= r.size;
  if (merged.empty()) merged.push_back({1, 0});
  KILN_CHECK(merged.size() <= static_cast<size_t>(kMaxDims) + 1, name, " (CUDA): at most ", kMaxDims + 1,
             " non-mergeable reduced dims are supported, got ", merged.size());
  a.red.n = static_cast<int>(merged.size()) - 1;
  for (int d = 0; d < a.red.n; ++d) {
    a.red.outer_size[d] = merged[d].size;
    a.red.outer_stride[d] = merged[d].stride;
  }
  a.red.inner = std::max<int64_t>(merged.back().size, 1);
  a.red.inner_stride = merged.back().stride;
  a.chunk = std::max<int64_t>(a.num_red, 1);
  return a;
}

// Sets operand k of the kept indexer to the row-major strides of its sizes, times `scale`.
void set_contiguous(StridedIndexer<2>& ix, int k, int64_t scale) {
  int64_t s = scale;
  for (int d = ix.ndim - 1; d >= 0; --d) {
    ix.strides[k][d] = s;
    s *= ix.sizes[d];
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Splits of the reduced range: as many as `want`, each at least `min_per`
// positions long and a multiple of 16 of them (split starts keep the 16-byte
// alignment of contiguous runs); returns the count, sets a.chunk.
int64_t split_range(ReduceArgs& a, int64_t want, int64_t min_per) {
  const int64_t splits = std::clamp<int64_t>(std::min(want, a.num_red / min_per), 1, 1024);
  if (splits == 1) return 1;
  a.chunk = ceil_div(ceil_div(a.num_red, splits), 16) * 16;
  return ceil_div(a.num_red, a.chunk);
}

// Launches the reduction of `in` (element type T, accumulating in A) into
// out; with splits, their results go to a temporary of A that a second
// launch (of the A -> A instantiation, which exists: f64 and int64 inputs
// use it) reduces.
template <typename T, typename A>
void launch_reduce(const T* in, void* out, const ReduceArgs& args, const Tensor& like, cudaStream_t stream,
                   bool allow_split) {
  ReduceArgs a = args;
  const int64_t sms = std::max(1, get_device_properties(device_index(like)).multi_processor_count);
  const bool red_contiguous = a.red.inner_stride == 1 && a.red.inner > 1;
  const bool kept_contiguous = a.kept.ndim > 0 && a.kept.strides[0][a.kept.ndim - 1] == 1;
  bool rows;
  if (a.num_red <= 1) {
    rows = false;  // a copy (or the identity): a thread per output
  } else if (red_contiguous) {
    rows = !(a.red.inner < kWarpSize && a.num_out >= kWarpSize * sms);  // short runs: a thread per output
  } else if (kept_contiguous) {
    rows = false;
  } else {
    rows = a.num_out < 256 * sms;  // neither side contiguous: few outputs get a group each
  }

  int64_t splits = 1;
  dim3 grid, block;
  bool warp_rows = false;
  if (rows) {
    // A warp per row when rows are short or plentiful (the GPU holds ~64 warps per SM).
    warp_rows = a.num_red <= 2048 || a.num_out >= 64 * sms;
    const int64_t per_block = warp_rows ? kWarpRowBlock / kWarpSize : 1;
    block = dim3(warp_rows ? kWarpRowBlock : kRowBlock);
    if (!warp_rows && allow_split && a.num_out < 4 * sms) splits = split_range(a, ceil_div(4 * sms, a.num_out), 8192);
    grid = dim3(static_cast<unsigned>(std::min<int64_t>(ceil_div(a.num_out, per_block), INT_MAX)),
                static_cast<unsigned>(splits));
  } else {
    const bool wide = a.num_out >= 2048 * sms || a.num_red < 64;  // enough outputs: no y split
    const int bx = wide ? kColBlock : kWarpSize, by = kColBlock / bx;
    const int64_t blocks_x = ceil_div(a.num_out, bx);
    if (allow_split && a.num_red > 1 && blocks_x < 8 * sms) splits = split_range(a, ceil_div(8 * sms, blocks_x), 64 * by);
    block = dim3(bx, by);
    grid = dim3(static_cast<unsigned>(std::min<int64_t>(blocks_x, INT_MAX)), static_cast<unsigned>(splits));
  }

  Tensor temp;
  void* dst = out;
  if (splits > 1) {
    // Row results are laid out [num_out, splits], column results [splits, num_out],
    // so that each kernel writes (and the second pass reads) its natural order.
    const DType acc_dtype = std::is_floating_point_v<A> ? kFloat64 : kInt64;
    temp = native::empty({a.num_out * splits}, TensorOptions().dtype(acc_dtype).device(like.device()));
    dst = temp.data_ptr();
    a.out_dtype = acc_dtype;
    set_contiguous(a.kept, 1, rows ? splits : 1);
    a.split_stride = rows ? 1 : a.num_out;
  }
  if (rows) {
    reduce_rows_kernel<T, A><<<grid, block, 0, stream>>>(in, dst, a, warp_rows);
  } else {
    reduce_cols_kernel<T, A><<<grid, block, 0, stream>>>(in, dst, a);
  }
  KILN_CUDA_CHECK_LAUNCH();
  if (splits == 1) return;

  ReduceArgs f = args;  // the original output: offsets, dtype
  set_contiguous(f.kept, 0, rows ? splits : 1);
  f.red = RedDims();
  f.red.inner = splits;
  f.red.inner_stride = rows ? 1 : a.num_out;
  f.num_red = f.chunk = splits;
  launch_reduce<A, A>(static_cast<const A*>(temp.data_ptr()), out, f, like, stream, false);
}

// The dtype rules of the CPU backend: sum/prod may widen (to int64 from an
// integer or bool, to float32 from anything but float64, to float64), max/min
// keep the dtype, all/any write bool.
void check_dtypes(ReduceOp op, DType in, DType out, const char* name) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Prod:
      KILN_CHECK(out == in || out == kInt64 || out == kFloat32 || out == kFloat64, name, ": cannot reduce ",
                 dtype_name(in), " into ", dtype_name(out));
      KILN_CHECK(!(is_floating_point(in) && is_integral(out, true)), name, ": cannot reduce ", dtype_name(in),
                 " into ", dtype_name(out));
      break;
    case ReduceOp::Max:
    case ReduceOp::Min:
      KILN_CHECK(out == in, name, ": output dtype ", dtype_name(out), " must equal the input dtype ", dtype_name(in));
      break;
    case ReduceOp::All:
    case ReduceOp::Any:
      KILN_CHECK(out == kBool, name, ": output must be bool, got ", dtype_name(out));
      break;
  }
}

}  // namespace

void CudaBackend::reduce(ReduceOp op, const Tensor& in, const Tensor& out) {
  static const char* names[] = {"sum", "prod", "max", "min", "all", "any"};
  const char* name = names[static_cast<int>(op)];
  check_dtypes(op, in.dtype(), out.dtype(), name);
  const ReduceArgs a = make_args(op, in, out, name);
  if (out.numel() == 0) return;
  DeviceGuard guard(device_index(out));
  const cudaStream_t stream = stream_of(out);
  const bool wide = is_floating_point(in.dtype()) || is_floating_point(out.dtype());
  dispatch_device(in.dtype(), name, [&]<typename T>() {
    if constexpr (is_floating_v<T>) {
      launch_reduce<T, double>(data_of<const T>(in), out.data_ptr(), a, out, stream, true);
    } else if (wide) {
      launch_reduce<T, double>(data_of<const T>(in), out.data_ptr(), a, out, stream, true);
    } else {
      launch_reduce<T, int64_t>(data_of<const T>(in), out.data_ptr(), a, out, stream, true);
    }
  });
}

}  // namespace kiln::cuda
