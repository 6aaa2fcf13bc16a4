// Fused multi-tensor SGD and Adam/AdamW updates.
//
// A list of parameters is cut into chunks of kChunk elements; each block of
// a launch updates one chunk of one tensor. The tensors' pointers and the
// block -> (tensor, chunk) map travel in the kernel's argument struct (no
// host-to-device copy to keep alive), so a list that does not fit one struct
// takes a few launches, each filled to the brim.
//
// The per-element arithmetic is core/src/cpu/cpu_optim.cpp's, line for line:
// the same ops in the same order, computed in opmath (float for 16-bit
// types) and rounded back to the element type after each op where the CPU
// rounds, with scalars converted from double on the host exactly as the CPU
// converts them. Every multiply, add, divide and sqrt below is an explicitly
// rounded intrinsic, so the result does not depend on nvcc contracting a
// multiply and an add into an fma (or on fast-math flags).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "cuda_backend.h"
#include "kernels/chunk_table.cuh"
#include "kernels/common.cuh"
#include "kiln/core/native.h"

namespace kiln::cuda {

namespace {

// ---- correctly rounded arithmetic in float or double ----
__device__ __forceinline__ float fma_rn(float a, float b, float c) { return __fmaf_rn(a, b, c); }
__device__ __forceinline__ double fma_rn(double a, double b, double c) { return __fma_rn(a, b, c); }
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }

// The value an op's result has once stored in T (cpu_optim.cpp's rnd).
template <typename T>
__device__ __forceinline__ opmath_t<T> rnd(opmath_t<T> v) {
  if constexpr (is_half_v<T>) {
    return cast<opmath_t<T>>(cast<T>(v));
  } else {
    return v;
  }
}

// torch.maximum: NaN from either side wins.
template <typename C>
__device__ __forceinline__ C maximum(C a, C b) {
  const C larger = a > b ? a : b;
  return (a != a || b != b) ? add_rn(a, b) : larger;
}

// A Python float as torch's kernels see it (cpu_optim.cpp's as_alpha and
// as_factor), evaluated on the host.
template <typename T>
opmath_t<T> as_alpha(double v) {
  using C = opmath_t<T>;
  return cast<C>(cast<T>(static_cast<C>(v)));
}
template <typename T>
opmath_t<T> as_factor(double v) {
  return static_cast<opmath_t<T>>(v);
}

// ---- the tensor-list argument struct ----
constexpr int64_t kChunk = 65536;  // elements per block
constexpr int kThreads = 512;
constexpr int kIlp = 4;            // elements in flight per thread
constexpr int kDepth = 5;          // param, grad and up to three state tensors
constexpr int kMaxTensors = 30;
constexpr int kMaxBlocks = 320;

struct ListArgs {
  void* ptrs[kDepth][kMaxTensors];
  int64_t numel[kMaxTensors];
  int32_t block_chunk[kMaxBlocks];
  uint8_t block_tensor[kMaxBlocks];
};

template <typename C>
struct SgdScalars {
  C wd, mom_factor, mom_alpha, keep, neg_lr;
  bool decay, maximize, nesterov, init, use_buf;
};

template <typename C>
struct AdamScalars {
  C wd, shrink, coeff, beta2, one_minus_beta2, bc2_sqrt, eps, neg_step_size;
  bool small, l2, decoupled, maximize, amsgrad;
};

// Kernel parameters are limited to 4 KB on every architecture we build for.
static_assert(sizeof(ListArgs) + sizeof(AdamScalars<double>) <= 4000, "optimizer kernel arguments exceed 4 KB");

// The chunk this block owns: element range [start, start + n) of tensor `tensor`.
struct BlockChunk {
  int tensor;
  int64_t start, n;
};

__device__ __forceinline__ BlockChunk block_chunk(const ListArgs& a) {
  BlockChunk c;
  c.tensor = a.block_tensor[blockIdx.x];
  c.start = static_cast<int64_t>(a.block_chunk[blockIdx.x]) * kChunk;
  const int64_t left = a.numel[c.tensor] - c.start;
  c.n = left < kChunk ? left : kChunk;
  return c;
}

template <typename T>
__device__ __forceinline__ T* operand(const ListArgs& a, int k, const BlockChunk& c) {
  return static_cast<T*>(a.ptrs[k][c.tensor]) + c.start;
}

// Each kernel works on kIlp elements per thread at a time: all their loads
// are issued first, then the arithmetic, then the stores, so a thread keeps
// several loads in flight.

// ---- SGD ----
// One element: x (param), d (grad) and b (momentum buffer) in, updated x and b out.
template <typename T>
__device__ __forceinline__ void sgd_math(opmath_t<T>& x, opmath_t<T> d, opmath_t<T>& buf,
                                         const SgdScalars<opmath_t<T>>& s) {
  d = s.maximize ? -d : d;                                             // -grad
  d = s.decay ? rnd<T>(fma_rn(s.wd, x, d)) : d;                        // grad.add(param, alpha=wd)
  if (s.use_buf) {
    const auto old = rnd<T>(mul_rn(buf, s.mom_factor));                // buf.mul_(momentum)
    const auto b = s.init ? d : rnd<T>(fma_rn(s.keep, d, old));        // .add_(grad, alpha=1-dampening);
                                                                       // the first step: grad.clone()
    buf = b;
    d = s.nesterov ? rnd<T>(fma_rn(s.mom_alpha, b, d)) : b;            // grad.add(buf, alpha=momentum)
  }
  x = fma_rn(s.neg_lr, d, x);                                          // param.add_(grad, alpha=-lr)
}

template <typename T>
__global__ void __launch_bounds__(kThreads) sgd_kernel(const ListArgs args, const SgdScalars<opmath_t<T>> s) {
  using C = opmath_t<T>;
  const BlockChunk c = block_chunk(args);
  T* __restrict__ p = operand<T>(args, 0, c);
  const T* __restrict__ g = operand<T>(args, 1, c);
  T* __restrict__ buf = s.use_buf ? operand<T>(args, 2, c) : nullptr;
  for (int64_t base = threadIdx.x; base < c.n; base += int64_t{kThreads} * kIlp) {
    C rp[kIlp], rg[kIlp], rb[kIlp];
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + int64_t{k} * kThreads;
      rp[k] = rg[k] = rb[k] = C(0);
      if (i < c.n) {
        rp[k] = cast<C>(p[i]);
        rg[k] = cast<C>(g[i]);
        if (s.use_buf) rb[k] = cast<C>(buf[i]);
      }
    }
#pragma unroll
    for (int k = 0; k < kIlp; ++k) sgd_math<T>(rp[k], rg[k], rb[k], s);
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + int64_t{k} * kThreads;
      if (i < c.n) {
        p[i] = cast<T>(rp[k]);
        if (s.use_buf) buf[i] = cast<T>(rb[k]);
      }
    }
  }
}

// ---- Adam / AdamW ----
// One element: x (param), d (grad), a (exp_avg), b (exp_avg_sq), bmax
// (max_exp_avg_sq) in, updated x, a, b, bmax out.
template <typename T>
__device__ __forceinline__ void adam_math(opmath_t<T>& x, opmath_t<T> d, opmath_t<T>& a, opmath_t<T>& b,
                                          opmath_t<T>& bmax, const AdamScalars<opmath_t<T>>& s) {
  using C = opmath_t<T>;
  d = s.maximize ? -d : d;                                             // -grad
  d = s.l2 ? rnd<T>(fma_rn(s.wd, x, d)) : d;                           // grad.add(param, alpha=wd)
  a = rnd<T>(fma_rn(s.coeff, sub_rn(d, a), s.small ? a : d));         // exp_avg.lerp_(grad, 1-beta1)
  b = rnd<T>(mul_rn(b, s.beta2));                                      // exp_avg_sq.mul_(beta2)
  b = rnd<T>(fma_rn(mul_rn(s.one_minus_beta2, d), d, b));              // .addcmul_(grad, grad, 1-beta2)
  C v = b;
  if (s.amsgrad) {
    bmax = maximum(bmax, b);                                           // torch.maximum(max_sq, exp_avg_sq)
    v = bmax;
  }
  const C root = sqrt_rn(v);                                           // .sqrt()
  x = s.decoupled ? rnd<T>(mul_rn(x, s.shrink)) : x;                   // param.mul_(1 - lr*wd), done first
  C denom = rnd<T>(div_rn(rnd<T>(root), s.bc2_sqrt));                  // / bias_correction2_sqrt
  denom = rnd<T>(add_rn(denom, s.eps));                                // .add_(eps)
  x = add_rn(x, div_rn(mul_rn(s.neg_step_size, a), denom));            // param.addcdiv_(exp_avg, denom,
                                                                       //   value=-step_size)
}

template <typename T>
__global__ void __launch_bounds__(kThreads) adam_kernel(const ListArgs args, const AdamScalars<opmath_t<T>> s) {
  using C = opmath_t<T>;
  const BlockChunk c = block_chunk(args);
  T* __restrict__ p = operand<T>(args, 0, c);
  const T* __restrict__ g = operand<T>(args, 1, c);
  T* __restrict__ m = operand<T>(args, 2, c);
  T* __restrict__ v = operand<T>(args, 3, c);
  T* __restrict__ vmax = s.amsgrad ? operand<T>(args, 4, c) : nullptr;
  for (int64_t base = threadIdx.x; base < c.n; base += int64_t{kThreads} * kIlp) {
    C rp[kIlp], rg[kIlp], rm[kIlp], rv[kIlp], rx[kIlp];
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + int64_t{k} * kThreads;
      rp[k] = rg[k] = rm[k] = rv[k] = rx[k] = C(0);
      if (i < c.n) {
        rp[k] = cast<C>(p[i]);
        rg[k] = cast<C>(g[i]);
        rm[k] = cast<C>(m[i]);
        rv[k] = cast<C>(v[i]);
        if (s.amsgrad) rx[k] = cast<C>(vmax[i]);
      }
    }
#pragma unroll
    for (int k = 0; k < kIlp; ++k) adam_math<T>(rp[k], rg[k], rm[k], rv[k], rx[k], s);
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = base + int64_t{k} * kThreads;
      if (i < c.n) {
        p[i] = cast<T>(rp[k]);
        m[i] = cast<T>(rm[k]);
        v[i] = cast<T>(rv[k]);
        if (s.amsgrad) vmax[i] = cast<T>(rx[k]);
      }
    }
  }
}

// ---- host side ----

using Operands = WorkingCopies<is_contiguous_tensor>;
using ListLauncher = ChunkTable<ListArgs, kMaxTensors, kMaxBlocks, kChunk>;

// Stores one tuple's pointers (absent operands null) and size in a table slot.
auto tuple_setter(const Tensor* const (&operands)[kDepth], int64_t numel) {
  return [&operands, numel](ListArgs& args, int slot) {
    for (int k = 0; k < kDepth; ++k) args.ptrs[k][slot] = operands[k] != nullptr ? operands[k]->data_ptr() : nullptr;
    args.numel[slot] = numel;
  };
}

// Indices of the tuples, grouped by dtype (the contract lets tuples differ
// in dtype; a launch handles one), in list order within a group.
std::vector<std::pair<DType, std::vector<size_t>>> by_dtype(const std::vector<Tensor>& params) {
  std::vector<std::pair<DType, std::vector<size_t>>> groups;
  for (size_t i = 0; i < params.size(); ++i) {
    auto it = groups.begin();
    while (it != groups.end() && it->first != params[i].dtype()) ++it;
    if (it == groups.end()) {
      groups.emplace_back(params[i].dtype(), std::vector<size_t>{});
      it = groups.end() - 1;
    }
    it->second.push_back(i);
  }
  return groups;
}

void check_lists(const char* op, const std::vector<Tensor>& params,
                 std::initializer_list<const std::vector<Tensor>*> lists) {
  for (const auto* l : lists) {
    KILN_CHECK(l->size() == params.size(), op, " (CUDA): tensor lists differ in length (", params.size(), " and ",
               l->size(), ")");
  }
  for (const Tensor& p : params) {
    KILN_CHECK(p.device() == params[0].device(), op, " (CUDA): parameters on different devices (", params[0].device(),
               " and ", p.device(), ")");
  }
}

}  // namespace

void CudaBackend::sgd_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                             const std::vector<Tensor>& bufs, const SGDStep& s) {
  if (params.empty()) return;
  const bool use_buf = s.momentum != 0;
  check_lists("SGD", params, {&grads, &bufs});
  DeviceGuard guard(device_index(params[0]));
  const Stream stream = stream_of(params[0]);
  Operands ops;
  for (const auto& [dtype, idx] : by_dtype(params)) {
    dispatch_device_floating(dtype, "SGD", [&]<typename T>() {
      using C = opmath_t<T>;
      SgdScalars<C> sc;
      sc.wd = as_alpha<T>(s.weight_decay);
      sc.mom_factor = as_factor<T>(s.momentum);
      sc.mom_alpha = as_alpha<T>(s.momentum);
      sc.keep = as_alpha<T>(1.0 - s.dampening);
      sc.neg_lr = as_alpha<T>(-s.lr);
      sc.decay = s.weight_decay != 0;
      sc.maximize = s.maximize;
      sc.nesterov = s.nesterov;
      sc.init = s.init_buffer;
      sc.use_buf = use_buf;
      auto launch = [&](const ListArgs& args, int blocks, int64_t) {
        sgd_kernel<T><<<blocks, kThreads, 0, stream>>>(args, sc);
        KILN_CUDA_CHECK_LAUNCH();
      };
      ListLauncher launcher;
      for (size_t i : idx) {
        const Tensor p = ops.inout(params[i]);
        const Tensor g = ops.in(grads[i]);
        const Tensor b = use_buf ? ops.inout(bufs[i]) : Tensor();
        const Tensor* operands[kDepth] = {&p, &g, use_buf ? &b : nullptr, nullptr, nullptr};
        launcher.add(p.numel(), tuple_setter(operands, p.numel()), launch);
      }
      launcher.flush(launch);
    });
  }
  ops.finish();
}

void CudaBackend::adam_update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                              const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                              const std::vector<Tensor>& max_exp_avg_sqs, const AdamStep& s) {
  if (params.empty()) return;
  const char* op = s.decoupled ? "AdamW" : "Adam";
  check_lists(op, params, {&grads, &exp_avgs, &exp_avg_sqs, &max_exp_avg_sqs});
  DeviceGuard guard(device_index(params[0]));
  const Stream stream = stream_of(params[0]);
  // Python-float arithmetic on the hyperparameters, in double, as the CPU.
  const double bias_correction1 = 1.0 - std::pow(s.beta1, s.step);
  const double bias_correction2 = 1.0 - std::pow(s.beta2, s.step);
  const double step_size = s.lr / bias_correction1;
  const double bias_correction2_sqrt = std::pow(bias_correction2, 0.5);  // Python's ** 0.5, not sqrt
  Operands ops;
  for (const auto& [dtype, idx] : by_dtype(params)) {
    dispatch_device_floating(dtype, op, [&]<typename T>() {
      using C = opmath_t<T>;
      AdamScalars<C> sc;
      sc.wd = as_alpha<T>(s.weight_decay);
      sc.shrink = as_factor<T>(1.0 - s.lr * s.weight_decay);
      const C weight = as_factor<T>(1.0 - s.beta1);
      sc.beta2 = as_factor<T>(s.beta2);
      sc.one_minus_beta2 = as_factor<T>(1.0 - s.beta2);
      sc.bc2_sqrt = as_factor<T>(bias_correction2_sqrt);
      sc.eps = as_alpha<T>(s.eps);
      sc.neg_step_size = as_factor<T>(-step_size);
      // torch's lerp: small weights step from the start, large ones back from the end.
      sc.small = std::abs(weight) < C(0.5);
      sc.coeff = sc.small ? weight : weight - C(1);
      sc.l2 = s.weight_decay != 0 && !s.decoupled;
      sc.decoupled = s.weight_decay != 0 && s.decoupled;
      sc.maximize = s.maximize;
      sc.amsgrad = s.amsgrad;
      auto launch = [&](const ListArgs& args, int blocks, int64_t) {
        adam_kernel<T><<<blocks, kThreads, 0, stream>>>(args, sc);
        KILN_CUDA_CHECK_LAUNCH();
      };
      ListLauncher launcher;
      for (size_t i : idx) {
        const Tensor p = ops.inout(params[i]);
        const Tensor g = ops.in(grads[i]);
        const Tensor m = ops.inout(exp_avgs[i]);
        const Tensor v = ops.inout(exp_avg_sqs[i]);
        const Tensor vmax = s.amsgrad ? ops.inout(max_exp_avg_sqs[i]) : Tensor();
        const Tensor* operands[kDepth] = {&p, &g, &m, &v, s.amsgrad ? &vmax : nullptr};
        launcher.add(p.numel(), tuple_setter(operands, p.numel()), launch);
      }
      launcher.flush(launch);
    });
  }
  ops.finish();
}

}  // namespace kiln::cuda
