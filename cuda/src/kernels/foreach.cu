// Multi-tensor norms and in-place scaling on CUDA: Backend::foreach_norm,
// foreach_mul and amp_unscale (contracts in core/include/kiln/core/backend.h;
// the CPU's are core/src/cpu/cpu_foreach.cpp).
//
// As the fused optimizers (optim.cu), a list is cut into chunks of kChunk
// elements and each block of a launch owns one chunk of one tensor; the
// tensors' pointers and the block -> (tensor, chunk) map travel in the
// kernel's argument struct, so a list takes one launch per table that fits
// (a few for big lists) whatever the number of tensors.
//
// Norms are deterministic, in two stages and without atomics: each block
// reduces its chunk in a fixed order (a fixed per-thread stride, then
// reduce_util.cuh's shuffle tree) and writes one partial per chunk; then one
// thread per tensor combines its chunks' partials in chunk order. Chunks are
// numbered across the launches, so how a list is split into launches never
// changes a result. Sums accumulate in double, the terms |x| and x * x
// computed in opmath (float for f32/f16/bf16: a square overflows to inf
// where the CPU's and torch's do) and rounded explicitly (no contraction into
// an fma), as the CPU backend, which also sums in double.
//
// Elements are read as one flat array when they fill their memory span in
// some order of the dims (contiguous, transposed, permuted): neither a norm
// nor an in-place scale cares about the order. Other strided tensors go
// through contiguous copies (written back for the in-place ops).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "cuda_backend.h"
#include "kernels/chunk_table.cuh"
#include "kernels/common.cuh"
#include "kernels/reduce_util.cuh"
#include "kiln/core/native.h"

namespace kiln::cuda {

namespace {

constexpr int64_t kChunk = 65536;  // elements per block
constexpr int kThreads = 512;
constexpr int kIlp = 4;  // loads in flight per thread
constexpr int kMaxTensors = 64;
constexpr int kMaxBlocks = 320;

// ---- the chunk table ----

struct TableArgs {
  void* ptrs[kMaxTensors];
  int64_t numel[kMaxTensors];
  int32_t block_chunk[kMaxBlocks];
  uint8_t block_tensor[kMaxBlocks];
};
// Kernel parameters are limited to 4 KB on every architecture we build for.
static_assert(sizeof(TableArgs) + 64 <= 4000, "foreach kernel arguments exceed 4 KB");

// Elements [start, start + n) of tensor `tensor` belong to this block.
struct Chunk {
  int tensor;
  int64_t start, n;
};

__device__ __forceinline__ Chunk chunk_of(const TableArgs& a) {
  Chunk c;
  c.tensor = a.block_tensor[blockIdx.x];
  c.start = static_cast<int64_t>(a.block_chunk[blockIdx.x]) * kChunk;
  const int64_t left = a.numel[c.tensor] - c.start;
  c.n = left < kChunk ? left : kChunk;
  return c;
}

using Table = ChunkTable<TableArgs, kMaxTensors, kMaxBlocks, kChunk>;

// Each thread works on kIlp elements at a time, base + k * kThreads: all
// their loads are issued first (missing ones read as 0), so several are in
// flight at once.
template <typename T, typename C>
__device__ __forceinline__ void load_ilp(const T* __restrict__ x, int64_t base, int64_t n, C (&v)[kIlp]) {
#pragma unroll
  for (int k = 0; k < kIlp; ++k) {
    const int64_t i = base + int64_t{k} * kThreads;
    v[k] = i < n ? cast<C>(x[i]) : C(0);
  }
}

// ---- norms ----

enum NormKind : int { kL1 = 0, kL2 = 1, kMax = 2 };

__device__ __forceinline__ float abs_of(float v) { return fabsf(v); }
__device__ __forceinline__ double abs_of(double v) { return fabs(v); }
__device__ __forceinline__ float square_rn(float v) { return __fmul_rn(v, v); }
__device__ __forceinline__ double square_rn(double v) { return __dmul_rn(v, v); }

// Partials are doubles for every kind: sums accumulate in double, and a max
// of |x| (float or double) is exact in double.
__device__ __forceinline__ double combine(int kind, double a, double b) {
  return kind == kMax ? max_propagate_nan(a, b) : __dadd_rn(a, b);
}

template <typename C>
__device__ __forceinline__ double add_term(int kind, double acc, C v) {
  switch (kind) {
    case kL1: return __dadd_rn(acc, static_cast<double>(abs_of(v)));
    case kL2: return __dadd_rn(acc, static_cast<double>(square_rn(v)));
    default: return max_propagate_nan(acc, static_cast<double>(abs_of(v)));
  }
}

// Stage 1: partials[first + blockIdx.x] = this block's chunk reduced.
// Every thread adds up the elements threadIdx.x + k * kThreads in k order
// (missing ones read as 0: no term for a sum, and |x| >= 0 for the max).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    norm_chunks_kernel(const TableArgs args, const int kind, double* __restrict__ partials, const int64_t first) {
  using C = opmath_t<T>;
  __shared__ double scratch[kWarpSize];
  const Chunk c = chunk_of(args);
  const T* __restrict__ x = static_cast<const T*>(args.ptrs[c.tensor]) + c.start;
  double acc = 0.0;
  for (int64_t base = threadIdx.x; base < c.n; base += int64_t{kThreads} * kIlp) {
    C v[kIlp];
    load_ilp(x, base, c.n, v);
#pragma unroll
    for (int k = 0; k < kIlp; ++k) acc = add_term(kind, acc, v[k]);
  }
  acc = block_reduce(acc, [kind](double a, double b) { return combine(kind, a, b); }, 0.0, scratch);
  if (threadIdx.x == 0) partials[first + blockIdx.x] = acc;
}

// Stage 2: out[i] = the norm from tensor i's partials
// [offsets[i], offsets[i + 1]), combined in chunk order; 0 for no chunks
// (an empty tensor). sqrt in double, then one rounding to S, as the CPU.
template <typename S>
__global__ void norm_finish_kernel(const double* __restrict__ partials, const int64_t* __restrict__ offsets,
                                   const int64_t n, const int kind, S* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  double r = 0.0;
  for (int64_t k = offsets[i]; k < offsets[i + 1]; ++k) r = combine(kind, r, partials[k]);
  out[i] = static_cast<S>(kind == kL2 ? __dsqrt_rn(r) : r);
}

// ---- scaling ----

// The 1-element scale, whatever its floating dtype, exactly as a double.
enum ScalarKind : int { kF64 = 0, kF32 = 1, kF16 = 2, kBF16 = 3 };

__device__ __forceinline__ double read_scalar(const void* p, int kind) {
  switch (kind) {
    case kF64: return *static_cast<const double*>(p);
    case kF32: return *static_cast<const float*>(p);
    case kF16: return __half2float(*static_cast<const __half*>(p));
    default: return __bfloat162float(*static_cast<const __nv_bfloat16*>(p));
  }
}

int scalar_kind(const Tensor& t, const char* op) {
  switch (t.dtype()) {
    case kFloat64: return kF64;
    case kFloat32: return kF32;
    case kFloat16: return kF16;
    case kBFloat16: return kBF16;
    default: break;
  }
  KILN_ERROR(op, " (CUDA): the scale must be a floating-point tensor, got ", dtype_name(t.dtype()));
}

// x *= scale in opmath (the scale rounded once from double to it, as the
// CPU); with found_inf, also sets *found_inf = 1 when any element of the
// block was inf or NaN before scaling.
template <typename T>
__global__ void __launch_bounds__(kThreads) scale_kernel(const TableArgs args, const void* __restrict__ scale,
                                                         const int scale_kind, float* found_inf) {
  using C = opmath_t<T>;
  const Chunk c = chunk_of(args);
  T* __restrict__ x = static_cast<T*>(args.ptrs[c.tensor]) + c.start;
  const C s = static_cast<C>(read_scalar(scale, scale_kind));
  bool bad = false;
  for (int64_t base = threadIdx.x; base < c.n; base += int64_t{kThreads} * kIlp) {
    C v[kIlp];
    load_ilp(x, base, c.n, v);
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + int64_t{k} * kThreads;
      if (i < c.n) {
        bad = bad || !isfinite(v[k]);
        x[i] = cast<T>(v[k] * s);
      }
    }
  }
  if (found_inf != nullptr) {  // the same for the whole launch, so every thread reaches the barrier
    // Any number of blocks may store here at once: a benign race, since
    // every writer stores the same 1.0f and nobody reads it in this launch.
    if (__syncthreads_or(bad) && threadIdx.x == 0) *found_inf = 1.0f;
  }
}

// ---- host side ----

// Whether t's elements fill [data_ptr, data_ptr + numel) exactly, in some
// order of its dims: then they can be read as one flat array.
bool fills_its_span(const Tensor& t) {
  if (t.is_contiguous()) return true;
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size) of the dims that are not 1
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.size(d) != 1) dims.emplace_back(t.stride(d), t.size(d));
  std::sort(dims.begin(), dims.end());
  int64_t step = 1;
  for (const auto& [stride, size] : dims) {
    if (stride != step) return false;
    step *= size;
  }
  return true;
}

// Flat operands: the tensors themselves where they fill their span, else
// contiguous copies, held until every launch is queued (a freed copy could
// be handed out again before a kernel reading it is launched) and, for
// written ones, copied back afterwards (stream order puts the copies after
// the kernels).
using FlatOperands = WorkingCopies<fills_its_span>;

// Every tensor's flat operand into a chunk table, launched as it fills.
template <typename Launch>
void launch_list(const std::vector<Tensor>& tensors, FlatOperands& ops, bool written, const Launch& launch) {
  Table table;
  for (const Tensor& t : tensors) {
    const Tensor w = written ? ops.inout(t) : ops.in(t);
    table.add(w.numel(), [&w](TableArgs& args, int slot) {
      args.ptrs[slot] = w.data_ptr();
      args.numel[slot] = w.numel();
    }, launch);
  }
  table.flush(launch);
}

void check_list(const std::vector<Tensor>& tensors, const char* op) {
  for (const Tensor& t : tensors) {
    KILN_CHECK(t.dtype() == tensors[0].dtype() && t.device() == tensors[0].device(), op,
               " (CUDA): the tensors of one backend call must share a device and a dtype, got ", tensors[0].dtype(),
               " on ", tensors[0].device(), " and ", t.dtype(), " on ", t.device());
  }
}

// tensors[i] *= scale, and the non-finite check when found_inf is given.
void scale_list(const std::vector<Tensor>& tensors, const Tensor& scale, const Tensor* found_inf, const char* op) {
  check_list(tensors, op);
  KILN_CHECK(scale.numel() == 1 && scale.device() == tensors[0].device(), op,
             " (CUDA): the scale must be a 1-element tensor on ", tensors[0].device(), ", got shape ", scale.sizes(),
             " on ", scale.device());
  DeviceGuard guard(device_index(tensors[0]));
  const Stream stream = stream_of(tensors[0]);
  const int kind = scalar_kind(scale, op);
  const void* scale_ptr = scale.data_ptr();
  float* flag = found_inf != nullptr ? static_cast<float*>(found_inf->data_ptr()) : nullptr;
  FlatOperands ops;
  dispatch_device_floating(tensors[0].dtype(), op, [&]<typename T>() {
    auto launch = [&](const TableArgs& args, int blocks, int64_t) {
      scale_kernel<T><<<blocks, kThreads, 0, stream>>>(args, scale_ptr, kind, flag);
      KILN_CUDA_CHECK_LAUNCH();
    };
    launch_list(tensors, ops, /*written=*/true, launch);
  });
  ops.finish();
}

}  // namespace

void CudaBackend::foreach_norm(const std::vector<Tensor>& tensors, double p, const Tensor& out) {
  const int64_t n = static_cast<int64_t>(tensors.size());
  KILN_CHECK(out.is_contiguous() && out.numel() == n, "foreach_norm (CUDA): out must be contiguous with one element "
             "per tensor, got shape ", out.sizes(), " for ", n, " tensors");
  if (n == 0) return;
  check_list(tensors, "foreach_norm");
  KILN_CHECK(out.device() == tensors[0].device(), "foreach_norm (CUDA): out is on ", out.device(),
             " but the tensors are on ", tensors[0].device());
  int kind = kMax;
  if (p == 1) {
    kind = kL1;
  } else if (p == 2) {
    kind = kL2;
  } else {
    KILN_CHECK(p == std::numeric_limits<double>::infinity(),
               "foreach_norm (CUDA): the backend computes p = 1, 2 or inf, got ", p);
  }
  DeviceGuard guard(device_index(tensors[0]));
  const Stream stream = stream_of(tensors[0]);

  // Tensor i's chunks are partials [offsets[i], offsets[i + 1]).
  std::vector<int64_t> offsets(tensors.size() + 1, 0);
  for (size_t i = 0; i < tensors.size(); ++i)
    offsets[i + 1] = offsets[i] + (tensors[i].numel() + kChunk - 1) / kChunk;
  const TensorOptions on_device = TensorOptions().device(out.device());
  const Tensor partials = native::empty({std::max<int64_t>(offsets.back(), 1)}, on_device.dtype(kFloat64));
  const Tensor dev_offsets = native::to(native::tensor(offsets, TensorOptions().dtype(kInt64)), out.device());
  double* partial_ptr = partials.data_ptr<double>();

  FlatOperands ops;
  dispatch_device_floating(tensors[0].dtype(), "foreach_norm", [&]<typename T>() {
    auto launch = [&](const TableArgs& args, int blocks, int64_t first) {
      norm_chunks_kernel<T><<<blocks, kThreads, 0, stream>>>(args, kind, partial_ptr, first);
      KILN_CUDA_CHECK_LAUNCH();
    };
    launch_list(tensors, ops, /*written=*/false, launch);
  });

  const unsigned grid = static_cast<unsigned>((n + kBlock - 1) / kBlock);
  const int64_t* off = dev_offsets.data_ptr<int64_t>();
  if (out.dtype() == kFloat64) {
    norm_finish_kernel<double><<<grid, kBlock, 0, stream>>>(partial_ptr, off, n, kind, out.data_ptr<double>());
  } else {
    KILN_CHECK(out.dtype() == kFloat32, "foreach_norm (CUDA): out must be float32 or float64, got ", out.dtype());
    norm_finish_kernel<float><<<grid, kBlock, 0, stream>>>(partial_ptr, off, n, kind, out.data_ptr<float>());
  }
  KILN_CUDA_CHECK_LAUNCH();
}

void CudaBackend::foreach_mul(const std::vector<Tensor>& tensors, const Tensor& scale) {
  if (tensors.empty()) return;
  scale_list(tensors, scale, nullptr, "foreach_mul");
}

void CudaBackend::amp_unscale(const std::vector<Tensor>& tensors, const Tensor& inv_scale, const Tensor& found_inf) {
  if (tensors.empty()) return;
  KILN_CHECK(inv_scale.dtype() == kFloat32 && found_inf.dtype() == kFloat32 && found_inf.numel() == 1 &&
                 found_inf.device() == tensors[0].device(),
             "amp_unscale (CUDA): inv_scale and found_inf must be 1-element float32 tensors on ", tensors[0].device());
  scale_list(tensors, inv_scale, &found_inf, "amp_unscale");
}

}  // namespace kiln::cuda
