// CudaBackend::copy: host <-> device <-> device, any dtypes, any strides.
//
// Bytes cross a bus only as a contiguous buffer; dtype conversion and
// restriding happen on a device (one strided conversion kernel) or, for a
// strided host destination, on the host with the CPU backend. Host-side
// buffers used by asynchronous copies are pinned and tagged with the
// copy's stream, so the pinned cache does not reuse them too early.
#include "cuda_backend.h"
#include "kernels/common.cuh"
#include "kiln/core/native/factory.h"
#include "kiln/cuda/caching_allocator.h"

namespace kiln::cuda {

namespace {

// ---- kernels ----

enum class CopyLayout : int {
  Contiguous,    // out[i] = in[i]
  ScalarSource,  // out contiguous, in one element broadcast
  Strided32,     // anything else with fewer than 2^31 elements: 32-bit index math
  Strided,       // anything else, through the indexer
};

// The indexer's walk with 32-bit division, several times cheaper than
// 64-bit on the GPU (valid when every index fits in 32 bits).
__device__ __forceinline__ void offsets32(const StridedIndexer<2>& ix, uint32_t linear, int64_t& o0, int64_t& o1) {
  o0 = 0;
  o1 = 0;
  for (int d = ix.ndim - 1; d >= 0; --d) {
    const auto size = static_cast<uint32_t>(ix.sizes[d]);
    const uint32_t q = linear / size, r = linear - q * size;
    linear = q;
    o0 += static_cast<int64_t>(r) * ix.strides[0][d];
    o1 += static_cast<int64_t>(r) * ix.strides[1][d];
  }
}

template <typename To, typename From>
__global__ void convert_kernel(To* out, const From* in, int64_t n, CopyLayout layout, StridedIndexer<2> ix) {
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (layout == CopyLayout::Contiguous) {
    for (; i < n; i += step) out[i] = cast<To>(in[i]);
  } else if (layout == CopyLayout::ScalarSource) {
    const To v = cast<To>(in[0]);
    for (; i < n; i += step) out[i] = v;
  } else if (layout == CopyLayout::Strided32) {
    for (; i < n; i += step) {
      int64_t o0, o1;
      offsets32(ix, static_cast<uint32_t>(i), o0, o1);
      out[o0] = cast<To>(in[o1]);
    }
  } else {
    for (; i < n; i += step) {
      int64_t off[2];
      ix.offsets(i, off);
      out[off[0]] = cast<To>(in[off[1]]);
    }
  }
}

// Transposing copy through shared-memory tiles: reads run down src's
// unit-stride dim and writes along dst's rows, both coalesced (the strided
// kernel would read one element per 32-byte sector). U is an unsigned type
// of the element's size: the bits move unchanged.
constexpr int kTile = 32;
constexpr int kTileRows = 8;

template <typename U>
__global__ void transpose_kernel(U* out, const U* in, int64_t rows, int64_t cols, int64_t ld, int64_t batches,
                                 StridedIndexer<1> batch_ix) {
  __shared__ U tile[kTile][kTile + 1];  // +1: column reads hit distinct banks
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * kTile;
  const int64_t j0 = static_cast<int64_t>(blockIdx.x) * kTile;
  for (int64_t b = blockIdx.z; b < batches; b += gridDim.z) {
    int64_t src_off[1];
    batch_ix.offsets(b, src_off);
    const U* s = in + src_off[0];
    U* d = out + b * rows * cols;
    // Element (i, j) of the matrix is s[i + j * ld] and d[i * cols + j].
    for (int k = threadIdx.y; k < kTile; k += kTileRows) {
      const int64_t i = i0 + threadIdx.x, j = j0 + k;
      if (i < rows && j < cols) tile[k][threadIdx.x] = s[i + j * ld];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < kTile; k += kTileRows) {
      const int64_t i = i0 + k, j = j0 + threadIdx.x;
      if (i < rows && j < cols) d[i * cols + j] = tile[threadIdx.x][k];
    }
    __syncthreads();  // the tile is refilled for the next batch
  }
}

// ---- on one device ----

// dst (contiguous) = src of the same dtype whose last two dims are
// column-major (x.t().contiguous()); false when the layout is another.
bool copy_transposed(const Tensor& src, const Tensor& dst, cudaStream_t stream) {
  const int64_t nd = dst.dim();
  if (nd < 2 || !dst.is_contiguous() || src.dtype() != dst.dtype()) return false;
  const int64_t rows = dst.size(nd - 2), cols = dst.size(nd - 1);
  if (rows < kTile || cols < kTile || src.stride(nd - 2) != 1 || src.stride(nd - 1) < rows) return false;
  const int64_t row_tiles = (rows + kTile - 1) / kTile, col_tiles = (cols + kTile - 1) / kTile;
  if (row_tiles > 65535 || col_tiles > 0x7fffffff) return false;
  // Batch offsets of src's matrices from its leading dims.
  StridedIndexer<1> batch_ix;
  int nb = 0;
  for (int64_t d = 0; d < nd - 2; ++d) {
    if (dst.size(d) == 1) continue;
    if (nb == kMaxDims) return false;
    batch_ix.sizes[nb] = dst.size(d);
    batch_ix.strides[0][nb] = src.stride(d);
    ++nb;
  }
  batch_ix.ndim = nb;
  const int64_t batches = dst.numel() / (rows * cols);
  const dim3 grid(static_cast<unsigned>(col_tiles), static_cast<unsigned>(row_tiles),
                  static_cast<unsigned>(std::min<int64_t>(batches, 65535)));
  const dim3 block(kTile, kTileRows);
  auto launch = [&]<typename U>() {
    transpose_kernel<U><<<grid, block, 0, stream>>>(static_cast<U*>(dst.data_ptr()),
                                                     static_cast<const U*>(src.data_ptr()), rows, cols,
                                                     src.stride(nd - 1), batches, batch_ix);
    KILN_CUDA_CHECK_LAUNCH();
  };
  switch (dst.element_size()) {
    case 1: launch.template operator()<uint8_t>(); break;
    case 2: launch.template operator()<uint16_t>(); break;
    case 4: launch.template operator()<uint32_t>(); break;
    case 8: launch.template operator()<uint64_t>(); break;
    default: return false;
  }
  return true;
}

// dst = convert(src), both on the current device, any strides.
void convert_on_device(const Tensor& src, const Tensor& dst, cudaStream_t stream) {
  const int64_t n = dst.numel();
  const Tensor* const operands[2] = {&dst, &src};
  const StridedIndexer<2> ix = make_indexer<2>("copy", dst.sizes(), operands);
  CopyLayout layout = n <= INT32_MAX ? CopyLayout::Strided32 : CopyLayout::Strided;
  if (ix.ndim == 0 || (ix.ndim == 1 && ix.strides[0][0] == 1 && ix.strides[1][0] == 1)) {
    layout = CopyLayout::Contiguous;
  } else if (ix.ndim == 1 && ix.strides[0][0] == 1 && ix.strides[1][0] == 0) {
    layout = CopyLayout::ScalarSource;
  }
  dispatch_device(dst.dtype(), "copy", [&]<typename To>() {
    dispatch_device(src.dtype(), "copy", [&]<typename From>() {
      convert_kernel<To, From><<<grid_for(n), kBlock, 0, stream>>>(data_of<To>(dst), data_of<const From>(src), n,
                                                                    layout, ix);
      KILN_CUDA_CHECK_LAUNCH();
    });
  });
}

void copy_within_device(const Tensor& src, const Tensor& dst) {
  DeviceGuard guard(device_index(dst));
  const Stream stream = stream_of(dst);
  if (src.dtype() == dst.dtype() && src.is_contiguous() && dst.is_contiguous()) {
    KILN_CUDA_CHECK(
        cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), dst.nbytes(), cudaMemcpyDeviceToDevice, stream.stream()));
    return;
  }
  if (copy_transposed(src, dst, stream.stream())) return;
  convert_on_device(src, dst, stream.stream());
}

// A contiguous copy of t on its own device (t itself when contiguous).
Tensor contiguous_on_device(const Tensor& t, DType dtype) {
  if (t.is_contiguous() && t.dtype() == dtype) return t;
  Tensor out = native::empty(t.sizes(), TensorOptions().dtype(dtype).device(t.device()));
  copy_within_device(t, out);
  return out;
}

// ---- between devices ----

// Raw bytes from `from` (device sd) to `to` (device dd), both contiguous and
// of one dtype. The copy runs on dd's current stream after the work queued
// on sd's, and sd's stream waits for it in turn, so neither side reuses or
// overwrites the memory too early.
void peer_copy(const Tensor& from, const Tensor& to) {
  const int sd = device_index(from), dd = device_index(to);
  const Stream src_stream = getCurrentCUDAStream(sd), dst_stream = getCurrentCUDAStream(dd);
  Event src_ready;
  src_ready.record(src_stream);
  src_ready.block(dst_stream);
  {
    DeviceGuard guard(dd);
    KILN_CUDA_CHECK(cudaMemcpyPeerAsync(to.data_ptr(), dd, from.data_ptr(), sd, to.nbytes(), dst_stream.stream()));
  }
  Event done;
  done.record(dst_stream);
  done.block(src_stream);
}

void copy_between_devices(const Tensor& src, const Tensor& dst) {
  const Tensor from = contiguous_on_device(src, src.dtype());
  const bool direct = dst.dtype() == src.dtype() && dst.is_contiguous();
  const Tensor to =
      direct ? dst : native::empty(dst.sizes(), TensorOptions().dtype(src.dtype()).device(dst.device()));
  peer_copy(from, to);
  if (!direct) copy_within_device(to, dst);
}

// ---- host <-> device ----

// src's bytes into `target` (contiguous, on the device, src's dtype and
// shape). Returns the host staging buffer, if any, which must outlive the
// copy when it is synchronous.
Tensor upload(const Tensor& src, const Tensor& target, bool non_blocking, const Stream& stream) {
  if (src.is_contiguous() && (!non_blocking || is_pinned(src))) {
    KILN_CUDA_CHECK(cudaMemcpyAsync(target.data_ptr(), src.data_ptr(), target.nbytes(), cudaMemcpyHostToDevice,
                                    stream.stream()));
    // A pinned block from the cache must not be reused while the copy reads it.
    if (non_blocking) record_stream(src.storage(), stream);
    return Tensor();
  }
  // An asynchronous copy reads its source after we return: stage in pinned
  // memory, which the cache keeps until the copy has finished.
  Tensor staging = non_blocking ? empty_pinned(src.sizes(), src.dtype()) : native::empty(src.sizes(), src.options());
  backend(kCPU).copy(src, staging, false);
  KILN_CUDA_CHECK(cudaMemcpyAsync(target.data_ptr(), staging.data_ptr(), target.nbytes(), cudaMemcpyHostToDevice,
                                  stream.stream()));
  if (non_blocking) record_stream(staging.storage(), stream);
  return staging;
}

void copy_host_to_device(const Tensor& src, const Tensor& dst, bool non_blocking) {
  DeviceGuard guard(device_index(dst));
  const Stream stream = stream_of(dst);
  const bool direct = src.dtype() == dst.dtype() && dst.is_contiguous();
  const Tensor target =
      direct ? dst : native::empty(dst.sizes(), TensorOptions().dtype(src.dtype()).device(dst.device()));
  const Tensor staging = upload(src, target, non_blocking, stream);
  if (!direct) copy_within_device(target, dst);
  if (!non_blocking) stream.synchronize();
}

void copy_device_to_host(const Tensor& src, const Tensor& dst, bool non_blocking) {
  DeviceGuard guard(device_index(src));
  const Stream stream = stream_of(src);
  if (dst.is_contiguous()) {
    // Convert and gather on the device, then one transfer straight into dst.
    const Tensor from = contiguous_on_device(src, dst.dtype());
    KILN_CUDA_CHECK(
        cudaMemcpyAsync(dst.data_ptr(), from.data_ptr(), dst.nbytes(), cudaMemcpyDeviceToHost, stream.stream()));
    if (non_blocking && is_pinned(dst)) {
      record_stream(dst.storage(), stream);
      return;
    }
    // Results are observed through this copy: they must be there on return.
    stream.synchronize();
    return;
  }
  // A strided destination is filled on the host from a contiguous download.
  const Tensor from = contiguous_on_device(src, src.dtype());
  Tensor host = native::empty(src.sizes(), TensorOptions().dtype(src.dtype()));
  KILN_CUDA_CHECK(
      cudaMemcpyAsync(host.data_ptr(), from.data_ptr(), host.nbytes(), cudaMemcpyDeviceToHost, stream.stream()));
  stream.synchronize();
  backend(kCPU).copy(host, dst, false);
}

}  // namespace

void CudaBackend::copy(const Tensor& src, const Tensor& dst, bool non_blocking) {
  KILN_CHECK(src.sizes().equals(dst.sizes()), "copy (CUDA): source shape ", src.sizes(),
             " differs from destination shape ", dst.sizes());
  KILN_CHECK(src.is_cuda() || dst.is_cuda(), "copy (CUDA): neither tensor is on a CUDA device (", src.device(), ", ",
             dst.device(), ")");
  if (dst.numel() == 0) return;
  if (src.is_cuda() && dst.is_cuda()) {
    if (device_index(src) != device_index(dst)) {
      copy_between_devices(src, dst);
      return;
    }
    if (src.data_ptr() == dst.data_ptr() && src.dtype() == dst.dtype() && src.strides().equals(dst.strides())) return;
    copy_within_device(src, dst);
  } else if (dst.is_cuda()) {
    copy_host_to_device(src, dst, non_blocking);
  } else {
    copy_device_to_host(src, dst, non_blocking);
  }
}

}  // namespace kiln::cuda
