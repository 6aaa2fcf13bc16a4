// Fills and the counting factories (arange, linspace).
//
// arange and linspace give the CPU backend's values bit for bit: each
// rounding step is written with an explicit round-to-nearest intrinsic, so
// nvcc cannot contract a*b+c into an FMA (the CPU build forbids that too).
#include <cstring>

#include "cuda_backend.h"
#include "kernels/common.cuh"

namespace kiln::cuda {

namespace {

// Scalar -> element, through the host's conversion (Scalar::to), so every
// rounding and truncation is the CPU backend's.
template <typename T>
T device_value(const Scalar& s) {
  if constexpr (std::is_same_v<T, __half>) {
    __half_raw r;
    r.x = s.to<Half>().x;  // the same bits: kiln::Half is IEEE binary16
    return T(r);
  } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    __nv_bfloat16_raw r;
    r.x = s.to<BFloat16>().x;
    return T(r);
  } else {
    return s.to<T>();
  }
}

template <typename T>
__global__ void fill_kernel(T* out, T value, int64_t n, bool contiguous, StridedIndexer<1> ix) {
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (contiguous) {
    for (; i < n; i += step) out[i] = value;
  } else {
    for (; i < n; i += step) {
      int64_t off[1];
      ix.offsets(i, off);
      out[off[0]] = value;
    }
  }
}

template <typename T>
void launch_fill(const Tensor& out, T value, cudaStream_t stream) {
  const int64_t n = out.numel();
  const Tensor* const operands[1] = {&out};
  const StridedIndexer<1> ix = make_indexer<1>("fill", out.sizes(), operands);
  const bool contiguous = ix.ndim == 0 || (ix.ndim == 1 && ix.strides[0][0] == 1);
  // All-zero bits (zeros(), false, +0.0) is a memset, the fastest fill there is.
  const T zero{};
  if (contiguous && std::memcmp(&value, &zero, sizeof(T)) == 0) {
    KILN_CUDA_CHECK(cudaMemsetAsync(out.data_ptr(), 0, out.nbytes(), stream));
    return;
  }
  fill_kernel<T><<<grid_for(n), kBlock, 0, stream>>>(data_of<T>(out), value, n, contiguous, ix);
  KILN_CUDA_CHECK_LAUNCH();
}

// ---- rounding steps (no contraction) ----
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }

// double -> element as the CPU's static_cast<T>(double): 16-bit floats go
// through float (two roundings, as kiln::Half(float) and c10::Half do).
template <typename T>
__device__ __forceinline__ T from_double(double v) {
  if constexpr (is_half_v<T>) {
    return cast<T>(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

template <typename T>
__global__ void arange_kernel(T* out, int64_t n, int64_t start_i, int64_t step_i, double start_d, double step_d) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    if constexpr (is_floating_v<T>) {
      out[i] = from_double<T>(add_rn(start_d, mul_rn(static_cast<double>(i), step_d)));
    } else {
      // Integer arithmetic in int64, as the CPU (wrapping on the cast).
      out[i] = static_cast<T>(static_cast<int64_t>(static_cast<uint64_t>(start_i) +
                                                   static_cast<uint64_t>(i) * static_cast<uint64_t>(step_i)));
    }
  }
}

// torch's linspace for floating T: the step in T's arithmetic, the first
// half counting up from a, the second down from b; 16-bit floats round back
// to T after every operation.
template <typename T>
__global__ void linspace_float_kernel(T* out, int64_t steps, T a, T b) {
  using C = opmath_t<T>;
  const T step = cast<T>(div_rn(sub_rn(cast<C>(b), cast<C>(a)), static_cast<C>(steps - 1)));
  const int64_t half = steps / 2;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < steps; i += stride) {
    const bool up = i < half;
    const T k = cast<T>(static_cast<C>(up ? i : steps - 1 - i));
    const T delta = cast<T>(mul_rn(cast<C>(step), cast<C>(k)));
    out[i] = cast<T>(up ? add_rn(cast<C>(a), cast<C>(delta)) : sub_rn(cast<C>(b), cast<C>(delta)));
  }
}

// Integral T (bool included): the arithmetic in double, truncated at the end.
template <typename T>
__global__ void linspace_int_kernel(T* out, int64_t steps, double a, double b, double step) {
  const int64_t half = steps / 2;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < steps; i += stride) {
    const double v = i < half ? add_rn(a, mul_rn(step, static_cast<double>(i)))
                              : sub_rn(b, mul_rn(step, static_cast<double>(steps - 1 - i)));
    out[i] = static_cast<T>(v);
  }
}

}  // namespace

void CudaBackend::fill(const Tensor& out, const Scalar& value) {
  if (out.numel() == 0) return;
  DeviceGuard guard(device_index(out));
  const Stream stream = stream_of(out);
  dispatch_device(out.dtype(), "fill", [&]<typename T>() { launch_fill<T>(out, device_value<T>(value), stream); });
}

void CudaBackend::arange(const Tensor& out, const Scalar& start, const Scalar& step) {
  KILN_CHECK(out.is_contiguous(), "arange: output must be contiguous");
  const int64_t n = out.numel();
  if (n == 0) return;
  DeviceGuard guard(device_index(out));
  const Stream stream = stream_of(out);
  dispatch_device(out.dtype(), "arange", [&]<typename T>() {
    arange_kernel<T><<<grid_for(n), kBlock, 0, stream.stream()>>>(data_of<T>(out), n, start.toLong(), step.toLong(),
                                                                   start.toDouble(), step.toDouble());
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::linspace(const Tensor& out, const Scalar& start, const Scalar& end) {
  KILN_CHECK(out.is_contiguous(), "linspace: output must be contiguous");
  const int64_t steps = out.numel();
  if (steps == 0) return;
  DeviceGuard guard(device_index(out));
  const Stream stream = stream_of(out);
  dispatch_device(out.dtype(), "linspace", [&]<typename T>() {
    if (steps == 1) {
      launch_fill<T>(out, device_value<T>(start), stream.stream());
      return;
    }
    if constexpr (is_floating_v<T>) {
      linspace_float_kernel<T><<<grid_for(steps), kBlock, 0, stream.stream()>>>(
          data_of<T>(out), steps, device_value<T>(start), device_value<T>(end));
    } else {
      // start and end convert to T first (integers truncate), as torch.
      const auto a = static_cast<double>(start.to<T>()), b = static_cast<double>(end.to<T>());
      // A subtraction and a division: nothing the host compiler could fuse.
      const double step = (b - a) / static_cast<double>(steps - 1);
      linspace_int_kernel<T><<<grid_for(steps), kBlock, 0, stream.stream()>>>(data_of<T>(out), steps, a, b, step);
    }
    KILN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace kiln::cuda
