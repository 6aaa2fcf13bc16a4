// CUDA resize kernels (nearest, bilinear) on contiguous [N, C, H, W], giving
// the CPU backend's bits (core/src/cpu/cpu_interpolate.cpp): torch's source
// index formulas in the same arithmetic types (nearest indices in float,
// bilinear coordinates in the compute type), with the CPU's fused
// multiply-adds spelled out and every other product and difference made
// with the _rn intrinsics, which nvcc never contracts into an FMA.
//
// Forwards run one thread per output element and compute their taps
// inline. Backwards run one thread per grad_in element: the source index of
// an output is non-decreasing in the output position, so the outputs that
// read an input element form a range found by binary search, and the thread
// sums their contributions in ascending output order, which is the order in
// which the CPU's per-plane scatter adds into that element. No atomics:
// deterministic, and equal to the CPU to the bit.
#include <cmath>
#include <cstdint>

#include "cuda_backend.h"
#include "kernels/common.cuh"

namespace kiln::cuda {

namespace {

void check_pair(const char* op, const Tensor& in, const Tensor& out) {
  KILN_CHECK(in.dim() == 4 && out.dim() == 4 && in.size(0) == out.size(0) && in.size(1) == out.size(1) &&
                 in.dtype() == out.dtype() && in.is_contiguous() && out.is_contiguous() &&
                 in.device() == out.device(),
             op, " (CUDA): expected contiguous [N, C, H, W] tensors of one dtype and device with matching N and C, "
             "got ", in.toString(), " and ", out.toString());
}

struct Dims {
  int64_t h, w, oh, ow;
};

__device__ __forceinline__ int64_t thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t thread_stride() { return static_cast<int64_t>(blockDim.x) * gridDim.x; }

// Uncontracted arithmetic in the compute type.
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float fma_rn(float a, float b, float c) { return __fmaf_rn(a, b, c); }
__device__ __forceinline__ double fma_rn(double a, double b, double c) { return __fma_rn(a, b, c); }

// ---- nearest ----

// torch's nearest_idx, in float whatever the dtype; `scale` is the float
// factor from output to input coordinates (host-computed as the CPU does).
__device__ __forceinline__ int64_t nearest_src(int64_t o, int64_t in, int64_t out, float scale) {
  if (out == in) return o;
  if (out == 2 * in) return o >> 1;
  return min(static_cast<int64_t>(floorf(__fmul_rn(static_cast<float>(o), scale))), in - 1);
}

// The first output position in [0, out) whose nearest source is >= target.
__device__ __forceinline__ int64_t nearest_lower_bound(int64_t target, int64_t in, int64_t out, float scale) {
  int64_t lo = 0, hi = out;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (nearest_src(mid, in, out, scale) < target) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

float nearest_scale(int64_t in, int64_t out, double scale) {
  return scale > 0 ? static_cast<float>(1.0 / scale) : static_cast<float>(in) / static_cast<float>(out);
}

template <typename T>
__global__ void nearest_kernel(const T* __restrict__ x, T* __restrict__ y, Dims d, float sh, float sw,
                               int64_t total) {
  for (int64_t i = thread_index(); i < total; i += thread_stride()) {
    const int64_t ow = i % d.ow, r = i / d.ow;
    const int64_t oh = r % d.oh, plane = r / d.oh;
    y[i] = x[(plane * d.h + nearest_src(oh, d.h, d.oh, sh)) * d.w + nearest_src(ow, d.w, d.ow, sw)];
  }
}

template <typename T>
__global__ void nearest_backward_kernel(const T* __restrict__ g, T* __restrict__ gi, Dims d, float sh, float sw,
                                        int64_t total) {
  using C = opmath_t<T>;
  for (int64_t i = thread_index(); i < total; i += thread_stride()) {
    const int64_t w = i % d.w, r = i / d.w;
    const int64_t h = r % d.h, plane = r / d.h;
    const int64_t oh0 = nearest_lower_bound(h, d.h, d.oh, sh), oh1 = nearest_lower_bound(h + 1, d.h, d.oh, sh);
    const int64_t ow0 = nearest_lower_bound(w, d.w, d.ow, sw), ow1 = nearest_lower_bound(w + 1, d.w, d.ow, sw);
    const T* gp = g + plane * d.oh * d.ow;
    C acc = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      for (int64_t ow = ow0; ow < ow1; ++ow) acc += cast<C>(gp[oh * d.ow + ow]);
    }
    gi[i] = cast<T>(acc);
  }
}

// ---- bilinear ----

// Output -> input coordinate map along one dim; ratio is host-computed in
// the compute type C exactly as the CPU's linear_taps computes it.
template <typename C>
struct Axis {
  int64_t in, out;
  C ratio;
  bool align_corners;
};

template <typename C>
C linear_ratio(int64_t in, int64_t out, bool align_corners, double scale) {
  if (align_corners) return out > 1 ? static_cast<C>(in - 1) / static_cast<C>(out - 1) : C(0);
  return scale > 0 ? static_cast<C>(1.0 / scale) : static_cast<C>(in) / static_cast<C>(out);
}

template <typename C>
struct Tap {
  int64_t i0, i1;  // the two source positions (equal at the last one)
  C l0, l1;        // their weights
};

// torch's area_pixel_compute_source_index + guard_index_and_lambda; the
// floor goes through float as torch's floorf. Where the sizes agree the
// position maps to itself with weights (1, 0), still read twice.
template <typename C>
__device__ __forceinline__ C linear_source(int64_t o, const Axis<C>& a) {
  C src = a.align_corners ? mul_rn(a.ratio, static_cast<C>(o))
                          : fma_rn(a.ratio, add_rn(static_cast<C>(o), C(0.5)), C(-0.5));
  if (!a.align_corners && src < C(0)) src = C(0);
  return src;
}

template <typename C>
__device__ __forceinline__ int64_t linear_i0(int64_t o, const Axis<C>& a) {
  if (a.out == a.in) return o;
  return min(static_cast<int64_t>(floorf(static_cast<float>(linear_source(o, a)))), a.in - 1);
}

template <typename C>
__device__ __forceinline__ Tap<C> linear_tap(int64_t o, const Axis<C>& a) {
  if (a.out == a.in) return {o, o, C(1), C(0)};
  const C src = linear_source(o, a);
  const int64_t i = min(static_cast<int64_t>(floorf(static_cast<float>(src))), a.in - 1);
  const C lambda = min(max(sub_rn(src, static_cast<C>(i)), C(0)), C(1));
  return {i, i + (i < a.in - 1 ? 1 : 0), sub_rn(C(1), lambda), lambda};
}

// The first output position whose first source position is >= target.
template <typename C>
__device__ __forceinline__ int64_t linear_lower_bound(int64_t target, const Axis<C>& a) {
  int64_t lo = 0, hi = a.out;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (linear_i0(mid, a) < target) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

template <typename T, typename C>
__global__ void bilinear_kernel(const T* __restrict__ x, T* __restrict__ y, Axis<C> rows, Axis<C> cols,
                                int64_t total) {
  const int64_t h = rows.in, w = cols.in, oh = rows.out, ow = cols.out;
  for (int64_t i = thread_index(); i < total; i += thread_stride()) {
    const int64_t o = i % ow, r = i / ow;
    const int64_t q = r % oh, plane = r / oh;
    const Tap<C> tr = linear_tap(q, rows), tc = linear_tap(o, cols);
    const T* top = x + (plane * h + tr.i0) * w;
    const T* bottom = x + (plane * h + tr.i1) * w;
    // The CPU's four terms in its order, with its fused multiply-adds.
    C acc = mul_rn(cast<C>(top[tc.i0]), mul_rn(tr.l0, tc.l0));
    acc = fma_rn(cast<C>(top[tc.i1]), mul_rn(tr.l0, tc.l1), acc);
    acc = fma_rn(cast<C>(bottom[tc.i0]), mul_rn(tr.l1, tc.l0), acc);
    y[i] = cast<T>(fma_rn(cast<C>(bottom[tc.i1]), mul_rn(tr.l1, tc.l1), acc));
  }
}

template <typename T, typename C>
__global__ void bilinear_backward_kernel(const T* __restrict__ g, T* __restrict__ gi, Axis<C> rows, Axis<C> cols,
                                         int64_t total) {
  const int64_t h_in = rows.in, w_in = cols.in, oh = rows.out, ow = cols.out;
  for (int64_t i = thread_index(); i < total; i += thread_stride()) {
    const int64_t w = i % w_in, r = i / w_in;
    const int64_t h = r % h_in, plane = r / h_in;
    // Outputs reading this element have their first source at h - 1 or h
    // (their second source is the first's successor, or the first itself).
    const int64_t q0 = linear_lower_bound(h - 1, rows), q1 = linear_lower_bound(h + 1, rows);
    const int64_t o0 = linear_lower_bound(w - 1, cols), o1 = linear_lower_bound(w + 1, cols);
    const T* gp = g + plane * oh * ow;
    C acc = 0;
    for (int64_t q = q0; q < q1; ++q) {
      const Tap<C> tr = linear_tap(q, rows);
      const bool top = tr.i0 == h, bottom = tr.i1 == h;
      if (!top && !bottom) continue;
      for (int64_t o = o0; o < o1; ++o) {
        const Tap<C> tc = linear_tap(o, cols);
        const bool left = tc.i0 == w, right = tc.i1 == w;
        if (!left && !right) continue;
        const C v = cast<C>(gp[q * ow + o]);
        // The CPU adds (top, left), (top, right), (bottom, left), (bottom,
        // right) for each output, each as fma(row weight * column weight, grad, acc).
        if (top) {
          if (left) acc = fma_rn(mul_rn(tr.l0, tc.l0), v, acc);
          if (right) acc = fma_rn(mul_rn(tr.l0, tc.l1), v, acc);
        }
        if (bottom) {
          if (left) acc = fma_rn(mul_rn(tr.l1, tc.l0), v, acc);
          if (right) acc = fma_rn(mul_rn(tr.l1, tc.l1), v, acc);
        }
      }
    }
    gi[i] = cast<T>(acc);
  }
}

}  // namespace

void CudaBackend::upsample2d(InterpolationMode mode, const Tensor& in, bool align_corners, double scale_h,
                             double scale_w, const Tensor& out) {
  check_pair("upsample2d", in, out);
  const int64_t total = out.numel();
  if (total == 0) return;
  DeviceGuard guard(device_index(out));
  const Stream stream = stream_of(out);
  const Dims d{in.size(2), in.size(3), out.size(2), out.size(3)};
  dispatch_device_floating(in.dtype(), "upsample2d", [&]<typename T>() {
    if (mode == InterpolationMode::Nearest) {
      nearest_kernel<T><<<grid_for(total), kBlock, 0, stream>>>(
          data_of<T>(in), data_of<T>(out), d, nearest_scale(d.h, d.oh, scale_h), nearest_scale(d.w, d.ow, scale_w),
          total);
    } else {
      using C = opmath_t<T>;
      const Axis<C> rows{d.h, d.oh, linear_ratio<C>(d.h, d.oh, align_corners, scale_h), align_corners};
      const Axis<C> cols{d.w, d.ow, linear_ratio<C>(d.w, d.ow, align_corners, scale_w), align_corners};
      bilinear_kernel<T, C><<<grid_for(total), kBlock, 0, stream>>>(data_of<T>(in), data_of<T>(out), rows, cols,
                                                                    total);
    }
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::upsample2d_backward(InterpolationMode mode, const Tensor& grad_out, bool align_corners,
                                      double scale_h, double scale_w, const Tensor& grad_in) {
  check_pair("upsample2d_backward", grad_in, grad_out);
  const int64_t total = grad_in.numel();
  if (total == 0) return;
  DeviceGuard guard(device_index(grad_in));
  const Stream stream = stream_of(grad_in);
  const Dims d{grad_in.size(2), grad_in.size(3), grad_out.size(2), grad_out.size(3)};
  if (grad_out.numel() == 0) {  // no outputs read anything
    KILN_CUDA_CHECK(cudaMemsetAsync(grad_in.data_ptr(), 0, grad_in.nbytes(), stream));
    return;
  }
  dispatch_device_floating(grad_in.dtype(), "upsample2d_backward", [&]<typename T>() {
    if (mode == InterpolationMode::Nearest) {
      nearest_backward_kernel<T><<<grid_for(total), kBlock, 0, stream>>>(
          data_of<T>(grad_out), data_of<T>(grad_in), d, nearest_scale(d.h, d.oh, scale_h),
          nearest_scale(d.w, d.ow, scale_w), total);
    } else {
      using C = opmath_t<T>;
      const Axis<C> rows{d.h, d.oh, linear_ratio<C>(d.h, d.oh, align_corners, scale_h), align_corners};
      const Axis<C> cols{d.w, d.ow, linear_ratio<C>(d.w, d.ow, align_corners, scale_w), align_corners};
      bilinear_backward_kernel<T, C><<<grid_for(total), kBlock, 0, stream>>>(data_of<T>(grad_out),
                                                                             data_of<T>(grad_in), rows, cols, total);
    }
    KILN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace kiln::cuda
