// index_add and scatter-add on CUDA without atomics: deterministic, and
// bit-identical to the CPU backend.
//
// The CPU adds the contributions to one destination element in increasing
// source position, rounding to the element type after every add. Here the
// destinations are first sorted by a stable radix sort (cub), so equal
// destinations form runs that keep their source order; then one thread owns
// each (run, element) and adds the run in that order with the CPU's
// roundings (explicit _rn intrinsics, so nvcc cannot contract into an FMA).
// torch's CUDA index_add uses atomics, so its last bits vary between runs
// where indices repeat (an embedding's padding token, a frequent word);
// these do not, and a training run on the GPU is reproducible.
//
// The cost is one sort of the indices (n keys for index_add: the embedding
// backward sorts the batch's token ids, not the [tokens, D] gradient) and a
// serial add along each run, which is long only for a very frequent index.
// The sort works in place on two buffers of keys and two of int32 source
// positions (cub's DoubleBuffer): 16 bytes per index with 32-bit keys (the
// destination count below 2^32, as for any max-pool gradient that fits in
// memory), 24 with 64-bit ones.
#include <cub/device/device_radix_sort.cuh>

#include <bit>
#include <cstdint>
#include <limits>

#include "cuda_backend.h"
#include "kernels/common.cuh"
#include "kernels/index_util.cuh"
#include "kiln/core/native/factory.h"

namespace kiln::cuda {

namespace {

__device__ __forceinline__ int64_t thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t thread_stride() { return static_cast<int64_t>(blockDim.x) * gridDim.x; }

// x + a * v, rounded as the CPU's index_add rounds it: the product and the
// sum each in the compute type C, then once to T.
template <typename T, typename C>
__device__ __forceinline__ T accumulate(T x, T v, C a) {
  if constexpr (std::is_same_v<T, float>) {
    return __fadd_rn(x, __fmul_rn(a, v));
  } else if constexpr (std::is_same_v<T, double>) {
    return __dadd_rn(x, __dmul_rn(a, v));
  } else if constexpr (is_half_v<T>) {
    return cast<T>(__fadd_rn(cast<float>(x), __fmul_rn(a, cast<float>(v))));
  } else if constexpr (std::is_same_v<T, bool>) {
    return x || (a && v);
  } else {
    // Integers wrap as the CPU's do in practice; unsigned arithmetic makes
    // that defined here.
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(x) + static_cast<U>(static_cast<U>(a) * static_cast<U>(v))));
  }
}

__global__ void iota_kernel(int32_t* out, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) out[i] = static_cast<int32_t>(i);
}

// Keys and source positions, sorted stably by key in place (the DoubleBuffer
// pairs' current halves after the sort).
template <typename K>
struct SortedRuns {
  Tensor key_buffers[2], position_buffers[2];
  const K* keys = nullptr;
  const int32_t* perm = nullptr;
};

// Room for n keys of type K; fill(keys) writes them, each in [0, limit).
template <typename K, typename Fill>
SortedRuns<K> sorted_runs(int64_t n, int64_t limit, Device device, cudaStream_t stream, const Fill& fill) {
  KILN_CHECK(n <= std::numeric_limits<int32_t>::max(), "index accumulation (CUDA): ", n,
             " indices exceed the 2^31 - 1 this sort supports");
  const TensorOptions bytes = TensorOptions().dtype(sizeof(K) == 4 ? kInt32 : kInt64).device(device);
  const TensorOptions ints = TensorOptions().dtype(kInt32).device(device);
  SortedRuns<K> r;
  for (int i = 0; i < 2; ++i) {
    r.key_buffers[i] = native::empty({n}, bytes);
    r.position_buffers[i] = native::empty({n}, ints);
  }
  fill(static_cast<K*>(r.key_buffers[0].data_ptr()));
  iota_kernel<<<grid_for(n), kBlock, 0, stream>>>(static_cast<int32_t*>(r.position_buffers[0].data_ptr()), n);
  KILN_CUDA_CHECK_LAUNCH();
  cub::DoubleBuffer<K> keys(static_cast<K*>(r.key_buffers[0].data_ptr()), static_cast<K*>(r.key_buffers[1].data_ptr()));
  cub::DoubleBuffer<int32_t> positions(static_cast<int32_t*>(r.position_buffers[0].data_ptr()),
                                       static_cast<int32_t*>(r.position_buffers[1].data_ptr()));
  // Keys lie in [0, limit): sorting only the low bits is enough.
  const int end_bit = std::max(1, static_cast<int>(std::bit_width(static_cast<uint64_t>(std::max<int64_t>(limit - 1, 1)))));
  size_t temp_bytes = 0;
  KILN_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys, positions, static_cast<int>(n), 0, end_bit,
                                                  stream));
  const Tensor temp = native::empty({static_cast<int64_t>(std::max<size_t>(temp_bytes, 1))},
                                    TensorOptions().dtype(kUInt8).device(device));
  KILN_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.data_ptr(), temp_bytes, keys, positions, static_cast<int>(n), 0,
                                                  end_bit, stream));
  r.keys = keys.Current();
  r.perm = positions.Current();
  return r;
}

// K = uint32_t when every key (< limit) fits, else 64 bits.
template <typename F>
void dispatch_key(int64_t limit, F&& f) {
  if (static_cast<uint64_t>(limit) <= (uint64_t{1} << 32)) return f.template operator()<uint32_t>();
  f.template operator()<unsigned long long>();
}

template <typename K>
__device__ __forceinline__ bool run_starts(const K* keys, int64_t j) {
  return j == 0 || keys[j] != keys[j - 1];
}

// index_add over src [.., n, ..]: thread (j, b) with j a sorted position
// that starts a run and b an element of the base shape (dim removed) adds
// the run's src lines into out's line keys[j], in source order. b varies
// fastest, so a warp reads adjacent elements of one src line.
template <typename T, typename K>
__global__ void index_add_runs_kernel(T* out, const T* __restrict__ src, const K* __restrict__ keys,
                                      const int32_t* __restrict__ perm, StridedIndexer<2> base, int64_t nbase,
                                      int64_t n, int64_t out_step, int64_t src_step, opmath_t<T> alpha) {
  for (int64_t t = thread_index(); t < n * nbase; t += thread_stride()) {
    const int64_t j = t / nbase, b = t - j * nbase;
    if (!run_starts(keys, j)) continue;
    int64_t o[2];
    base.offsets(b, o);
    T* dst = out + o[0] + static_cast<int64_t>(keys[j]) * out_step;
    T x = *dst;
    for (int64_t r = j; r < n && keys[r] == keys[j]; ++r) x = accumulate(x, src[o[1] + perm[r] * src_step], alpha);
    *dst = x;
  }
}

// key of index_add's i-th index: the destination line itself.
template <typename K>
__global__ void line_keys_kernel(const int64_t* __restrict__ index, K* keys, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) keys[i] = static_cast<K>(index[i]);
}

// scatter-add over index's m elements (row-major position e; inner = the
// product of index's sizes after dim, n = its size along dim): the element
// lands in base line b = (e / (n * inner)) * inner + e % inner of out, at
// index[e] along dim. The key (b, index[e]) names one destination element.
template <typename K>
__global__ void scatter_keys_kernel(const int64_t* __restrict__ index, StridedIndexer<1> ix, K* keys, int64_t m,
                                    int64_t n, int64_t inner, int64_t size) {
  for (int64_t e = thread_index(); e < m; e += thread_stride()) {
    int64_t o[1];
    ix.offsets(e, o);
    const int64_t b = (e / (n * inner)) * inner + e % inner;
    keys[e] = static_cast<K>(b * size + index[o[0]]);
  }
}

// One thread per run of equal keys: out[b's line at k] += the run's src
// elements in source order. `lines` walks out's base shape (dim removed),
// `values` walks src over index's shape.
template <typename T, typename K>
__global__ void scatter_add_runs_kernel(T* out, const T* __restrict__ src, const K* __restrict__ keys,
                                        const int32_t* __restrict__ perm, StridedIndexer<1> lines,
                                        StridedIndexer<1> values, int64_t m, int64_t size, int64_t out_step) {
  for (int64_t j = thread_index(); j < m; j += thread_stride()) {
    if (!run_starts(keys, j)) continue;
    const auto key = static_cast<int64_t>(keys[j]);
    int64_t line[1];
    lines.offsets(key / size, line);
    T* dst = out + line[0] + (key % size) * out_step;
    T x = *dst;
    for (int64_t r = j; r < m && keys[r] == keys[j]; ++r) {
      int64_t v[1];
      values.offsets(perm[r], v);
      x = accumulate(x, src[v[0]], opmath_t<T>(1));
    }
    *dst = x;
  }
}

// max_pool2d_backward's keys: the grad_in element that output j of plane
// j / out_plane came from; an index outside the plane (never produced by
// max_pool2d) gets the key `limit`, sorted last and skipped.
template <typename K>
__global__ void plane_keys_kernel(const int64_t* __restrict__ indices, K* keys, int64_t n, int64_t plane,
                                  int64_t out_plane, int64_t limit) {
  for (int64_t j = thread_index(); j < n; j += thread_stride()) {
    const int64_t at = indices[j];
    keys[j] = static_cast<K>(at < 0 || at >= plane ? limit : (j / out_plane) * plane + at);
  }
}

__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }

// One thread per run: the sum in C from 0 in source order, rounded once to
// T, as the CPU's float accumulator per plane.
template <typename T, typename K>
__global__ void plane_runs_kernel(T* out, const T* __restrict__ g, const K* __restrict__ keys,
                                  const int32_t* __restrict__ perm, int64_t n, K limit) {
  using C = opmath_t<T>;
  for (int64_t j = thread_index(); j < n; j += thread_stride()) {
    if (!run_starts(keys, j) || keys[j] >= limit) continue;
    C acc = 0;
    for (int64_t r = j; r < n && keys[r] == keys[j]; ++r) acc = add_rn(acc, cast<C>(g[perm[r]]));
    out[keys[j]] = cast<T>(acc);
  }
}

}  // namespace

void CudaBackend::index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
                            const Scalar& alpha) {
  KILN_CHECK(index.dim() == 1 && index.is_contiguous(), "index_add (CUDA kernel): index must be contiguous 1-D");
  KILN_CHECK(src.dtype() == out.dtype(), "index_add (CUDA kernel): source dtype ", dtype_name(src.dtype()),
             " differs from self dtype ", dtype_name(out.dtype()));
  check_device("index_add", out, index);
  check_device("index_add", out, src);
  if (src.numel() == 0) return;
  DeviceGuard guard(device_index(out));
  const Stream stream = stream_of(out);
  check_indices("index_add", index, dim, out.size(dim), stream);
  const int64_t n = index.numel();
  const DimVector base_shape = with(src.sizes(), dim, 1);
  const Tensor dst = restride(out, base_shape, with(out.strides(), dim, 0));
  const Tensor val = restride(src, base_shape, with(src.strides(), dim, 0));
  const Tensor* ops[2] = {&dst, &val};
  const StridedIndexer<2> base = make_indexer<2>("index_add", base_shape, ops);
  int64_t nbase = 1;
  for (int64_t s : base_shape) nbase *= s;
  dispatch_key(out.size(dim), [&]<typename K>() {
    const SortedRuns<K> runs = sorted_runs<K>(n, out.size(dim), out.device(), stream, [&](K* keys) {
      line_keys_kernel<K><<<grid_for(n), kBlock, 0, stream>>>(data_of<int64_t>(index), keys, n);
      KILN_CUDA_CHECK_LAUNCH();
    });
    dispatch_device(out.dtype(), "index_add", [&]<typename T>() {
      index_add_runs_kernel<T, K><<<grid_for(n * nbase), kBlock, 0, stream>>>(
          data_of<T>(out), data_of<T>(src), runs.keys, runs.perm, base, nbase, n, out.stride(dim), src.stride(dim),
          alpha.to<opmath_t<T>>());
      KILN_CUDA_CHECK_LAUNCH();
    });
  });
}

void scatter_add_deterministic(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
                               cudaStream_t stream) {
  const int64_t m = index.numel(), size = out.size(dim), n = index.size(dim);
  int64_t inner = 1;
  for (int64_t d = dim + 1; d < index.dim(); ++d) inner *= index.size(d);
  const int64_t nbase = m / n;
  KILN_CHECK(size == 0 || nbase <= std::numeric_limits<int64_t>::max() / size,
             "scatter_add (CUDA kernel): too many destination elements");
  const Tensor* idx_ops[1] = {&index};
  const StridedIndexer<1> ix = make_indexer<1>("scatter_add", index.sizes(), idx_ops);
  // out's lines over index's shape with dim removed, in row-major order of b;
  // src read at index's positions (it may be larger than index).
  const DimVector base_shape = with(index.sizes(), dim, 1);
  const Tensor dst = restride(out, base_shape, with(out.strides(), dim, 0));
  const Tensor val = restride(src, index.sizes(), src.strides());
  const Tensor* line_ops[1] = {&dst};
  const Tensor* val_ops[1] = {&val};
  const StridedIndexer<1> lines = make_indexer<1>("scatter_add", base_shape, line_ops);
  const StridedIndexer<1> values = make_indexer<1>("scatter_add", index.sizes(), val_ops);
  dispatch_key(nbase * size, [&]<typename K>() {
    const SortedRuns<K> runs = sorted_runs<K>(m, nbase * size, out.device(), stream, [&](K* keys) {
      scatter_keys_kernel<K><<<grid_for(m), kBlock, 0, stream>>>(data_of<int64_t>(index), ix, keys, m, n, inner, size);
      KILN_CUDA_CHECK_LAUNCH();
    });
    dispatch_device(out.dtype(), "scatter_add", [&]<typename T>() {
      scatter_add_runs_kernel<T, K><<<grid_for(m), kBlock, 0, stream>>>(
          data_of<T>(out), data_of<T>(src), runs.keys, runs.perm, lines, values, m, size, out.stride(dim));
      KILN_CUDA_CHECK_LAUNCH();
    });
  });
}

void plane_scatter_add_deterministic(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_in,
                                     int64_t plane, int64_t out_plane, cudaStream_t stream) {
  const int64_t n = grad_out.numel(), limit = grad_in.numel();
  KILN_CUDA_CHECK(cudaMemsetAsync(grad_in.data_ptr(), 0, grad_in.nbytes(), stream));
  if (n == 0) return;
  // limit itself is the key of a skipped index: limit + 1 key values.
  dispatch_key(limit + 1, [&]<typename K>() {
    const SortedRuns<K> runs = sorted_runs<K>(n, limit + 1, grad_in.device(), stream, [&](K* keys) {
      plane_keys_kernel<K><<<grid_for(n), kBlock, 0, stream>>>(data_of<int64_t>(indices), keys, n, plane, out_plane,
                                                               limit);
      KILN_CUDA_CHECK_LAUNCH();
    });
    dispatch_device_floating(grad_in.dtype(), "max_pool2d_backward", [&]<typename T>() {
      plane_runs_kernel<T, K><<<grid_for(n), kBlock, 0, stream>>>(data_of<T>(grad_in), data_of<T>(grad_out), runs.keys,
                                                                  runs.perm, n, static_cast<K>(limit));
      KILN_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace kiln::cuda
