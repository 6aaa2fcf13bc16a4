// Fused log-softmax + cross-entropy on the CPU, rows in parallel.
//
// Each row is read twice forward (max; then sum of exp and, with label
// smoothing, the weighted sum of x - max) and once backward (the gradient
// needs no reduction given the saved logsumexp). As in cpu_softmax.cpp,
// sums are taken in the row's type over blocks that vectorise (exp is
// fast_exp) and the block sums added in double; the per-row scalars (loss,
// the gradient's coefficients) are formed in double.
//
// The smoothing term is written as sum_c w_c (lse - x_c) =
// W log(s) - sum_c w_c (x_c - max), with W = sum_c w_c and s the sum of
// exp(x - max): every x_c - max is <= 0, so the sum has no cancellation even
// for logits of large magnitude (W lse - sum_c w_c x_c would lose digits).
#include <cmath>
#include <limits>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_loops.h"
#include "cpu/cpu_math.h"
#include "cpu/cpu_row_max.h"

namespace kiln::cpu {

namespace {

constexpr int64_t kSumBlock = 512;

struct RowStats {
  double m;      // the row's maximum (NaN when a NaN is in the row)
  double log_s;  // log sum_c exp(x_c - m)
  double dot;    // sum_c w_c (x_c - m), when smoothing
};

template <typename C>
RowStats row_stats(const C* x, const C* w, int64_t n, bool smooth) {
  const C m = row_max_nan(x, n);
  double s = 0, dot = 0;
  for (int64_t b = 0; b < n; b += kSumBlock) {
    const int64_t e = std::min(n, b + kSumBlock);
    C bs = 0;
#pragma omp simd reduction(+ : bs)
    for (int64_t i = b; i < e; ++i) bs += fast_exp(x[i] - m);
    s += static_cast<double>(bs);
    if (!smooth) continue;
    C bd = 0;
    if (w != nullptr) {
#pragma omp simd reduction(+ : bd)
      for (int64_t i = b; i < e; ++i) bd += w[i] * (x[i] - m);
    } else {
#pragma omp simd reduction(+ : bd)
      for (int64_t i = b; i < e; ++i) bd += x[i] - m;
    }
    dot += static_cast<double>(bd);
  }
  return {static_cast<double>(m), std::log(s), dot};
}

// What both directions share: the arguments as typed pointers and the
// per-launch constants.
template <typename C>
struct Rows {
  const C* x;
  const int64_t* target;
  const C* w;  // null: all ones
  int64_t n, c, ignore;
  double ls, big_w;  // label smoothing; W = sum_c w_c (C without weight)

  Rows(const Tensor& logits, const Tensor& tgt, const Tensor& weight, int64_t ignore_index, double label_smoothing)
      : x(logits.data_ptr<C>()),
        target(tgt.data_ptr<int64_t>()),
        w(weight.defined() ? weight.data_ptr<C>() : nullptr),
        n(logits.size(0)),
        c(logits.size(1)),
        ignore(ignore_index),
        ls(label_smoothing),
        big_w(static_cast<double>(c)) {
    if (w != nullptr) {
      double sum = 0;
      for (int64_t k = 0; k < c; ++k) sum += static_cast<double>(w[k]);
      big_w = sum;
    }
  }
  double weight_of(int64_t k) const { return w != nullptr ? static_cast<double>(w[k]) : 1.0; }
  template <typename F>
  void for_rows(F&& f) const {
    parallel_for(n, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(c, 1)), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) f(i);
    });
  }
};

// Float32 and float64 only: the native layer widens 16-bit logits on the CPU.
template <typename F>
void dispatch_stat(DType t, const char* op, F&& f) {
  if (t == kFloat64) {
    f.template operator()<double>();
  } else {
    KILN_CHECK(t == kFloat32, op, " (CPU): expected float32 or float64 logits, got ", t);
    f.template operator()<float>();
  }
}

void check_same_dtype(const char* op, const Tensor& logits, std::initializer_list<const Tensor*> others) {
  for (const Tensor* t : others) {
    KILN_CHECK(!t->defined() || t->dtype() == logits.dtype(), op, " (CPU): ", t->toString(),
               " must have the logits' dtype ", logits.dtype());
  }
}

}  // namespace

void CpuBackend::cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                               double label_smoothing, const Tensor& loss, const Tensor& lse) {
  check_same_dtype("cross_entropy", logits, {&weight, &loss, &lse});
  dispatch_stat(logits.dtype(), "cross_entropy", [&]<typename C>() {
    const Rows<C> r(logits, target, weight, ignore_index, label_smoothing);
    C* out = loss.data_ptr<C>();
    C* out_lse = lse.data_ptr<C>();
    const bool smooth = r.ls > 0.0;
    r.for_rows([&](int64_t i) {
      const C* x = r.x + i * r.c;
      const RowStats st = row_stats<C>(x, r.w, r.c, smooth);
      out_lse[i] = static_cast<C>(st.m + st.log_s);
      const int64_t t = r.target[i];
      if (t == r.ignore) {
        out[i] = C(0);
        return;
      }
      // lse - x[t], with the exact difference m - x[t] formed first.
      const double wt = r.weight_of(t), nll = (st.m - static_cast<double>(x[t])) + st.log_s;
      double v = wt * nll;
      if (smooth) v = (1.0 - r.ls) * v + r.ls / static_cast<double>(r.c) * (r.big_w * st.log_s - st.dot);
      out[i] = static_cast<C>(v);
    });
  });
}

// grad_c = g ((1 - ls) w_t (p_c - [c == t]) + (ls / C) (W p_c - w_c))
//        = a p_c - b w_c - [c == t] g (1 - ls) w_t,
// with p_c = exp(x_c - lse), a = g ((1 - ls) w_t + (ls / C) W), b = g ls / C.
void CpuBackend::cross_entropy_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& target,
                                        const Tensor& weight, const Tensor& lse, int64_t ignore_index,
                                        double label_smoothing, const Tensor& grad_logits) {
  check_same_dtype("cross_entropy_backward", logits, {&grad_loss, &weight, &lse, &grad_logits});
  dispatch_stat(logits.dtype(), "cross_entropy_backward", [&]<typename C>() {
    const Rows<C> r(logits, target, weight, ignore_index, label_smoothing);
    const C* g = grad_loss.data_ptr<C>();
    const C* row_lse = lse.data_ptr<C>();
    C* gi_all = grad_logits.data_ptr<C>();
    const int64_t n = r.c;
    r.for_rows([&](int64_t i) {
      C* gi = gi_all + i * n;
      const int64_t t = r.target[i];
      if (t == r.ignore) {
        for (int64_t k = 0; k < n; ++k) gi[k] = C(0);
        return;
      }
      const C* x = r.x + i * n;
      const double gd = static_cast<double>(g[i]), wt = r.weight_of(t);
      const C a = static_cast<C>(gd * ((1.0 - r.ls) * wt + r.ls / static_cast<double>(n) * r.big_w));
      const C b = static_cast<C>(gd * r.ls / static_cast<double>(n));
      const C shift = row_lse[i];
      if (r.w != nullptr && b != C(0)) {
        const C* w = r.w;
#pragma omp simd
        for (int64_t k = 0; k < n; ++k) gi[k] = a * fast_exp(x[k] - shift) - b * w[k];
      } else {
#pragma omp simd
        for (int64_t k = 0; k < n; ++k) gi[k] = a * fast_exp(x[k] - shift) - b;
      }
      gi[t] -= static_cast<C>(gd * (1.0 - r.ls) * wt);
    });
  });
}

}  // namespace kiln::cpu
