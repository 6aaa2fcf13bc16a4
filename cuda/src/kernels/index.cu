// CUDA index-driven kernels: index_select, gather, scatter(_add), index_add,
// flip, with the CPU backend's semantics (core/src/cpu/cpu_index.cpp).
//
// As on the CPU, the indexed tensor is "restrided": its stride along `dim`
// becomes 0, so a StridedIndexer walk gives the start of the indexed line,
// to which the kernel adds index * stride. Moves (select, gather, scatter,
// flip) copy elements as same-sized unsigned integers, so every dtype shares
// four instantiations.
//
// Indices are validated before anything is written, so an out-of-range index
// is a kiln::Error naming it, as on the CPU, and never a stray access (torch
// uses a device assert, which kills the context). The native layer does not
// check them, and only the host can throw, so the check reads one word back
// from the device: each call with indices synchronises with its stream.
//
// scatter(Add) and index_add accumulate with atomics, as torch does: the
// order of the adds into one element varies between runs, so floating sums
// may differ in the last bits where indices repeat (integer sums do not).
// float atomicAdd flushes subnormal operands and results to zero (PTX
// atom.add.f32), like torch's. scatter without reduction writes repeated
// targets in an unspecified order (torch's CUDA scatter too), where the CPU
// keeps the last.
#include <cstdint>

#include "cuda_backend.h"
#include "kernels/common.cuh"
#include "kiln/core/native/factory.h"
#include "kiln/core/tensor_impl.h"

namespace kiln::cuda {

namespace {

// A view of t's storage with other sizes/strides (zero or negative strides
// allowed), only for building indexers and base pointers in this file.
Tensor restride(const Tensor& t, IntArrayRef sizes, IntArrayRef strides, int64_t offset) {
  return Tensor(std::make_shared<TensorImpl>(t.storage(), t.dtype(), sizes.dims(), strides.dims(), offset));
}
Tensor restride(const Tensor& t, IntArrayRef sizes, IntArrayRef strides) {
  return restride(t, sizes, strides, t.storage_offset());
}

DimVector with(IntArrayRef v, int64_t dim, int64_t value) {
  DimVector out = v.dims();
  out[dim] = value;
  return out;
}

// Strides that walk a 1-D index along `dim` of an rank-`rank` shape.
DimVector along(int64_t rank, int64_t dim, int64_t stride) {
  DimVector s(static_cast<size_t>(rank), 0);
  s[dim] = stride;
  return s;
}

template <typename F>
void dispatch_bits(size_t size, F&& f) {
  switch (size) {
    case 1: return f.template operator()<uint8_t>();
    case 2: return f.template operator()<uint16_t>();
    case 4: return f.template operator()<uint32_t>();
    case 8: return f.template operator()<uint64_t>();
  }
  KILN_ERROR("index kernel (CUDA): unsupported element size ", size);
}

void check_device(const char* op, const Tensor& a, const Tensor& b) {
  KILN_CHECK(a.device() == b.device(), op, " (CUDA kernel): tensors on ", a.device(), " and ", b.device());
}

__device__ __forceinline__ int64_t thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t thread_stride() { return static_cast<int64_t>(blockDim.x) * gridDim.x; }

// ---- index validation ----

// *first = the smallest row-major position of an index outside [0, size).
__global__ void find_bad_index_kernel(const int64_t* __restrict__ index, StridedIndexer<1> ix, int64_t size,
                                      unsigned long long* first, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) {
    int64_t o[1];
    ix.offsets(i, o);
    const int64_t v = index[o[0]];
    if (v < 0 || v >= size) atomicMin(first, static_cast<unsigned long long>(i));
  }
}

void check_indices(const char* op, const Tensor& index, int64_t dim, int64_t size, cudaStream_t stream) {
  KILN_CHECK(index.dtype() == kInt64, op, " (CUDA kernel): index must be int64, got ", dtype_name(index.dtype()));
  const int64_t n = index.numel();
  if (n == 0) return;
  const Tensor* ops[1] = {&index};
  const StridedIndexer<1> ix = make_indexer<1>(op, index.sizes(), ops);
  const Tensor flag = native::empty({1}, TensorOptions().dtype(kInt64).device(index.device()));
  auto* first = static_cast<unsigned long long*>(flag.data_ptr());
  KILN_CUDA_CHECK(cudaMemsetAsync(first, 0xff, sizeof(unsigned long long), stream));
  find_bad_index_kernel<<<grid_for(n), kBlock, 0, stream>>>(data_of<int64_t>(index), ix, size, first, n);
  KILN_CUDA_CHECK_LAUNCH();
  unsigned long long bad = 0;
  KILN_CUDA_CHECK(cudaMemcpyAsync(&bad, first, sizeof(bad), cudaMemcpyDeviceToHost, stream));
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (bad == ~0ull) return;
  int64_t o[1];
  ix.offsets(static_cast<int64_t>(bad), o);
  int64_t value = 0;
  KILN_CUDA_CHECK(cudaMemcpyAsync(&value, data_of<int64_t>(index) + o[0], sizeof(value), cudaMemcpyDeviceToHost,
                                  stream));
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
  KILN_ERROR(op, "(): index ", value, " is out of bounds for dimension ", dim, " with size ", size);
}

// ---- moves ----

// out[o0] = in[o1 + index[o2] * step] over out's elements (index_select, gather).
template <typename U>
__global__ void take_kernel(U* __restrict__ out, const U* __restrict__ in, const int64_t* __restrict__ index,
                            StridedIndexer<3> ix, int64_t step, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) {
    int64_t o[3];
    ix.offsets(i, o);
    out[o[0]] = in[o[1] + index[o[2]] * step];
  }
}

// index_select of contiguous tensors viewed as [outer, size, units] ->
// [outer, count, units], a unit being up to 16 bytes of a row (embedding
// lookups: whole rows moved with wide, coalesced loads and stores).
template <typename U>
__global__ void take_rows_kernel(U* __restrict__ out, const U* __restrict__ in, const int64_t* __restrict__ index,
                                 int64_t count, int64_t size, int64_t units, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) {
    const int64_t u = i % units, r = i / units;
    const int64_t j = r % count, outer = r / count;
    out[i] = in[(outer * size + index[j]) * units + u];
  }
}

// out[o0 + index[o1] * step] = src[o2] over index's elements (scatter).
template <typename U>
__global__ void put_kernel(U* out, const int64_t* __restrict__ index, const U* __restrict__ src,
                           StridedIndexer<3> ix, int64_t step, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) {
    int64_t o[3];
    ix.offsets(i, o);
    out[o[0] + index[o[1]] * step] = src[o[2]];
  }
}

template <typename U>
__global__ void copy_kernel(U* __restrict__ out, const U* __restrict__ in, StridedIndexer<2> ix, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) {
    int64_t o[2];
    ix.offsets(i, o);
    out[o[0]] = in[o[1]];
  }
}

// ---- accumulation ----

// *p = T(C(*p) + alpha * C(v)) atomically, rounding as the CPU's index_add
// (the product and the sum each rounded in the compute type C, one rounding
// to T). `unit`: alpha == 1, where 16-bit types use the hardware add, whose
// single rounding of the exact sum equals the CPU's float sum rounded to 16
// bits (float carries more than twice their precision).
template <typename T>
__device__ __forceinline__ void atomic_accumulate(T* p, T v, opmath_t<T> alpha, bool unit) {
  if constexpr (std::is_same_v<T, float>) {
    atomicAdd(p, __fmul_rn(alpha, v));
  } else if constexpr (std::is_same_v<T, double>) {
    atomicAdd(p, __dmul_rn(alpha, v));
  } else if constexpr (std::is_same_v<T, int32_t>) {
    // Unsigned arithmetic: wraps on overflow as the CPU's does in practice.
    atomicAdd(reinterpret_cast<unsigned int*>(p), static_cast<unsigned int>(alpha) * static_cast<unsigned int>(v));
  } else if constexpr (std::is_same_v<T, int64_t>) {
    atomicAdd(reinterpret_cast<unsigned long long*>(p),
              static_cast<unsigned long long>(alpha) * static_cast<unsigned long long>(v));
  } else if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, bool>) {
    // No byte atomics: update the byte inside its aligned 32-bit word (the
    // word lies inside the allocation, which is at least 4-byte aligned).
    const auto addr = reinterpret_cast<uintptr_t>(p);
    auto* word = reinterpret_cast<unsigned int*>(addr & ~uintptr_t{3});
    const unsigned shift = static_cast<unsigned>(addr & 3) * 8;
    if constexpr (std::is_same_v<T, bool>) {
      if (alpha && v) atomicOr(word, 1u << shift);  // bool "sum" is logical or
    } else {
      const unsigned add = static_cast<uint8_t>(alpha * v);
      unsigned old = *word, assumed;
      do {
        assumed = old;
        const unsigned byte = ((assumed >> shift) + add) & 0xffu;
        old = atomicCAS(word, assumed, (assumed & ~(0xffu << shift)) | (byte << shift));
      } while (assumed != old);
    }
  } else {
    static_assert(is_half_v<T>);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    if (unit) {
      atomicAdd(p, v);
      return;
    }
#endif
    const float add = unit ? cast<float>(v) : __fmul_rn(alpha, cast<float>(v));
    auto* bits = reinterpret_cast<unsigned short*>(p);
    unsigned short old = *bits, assumed;
    do {
      assumed = old;
      T cur, next;
      if constexpr (std::is_same_v<T, __half>) {
        cur = __ushort_as_half(assumed);
        next = cast<T>(__fadd_rn(cast<float>(cur), add));
        old = atomicCAS(bits, assumed, __half_as_ushort(next));
      } else {
        cur = __ushort_as_bfloat16(assumed);
        next = cast<T>(__fadd_rn(cast<float>(cur), add));
        old = atomicCAS(bits, assumed, __bfloat16_as_ushort(next));
      }
    } while (assumed != old);
  }
}

// out[o0 + index[o1] * step] += alpha * src[o2] (scatter-add over index's
// elements, index_add over src's).
template <typename T>
__global__ void accumulate_kernel(T* out, const int64_t* __restrict__ index, const T* __restrict__ src,
                                  StridedIndexer<3> ix, int64_t step, opmath_t<T> alpha, bool unit, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) {
    int64_t o[3];
    ix.offsets(i, o);
    atomic_accumulate(out + o[0] + index[o[1]] * step, src[o[2]], alpha, unit);
  }
}

// The widest unit (16, 8, 4, 2 or 1 bytes) dividing the row and both bases' alignment.
int unit_bytes(int64_t row_bytes, const void* a, const void* b) {
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  for (int w : {16, 8, 4, 2}) {
    if (row_bytes % w == 0 && pa % w == 0 && pb % w == 0) return w;
  }
  return 1;
}

template <typename F>
void dispatch_unit(int bytes, F&& f) {
  switch (bytes) {
    case 16: return f.template operator()<uint4>();
    case 8: return f.template operator()<uint64_t>();
    case 4: return f.template operator()<uint32_t>();
    case 2: return f.template operator()<uint16_t>();
    default: return f.template operator()<uint8_t>();
  }
}

}  // namespace

void CudaBackend::index_select(const Tensor& in, int64_t dim, const Tensor& index, const Tensor& out) {
  KILN_CHECK(index.dim() == 1 && index.is_contiguous(), "index_select (CUDA kernel): index must be contiguous 1-D");
  check_device("index_select", in, out);
  check_device("index_select", in, index);
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(device_index(out));
  const Stream stream = stream_of(out);
  check_indices("index_select", index, dim, in.size(dim), stream);
  if (in.is_contiguous() && out.is_contiguous()) {
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < dim; ++d) outer *= in.size(d);
    for (int64_t d = dim + 1; d < in.dim(); ++d) inner *= in.size(d);
    const int64_t row_bytes = inner * static_cast<int64_t>(in.element_size());
    const int bytes = unit_bytes(row_bytes, in.data_ptr(), out.data_ptr());
    const int64_t units = row_bytes / bytes, total = outer * index.numel() * units;
    dispatch_unit(bytes, [&]<typename U>() {
      take_rows_kernel<U><<<grid_for(total), kBlock, 0, stream>>>(data_of<U>(out), data_of<U>(in),
                                                                  data_of<int64_t>(index), index.numel(),
                                                                  in.size(dim), units, total);
      KILN_CUDA_CHECK_LAUNCH();
    });
    return;
  }
  const Tensor src = restride(in, out.sizes(), with(in.strides(), dim, 0));
  const Tensor idx = restride(index, out.sizes(), along(out.dim(), dim, index.stride(0)));
  const Tensor* ops[3] = {&out, &src, &idx};
  const StridedIndexer<3> ix = make_indexer<3>("index_select", out.sizes(), ops);
  dispatch_bits(in.element_size(), [&]<typename U>() {
    take_kernel<U><<<grid_for(n), kBlock, 0, stream>>>(data_of<U>(out), data_of<U>(in), data_of<int64_t>(index), ix,
                                                       in.stride(dim), n);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::gather(const Tensor& in, int64_t dim, const Tensor& index, const Tensor& out) {
  KILN_CHECK(index.sizes().equals(out.sizes()), "gather (CUDA kernel): index ", index.sizes(), " and out ",
             out.sizes(), " differ");
  check_device("gather", in, out);
  check_device("gather", in, index);
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(device_index(out));
  const Stream stream = stream_of(out);
  check_indices("gather", index, dim, in.size(dim), stream);
  const Tensor src = restride(in, out.sizes(), with(in.strides(), dim, 0));
  const Tensor* ops[3] = {&out, &src, &index};
  const StridedIndexer<3> ix = make_indexer<3>("gather", out.sizes(), ops);
  dispatch_bits(in.element_size(), [&]<typename U>() {
    take_kernel<U><<<grid_for(n), kBlock, 0, stream>>>(data_of<U>(out), data_of<U>(in), data_of<int64_t>(index), ix,
                                                       in.stride(dim), n);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::scatter(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
                          ScatterReduce reduce) {
  KILN_CHECK(src.dtype() == out.dtype(), "scatter (CUDA kernel): src dtype ", dtype_name(src.dtype()),
             " differs from self dtype ", dtype_name(out.dtype()));
  check_device("scatter", out, index);
  check_device("scatter", out, src);
  const int64_t n = index.numel();
  if (n == 0) return;
  DeviceGuard guard(device_index(out));
  const Stream stream = stream_of(out);
  check_indices("scatter", index, dim, out.size(dim), stream);
  // Over index's elements: out along dim restrided to 0; src read at index's
  // positions (it may be larger than index, or 0-stride for a scalar value).
  const Tensor dst = restride(out, index.sizes(), with(out.strides(), dim, 0));
  const Tensor val = restride(src, index.sizes(), src.strides());
  const Tensor* ops[3] = {&dst, &index, &val};
  const StridedIndexer<3> ix = make_indexer<3>("scatter", index.sizes(), ops);
  if (reduce == ScatterReduce::None) {
    dispatch_bits(out.element_size(), [&]<typename U>() {
      put_kernel<U><<<grid_for(n), kBlock, 0, stream>>>(data_of<U>(out), data_of<int64_t>(index), data_of<U>(src),
                                                        ix, out.stride(dim), n);
      KILN_CUDA_CHECK_LAUNCH();
    });
    return;
  }
  dispatch_device(out.dtype(), "scatter_add", [&]<typename T>() {
    accumulate_kernel<T><<<grid_for(n), kBlock, 0, stream>>>(data_of<T>(out), data_of<int64_t>(index),
                                                             data_of<T>(src), ix, out.stride(dim),
                                                             opmath_t<T>(1), true, n);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
                            const Scalar& alpha) {
  KILN_CHECK(index.dim() == 1 && index.is_contiguous(), "index_add (CUDA kernel): index must be contiguous 1-D");
  KILN_CHECK(src.dtype() == out.dtype(), "index_add (CUDA kernel): source dtype ", dtype_name(src.dtype()),
             " differs from self dtype ", dtype_name(out.dtype()));
  check_device("index_add", out, index);
  check_device("index_add", out, src);
  const int64_t n = src.numel();
  if (n == 0) return;
  DeviceGuard guard(device_index(out));
  const Stream stream = stream_of(out);
  check_indices("index_add", index, dim, out.size(dim), stream);
  // One thread per src element; consecutive threads take consecutive
  // elements of a src row, so for [V, D] += rows ([n, D] src, dim 0, the
  // embedding backward) a warp adds into 32 adjacent columns of one row.
  const Tensor dst = restride(out, src.sizes(), with(out.strides(), dim, 0));
  const Tensor idx = restride(index, src.sizes(), along(src.dim(), dim, index.stride(0)));
  const Tensor* ops[3] = {&dst, &idx, &src};
  const StridedIndexer<3> ix = make_indexer<3>("index_add", src.sizes(), ops);
  dispatch_device(out.dtype(), "index_add", [&]<typename T>() {
    using C = opmath_t<T>;
    const C a = alpha.to<C>();
    const bool unit = alpha.to<double>() == 1.0;
    accumulate_kernel<T><<<grid_for(n), kBlock, 0, stream>>>(data_of<T>(out), data_of<int64_t>(index),
                                                             data_of<T>(src), ix, out.stride(dim), a, unit, n);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::flip(const Tensor& in, IntArrayRef dims, const Tensor& out) {
  check_device("flip", in, out);
  KILN_CHECK(in.dtype() == out.dtype() && in.sizes().equals(out.sizes()), "flip (CUDA kernel): in ",
             in.toString(), " and out ", out.toString(), " differ");
  const int64_t n = out.numel();
  if (n == 0) return;
  // Read `in` through a view walking the flipped dims backwards.
  DimVector strides = in.strides().dims();
  int64_t offset = in.storage_offset();
  for (int64_t d : dims) {
    offset += (in.size(d) - 1) * strides[d];
    strides[d] = -strides[d];
  }
  const Tensor flipped = restride(in, in.sizes(), strides, offset);
  DeviceGuard guard(device_index(out));
  const Tensor* ops[2] = {&out, &flipped};
  const StridedIndexer<2> ix = make_indexer<2>("flip", out.sizes(), ops);
  dispatch_bits(in.element_size(), [&]<typename U>() {
    copy_kernel<U><<<grid_for(n), kBlock, 0, stream_of(out)>>>(data_of<U>(out), data_of<U>(flipped), ix, n);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace kiln::cuda
