#pragma once
// Warp and block reductions for any associative combine, plus the NaN-aware
// max/min and exp/log overloads the reduction and softmax kernels share.
//
// Determinism: the order of every combine is fixed by the launch shape
// (shuffle trees within a warp, warps in index order), never by timing, so
// one input gives the same bits on every run. No float atomics.
//
// A value type V reduces here when shfl_down(V, int) and shfl_xor(V, int)
// exist for it: they do for arithmetic types below; a struct (a (value,
// index) pair, a running max with its sum) declares its own overloads next
// to it, found by argument-dependent lookup.
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/common.cuh"

namespace kiln::cuda {

inline constexpr unsigned kFullWarpMask = 0xffffffffu;
inline constexpr int kWarpSize = 32;

// ---- shuffles of one value ----
// CUDA has no shuffle for 8- or 16-bit integers or bool: those travel as int.
template <typename V>
__device__ __forceinline__ V shfl_down(V v, int offset) {
  if constexpr (std::is_integral_v<V> && sizeof(V) < 4) {
    return static_cast<V>(__shfl_down_sync(kFullWarpMask, static_cast<int>(v), offset));
  } else {
    return __shfl_down_sync(kFullWarpMask, v, offset);
  }
}

template <typename V>
__device__ __forceinline__ V shfl_xor(V v, int mask) {
  if constexpr (std::is_integral_v<V> && sizeof(V) < 4) {
    return static_cast<V>(__shfl_xor_sync(kFullWarpMask, static_cast<int>(v), mask));
  } else {
    return __shfl_xor_sync(kFullWarpMask, v, mask);
  }
}

// ---- warp ----
// Lane 0 holds the combination of all 32 lanes (others hold partial ones).
// Every lane of the warp must call it.
template <typename V, typename F>
__device__ __forceinline__ V warp_reduce(V v, F combine) {
#pragma unroll
  for (int o = kWarpSize / 2; o > 0; o >>= 1) v = combine(v, shfl_down(v, o));
  return v;
}

// Every lane gets the result. For a commutative combine (a + b == b + a bit
// for bit, as IEEE sums are; max and min up to the sign of a zero and a
// NaN's payload) every lane holds the same bits.
template <typename V, typename F>
__device__ __forceinline__ V warp_allreduce(V v, F combine) {
#pragma unroll
  for (int o = kWarpSize / 2; o > 0; o >>= 1) v = combine(v, shfl_xor(v, o));
  return v;
}

// ---- block (1-D blocks, blockDim.x a multiple of 32, at most 1024) ----
// Thread 0 gets the combination of every thread's v. `scratch` is shared
// memory for kWarpSize values; it may be reused right after the call (the
// leading barrier protects the previous use). Every thread of the block must
// call it; `identity` pads the missing warps of a small block.
template <typename V, typename F>
__device__ __forceinline__ V block_reduce(V v, F combine, V identity, V* scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int nwarps = blockDim.x / kWarpSize;
  v = warp_reduce(v, combine);
  __syncthreads();
  if (nwarps == 1) return v;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) v = warp_reduce(lane < nwarps ? scratch[lane] : identity, combine);
  return v;
}

// As block_reduce, but every thread gets thread 0's result, bit for bit.
// `scratch` holds kWarpSize + 1 values.
template <typename V, typename F>
__device__ __forceinline__ V block_allreduce(V v, F combine, V identity, V* scratch) {
  v = block_reduce(v, combine, identity, scratch);
  if (threadIdx.x == 0) scratch[kWarpSize] = v;
  __syncthreads();
  return scratch[kWarpSize];
}

// ---- NaN-aware extremes, as the CPU's (NaN wins; otherwise the larger/smaller) ----
template <typename V>
__device__ __forceinline__ V max_propagate_nan(V a, V b) {
  if constexpr (std::is_floating_point_v<V>) return (b > a || b != b) && a == a ? b : a;
  else return b > a ? b : a;
}

template <typename V>
__device__ __forceinline__ V min_propagate_nan(V a, V b) {
  if constexpr (std::is_floating_point_v<V>) return (b < a || b != b) && a == a ? b : a;
  else return b < a ? b : a;
}

// ---- math in opmath (float or double), full precision (no __expf) ----
__device__ __forceinline__ float exp_op(float x) { return expf(x); }
__device__ __forceinline__ double exp_op(double x) { return exp(x); }
__device__ __forceinline__ float log_op(float x) { return logf(x); }
__device__ __forceinline__ double log_op(double x) { return log(x); }

template <typename V>
__device__ __forceinline__ V infinity_of() {
  if constexpr (std::is_same_v<V, float>) return __int_as_float(0x7f800000);
  else return __longlong_as_double(0x7ff0000000000000LL);
}

template <typename V>
__device__ __forceinline__ V quiet_nan_of() {
  if constexpr (std::is_same_v<V, float>) return __int_as_float(0x7fc00000);
  else return __longlong_as_double(0x7ff8000000000000LL);
}

// ---- 16-byte vector loads ----
// kVec<T> elements fill 16 bytes; load_vec reads them from a 16-byte aligned address.
template <typename T>
inline constexpr int kVec = 16 / static_cast<int>(sizeof(T));

template <typename T>
__device__ __forceinline__ void load_vec(const T* p, T (&dst)[kVec<T>]) {
  const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p));
  memcpy(dst, &raw, sizeof(raw));
}

}  // namespace kiln::cuda
