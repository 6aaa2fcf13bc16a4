// CUDA pooling kernels on contiguous [N, C, H, W] tensors, giving the CPU
// backend's bits (core/src/cpu/cpu_pool.cpp): the same window arithmetic,
// the same compute type (float for 16-bit), the same summation order.
//
// Forwards run one thread per output element. The avg backwards run one
// thread per grad_in element that gathers, in ascending output order, the
// outputs whose window covers it: no atomics, so the result is
// deterministic, and the order is exactly the one in which the CPU's
// per-plane scatter adds into that element, so the sums agree to the bit.
// max_pool2d_backward is not told the window geometry (the Backend contract
// passes only grad_out, indices and grad_in), so it cannot gather; it sorts
// the indices and sums each element's contributions in the CPU's order
// (index_accumulate.cu), so it is deterministic and matches the CPU too.
#include <cstdint>

#include "cuda_backend.h"
#include "kernels/common.cuh"
#include "kernels/index_util.cuh"
#include "kiln/core/native/factory.h"

namespace kiln::cuda {

namespace {

struct Dims {
  int64_t planes, h, w, oh, ow;
};

void check_pair(const char* op, const Tensor& in, const Tensor& out) {
  KILN_CHECK(in.dim() == 4 && out.dim() == 4 && in.size(0) == out.size(0) && in.size(1) == out.size(1) &&
                 in.dtype() == out.dtype() && in.is_contiguous() && out.is_contiguous() &&
                 in.device() == out.device(),
             op, " (CUDA): expected contiguous [N, C, H, W] tensors of one dtype and device with matching N and C, "
             "got ", in.toString(), " and ", out.toString());
}

Dims dims_of(const Tensor& in, const Tensor& out) {
  return {in.size(0) * in.size(1), in.size(2), in.size(3), out.size(2), out.size(3)};
}

// ---- window arithmetic (the CPU's formulas) ----

// The taps [begin, end) of a dilated max-pool window starting at `start`,
// clipped to [0, size): begin is the first tap at or after 0.
struct Taps {
  int64_t begin, end;
};
__device__ __forceinline__ Taps max_taps(int64_t start, int64_t kernel, int64_t dilation, int64_t size) {
  const int64_t end = min(start + (kernel - 1) * dilation + 1, size);
  const int64_t begin = start < 0 ? start + ((-start + dilation - 1) / dilation) * dilation : start;
  return {begin, end};
}

// An avg-pool window along one dim: the clipped range, and the length the
// divisor counts when padding is included (clipped to input + padding).
struct AvgSpan {
  int64_t begin, end, padded;
};
__device__ __forceinline__ AvgSpan avg_span(int64_t o, int64_t kernel, int64_t stride, int64_t pad, int64_t size) {
  const int64_t start = o * stride - pad;
  const int64_t end = min(start + kernel, size + pad);
  return {max(start, int64_t{0}), min(end, size), end - start};
}

__device__ __forceinline__ int64_t avg_divisor(const Pool2dParams& p, const AvgSpan& sh, const AvgSpan& sw) {
  if (p.divisor_override != 0) return p.divisor_override;
  if (p.count_include_pad) return sh.padded * sw.padded;
  return (sh.end - sh.begin) * (sw.end - sw.begin);
}

// Outputs [first, last) along one dim whose avg window (kernel taps from
// o * stride - pad) contains input position i (i < size, so the clip to
// size + pad never excludes it).
__device__ __forceinline__ void covering(int64_t i, int64_t kernel, int64_t stride, int64_t pad, int64_t outs,
                                         int64_t& first, int64_t& last) {
  const int64_t lo = i + pad - kernel;  // need o * stride > lo
  first = lo < 0 ? 0 : lo / stride + 1;
  last = min((i + pad) / stride + 1, outs);
}

// Adaptive bins: [floor(o * in / out), ceil((o + 1) * in / out)).
__device__ __forceinline__ int64_t bin_begin(int64_t o, int64_t in, int64_t out) { return o * in / out; }
__device__ __forceinline__ int64_t bin_end(int64_t o, int64_t in, int64_t out) {
  return ((o + 1) * in + out - 1) / out;
}

__device__ __forceinline__ int64_t thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t thread_stride() { return static_cast<int64_t>(blockDim.x) * gridDim.x; }

// ---- kernels ----

template <typename T>
__global__ void max_pool2d_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t* __restrict__ indices, Dims d,
                                  Pool2dParams p, int64_t total) {
  using C = opmath_t<T>;
  for (int64_t i = thread_index(); i < total; i += thread_stride()) {
    const int64_t ow = i % d.ow, r = i / d.ow;
    const int64_t oh = r % d.oh, plane = r / d.oh;
    const Taps rows = max_taps(oh * p.stride[0] - p.padding[0], p.kernel[0], p.dilation[0], d.h);
    const Taps cols = max_taps(ow * p.stride[1] - p.padding[1], p.kernel[1], p.dilation[1], d.w);
    const T* xp = x + plane * d.h * d.w;
    C best = static_cast<C>(-INFINITY);
    int64_t at = rows.begin * d.w + cols.begin;
    for (int64_t h = rows.begin; h < rows.end; h += p.dilation[0]) {
      for (int64_t w = cols.begin; w < cols.end; w += p.dilation[1]) {
        const C v = cast<C>(xp[h * d.w + w]);
        // The first maximum in row-major order, and the last NaN, as the CPU.
        if (v > best || v != v) {
          best = v;
          at = h * d.w + w;
        }
      }
    }
    y[i] = cast<T>(best);
    indices[i] = at;
  }
}

template <typename T>
__global__ void avg_pool2d_kernel(const T* __restrict__ x, T* __restrict__ y, Dims d, Pool2dParams p,
                                  int64_t total) {
  using C = opmath_t<T>;
  for (int64_t i = thread_index(); i < total; i += thread_stride()) {
    const int64_t ow = i % d.ow, r = i / d.ow;
    const int64_t oh = r % d.oh, plane = r / d.oh;
    const AvgSpan sh = avg_span(oh, p.kernel[0], p.stride[0], p.padding[0], d.h);
    const AvgSpan sw = avg_span(ow, p.kernel[1], p.stride[1], p.padding[1], d.w);
    if (sh.begin >= sh.end || sw.begin >= sw.end) {  // window entirely in padding (ceil mode)
      y[i] = cast<T>(C(0));
      continue;
    }
    const T* xp = x + plane * d.h * d.w;
    C sum = 0;
    for (int64_t h = sh.begin; h < sh.end; ++h) {
      for (int64_t w = sw.begin; w < sw.end; ++w) sum += cast<C>(xp[h * d.w + w]);
    }
    y[i] = cast<T>(sum / static_cast<C>(avg_divisor(p, sh, sw)));
  }
}

template <typename T>
__global__ void avg_pool2d_backward_kernel(const T* __restrict__ g, T* __restrict__ gi, Dims d, Pool2dParams p,
                                           int64_t total) {
  using C = opmath_t<T>;
  for (int64_t i = thread_index(); i < total; i += thread_stride()) {
    const int64_t w = i % d.w, r = i / d.w;
    const int64_t h = r % d.h, plane = r / d.h;
    int64_t oh0, oh1, ow0, ow1;
    covering(h, p.kernel[0], p.stride[0], p.padding[0], d.oh, oh0, oh1);
    covering(w, p.kernel[1], p.stride[1], p.padding[1], d.ow, ow0, ow1);
    const T* gp = g + plane * d.oh * d.ow;
    C acc = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const AvgSpan sh = avg_span(oh, p.kernel[0], p.stride[0], p.padding[0], d.h);
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const AvgSpan sw = avg_span(ow, p.kernel[1], p.stride[1], p.padding[1], d.w);
        acc += cast<C>(gp[oh * d.ow + ow]) / static_cast<C>(avg_divisor(p, sh, sw));
      }
    }
    gi[i] = cast<T>(acc);
  }
}

template <typename T>
__global__ void adaptive_avg_pool2d_kernel(const T* __restrict__ x, T* __restrict__ y, Dims d, int64_t total) {
  using C = opmath_t<T>;
  for (int64_t i = thread_index(); i < total; i += thread_stride()) {
    const int64_t ow = i % d.ow, r = i / d.ow;
    const int64_t oh = r % d.oh, plane = r / d.oh;
    const int64_t h0 = bin_begin(oh, d.h, d.oh), h1 = bin_end(oh, d.h, d.oh);
    const int64_t w0 = bin_begin(ow, d.w, d.ow), w1 = bin_end(ow, d.w, d.ow);
    const T* xp = x + plane * d.h * d.w;
    C sum = 0;
    for (int64_t h = h0; h < h1; ++h) {
      for (int64_t w = w0; w < w1; ++w) sum += cast<C>(xp[h * d.w + w]);
    }
    y[i] = cast<T>(sum / static_cast<C>(h1 - h0) / static_cast<C>(w1 - w0));
  }
}

template <typename T>
__global__ void adaptive_avg_pool2d_backward_kernel(const T* __restrict__ g, T* __restrict__ gi, Dims d,
                                                    int64_t total) {
  using C = opmath_t<T>;
  for (int64_t i = thread_index(); i < total; i += thread_stride()) {
    const int64_t w = i % d.w, r = i / d.w;
    const int64_t h = r % d.h, plane = r / d.h;
    // Bin o holds h exactly when floor(h * out / in) <= o < ceil((h + 1) * out / in).
    const int64_t oh0 = h * d.oh / d.h, oh1 = ((h + 1) * d.oh + d.h - 1) / d.h;
    const int64_t ow0 = w * d.ow / d.w, ow1 = ((w + 1) * d.ow + d.w - 1) / d.w;
    const T* gp = g + plane * d.oh * d.ow;
    C acc = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const C rows = static_cast<C>(bin_end(oh, d.h, d.oh) - bin_begin(oh, d.h, d.oh));
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const C cols = static_cast<C>(bin_end(ow, d.w, d.ow) - bin_begin(ow, d.w, d.ow));
        acc += cast<C>(gp[oh * d.ow + ow]) / rows / cols;
      }
    }
    gi[i] = cast<T>(acc);
  }
}

}  // namespace

void CudaBackend::max_pool2d(const Tensor& in, const Pool2dParams& p, const Tensor& out, const Tensor& indices) {
  check_pair("max_pool2d", in, out);
  KILN_CHECK(indices.dtype() == kInt64 && indices.sizes() == out.sizes() && indices.is_contiguous() &&
                 indices.device() == out.device(),
             "max_pool2d (CUDA): indices must be contiguous int64 of the output's shape, got ", indices.toString());
  const int64_t total = out.numel();
  if (total == 0) return;
  DeviceGuard guard(device_index(out));
  const Dims d = dims_of(in, out);
  dispatch_device_floating(in.dtype(), "max_pool2d", [&]<typename T>() {
    max_pool2d_kernel<T><<<grid_for(total), kBlock, 0, stream_of(out)>>>(
        data_of<T>(in), data_of<T>(out), data_of<int64_t>(indices), d, p, total);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_in) {
  check_pair("max_pool2d_backward", grad_in, grad_out);
  KILN_CHECK(indices.dtype() == kInt64 && indices.sizes() == grad_out.sizes() && indices.is_contiguous() &&
                 indices.device() == grad_out.device(),
             "max_pool2d_backward (CUDA): indices must be contiguous int64 of grad_output's shape, got ",
             indices.toString());
  if (grad_in.numel() == 0) return;
  DeviceGuard guard(device_index(grad_in));
  const Dims d = dims_of(grad_in, grad_out);
  // An index outside its plane, which no forward produces, is skipped rather
  // than written through (the CPU throws for it).
  plane_scatter_add_deterministic(grad_out, indices, grad_in, d.h * d.w, d.oh * d.ow, stream_of(grad_in));
}

void CudaBackend::avg_pool2d(const Tensor& in, const Pool2dParams& p, const Tensor& out) {
  check_pair("avg_pool2d", in, out);
  const int64_t total = out.numel();
  if (total == 0) return;
  DeviceGuard guard(device_index(out));
  const Dims d = dims_of(in, out);
  dispatch_device_floating(in.dtype(), "avg_pool2d", [&]<typename T>() {
    avg_pool2d_kernel<T><<<grid_for(total), kBlock, 0, stream_of(out)>>>(data_of<T>(in), data_of<T>(out), d, p,
                                                                         total);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::avg_pool2d_backward(const Tensor& grad_out, const Pool2dParams& p, const Tensor& grad_in) {
  check_pair("avg_pool2d_backward", grad_in, grad_out);
  const int64_t total = grad_in.numel();
  if (total == 0) return;
  DeviceGuard guard(device_index(grad_in));
  const Dims d = dims_of(grad_in, grad_out);
  dispatch_device_floating(grad_in.dtype(), "avg_pool2d_backward", [&]<typename T>() {
    avg_pool2d_backward_kernel<T><<<grid_for(total), kBlock, 0, stream_of(grad_in)>>>(
        data_of<T>(grad_out), data_of<T>(grad_in), d, p, total);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::adaptive_avg_pool2d(const Tensor& in, const Tensor& out) {
  check_pair("adaptive_avg_pool2d", in, out);
  const int64_t total = out.numel();
  if (total == 0) return;
  DeviceGuard guard(device_index(out));
  const Dims d = dims_of(in, out);
  dispatch_device_floating(in.dtype(), "adaptive_avg_pool2d", [&]<typename T>() {
    adaptive_avg_pool2d_kernel<T><<<grid_for(total), kBlock, 0, stream_of(out)>>>(data_of<T>(in),
                                                                                  data_of<T>(out), d, total);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

void CudaBackend::adaptive_avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_in) {
  check_pair("adaptive_avg_pool2d_backward", grad_in, grad_out);
  const int64_t total = grad_in.numel();
  if (total == 0) return;
  DeviceGuard guard(device_index(grad_in));
  const Dims d = dims_of(grad_in, grad_out);
  if (grad_out.numel() == 0) {  // an empty output (0 x Wo) receives nothing
    KILN_CUDA_CHECK(cudaMemsetAsync(grad_in.data_ptr(), 0, grad_in.nbytes(), stream_of(grad_in)));
    return;
  }
  dispatch_device_floating(grad_in.dtype(), "adaptive_avg_pool2d_backward", [&]<typename T>() {
    adaptive_avg_pool2d_backward_kernel<T><<<grid_for(total), kBlock, 0, stream_of(grad_in)>>>(
        data_of<T>(grad_out), data_of<T>(grad_in), d, total);
    KILN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace kiln::cuda
