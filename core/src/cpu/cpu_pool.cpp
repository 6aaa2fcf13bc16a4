// CPU pooling kernels on contiguous [N, C, H, W] tensors, following torch's
// CPU kernels where results depend on the order of work: max keeps the first
// maximum in row-major window order and the last NaN; averages are summed
// in the compute type and divided once. Window column ranges are computed
// once per call, not per output row.
#include <atomic>
#include <limits>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_planes.h"

namespace kiln::cpu {

namespace {

struct Dims {
  int64_t planes, h, w, oh, ow;
};

Dims dims_of(const Tensor& in, const Tensor& out) {
  return {plane_count(in), in.size(2), in.size(3), out.size(2), out.size(3)};
}

void check_pair(const char* op, const Tensor& in, const Tensor& out) {
  KILN_CHECK(in.dim() == 4 && out.dim() == 4 && in.size(0) == out.size(0) && in.size(1) == out.size(1) &&
                 in.dtype() == out.dtype() && in.is_contiguous() && out.is_contiguous(),
             op, ": expected contiguous [N, C, H, W] tensors of one dtype with matching N and C, got ", in.toString(),
             " and ", out.toString());
}

// The taps [begin, end) of a dilated max-pool window starting at `start`,
// clipped to [0, size): begin is the first tap at or after 0.
struct Taps {
  int64_t begin, end;
};
Taps max_taps(int64_t start, int64_t kernel, int64_t dilation, int64_t size) {
  const int64_t end = std::min(start + (kernel - 1) * dilation + 1, size);
  const int64_t begin = start < 0 ? start + ((-start + dilation - 1) / dilation) * dilation : start;
  return {begin, end};
}

// An avg-pool window along one dim: the clipped range, and the length the
// divisor counts when padding is included (clipped to input + padding).
struct AvgSpan {
  int64_t begin, end, padded;
};
AvgSpan avg_span(int64_t o, int64_t kernel, int64_t stride, int64_t pad, int64_t size) {
  const int64_t start = o * stride - pad;
  const int64_t end = std::min(start + kernel, size + pad);
  return {std::max<int64_t>(start, 0), std::min(end, size), end - start};
}

std::vector<AvgSpan> avg_spans(int64_t out, int64_t kernel, int64_t stride, int64_t pad, int64_t size) {
  std::vector<AvgSpan> s(out);
  for (int64_t o = 0; o < out; ++o) s[o] = avg_span(o, kernel, stride, pad, size);
  return s;
}

int64_t avg_divisor(const Pool2dParams& p, const AvgSpan& sh, const AvgSpan& sw) {
  if (p.divisor_override != 0) return p.divisor_override;
  if (p.count_include_pad) return sh.padded * sw.padded;
  return (sh.end - sh.begin) * (sw.end - sw.begin);
}

// Adaptive bins: [floor(o * in / out), ceil((o + 1) * in / out)).
struct Bin {
  int64_t begin, end;
};
std::vector<Bin> adaptive_bins(int64_t out, int64_t in) {
  std::vector<Bin> b(out);
  for (int64_t o = 0; o < out; ++o) b[o] = {o * in / out, ((o + 1) * in + out - 1) / out};
  return b;
}

}  // namespace

void CpuBackend::max_pool2d(const Tensor& in, const Pool2dParams& p, const Tensor& out, const Tensor& indices) {
  check_pair("max_pool2d", in, out);
  KILN_CHECK(indices.dtype() == kInt64 && indices.sizes() == out.sizes() && indices.is_contiguous(),
             "max_pool2d: indices must be contiguous int64 of the output's shape, got ", indices.toString());
  const Dims d = dims_of(in, out);
  std::vector<Taps> cols(d.ow);
  for (int64_t o = 0; o < d.ow; ++o) cols[o] = max_taps(o * p.stride[1] - p.padding[1], p.kernel[1], p.dilation[1], d.w);
  int64_t* idx = indices.data_ptr<int64_t>();
  dispatch_floating(in.dtype(), "max_pool2d", [&]<typename T>() {
    using C = compute_t<T>;
    const T* x = in.data_ptr<T>();
    T* y = out.data_ptr<T>();
    const int64_t dh = p.dilation[0], dw = p.dilation[1];
    for_output_rows(d.planes * d.oh, d.ow * p.kernel[0] * p.kernel[1], [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t oh = r % d.oh;
        const T* plane = x + (r / d.oh) * d.h * d.w;
        const Taps rows = max_taps(oh * p.stride[0] - p.padding[0], p.kernel[0], dh, d.h);
        T* yr = y + r * d.ow;
        int64_t* ir = idx + r * d.ow;
        for (int64_t ow = 0; ow < d.ow; ++ow) {
          const Taps c = cols[ow];
          C best = -std::numeric_limits<C>::infinity();
          int64_t at = rows.begin * d.w + c.begin;
          for (int64_t h = rows.begin; h < rows.end; h += dh) {
            const T* xr = plane + h * d.w;
            for (int64_t w = c.begin; w < c.end; w += dw) {
              const C v = load(xr[w]);
              if (v > best || v != v) {
                best = v;
                at = h * d.w + w;
              }
            }
          }
          yr[ow] = store<T>(best);
          ir[ow] = at;
        }
      }
    });
  });
}

void CpuBackend::max_pool2d_backward(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_in) {
  check_pair("max_pool2d_backward", grad_in, grad_out);
  KILN_CHECK(indices.dtype() == kInt64 && indices.sizes() == grad_out.sizes() && indices.is_contiguous(),
             "max_pool2d_backward: indices must be contiguous int64 of grad_output's shape, got ",
             indices.toString());
  const Dims d = dims_of(grad_in, grad_out);
  const int64_t plane = d.h * d.w, out_plane = d.oh * d.ow;
  const int64_t* idx = indices.data_ptr<int64_t>();
  std::atomic<bool> bad{false};
  dispatch_floating(grad_in.dtype(), "max_pool2d_backward", [&]<typename T>() {
    const T* g = grad_out.data_ptr<T>();
    scatter_planes(grad_in.data_ptr<T>(), d.planes, plane, out_plane, [&](int64_t pl, compute_t<T>* acc) {
      const T* gp = g + pl * out_plane;
      const int64_t* ip = idx + pl * out_plane;
      for (int64_t j = 0; j < out_plane; ++j) {
        const int64_t i = ip[j];
        if (i < 0 || i >= plane) {
          bad.store(true, std::memory_order_relaxed);
          continue;
        }
        acc[i] += load(gp[j]);
      }
    });
  });
  KILN_CHECK(!bad.load(), "max_pool2d_backward: an index is outside the input plane of ", d.h, " x ", d.w);
}

void CpuBackend::avg_pool2d(const Tensor& in, const Pool2dParams& p, const Tensor& out) {
  check_pair("avg_pool2d", in, out);
  const Dims d = dims_of(in, out);
  const std::vector<AvgSpan> cols = avg_spans(d.ow, p.kernel[1], p.stride[1], p.padding[1], d.w);
  dispatch_floating(in.dtype(), "avg_pool2d", [&]<typename T>() {
    using C = compute_t<T>;
    const T* x = in.data_ptr<T>();
    T* y = out.data_ptr<T>();
    for_output_rows(d.planes * d.oh, d.ow * p.kernel[0] * p.kernel[1], [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* plane = x + (r / d.oh) * d.h * d.w;
        const AvgSpan sh = avg_span(r % d.oh, p.kernel[0], p.stride[0], p.padding[0], d.h);
        T* yr = y + r * d.ow;
        for (int64_t ow = 0; ow < d.ow; ++ow) {
          const AvgSpan& sw = cols[ow];
          if (sh.begin >= sh.end || sw.begin >= sw.end) {  // window entirely in padding
            yr[ow] = store<T>(C(0));
            continue;
          }
          C sum = 0;
          for (int64_t h = sh.begin; h < sh.end; ++h) {
            const T* xr = plane + h * d.w;
            for (int64_t w = sw.begin; w < sw.end; ++w) sum += load(xr[w]);
          }
          yr[ow] = store<T>(sum / static_cast<C>(avg_divisor(p, sh, sw)));
        }
      }
    });
  });
}

void CpuBackend::avg_pool2d_backward(const Tensor& grad_out, const Pool2dParams& p, const Tensor& grad_in) {
  check_pair("avg_pool2d_backward", grad_in, grad_out);
  const Dims d = dims_of(grad_in, grad_out);
  const std::vector<AvgSpan> rows = avg_spans(d.oh, p.kernel[0], p.stride[0], p.padding[0], d.h);
  const std::vector<AvgSpan> cols = avg_spans(d.ow, p.kernel[1], p.stride[1], p.padding[1], d.w);
  const int64_t out_plane = d.oh * d.ow;
  dispatch_floating(grad_in.dtype(), "avg_pool2d_backward", [&]<typename T>() {
    using C = compute_t<T>;
    const T* g = grad_out.data_ptr<T>();
    scatter_planes(grad_in.data_ptr<T>(), d.planes, d.h * d.w, out_plane * p.kernel[0] * p.kernel[1],
                   [&](int64_t pl, C* acc) {
                     const T* gp = g + pl * out_plane;
                     for (int64_t oh = 0; oh < d.oh; ++oh) {
                       const AvgSpan& sh = rows[oh];
                       for (int64_t ow = 0; ow < d.ow; ++ow) {
                         const AvgSpan& sw = cols[ow];
                         const C v = load(gp[oh * d.ow + ow]) / static_cast<C>(avg_divisor(p, sh, sw));
                         for (int64_t h = sh.begin; h < sh.end; ++h) {
                           C* ar = acc + h * d.w;
                           for (int64_t w = sw.begin; w < sw.end; ++w) ar[w] += v;
                         }
                       }
                     }
                   });
  });
}

void CpuBackend::adaptive_avg_pool2d(const Tensor& in, const Tensor& out) {
  check_pair("adaptive_avg_pool2d", in, out);
  if (out.numel() == 0) return;
  const Dims d = dims_of(in, out);
  const std::vector<Bin> rows = adaptive_bins(d.oh, d.h), cols = adaptive_bins(d.ow, d.w);
  // Average bin area, for the thread grain.
  const int64_t bin_work = ((d.h + d.oh - 1) / d.oh + 1) * ((d.w + d.ow - 1) / d.ow + 1);
  dispatch_floating(in.dtype(), "adaptive_avg_pool2d", [&]<typename T>() {
    using C = compute_t<T>;
    const T* x = in.data_ptr<T>();
    T* y = out.data_ptr<T>();
    for_output_rows(d.planes * d.oh, d.ow * bin_work, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* plane = x + (r / d.oh) * d.h * d.w;
        const Bin bh = rows[r % d.oh];
        T* yr = y + r * d.ow;
        for (int64_t ow = 0; ow < d.ow; ++ow) {
          const Bin bw = cols[ow];
          C sum = 0;
          for (int64_t h = bh.begin; h < bh.end; ++h) {
            const T* xr = plane + h * d.w;
            for (int64_t w = bw.begin; w < bw.end; ++w) sum += load(xr[w]);
          }
          yr[ow] = store<T>(sum / static_cast<C>(bh.end - bh.begin) / static_cast<C>(bw.end - bw.begin));
        }
      }
    });
  });
}

void CpuBackend::adaptive_avg_pool2d_backward(const Tensor& grad_out, const Tensor& grad_in) {
  check_pair("adaptive_avg_pool2d_backward", grad_in, grad_out);
  const Dims d = dims_of(grad_in, grad_out);
  const std::vector<Bin> rows = adaptive_bins(d.oh, d.h), cols = adaptive_bins(d.ow, d.w);
  const int64_t out_plane = d.oh * d.ow;
  dispatch_floating(grad_in.dtype(), "adaptive_avg_pool2d_backward", [&]<typename T>() {
    using C = compute_t<T>;
    const T* g = grad_out.data_ptr<T>();
    scatter_planes(grad_in.data_ptr<T>(), d.planes, d.h * d.w, out_plane + d.h * d.w, [&](int64_t pl, C* acc) {
      const T* gp = g + pl * out_plane;
      for (int64_t oh = 0; oh < d.oh; ++oh) {
        const Bin bh = rows[oh];
        for (int64_t ow = 0; ow < d.ow; ++ow) {
          const Bin bw = cols[ow];
          const C v = load(gp[oh * d.ow + ow]) / static_cast<C>(bh.end - bh.begin) / static_cast<C>(bw.end - bw.begin);
          for (int64_t h = bh.begin; h < bh.end; ++h) {
            C* ar = acc + h * d.w;
            for (int64_t w = bw.begin; w < bw.end; ++w) ar[w] += v;
          }
        }
      }
    });
  });
}

}  // namespace kiln::cpu
