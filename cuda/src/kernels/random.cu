// CudaBackend::random: Philox-driven fills that reproduce
// core/src/cpu/cpu_random.cpp element for element. Element i (row-major over
// out's shape) draws lane i % per of block offset + i / per, with per fixed
// by random_layout (generator.h); one thread computes one Philox block and
// writes its `per` elements.
//
// Uniform, Bernoulli and RandInt need only integer arithmetic, exact float
// scalings and single IEEE double operations, so their bits equal the
// CPU's: the double products and sums are written as __dmul_rn/__dadd_rn so
// that nvcc cannot fuse them into an FMA (the CPU is built with
// -ffp-contract=off), and the conversions to the output dtype take the same
// steps (double -> float -> 16-bit, as the CPU's T(float(v))). Normal goes
// through log/sqrt/sin/cos, whose CUDA versions differ from glibc's by an
// ulp or so: normal draws agree to ~1e-15 relative, not bit for bit.
#include <cstdint>
#include <type_traits>

#include "cuda_backend.h"
#include "kernels/common.cuh"
#include "kiln/core/philox.h"

namespace kiln::cuda {

namespace {

constexpr double kTwoPi = 6.283185307179586476925286766559;

struct RandomArgs {
  RandomKind kind;
  int per;  // elements per Philox block
  uint64_t seed, offset;
  double a, b;     // the spec's parameters
  double width;    // Uniform: b - a, as the CPU computes it
  int64_t low;     // RandInt: low ...
  uint64_t range;  // ... and high - low
  const double* probs;  // Bernoulli with per-element probabilities (contiguous), else null
};

// A value computed in double stored as T, in the CPU's steps.
template <typename T>
__device__ __forceinline__ T from_double(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0.0;
  } else if constexpr (std::is_same_v<T, uint8_t>) {
    // GCC converts double -> uint8 through a 32-bit signed integer; the same
    // low byte for every value that conversion defines.
    return static_cast<uint8_t>(static_cast<int32_t>(v));
  } else if constexpr (is_half_v<T>) {
    return T(static_cast<float>(v));  // two roundings, as Half(float(v)) on the CPU
  } else {
    return static_cast<T>(v);
  }
}

// mean-free, unit Box-Muller pair from two uniforms: (r cos t, r sin t).
__device__ __forceinline__ void box_muller(double u1, double u2, double& z0, double& z1) {
  const double r = ::sqrt(__dmul_rn(-2.0, ::log(1.0 - u1)));
  double s, c;
  ::sincos(__dmul_rn(kTwoPi, u2), &s, &c);
  z0 = __dmul_rn(r, c);
  z1 = __dmul_rn(r, s);
}

// Values (in double) of the up to four elements fed by one Philox block;
// lanes at or past `count` (the end of the tensor) are not read from probs.
template <typename T>
__device__ __forceinline__ void draw_block(const PhiloxBlock& blk, const RandomArgs& r, int64_t base, int count,
                                           double (&d)[4]) {
  switch (r.kind) {
    case RandomKind::Uniform:
#pragma unroll
      for (int l = 0; l < 4; ++l) {
        double u;
        if (r.per == 2) {
          u = philox_uniform_double(blk.v[2 * (l & 1)], blk.v[2 * (l & 1) + 1]);
        } else if constexpr (std::is_same_v<T, __half>) {
          u = philox_uniform_bits(blk.v[l], 11);
        } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
          u = philox_uniform_bits(blk.v[l], 8);
        } else {
          u = philox_uniform_float(blk.v[l]);
        }
        d[l] = __dadd_rn(r.a, __dmul_rn(r.width, u));
      }
      break;
    case RandomKind::Normal:
      // Pairs of lanes share a Box-Muller draw: cos for the first, sin for the second.
      if (r.per == 2) {
        box_muller(philox_uniform_double(blk.v[0], blk.v[1]), philox_uniform_double(blk.v[2], blk.v[3]), d[0], d[1]);
        d[2] = d[0];
        d[3] = d[1];
      } else {
        box_muller(philox_uniform_float(blk.v[0]), philox_uniform_float(blk.v[1]), d[0], d[1]);
        box_muller(philox_uniform_float(blk.v[2]), philox_uniform_float(blk.v[3]), d[2], d[3]);
      }
#pragma unroll
      for (int l = 0; l < 4; ++l) d[l] = __dadd_rn(r.a, __dmul_rn(r.b, d[l]));
      break;
    case RandomKind::Bernoulli:
#pragma unroll
      for (int l = 0; l < 4; ++l) {
        const double p = r.probs ? (l < count ? r.probs[base + l] : 0.0) : r.a;
        d[l] = static_cast<double>(philox_uniform_float(blk.v[l])) < p ? 1.0 : 0.0;
      }
      break;
    case RandomKind::RandInt:
#pragma unroll
      for (int l = 0; l < 4; ++l) {
        const int k = l & 1;
        const uint64_t bits = (static_cast<uint64_t>(blk.v[2 * k + 1]) << 32) | blk.v[2 * k];
        d[l] = static_cast<double>(static_cast<int64_t>(static_cast<uint64_t>(r.low) + bits % r.range));
      }
      break;
  }
}

template <typename T>
__global__ void __launch_bounds__(kBlock)
    random_kernel(int64_t n, T* out, StridedIndexer<1> ix, bool dense, RandomArgs r) {
  const int64_t blocks = (n + r.per - 1) / r.per;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < blocks; b += step) {
    const PhiloxBlock blk = philox4x32_10(r.seed, r.offset + static_cast<uint64_t>(b));
    const int64_t base = b * r.per;
    const int count = static_cast<int>(min(static_cast<int64_t>(r.per), n - base));
    T vals[4];
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      if (r.kind == RandomKind::RandInt) {
        // Exact 64-bit integers, never through double (as the CPU).
#pragma unroll
        for (int l = 0; l < 4; ++l) {
          const int k = l & 1;
          const uint64_t bits = (static_cast<uint64_t>(blk.v[2 * k + 1]) << 32) | blk.v[2 * k];
          vals[l] = static_cast<T>(static_cast<uint64_t>(r.low) + bits % r.range);
        }
      } else {
        double d[4];
        draw_block<T>(blk, r, base, count, d);
#pragma unroll
        for (int l = 0; l < 4; ++l) vals[l] = from_double<T>(d[l]);
      }
    } else {
      double d[4];
      draw_block<T>(blk, r, base, count, d);
#pragma unroll
      for (int l = 0; l < 4; ++l) vals[l] = from_double<T>(d[l]);
    }
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      if (l < count) {
        const int64_t i = base + l;
        int64_t off[1] = {i};
        if (!dense) ix.offsets(i, off);
        out[off[0]] = vals[l];
      }
    }
  }
}

}  // namespace

void CudaBackend::random(const Tensor& out, const RandomSpec& spec, uint64_t seed, uint64_t offset) {
  const int64_t n = out.numel();
  RandomArgs r{};
  r.kind = spec.kind;
  r.per = static_cast<int>(random_layout(spec.kind, out.dtype()).elements_per_block);
  r.seed = seed;
  r.offset = offset;
  r.a = spec.a;
  r.b = spec.b;
  r.width = spec.b - spec.a;
  r.probs = nullptr;
  if (spec.kind == RandomKind::Bernoulli && spec.probabilities.defined()) {
    const Tensor& p = spec.probabilities;
    KILN_CHECK(p.numel() == n, "bernoulli: probabilities have ", p.numel(), " elements but the output has ", n);
    KILN_CHECK(p.dtype() == kFloat64 && p.is_contiguous(), "bernoulli: backend expects contiguous float64 probabilities");
    KILN_CHECK(p.device() == out.device(), "bernoulli: probabilities on ", p.device(), " but the output on ",
               out.device());
    r.probs = static_cast<const double*>(p.data_ptr());
  }
  if (spec.kind == RandomKind::RandInt) {
    r.low = static_cast<int64_t>(spec.a);
    r.range = static_cast<uint64_t>(static_cast<int64_t>(spec.b) - r.low);
    KILN_CHECK(r.range != 0, "randint: expects low < high, got low=", r.low, " high=", static_cast<int64_t>(spec.b));
  }
  if (n == 0) return;
  DeviceGuard guard(device_index(out));
  // Element i is the i-th in row-major order whatever out's strides.
  const Tensor* const ops[1] = {&out};
  const StridedIndexer<1> ix = make_indexer<1>("random", out.sizes(), ops);
  const bool dense = ix.ndim == 0 || (ix.ndim == 1 && ix.strides[0][0] == 1);
  const int64_t blocks = (n + r.per - 1) / r.per;
  const cudaStream_t stream = stream_of(out);
  dispatch_device(out.dtype(), "random", [&]<typename T>() {
    random_kernel<T><<<grid_for(blocks), kBlock, 0, stream>>>(n, static_cast<T*>(out.data_ptr()), ix, dense, r);
  });
  KILN_CUDA_CHECK_LAUNCH();
}

}  // namespace kiln::cuda
