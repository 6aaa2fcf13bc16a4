// Layer norm and group norm on the CPU, forward and backward.
//
// Both normalise contiguous blocks: a layer norm row of D values, a group
// norm block of (C / groups) channels x HxW. A block is reduced and then
// rewritten while it is still in cache (a 768-float row sits in L1, a
// ResNet-sized group of 8 x 56 x 56 floats in L2), so each pass over memory
// reads the input once and writes the output once. Threads split the rows or
// blocks; see cpu_norm_util.h for how sums stay accurate and independent of
// the thread count.
//
// Backward, per block with mean mu, rstd r, n values, weight w (1 if none),
// A = Σ g w and B = Σ g w (x - mu):
//   dx = r w g - r^3 B / n (x - mu) - r A / n
//   dweight = Σ over blocks of g (x - mu) r,  dbias = Σ g.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_norm_util.h"

namespace kiln::cpu {

using namespace norm;

namespace {

void check_same(const char* op, const Tensor& a, const char* na, const Tensor& b, const char* nb) {
  KILN_CHECK(a.sizes().equals(b.sizes()) && a.dtype() == b.dtype() && a.is_contiguous() && b.is_contiguous(), op,
             ": ", na, " ", a.toString(), " and ", nb, " ", b.toString(), " must be contiguous with one shape and dtype");
}

// ---- layer norm ----

// y = ((x - center) r + sh) w + b over one row (sh = (center - mean) r),
// with the optional per-element w, b.
template <typename C>
KILN_FLATTEN void layer_norm_row(const C* __restrict x, C* __restrict y, int64_t m, C center, C r, C sh,
                                const C* __restrict w, const C* __restrict b) {
  if (w != nullptr && b != nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) y[i] = ((x[i] - center) * r + sh) * w[i] + b[i];
  } else if (w != nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) y[i] = ((x[i] - center) * r + sh) * w[i];
  } else if (b != nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) y[i] = ((x[i] - center) * r + sh) + b[i];
  } else {
#pragma omp simd
    for (int64_t i = 0; i < m; ++i) y[i] = (x[i] - center) * r + sh;
  }
}

template <typename T>
void layer_norm_forward(const Tensor& in, const Tensor& weight, const Tensor& bias, double eps, const Tensor& out,
                        const Tensor& mean, const Tensor& rstd) {
  using C = compute_t<T>;
  using S = stat_t<T>;
  const int64_t rows = mean.numel(), d = rows == 0 ? 0 : in.numel() / rows;
  const std::vector<C> wv = param_values<C>(weight), bv = param_values<C>(bias);
  const C* w = wv.empty() ? nullptr : wv.data();
  const C* b = bv.empty() ? nullptr : bv.data();
  const T* x = in.data_ptr<T>();
  T* y = out.data_ptr<T>();
  S* pm = mean.data_ptr<S>();
  S* pr = rstd.data_ptr<S>();
  parallel_for(rows, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(d, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * d;
      const Moments mo = moments(xr, d);
      const double rs = 1.0 / std::sqrt(mo.var + eps);
      pm[r] = static_cast<S>(mo.mean);
      pr[r] = static_cast<S>(rs);
      const C mu = static_cast<C>(mo.center), sc = static_cast<C>(rs);
      const C sh = static_cast<C>((mo.center - mo.mean) * rs);
      if constexpr (std::is_same_v<T, C>) {
        layer_norm_row<C>(xr, y + r * d, d, mu, sc, sh, w, b);
      } else {
        chunks(xr, d, [&](const C* xc, int64_t m, int64_t o) {
          alignas(64) C yc[kChunk];
          layer_norm_row<C>(xc, yc, m, mu, sc, sh, w ? w + o : nullptr, b ? b + o : nullptr);
          store_block(yc, y + r * d + o, m);
        });
      }
    }
  });
}

template <typename T>
void layer_norm_backward_impl(const Tensor& grad_out, const Tensor& in, const Tensor& mean, const Tensor& rstd,
                              const Tensor& weight, const Tensor& grad_in, const Tensor& grad_weight,
                              const Tensor& grad_bias) {
  using C = compute_t<T>;
  const int64_t rows = mean.numel(), d = rows == 0 ? 0 : in.numel() / rows;
  const std::vector<C> wv = param_values<C>(weight);
  const C* w = wv.empty() ? nullptr : wv.data();
  const std::vector<double> mv = stat_values(mean), rv = stat_values(rstd);
  const T* x = in.data_ptr<T>();
  const T* g = grad_out.data_ptr<T>();
  T* gi = grad_in.defined() ? grad_in.data_ptr<T>() : nullptr;
  const bool want_w = grad_weight.defined(), want_b = grad_bias.defined(), want_params = want_w || want_b;
  // Column sums of g (x - mu) r and g: one partial per chunk of rows.
  const int64_t chunk = row_chunk(rows), nchunks = (rows + chunk - 1) / chunk;
  std::vector<double> part_w(want_w ? static_cast<size_t>(nchunks * d) : 0);
  std::vector<double> part_b(want_b ? static_cast<size_t>(nchunks * d) : 0);
  const double inv_d = 1.0 / static_cast<double>(d);
  parallel_for(nchunks, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(d * chunk, 1)),
               [&](int64_t c0, int64_t c1) {
    std::vector<C> acc_w(want_params ? static_cast<size_t>(d) : 0), acc_b(acc_w.size());
    for (int64_t ch = c0; ch < c1; ++ch) {
      std::fill(acc_w.begin(), acc_w.end(), C(0));
      std::fill(acc_b.begin(), acc_b.end(), C(0));
      const int64_t r_end = std::min(rows, (ch + 1) * chunk);
      for (int64_t r = ch * chunk; r < r_end; ++r) {
        const T* xr = x + r * d;
        const T* gr = g + r * d;
        const C mu = static_cast<C>(mv[r]), rs = static_cast<C>(rv[r]);
        if (gi != nullptr) {
          double sa = 0, sb = 0;
          chunks2(gr, xr, d, [&](const C* __restrict gc, const C* __restrict xc, int64_t m, int64_t o) {
            C a, bsum;
            if (w != nullptr) {
              sum_weighted(gc, w + o, xc, mu, m, a, bsum);
            } else {
              sum_products(gc, C(0), xc, mu, m, a, bsum);
            }
            sa += static_cast<double>(a);
            sb += static_cast<double>(bsum);
          });
          const double rsd = rv[r];
          const C c2 = static_cast<C>(-rsd * rsd * rsd * sb * inv_d);
          const C c3 = static_cast<C>(-rsd * sa * inv_d);
          emit(gi + r * d, d, [&](C* __restrict out, int64_t m, int64_t o) {
            chunks2(gr + o, xr + o, m, [&](const C* __restrict gc, const C* __restrict xc, int64_t mm, int64_t oo) {
              C* __restrict oc = out + oo;
              if (w != nullptr) {
                const C* __restrict wc = w + o + oo;
#pragma omp simd
                for (int64_t i = 0; i < mm; ++i) oc[i] = gc[i] * (rs * wc[i]) + (xc[i] - mu) * c2 + c3;
              } else {
#pragma omp simd
                for (int64_t i = 0; i < mm; ++i) oc[i] = gc[i] * rs + (xc[i] - mu) * c2 + c3;
              }
            });
          });
        }
        if (want_params) {
          chunks2(gr, xr, d, [&](const C* __restrict gc, const C* __restrict xc, int64_t m, int64_t o) {
            C* __restrict aw = acc_w.data() + o;
            C* __restrict ab = acc_b.data() + o;
#pragma omp simd
            for (int64_t i = 0; i < m; ++i) {
              aw[i] += gc[i] * ((xc[i] - mu) * rs);
              ab[i] += gc[i];
            }
          });
        }
      }
      if (want_w) std::copy(acc_w.begin(), acc_w.end(), part_w.begin() + ch * d);
      if (want_b) std::copy(acc_b.begin(), acc_b.end(), part_b.begin() + ch * d);
    }
  });
  for (auto [want, part, t] : {std::tuple{want_w, &part_w, &grad_weight}, std::tuple{want_b, &part_b, &grad_bias}}) {
    if (!want) continue;
    std::vector<double> total(static_cast<size_t>(d), 0.0);
    for (int64_t ch = 0; ch < nchunks; ++ch)
      for (int64_t i = 0; i < d; ++i) total[i] += (*part)[ch * d + i];
    store_values(*t, total.data());
  }
}

// ---- group norm ----

template <typename T>
void group_norm_forward(const Tensor& in, const Tensor& weight, const Tensor& bias, int64_t groups, double eps,
                        const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  using C = compute_t<T>;
  using S = stat_t<T>;
  const int64_t n = in.size(0), c = in.size(1), hw = in.numel() / std::max<int64_t>(n * c, 1), cpg = c / groups;
  const int64_t block = cpg * hw;
  const std::vector<C> wv = param_values<C>(weight), bv = param_values<C>(bias);
  const T* x = in.data_ptr<T>();
  T* y = out.data_ptr<T>();
  S* pm = mean.data_ptr<S>();
  S* pr = rstd.data_ptr<S>();
  parallel_for(n * groups, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(block, 1)),
               [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const T* xb = x + blk * block;
      const Moments mo = moments(xb, block);
      const double rs = 1.0 / std::sqrt(mo.var + eps);
      pm[blk] = static_cast<S>(mo.mean);
      pr[blk] = static_cast<S>(rs);
      const int64_t c0 = (blk % groups) * cpg;
      for (int64_t k = 0; k < cpg; ++k) {
        const double wk = wv.empty() ? 1.0 : static_cast<double>(wv[c0 + k]);
        const double bk = bv.empty() ? 0.0 : static_cast<double>(bv[c0 + k]);
        run_affine<false>(xb, xb + k * hw, y + blk * block + k * hw, hw, C(0), static_cast<C>(mo.center),
                          static_cast<C>(rs * wk), static_cast<C>(bk + (mo.center - mo.mean) * rs * wk));
      }
    }
  });
}

template <typename T>
void group_norm_backward_impl(const Tensor& grad_out, const Tensor& in, const Tensor& mean, const Tensor& rstd,
                              const Tensor& weight, int64_t groups, const Tensor& grad_in, const Tensor& grad_weight,
                              const Tensor& grad_bias) {
  using C = compute_t<T>;
  const int64_t n = in.size(0), c = in.size(1), hw = in.numel() / std::max<int64_t>(n * c, 1), cpg = c / groups;
  const int64_t block = cpg * hw;
  const std::vector<C> wv = param_values<C>(weight);
  const std::vector<double> mv = stat_values(mean), rv = stat_values(rstd);
  const T* x = in.data_ptr<T>();
  const T* g = grad_out.data_ptr<T>();
  T* gi = grad_in.defined() ? grad_in.data_ptr<T>() : nullptr;
  // Per (sample, channel): Σ g and Σ g (x - mu), for the parameter grads.
  std::vector<double> sum_g(static_cast<size_t>(n * c)), sum_gx(static_cast<size_t>(n * c));
  const double inv_n = 1.0 / static_cast<double>(block);
  parallel_for(n * groups, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(block, 1)),
               [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t s = blk / groups, c0 = (blk % groups) * cpg;
      const double mu = mv[blk], rs = rv[blk];
      double a = 0, bsum = 0;
      for (int64_t k = 0; k < cpg; ++k) {
        const int64_t off = blk * block + k * hw;
        double s0 = 0, s1 = 0;
        run_sums<true>(g + off, C(0), x + off, static_cast<C>(mu), hw, s0, s1);
        sum_g[s * c + c0 + k] = s0;
        sum_gx[s * c + c0 + k] = s1;
        const double wk = wv.empty() ? 1.0 : static_cast<double>(wv[c0 + k]);
        a += wk * s0;
        bsum += wk * s1;
      }
      if (gi == nullptr) continue;
      const double c2 = -rs * rs * rs * bsum * inv_n;
      const double c3 = -rs * a * inv_n;
      for (int64_t k = 0; k < cpg; ++k) {
        const int64_t off = blk * block + k * hw;
        const double wk = wv.empty() ? 1.0 : static_cast<double>(wv[c0 + k]);
        run_affine<true>(g + off, x + off, gi + off, hw, static_cast<C>(rs * wk), static_cast<C>(mu),
                         static_cast<C>(c2), static_cast<C>(c3));
      }
    }
  });
  if (grad_weight.defined()) {
    std::vector<double> total(static_cast<size_t>(c), 0.0);
    for (int64_t s = 0; s < n; ++s)
      for (int64_t ch = 0; ch < c; ++ch) total[ch] += sum_gx[s * c + ch] * rv[s * groups + ch / cpg];
    store_values(grad_weight, total.data());
  }
  if (grad_bias.defined()) {
    std::vector<double> total(static_cast<size_t>(c), 0.0);
    for (int64_t s = 0; s < n; ++s)
      for (int64_t ch = 0; ch < c; ++ch) total[ch] += sum_g[s * c + ch];
    store_values(grad_bias, total.data());
  }
}

void check_params(const char* op, const Tensor& in, const Tensor& weight, const Tensor& bias, int64_t count) {
  for (const Tensor* p : {&weight, &bias}) {
    KILN_CHECK(!p->defined() || (p->numel() == count && p->is_contiguous() && p->is_floating_point()), op,
               ": parameter ", p->toString(), " must be contiguous floating with ", count, " elements for input ",
               in.toString());
  }
}

}  // namespace

void CpuBackend::layer_norm(const Tensor& in, const Tensor& weight, const Tensor& bias, double eps, const Tensor& out,
                            const Tensor& mean, const Tensor& rstd) {
  check_same("layer_norm", in, "input", out, "output");
  check_stat("layer_norm", mean, in.dtype());
  check_stat("layer_norm", rstd, in.dtype());
  if (mean.numel() == 0) return;
  check_params("layer_norm", in, weight, bias, in.numel() / mean.numel());
  dispatch_floating(in.dtype(), "layer_norm",
                    [&]<typename T>() { layer_norm_forward<T>(in, weight, bias, eps, out, mean, rstd); });
}

void CpuBackend::layer_norm_backward(const Tensor& grad_out, const Tensor& in, const Tensor& mean, const Tensor& rstd,
                                     const Tensor& weight, const Tensor& grad_in, const Tensor& grad_weight,
                                     const Tensor& grad_bias) {
  check_same("layer_norm_backward", in, "input", grad_out, "grad_out");
  if (grad_in.defined()) check_same("layer_norm_backward", in, "input", grad_in, "grad_in");
  check_stat("layer_norm_backward", mean, in.dtype());
  check_stat("layer_norm_backward", rstd, in.dtype());
  if (mean.numel() == 0) return;
  const int64_t d = in.numel() / mean.numel();
  check_params("layer_norm_backward", in, weight, grad_weight, d);
  check_params("layer_norm_backward", in, grad_bias, Tensor(), d);
  dispatch_floating(in.dtype(), "layer_norm_backward", [&]<typename T>() {
    layer_norm_backward_impl<T>(grad_out, in, mean, rstd, weight, grad_in, grad_weight, grad_bias);
  });
}

void CpuBackend::group_norm(const Tensor& in, const Tensor& weight, const Tensor& bias, int64_t groups, double eps,
                            const Tensor& out, const Tensor& mean, const Tensor& rstd) {
  check_same("group_norm", in, "input", out, "output");
  KILN_CHECK(in.dim() >= 2 && groups > 0 && in.size(1) % groups == 0 && mean.numel() == in.size(0) * groups &&
                 rstd.numel() == mean.numel(),
             "group_norm: input ", in.toString(), ", groups ", groups, " and statistics ", mean.toString(),
             " do not fit");
  check_stat("group_norm", mean, in.dtype());
  check_stat("group_norm", rstd, in.dtype());
  check_params("group_norm", in, weight, bias, in.size(1));
  dispatch_floating(in.dtype(), "group_norm",
                    [&]<typename T>() { group_norm_forward<T>(in, weight, bias, groups, eps, out, mean, rstd); });
}

void CpuBackend::group_norm_backward(const Tensor& grad_out, const Tensor& in, const Tensor& mean, const Tensor& rstd,
                                     const Tensor& weight, int64_t groups, const Tensor& grad_in,
                                     const Tensor& grad_weight, const Tensor& grad_bias) {
  check_same("group_norm_backward", in, "input", grad_out, "grad_out");
  if (grad_in.defined()) check_same("group_norm_backward", in, "input", grad_in, "grad_in");
  KILN_CHECK(in.dim() >= 2 && groups > 0 && in.size(1) % groups == 0 && mean.numel() == in.size(0) * groups &&
                 rstd.numel() == mean.numel(),
             "group_norm_backward: input ", in.toString(), ", groups ", groups, " and statistics ", mean.toString(),
             " do not fit");
  check_stat("group_norm_backward", mean, in.dtype());
  check_stat("group_norm_backward", rstd, in.dtype());
  check_params("group_norm_backward", in, weight, grad_weight, in.size(1));
  check_params("group_norm_backward", in, grad_bias, Tensor(), in.size(1));
  dispatch_floating(in.dtype(), "group_norm_backward", [&]<typename T>() {
    group_norm_backward_impl<T>(grad_out, in, mean, rstd, weight, groups, grad_in, grad_weight, grad_bias);
  });
}

}  // namespace kiln::cpu
