#pragma once
// What every kernel file shares: the device element types behind Kiln's
// dtypes, a dtype dispatch that hands kernels those types, conversions that
// round as the CPU backend does, strided indexing, and launch geometry.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "kiln/core/dtype.h"
#include "kiln/core/tensor.h"
#include "kiln/cuda/check.h"
#include "kiln/cuda/runtime.h"
#include "kiln/cuda/stream.h"

namespace kiln::cuda {

// ---- element types ----
// Half and BFloat16 are bit-compatible with CUDA's __half and __nv_bfloat16,
// whose float conversions also round to nearest even.
template <typename T> struct device_type { using type = T; };
template <> struct device_type<Half> { using type = __half; };
template <> struct device_type<BFloat16> { using type = __nv_bfloat16; };
template <typename T> using device_t = typename device_type<T>::type;

// The type arithmetic happens in (torch's opmath_type): float for 16-bit floats.
template <typename T> struct opmath_type { using type = T; };
template <> struct opmath_type<__half> { using type = float; };
template <> struct opmath_type<__nv_bfloat16> { using type = float; };
template <typename T> using opmath_t = typename opmath_type<T>::type;

template <typename T>
inline constexpr bool is_half_v = std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;
template <typename T>
inline constexpr bool is_floating_v = std::is_floating_point_v<T> || is_half_v<T>;

// static_cast with the CPU backend's conversions: 16-bit floats go through
// float, anything to bool is "!= 0", floating to integer truncates.
template <typename To, typename From>
__host__ __device__ __forceinline__ To cast(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (is_half_v<From>) {
    return cast<To>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (is_half_v<To>) {
    // double -> float -> 16-bit, rounding twice, as the CPU backend and torch do.
    return To(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, uint8_t> && std::is_floating_point_v<From>) {
    // Through int64, so negative values wrap (-3.0 -> 253) as on x86 and in torch.
    return static_cast<To>(static_cast<int64_t>(v));
  } else {
    return static_cast<To>(v);
  }
}

// ---- dtype dispatch ----
// dispatch_device(dtype, "op", [&]<typename T>() { ... }) with T the device
// type (core's dispatch_all hands out kiln::Half, which has no device code).
template <typename F>
decltype(auto) dispatch_device(DType t, const char* op, F&& f) {
  switch (t) {
    case kFloat64: return f.template operator()<double>();
    case kFloat32: return f.template operator()<float>();
    case kFloat16: return f.template operator()<__half>();
    case kBFloat16: return f.template operator()<__nv_bfloat16>();
    case kInt64: return f.template operator()<int64_t>();
    case kInt32: return f.template operator()<int32_t>();
    case kUInt8: return f.template operator()<uint8_t>();
    case kBool: return f.template operator()<bool>();
  }
  KILN_ERROR(op, " (CUDA): unsupported dtype ", dtype_name(t));
}

template <typename F>
decltype(auto) dispatch_device_floating(DType t, const char* op, F&& f) {
  switch (t) {
    case kFloat64: return f.template operator()<double>();
    case kFloat32: return f.template operator()<float>();
    case kFloat16: return f.template operator()<__half>();
    case kBFloat16: return f.template operator()<__nv_bfloat16>();
    default: break;
  }
  KILN_ERROR(op, " (CUDA): expected a floating-point tensor but got dtype ", dtype_name(t));
}

// ---- tensors ----
inline int device_index(const Tensor& t) { return t.device().has_index() ? t.device().index() : 0; }
inline Stream stream_of(const Tensor& t) { return getCurrentCUDAStream(device_index(t)); }

template <typename T>
T* data_of(const Tensor& t) {
  return static_cast<T*>(t.data_ptr());
}

// Up to this many dims after collapsing (more is an error naming the op).
inline constexpr int kMaxDims = 10;

// Element offsets of N tensors of one shape, walked in row-major order of
// that shape. Dims of size 1 are dropped and adjacent dims that are
// contiguous with each other in every operand are merged, so most
// broadcasts and all contiguous tensors index through one or two dims.
template <int N>
struct StridedIndexer {
  int ndim = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[N][kMaxDims];

  __host__ __device__ __forceinline__ void offsets(int64_t linear, int64_t (&out)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) out[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t i = linear % sizes[d];
      linear /= sizes[d];
#pragma unroll
      for (int k = 0; k < N; ++k) out[k] += i * strides[k][d];
    }
  }
};

template <int N>
StridedIndexer<N> make_indexer(const char* op, IntArrayRef shape, const Tensor* const (&operands)[N]) {
  StridedIndexer<N> ix;
  int64_t sizes[64];
  int64_t strides[N][64];
  int nd = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    KILN_CHECK(nd < 64, op, " (CUDA): too many dims");
    sizes[nd] = shape[d];
    for (int k = 0; k < N; ++k) strides[k][nd] = operands[k]->strides()[d];
    ++nd;
  }
  // Merge dim d into d-1 where, for every operand, stepping the outer dim
  // equals stepping the inner one size times.
  int m = 0;
  for (int d = 0; d < nd; ++d) {
    bool mergeable = m > 0;
    for (int k = 0; k < N && mergeable; ++k) mergeable = strides[k][m - 1] == strides[k][d] * sizes[d];
    if (mergeable) {
      sizes[m - 1] *= sizes[d];
      for (int k = 0; k < N; ++k) strides[k][m - 1] = strides[k][d];
    } else {
      sizes[m] = sizes[d];
      for (int k = 0; k < N; ++k) strides[k][m] = strides[k][d];
      ++m;
    }
  }
  KILN_CHECK(m <= kMaxDims, op, " (CUDA): at most ", kMaxDims, " non-mergeable dims are supported, got ", m);
  ix.ndim = m;
  for (int d = 0; d < m; ++d) {
    ix.sizes[d] = sizes[d];
    for (int k = 0; k < N; ++k) ix.strides[k][d] = strides[k][d];
  }
  return ix;
}

// ---- launch geometry ----
inline constexpr int kBlock = 256;
// Grid for a grid-stride loop over n items: enough blocks to fill the GPU
// several times over, never more than the items need.
inline unsigned grid_for(int64_t n, int block = kBlock) {
  const int64_t want = (n + block - 1) / block;
  const int64_t cap = static_cast<int64_t>(get_device_properties().multi_processor_count) * 32;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(want, std::max<int64_t>(cap, 1))));
}

}  // namespace kiln::cuda
