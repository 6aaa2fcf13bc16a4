// Fused SGD and Adam updates on the CPU. Every line in the loops below is one
// torch op of the single-tensor implementation; the comment beside it names
// the op, whose rounding the line reproduces (the contract is in
// train/src/optim/fused_update.h).
#include "cpu/cpu_backend.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/core/native.h"
#include "kiln/core/parallel.h"

namespace kiln::cpu {

namespace {

// Below this many elements an update runs on the calling thread.
constexpr int64_t kGrain = 32768;

template <typename F>
void parallel_range(int64_t n, const F& f) {
  const int64_t threads = std::min<int64_t>(get_num_threads(), std::max<int64_t>(1, n / kGrain));
  if (threads <= 1 || omp_in_parallel()) {
    f(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(static_cast<int>(threads))
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    f(n * t / nt, n * (t + 1) / nt);
  }
}

// The value an op's result has once stored in T: 16-bit floats round after
// every op, as torch's kernels return T.
template <typename T>
inline compute_t<T> rnd(compute_t<T> v) {
  if constexpr (std::is_same_v<T, compute_t<T>>) {
    return v;
  } else {
    return static_cast<compute_t<T>>(T(v));
  }
}

// A Python float as torch's kernels see it. add's alpha and a scalar added
// to a tensor are first converted to the tensor's type T (16-bit floats
// round there); mul, div, lerp, addcmul and addcdiv take the value in the
// compute type directly.
template <typename T>
inline compute_t<T> as_alpha(double v) {
  return static_cast<compute_t<T>>(T(static_cast<compute_t<T>>(v)));
}
template <typename T>
inline compute_t<T> as_factor(double v) {
  return static_cast<compute_t<T>>(v);
}

// torch.maximum: NaN from either side wins (selects, so loops vectorise).
template <typename C>
inline C maximum(C a, C b) {
  const C larger = a > b ? a : b;
  return (a != a || b != b) ? a + b : larger;
}

// Strided operands are worked on through contiguous copies; written ones
// get their values back at the end. (The optimizer has already checked
// shapes, dtypes and devices.)
class Operands {
 public:
  Tensor in(const Tensor& t) { return native::contiguous(t); }
  Tensor inout(const Tensor& t) {
    if (t.is_contiguous()) return t;
    Tensor work = native::contiguous(t);
    written_.emplace_back(t, work);
    return work;
  }
  void finish() {
    for (auto& [orig, work] : written_) native::copy_(orig, work);
  }

 private:
  std::vector<std::pair<Tensor, Tensor>> written_;
};

// The per-step flags are selects on values computed either way (not
// branches) so the loops vectorise; only whether a buffer exists is a
// template argument.
template <typename T, bool UseBuf>
void sgd_loop(T* p, const T* g, T* buf, int64_t n, const SGDStep& s) {
  using C = compute_t<T>;
  const C wd = as_alpha<T>(s.weight_decay);
  const C mom_factor = as_factor<T>(s.momentum), mom_alpha = as_alpha<T>(s.momentum);
  const C keep = as_alpha<T>(1.0 - s.dampening);
  const C neg_lr = as_alpha<T>(-s.lr);
  const bool decay = s.weight_decay != 0, maximize = s.maximize, nesterov = s.nesterov, init = s.init_buffer;
  parallel_range(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const C x = static_cast<C>(p[i]);
      C d = static_cast<C>(g[i]);
      d = maximize ? -d : d;                                               // -grad
      d = decay ? rnd<T>(std::fma(wd, x, d)) : d;                          // grad.add(param, alpha=wd)
      if constexpr (UseBuf) {
        const C old = rnd<T>(static_cast<C>(buf[i]) * mom_factor);        // buf.mul_(momentum)
        const C b = init ? d : rnd<T>(std::fma(keep, d, old));             // .add_(grad, alpha=1-dampening);
                                                                           // the first step: grad.clone()
        buf[i] = static_cast<T>(b);
        d = nesterov ? rnd<T>(std::fma(mom_alpha, b, d)) : b;              // grad.add(buf, alpha=momentum)
      }
      p[i] = static_cast<T>(std::fma(neg_lr, d, x));                       // param.add_(grad, alpha=-lr)
    }
  });
}

// Elements per block of the Adam loop: the moments pass and the update pass
// vectorise, the sqrt between them does not (sqrt may set errno), so it
// gets a pass of its own over a block that stays in L1.
constexpr int64_t kAdamBlock = 512;

template <typename T, bool Amsgrad>
void adam_loop(T* p, const T* g, T* m, T* v, T* vmax, int64_t n, const AdamStep& s) {
  using C = compute_t<T>;
  // Python-float arithmetic on the hyperparameters, in double.
  const double bias_correction1 = 1.0 - std::pow(s.beta1, s.step);
  const double bias_correction2 = 1.0 - std::pow(s.beta2, s.step);
  const double step_size = s.lr / bias_correction1;
  const double bias_correction2_sqrt = std::pow(bias_correction2, 0.5);  // Python's ** 0.5, not sqrt
  const C wd = as_alpha<T>(s.weight_decay);
  const C shrink = as_factor<T>(1.0 - s.lr * s.weight_decay);
  const C weight = as_factor<T>(1.0 - s.beta1);
  const C beta2 = as_factor<T>(s.beta2);
  const C one_minus_beta2 = as_factor<T>(1.0 - s.beta2);
  const C bc2_sqrt = as_factor<T>(bias_correction2_sqrt);
  const C eps = as_alpha<T>(s.eps);
  const C neg_step_size = as_factor<T>(-step_size);
  // torch's lerp: small weights step from the start, large ones back from the end.
  const bool small = std::abs(weight) < C(0.5);
  const C coeff = small ? weight : weight - C(1);
  const bool l2 = s.weight_decay != 0 && !s.decoupled, decoupled = s.weight_decay != 0 && s.decoupled;
  const bool maximize = s.maximize;
  parallel_range(n, [&](int64_t begin, int64_t end) {
    C root[kAdamBlock];
    for (int64_t b0 = begin; b0 < end; b0 += kAdamBlock) {
      const int64_t len = std::min(kAdamBlock, end - b0);
      T* pb = p + b0;
      T* mb = m + b0;
      T* vb = v + b0;
      for (int64_t i = 0; i < len; ++i) {
        C d = static_cast<C>(g[b0 + i]);
        d = maximize ? -d : d;                                             // -grad
        const C x = static_cast<C>(pb[i]);
        d = l2 ? rnd<T>(std::fma(wd, x, d)) : d;                           // grad.add(param, alpha=wd)
        C a = static_cast<C>(mb[i]);
        a = rnd<T>(std::fma(coeff, d - a, small ? a : d));                 // exp_avg.lerp_(grad, 1-beta1)
        C b = rnd<T>(static_cast<C>(vb[i]) * beta2);                       // exp_avg_sq.mul_(beta2)
        b = rnd<T>(std::fma(one_minus_beta2 * d, d, b));                   // .addcmul_(grad, grad, 1-beta2)
        mb[i] = static_cast<T>(a);
        vb[i] = static_cast<T>(b);
        if constexpr (Amsgrad) {
          b = maximum(static_cast<C>(vmax[b0 + i]), b);                    // torch.maximum(max_sq, exp_avg_sq)
          vmax[b0 + i] = static_cast<T>(b);
        }
        root[i] = b;
      }
      for (int64_t i = 0; i < len; ++i) root[i] = std::sqrt(root[i]);      // .sqrt()
      for (int64_t i = 0; i < len; ++i) {
        C x = static_cast<C>(pb[i]);
        x = decoupled ? rnd<T>(x * shrink) : x;                            // param.mul_(1 - lr*wd), done first
        C denom = rnd<T>(rnd<T>(root[i]) / bc2_sqrt);                      // / bias_correction2_sqrt
        denom = rnd<T>(denom + eps);                                       // .add_(eps)
        pb[i] = static_cast<T>(x + neg_step_size * static_cast<C>(mb[i]) / denom);  // param.addcdiv_(exp_avg,
                                                                           //   denom, value=-step_size)
      }
    }
  });
}

}  // namespace

void CpuBackend::sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                            const std::vector<Tensor>& bufs, const SGDStep& s) {
  for (size_t i = 0; i < params.size(); ++i) {
    Operands ops;
    Tensor p = ops.inout(params[i]);
    Tensor g = ops.in(grads[i]);
    Tensor b = s.momentum != 0 ? ops.inout(bufs[i]) : Tensor();
    dispatch_floating(p.dtype(), "SGD", [&]<typename T>() {
      if (b.defined()) {
        sgd_loop<T, true>(p.data_ptr<T>(), g.data_ptr<T>(), b.data_ptr<T>(), p.numel(), s);
      } else {
        sgd_loop<T, false>(p.data_ptr<T>(), g.data_ptr<T>(), nullptr, p.numel(), s);
      }
    });
    ops.finish();
  }
}

void CpuBackend::adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                             const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                             const std::vector<Tensor>& max_exp_avg_sqs, const AdamStep& s) {
  const char* op = s.decoupled ? "AdamW" : "Adam";
  for (size_t i = 0; i < params.size(); ++i) {
    Operands ops;
    Tensor p = ops.inout(params[i]);
    Tensor g = ops.in(grads[i]);
    Tensor m = ops.inout(exp_avgs[i]);
    Tensor v = ops.inout(exp_avg_sqs[i]);
    Tensor vmax = s.amsgrad ? ops.inout(max_exp_avg_sqs[i]) : Tensor();
    dispatch_floating(p.dtype(), op, [&]<typename T>() {
      if (vmax.defined()) {
        adam_loop<T, true>(p.data_ptr<T>(), g.data_ptr<T>(), m.data_ptr<T>(), v.data_ptr<T>(), vmax.data_ptr<T>(),
                           p.numel(), s);
      } else {
        adam_loop<T, false>(p.data_ptr<T>(), g.data_ptr<T>(), m.data_ptr<T>(), v.data_ptr<T>(), nullptr, p.numel(),
                            s);
      }
    });
    ops.finish();
  }
}

}  // namespace kiln::cpu
