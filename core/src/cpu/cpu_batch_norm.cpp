// Batch norm on the CPU: per-channel statistics, the affine map, and the
// training-mode backward. The input is [N, C, HW] (contiguous); channel c is
// N runs of HW values, one per sample.
//
// Two layouts of the same work: when runs are long (HW >= kLongRun), threads
// split the channels and each channel is reduced and then rewritten while
// its N x HW values are still in cache; when runs are short (HW = 1 for
// BatchNorm1d's [N, C]), a channel's values are spread across every row, so
// rows are swept whole, vectorised across the C * HW columns, with
// per-column sums kept per chunk of rows and added in order.
//
// Backward with count M = N * HW per channel, sums Σg and Σ g (x - mean):
//   dx = w r (g - Σg / M - (x - mean) r^2 Σg(x - mean) / M)
//   dweight = r Σ g (x - mean),  dbias = Σ g.
// Outputs are formed from x - mean, never x scale - mean scale, so a large
// mean does not cancel digits away.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_norm_util.h"

namespace kiln::cpu {

using namespace norm;

namespace {

constexpr int64_t kLongRun = 16;

struct Layout {
  int64_t n, c, hw;
  int64_t cols() const { return c * hw; }
  double count() const { return static_cast<double>(n * hw); }
};

Layout layout_of(const Tensor& in) {
  const int64_t n = in.size(0), c = in.size(1);
  return {n, c, n * c == 0 ? 0 : in.numel() / (n * c)};
}

// Short runs (HW < kLongRun): per channel s0[c] = Σ (u - us[c]) and, with
// S1, s1[c] = Σ (u - us[c])(v - vs[c]), as column sums over chunks of rows,
// then the columns of a channel together. (Long runs reduce channel by
// channel in stats_impl and backward_impl.)
template <bool S1, typename T>
void channel_sums(const Layout& l, const T* u, const std::vector<double>& us, const T* v,
                  const std::vector<double>& vs, std::vector<double>& s0, std::vector<double>& s1) {
  using C = compute_t<T>;
  s0.assign(static_cast<size_t>(l.c), 0.0);
  s1.assign(static_cast<size_t>(l.c), 0.0);
  const int64_t k = l.cols(), chunk = row_chunk(l.n), nchunks = (l.n + chunk - 1) / chunk;
  std::vector<C> ush(static_cast<size_t>(k)), vsh(static_cast<size_t>(k));
  for (int64_t j = 0; j < k; ++j) {
    ush[j] = static_cast<C>(us[j / l.hw]);
    vsh[j] = static_cast<C>(vs[j / l.hw]);
  }
  std::vector<double> p0(static_cast<size_t>(nchunks * k)), p1(S1 ? p0.size() : 0);
  parallel_for(nchunks, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(k * chunk, 1)),
               [&](int64_t h0, int64_t h1) {
    std::vector<C> a(static_cast<size_t>(k)), b(static_cast<size_t>(S1 ? k : 0));
    for (int64_t h = h0; h < h1; ++h) {
      std::fill(a.begin(), a.end(), C(0));
      std::fill(b.begin(), b.end(), C(0));
      for (int64_t s = h * chunk; s < std::min(l.n, (h + 1) * chunk); ++s) {
        const T* ur = u + s * k;
        const T* vr = v + s * k;
        chunks2(ur, vr, k, [&](const C* __restrict uc, const C* __restrict vc, int64_t m, int64_t o) {
          C* __restrict pa = a.data() + o;
          const C* __restrict ua = ush.data() + o;
          if constexpr (S1) {
            C* __restrict pb = b.data() + o;
            const C* __restrict va = vsh.data() + o;
#pragma omp simd
            for (int64_t j = 0; j < m; ++j) {
              const C d = uc[j] - ua[j];
              pa[j] += d;
              pb[j] += d * (vc[j] - va[j]);
            }
          } else {
#pragma omp simd
            for (int64_t j = 0; j < m; ++j) pa[j] += uc[j] - ua[j];
          }
        });
      }
      std::copy(a.begin(), a.end(), p0.begin() + h * k);
      if constexpr (S1) std::copy(b.begin(), b.end(), p1.begin() + h * k);
    }
  });
  for (int64_t h = 0; h < nchunks; ++h) {
    for (int64_t j = 0; j < k; ++j) {
      s0[j / l.hw] += p0[h * k + j];
      if constexpr (S1) s1[j / l.hw] += p1[h * k + j];
    }
  }
}

// y = (x - m[c]) k2[c] + k3[c], or with G: y = g k1[c] + (x - m[c]) k2[c] + k3[c].
template <bool G, typename T>
void channel_affine(const Layout& l, const T* g, const T* x, T* y, const std::vector<double>& k1,
                    const std::vector<double>& m, const std::vector<double>& k2, const std::vector<double>& k3) {
  using C = compute_t<T>;
  if (l.hw >= kLongRun) {
    parallel_for(l.n * l.c, std::max<int64_t>(1, kParallelGrain / l.hw), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t ch = p % l.c, off = p * l.hw;
        run_affine<G>(G ? g + off : x, x + off, y + off, l.hw, static_cast<C>(G ? k1[ch] : 0.0),
                      static_cast<C>(m[ch]), static_cast<C>(k2[ch]), static_cast<C>(k3[ch]));
      }
    });
    return;
  }
  const int64_t k = l.cols();
  std::vector<C> c1(static_cast<size_t>(k)), cm(c1.size()), c2(c1.size()), c3(c1.size());
  for (int64_t j = 0; j < k; ++j) {
    c1[j] = static_cast<C>(G ? k1[j / l.hw] : 0.0);
    cm[j] = static_cast<C>(m[j / l.hw]);
    c2[j] = static_cast<C>(k2[j / l.hw]);
    c3[j] = static_cast<C>(k3[j / l.hw]);
  }
  parallel_for(l.n, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(k, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t s = r0; s < r1; ++s) {
      const T* xr = x + s * k;
      const T* gr = G ? g + s * k : xr;
      emit(y + s * k, k, [&](C* __restrict out, int64_t len, int64_t o) {
        chunks2(gr + o, xr + o, len, [&](const C* __restrict gc, const C* __restrict xc, int64_t mm, int64_t oo) {
          C* __restrict oc = out + oo;
          const int64_t j0 = o + oo;
          const C* __restrict q1 = c1.data() + j0;
          const C* __restrict qm = cm.data() + j0;
          const C* __restrict q2 = c2.data() + j0;
          const C* __restrict q3 = c3.data() + j0;
          if constexpr (G) {
#pragma omp simd
            for (int64_t j = 0; j < mm; ++j) oc[j] = gc[j] * q1[j] + (xc[j] - qm[j]) * q2[j] + q3[j];
          } else {
#pragma omp simd
            for (int64_t j = 0; j < mm; ++j) oc[j] = (xc[j] - qm[j]) * q2[j] + q3[j];
          }
        });
      });
    }
  });
}

template <typename T>
void stats_impl(const Tensor& in, const Tensor& mean, const Tensor& var) {
  using C = compute_t<T>;
  const Layout l = layout_of(in);
  const T* x = in.data_ptr<T>();
  std::vector<double> m(static_cast<size_t>(l.c)), v(static_cast<size_t>(l.c));
  if (l.hw >= kLongRun) {
    // Both passes over one channel back to back, the second from cache when
    // the channel's N x HW values fit there.
    parallel_for(l.c, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(l.n * l.hw, 1)),
                 [&](int64_t c0, int64_t c1) {
      for (int64_t ch = c0; ch < c1; ++ch) {
        double s = 0, s1 = 0, s2 = 0, unused = 0;
        for (int64_t n = 0; n < l.n; ++n) {
          const T* run = x + (n * l.c + ch) * l.hw;
          run_sums<false>(run, C(0), run, C(0), l.hw, s, unused);
        }
        const C mu = static_cast<C>(s / l.count());
        for (int64_t n = 0; n < l.n; ++n) {
          const T* run = x + (n * l.c + ch) * l.hw;
          run_sums<true>(run, mu, run, mu, l.hw, s1, s2);
        }
        const Moments mo = finish_moments(static_cast<double>(mu), s1, s2, l.count());
        m[ch] = mo.mean;
        v[ch] = mo.var;
      }
    });
    store_values(mean, m.data());
    store_values(var, v.data());
    return;
  }
  const std::vector<double> zero(static_cast<size_t>(l.c), 0.0);
  std::vector<double> s, unused;
  channel_sums<false>(l, x, zero, x, zero, s, unused);
  // The second pass centres on the first-pass mean as the compute type rounds it.
  std::vector<double> mu(static_cast<size_t>(l.c));
  for (int64_t ch = 0; ch < l.c; ++ch) mu[ch] = static_cast<double>(static_cast<C>(s[ch] / l.count()));
  std::vector<double> s1, s2;
  channel_sums<true>(l, x, mu, x, mu, s1, s2);
  for (int64_t ch = 0; ch < l.c; ++ch) {
    const Moments mo = finish_moments(mu[ch], s1[ch], s2[ch], l.count());
    m[ch] = mo.mean;
    v[ch] = mo.var;
  }
  store_values(mean, m.data());
  store_values(var, v.data());
}

template <typename T>
void apply_impl(const Tensor& in, const Tensor& mean, const Tensor& invstd, const Tensor& weight, const Tensor& bias,
                const Tensor& out) {
  const Layout l = layout_of(in);
  const std::vector<double> m = stat_values(mean), r = stat_values(invstd);
  const std::vector<double> w = weight.defined() ? stat_values(weight) : std::vector<double>();
  const std::vector<double> b = bias.defined() ? stat_values(bias) : std::vector<double>();
  std::vector<double> k2(static_cast<size_t>(l.c)), k3(static_cast<size_t>(l.c));
  for (int64_t ch = 0; ch < l.c; ++ch) {
    k2[ch] = r[ch] * (w.empty() ? 1.0 : w[ch]);
    k3[ch] = b.empty() ? 0.0 : b[ch];
  }
  channel_affine<false>(l, static_cast<const T*>(nullptr), in.data_ptr<T>(), out.data_ptr<T>(), k2, m, k2, k3);
}

template <typename T>
void backward_impl(const Tensor& grad_out, const Tensor& in, const Tensor& mean, const Tensor& invstd,
                   const Tensor& weight, const Tensor& grad_in, const Tensor& grad_weight, const Tensor& grad_bias) {
  const Layout l = layout_of(in);
  const std::vector<double> m = stat_values(mean), r = stat_values(invstd);
  const std::vector<double> w = weight.defined() ? stat_values(weight) : std::vector<double>();
  // grad_in's per-channel coefficients from the channel's sums.
  auto coefficients = [&](int64_t ch, double sum_g, double sum_gx, double& k1, double& k2, double& k3) {
    const double wr = (w.empty() ? 1.0 : w[ch]) * r[ch];
    k1 = wr;
    k2 = -wr * r[ch] * r[ch] * sum_gx / l.count();
    k3 = -wr * sum_g / l.count();
  };
  const T* g = grad_out.data_ptr<T>();
  const T* x = in.data_ptr<T>();
  std::vector<double> sg(static_cast<size_t>(l.c)), sgx(sg.size());
  if (l.hw >= kLongRun) {
    // Per channel: the sums, then grad_in, while the channel's g and x are in cache.
    using C = compute_t<T>;
    T* gi = grad_in.defined() ? grad_in.data_ptr<T>() : nullptr;
    parallel_for(l.c, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(l.n * l.hw, 1)),
                 [&](int64_t c0, int64_t c1) {
      for (int64_t ch = c0; ch < c1; ++ch) {
        const C mu = static_cast<C>(m[ch]);
        double a = 0, b = 0;
        for (int64_t n = 0; n < l.n; ++n) {
          const int64_t off = (n * l.c + ch) * l.hw;
          run_sums<true>(g + off, C(0), x + off, mu, l.hw, a, b);
        }
        sg[ch] = a;
        sgx[ch] = b;
        if (gi == nullptr) continue;
        double k1, k2, k3;
        coefficients(ch, a, b, k1, k2, k3);
        for (int64_t n = 0; n < l.n; ++n) {
          const int64_t off = (n * l.c + ch) * l.hw;
          run_affine<true>(g + off, x + off, gi + off, l.hw, static_cast<C>(k1), mu, static_cast<C>(k2),
                           static_cast<C>(k3));
        }
      }
    });
  } else {
    const std::vector<double> zero(static_cast<size_t>(l.c), 0.0);
    channel_sums<true>(l, g, zero, x, m, sg, sgx);
    if (grad_in.defined()) {
      std::vector<double> k1(static_cast<size_t>(l.c)), k2(k1.size()), k3(k1.size());
      for (int64_t ch = 0; ch < l.c; ++ch) coefficients(ch, sg[ch], sgx[ch], k1[ch], k2[ch], k3[ch]);
      channel_affine<true>(l, g, x, grad_in.data_ptr<T>(), k1, m, k2, k3);
    }
  }
  if (grad_weight.defined()) {
    std::vector<double> gw(static_cast<size_t>(l.c));
    for (int64_t ch = 0; ch < l.c; ++ch) gw[ch] = sgx[ch] * r[ch];
    store_values(grad_weight, gw.data());
  }
  if (grad_bias.defined()) store_values(grad_bias, sg.data());
}

void check_input(const char* op, const Tensor& in) {
  KILN_CHECK(in.dim() >= 2 && in.is_contiguous(), op, ": input must be contiguous [N, C, *], got ", in.toString());
}

void check_channel(const char* op, const Tensor& in, const Tensor& t, bool stat) {
  if (!t.defined()) return;
  KILN_CHECK(t.numel() == in.size(1) && t.is_contiguous() && t.is_floating_point(), op, ": per-channel tensor ",
             t.toString(), " must be contiguous with ", in.size(1), " elements for input ", in.toString());
  if (stat) check_stat(op, t, in.dtype());
}

}  // namespace

void CpuBackend::batch_norm_stats(const Tensor& in, const Tensor& mean, const Tensor& var) {
  check_input("batch_norm_stats", in);
  check_channel("batch_norm_stats", in, mean, true);
  check_channel("batch_norm_stats", in, var, true);
  dispatch_floating(in.dtype(), "batch_norm_stats", [&]<typename T>() { stats_impl<T>(in, mean, var); });
}

void CpuBackend::batch_norm_apply(const Tensor& in, const Tensor& mean, const Tensor& invstd, const Tensor& weight,
                                  const Tensor& bias, const Tensor& out) {
  check_input("batch_norm_apply", in);
  KILN_CHECK(out.sizes().equals(in.sizes()) && out.dtype() == in.dtype() && out.is_contiguous(),
             "batch_norm_apply: output ", out.toString(), " must match input ", in.toString());
  for (const Tensor* t : {&mean, &invstd}) check_channel("batch_norm_apply", in, *t, true);
  for (const Tensor* t : {&weight, &bias}) check_channel("batch_norm_apply", in, *t, false);
  dispatch_floating(in.dtype(), "batch_norm_apply",
                    [&]<typename T>() { apply_impl<T>(in, mean, invstd, weight, bias, out); });
}

void CpuBackend::batch_norm_backward(const Tensor& grad_out, const Tensor& in, const Tensor& mean,
                                     const Tensor& invstd, const Tensor& weight, const Tensor& grad_in,
                                     const Tensor& grad_weight, const Tensor& grad_bias) {
  check_input("batch_norm_backward", in);
  for (const Tensor* t : {&grad_out, &grad_in}) {
    KILN_CHECK(!t->defined() || (t->sizes().equals(in.sizes()) && t->dtype() == in.dtype() && t->is_contiguous()),
               "batch_norm_backward: ", t->toString(), " must match input ", in.toString());
  }
  for (const Tensor* t : {&mean, &invstd}) check_channel("batch_norm_backward", in, *t, true);
  for (const Tensor* t : {&weight, &grad_weight, &grad_bias}) check_channel("batch_norm_backward", in, *t, false);
  dispatch_floating(in.dtype(), "batch_norm_backward", [&]<typename T>() {
    backward_impl<T>(grad_out, in, mean, invstd, weight, grad_in, grad_weight, grad_bias);
  });
}

}  // namespace kiln::cpu
