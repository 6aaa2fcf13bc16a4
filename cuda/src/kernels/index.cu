// CUDA index-driven kernels: index_select, gather, scatter(_add), index_add,
// flip, with the CPU backend's semantics (core/src/cpu/cpu_index.cpp).
//
// Moves (select, gather, scatter,
// flip) copy elements as same-sized unsigned integers, so every dtype shares
// four instantiations.
//
// Indices are validated before anything is written, so an out-of-range index
// is a kiln::Error naming it, as on the CPU, and never a stray access (torch
// uses a device assert, which kills the context). The native layer does not
// check them, and only the host can throw, so the check reads one word back
// from the device: each call with indices synchronises with its stream.
//
// scatter(Add) and index_add live in index_accumulate.cu: they sort by
// destination instead of using atomics, so they are deterministic and match
// the CPU bit for bit. scatter without reduction writes repeated targets in
// an unspecified order (torch's CUDA scatter too), where the CPU keeps the
// last.
#include <cstdint>

#include "cuda_backend.h"
#include "kernels/common.cuh"
#include "kernels/index_util.cuh"
#include "kiln/core/native/factory.h"
#include "kiln/core/tensor_impl.h"

namespace kiln::cuda {

namespace {

__device__ __forceinline__ int64_t thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t thread_stride() { return static_cast<int64_t>(blockDim.x) * gridDim.x; }

// ---- index validation ----

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

}  // namespace

void check_device(const char* op, const Tensor& a, const Tensor& b) {
  KILN_CHECK(a.device() == b.device(), op, " (CUDA kernel): tensors on ", a.device(), " and ", b.device());
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
  scatter_add_deterministic(out, dim, index, src, stream);
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
