// CPU resize kernels (nearest, bilinear) on contiguous [N, C, H, W]. The
// source index and weights of every output row and column are computed once
// per call with torch's formulas and arithmetic types (nearest indices in
// float, bilinear coordinates in the compute type), then each output row
// reads two input rows. Where an output size equals the input size torch
// maps the dim through unchanged but still adds the same element times a
// zero weight, so an inf there becomes NaN; the taps below keep that.
#include <cmath>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_planes.h"

namespace kiln::cpu {

namespace {

void check_pair(const char* op, const Tensor& in, const Tensor& out) {
  KILN_CHECK(in.dim() == 4 && out.dim() == 4 && in.size(0) == out.size(0) && in.size(1) == out.size(1) &&
                 in.dtype() == out.dtype() && in.is_contiguous() && out.is_contiguous(),
             op, ": expected contiguous [N, C, H, W] tensors of one dtype with matching N and C, got ", in.toString(),
             " and ", out.toString());
}

// torch's nearest_idx: in float, whatever the tensor's dtype.
std::vector<int64_t> nearest_taps(int64_t in, int64_t out, double scale) {
  std::vector<int64_t> idx(out);
  const float s = scale > 0 ? static_cast<float>(1.0 / scale) : static_cast<float>(in) / static_cast<float>(out);
  for (int64_t o = 0; o < out; ++o) {
    if (out == in) {
      idx[o] = o;
    } else if (out == 2 * in) {
      idx[o] = o >> 1;
    } else {
      idx[o] = std::min(static_cast<int64_t>(std::floor(static_cast<float>(o) * s)), in - 1);
    }
  }
  return idx;
}

// a * b + c, fused where the CPU has FMA: torch's x86 kernels are built with
// FMA enabled and the compiler contracts their multiply-adds (Kiln itself
// builds with -ffp-contract=off, so the fusion is spelled out). Without
// hardware FMA std::fma is a slow library call, and torch's generic kernels
// round twice anyway.
template <typename C>
inline C madd(C a, C b, C c) {
#ifdef __FMA__
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

template <typename C>
struct LinearTaps {
  std::vector<int64_t> i0, i1;
  std::vector<C> l0, l1;
};

// torch's area_pixel_compute_scale / area_pixel_compute_source_index /
// guard_index_and_lambda, in the compute type C (the floor goes through
// float, as torch's floorf).
template <typename C>
LinearTaps<C> linear_taps(int64_t in, int64_t out, bool align_corners, double scale) {
  LinearTaps<C> t{std::vector<int64_t>(out), std::vector<int64_t>(out), std::vector<C>(out), std::vector<C>(out)};
  C ratio;
  if (align_corners) {
    ratio = out > 1 ? static_cast<C>(in - 1) / static_cast<C>(out - 1) : C(0);
  } else {
    ratio = scale > 0 ? static_cast<C>(1.0 / scale) : static_cast<C>(in) / static_cast<C>(out);
  }
  for (int64_t o = 0; o < out; ++o) {
    if (out == in) {
      t.i0[o] = o;
      t.i1[o] = o;
      t.l0[o] = 1;
      t.l1[o] = 0;
      continue;
    }
    C src = align_corners ? ratio * static_cast<C>(o) : madd(ratio, static_cast<C>(o) + C(0.5), C(-0.5));
    if (!align_corners && src < 0) src = 0;
    const int64_t i = std::min(static_cast<int64_t>(std::floor(static_cast<float>(src))), in - 1);
    const C lambda = std::min(std::max(src - static_cast<C>(i), C(0)), C(1));
    t.i0[o] = i;
    t.i1[o] = i + (i < in - 1 ? 1 : 0);
    t.l1[o] = lambda;
    t.l0[o] = C(1) - lambda;
  }
  return t;
}

template <typename T>
void nearest_forward(const Tensor& in, double scale_h, double scale_w, const Tensor& out) {
  const int64_t h = in.size(2), w = in.size(3), oh = out.size(2), ow = out.size(3);
  const std::vector<int64_t> rows = nearest_taps(h, oh, scale_h), cols = nearest_taps(w, ow, scale_w);
  const T* x = in.data_ptr<T>();
  T* y = out.data_ptr<T>();
  for_output_rows(plane_count(in) * oh, ow, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + (r / oh) * h * w + rows[r % oh] * w;
      T* yr = y + r * ow;
      for (int64_t o = 0; o < ow; ++o) yr[o] = xr[cols[o]];
    }
  });
}

template <typename T>
void nearest_backward(const Tensor& grad_out, double scale_h, double scale_w, const Tensor& grad_in) {
  const int64_t h = grad_in.size(2), w = grad_in.size(3), oh = grad_out.size(2), ow = grad_out.size(3);
  const std::vector<int64_t> rows = nearest_taps(h, oh, scale_h), cols = nearest_taps(w, ow, scale_w);
  const T* g = grad_out.data_ptr<T>();
  scatter_planes(grad_in.data_ptr<T>(), plane_count(grad_in), h * w, oh * ow, [&](int64_t p, compute_t<T>* acc) {
    const T* gp = g + p * oh * ow;
    for (int64_t i = 0; i < oh; ++i) {
      compute_t<T>* ar = acc + rows[i] * w;
      const T* gr = gp + i * ow;
      for (int64_t o = 0; o < ow; ++o) ar[cols[o]] += load(gr[o]);
    }
  });
}

template <typename T>
void bilinear_forward(const Tensor& in, bool align_corners, double scale_h, double scale_w, const Tensor& out) {
  using C = compute_t<T>;
  const int64_t h = in.size(2), w = in.size(3), oh = out.size(2), ow = out.size(3);
  const LinearTaps<C> rows = linear_taps<C>(h, oh, align_corners, scale_h);
  const LinearTaps<C> cols = linear_taps<C>(w, ow, align_corners, scale_w);
  const T* x = in.data_ptr<T>();
  T* y = out.data_ptr<T>();
  for_output_rows(plane_count(in) * oh, 4 * ow, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t i = r % oh;
      const T* plane = x + (r / oh) * h * w;
      const T* top = plane + rows.i0[i] * w;
      const T* bottom = plane + rows.i1[i] * w;
      const C wt = rows.l0[i], wb = rows.l1[i];  // top / bottom row weights
      T* yr = y + r * ow;
      for (int64_t o = 0; o < ow; ++o) {
        const int64_t a = cols.i0[o], b = cols.i1[o];
        const C wa = cols.l0[o], wb2 = cols.l1[o];  // left / right column weights
        // The four terms summed in this order with fused multiply-adds come
        // closest to torch's vectorised kernel (equal, or within an ulp).
        C acc = load(top[a]) * (wt * wa);
        acc = madd(load(top[b]), wt * wb2, acc);
        acc = madd(load(bottom[a]), wb * wa, acc);
        yr[o] = store<T>(madd(load(bottom[b]), wb * wb2, acc));
      }
    }
  });
}

template <typename T>
void bilinear_backward(const Tensor& grad_out, bool align_corners, double scale_h, double scale_w,
                       const Tensor& grad_in) {
  using C = compute_t<T>;
  const int64_t h = grad_in.size(2), w = grad_in.size(3), oh = grad_out.size(2), ow = grad_out.size(3);
  const LinearTaps<C> rows = linear_taps<C>(h, oh, align_corners, scale_h);
  const LinearTaps<C> cols = linear_taps<C>(w, ow, align_corners, scale_w);
  const T* g = grad_out.data_ptr<T>();
  scatter_planes(grad_in.data_ptr<T>(), plane_count(grad_in), h * w, 4 * oh * ow, [&](int64_t p, C* acc) {
    const T* gp = g + p * oh * ow;
    for (int64_t i = 0; i < oh; ++i) {
      C* top = acc + rows.i0[i] * w;
      C* bottom = acc + rows.i1[i] * w;
      const C wt = rows.l0[i], wb = rows.l1[i];
      const T* gr = gp + i * ow;
      for (int64_t o = 0; o < ow; ++o) {
        // torch's order: (row weight * column weight) * grad, fused into the sum.
        const int64_t a = cols.i0[o], b = cols.i1[o];
        const C v = load(gr[o]);
        top[a] = madd(wt * cols.l0[o], v, top[a]);
        top[b] = madd(wt * cols.l1[o], v, top[b]);
        bottom[a] = madd(wb * cols.l0[o], v, bottom[a]);
        bottom[b] = madd(wb * cols.l1[o], v, bottom[b]);
      }
    }
  });
}

}  // namespace

void CpuBackend::upsample2d(InterpolationMode mode, const Tensor& in, bool align_corners, double scale_h,
                            double scale_w, const Tensor& out) {
  check_pair("upsample2d", in, out);
  if (out.numel() == 0) return;
  dispatch_floating(in.dtype(), "upsample2d", [&]<typename T>() {
    if (mode == InterpolationMode::Nearest) {
      nearest_forward<T>(in, scale_h, scale_w, out);
    } else {
      bilinear_forward<T>(in, align_corners, scale_h, scale_w, out);
    }
  });
}

void CpuBackend::upsample2d_backward(InterpolationMode mode, const Tensor& grad_out, bool align_corners,
                                     double scale_h, double scale_w, const Tensor& grad_in) {
  check_pair("upsample2d_backward", grad_in, grad_out);
  if (grad_in.numel() == 0) return;
  dispatch_floating(grad_in.dtype(), "upsample2d_backward", [&]<typename T>() {
    if (mode == InterpolationMode::Nearest) {
      nearest_backward<T>(grad_out, scale_h, scale_w, grad_in);
    } else {
      bilinear_backward<T>(grad_out, align_corners, scale_h, scale_w, grad_in);
    }
  });
}

}  // namespace kiln::cpu
