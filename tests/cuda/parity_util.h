#pragma once
// CPU <-> CUDA parity: every case builds its inputs on the CPU from a seed
// of its own, copies them to the GPU, runs the same function on both
// devices and compares every output (and, for backward cases, the gradient
// of every floating input for one fixed random upstream gradient) with a
// tolerance set by the dtype:
//   float64 1e-12, float32 1e-5, float16/bfloat16 1e-2 (TF32 cases 1e-3):
//   ||cuda - cpu|| / ||cpu|| over the finite elements, NaNs and infinities
//   in the same places; integers and bools exactly.
//
// Layout is the case's business: make() returns contiguous base tensors and
// run() builds its views (transposes, slices, expands) of whatever it is
// given, so the CUDA kernels see the same strides as the CPU ones.
//
// Out-variant cases call kiln::backend_of(x).kernel(..., out) directly with
// `out` made by poisoned(): NaN for floats, a sentinel for integers, so an
// element a kernel forgets to write cannot match the CPU's.
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "test_util.h"

#include "kiln/cuda/matmul.h"

namespace kiln::testing::parity {

using TensorList = std::vector<Tensor>;

inline Device cpu() { return Device(kCPU); }
#ifndef KILN_PARITY_CPU_SELFTEST
inline Device gpu() { return Device(kCUDA); }
#else
// A development aid: compiled with -DKILN_PARITY_CPU_SELFTEST (and linked
// against kiln::kiln without kiln_cuda), a test file runs both sides on
// the CPU. That checks the case tables themselves (shapes, dtypes, that
// every case runs and backward cases have differentiable outputs) on a
// machine without a GPU; it cannot check the CUDA kernels.
inline Device gpu() { return Device(kCPU); }
#endif

inline constexpr double kTF32Tol = 1e-3;

inline double default_tol(DType d) {
  switch (d) {
    case kFloat64: return 1e-12;
    case kFloat32: return 1e-5;
    case kFloat16:
    case kBFloat16: return 1e-2;
    default: return 0.0;
  }
}

inline const char* short_name(DType d) {
  switch (d) {
    case kFloat64: return "f64";
    case kFloat32: return "f32";
    case kFloat16: return "f16";
    case kBFloat16: return "bf16";
    case kInt64: return "i64";
    case kInt32: return "i32";
    case kUInt8: return "u8";
    case kBool: return "bool";
  }
  return "?";
}

// `got` (from the GPU run) against `want` (from the CPU run). tol: by
// want's dtype when unset; 0 demands identical values (bitwise for floats,
// up to the sign of zero and NaN payloads).
inline ::testing::AssertionResult parity_close(const Tensor& got, const Tensor& want,
                                               std::optional<double> tol = std::nullopt) {
  if (got.defined() != want.defined()) {
    return ::testing::AssertionFailure() << "CUDA result is " << (got.defined() ? "defined" : "undefined")
                                         << " but the CPU one is " << (want.defined() ? "defined" : "undefined");
  }
  if (!got.defined()) return ::testing::AssertionSuccess();
  if (got.device().type() != gpu().type()) return ::testing::AssertionFailure() << "CUDA result lives on " << got.device();
  if (got.dtype() != want.dtype()) {
    return ::testing::AssertionFailure() << "dtype " << got.dtype() << " vs CPU " << want.dtype();
  }
  if (!got.sizes().equals(want.sizes())) {
    return ::testing::AssertionFailure() << "shape " << got.sizes() << " vs CPU " << want.sizes();
  }
  const std::vector<double> a = values(got), b = values(want);
  const double t = tol.value_or(default_tol(want.dtype()));
  if (!is_floating_point(want.dtype()) || t == 0.0) {
    int64_t bad = 0;
    size_t first = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const bool same = a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]));
      if (!same && bad++ == 0) first = i;
    }
    if (bad == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << bad << " of " << a.size() << " elements differ (exact comparison); first at "
                                         << first << ": " << a[first] << " vs CPU " << b[first];
  }
  double diff2 = 0.0, ref2 = 0.0, worst = -1.0;
  size_t worst_at = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const bool na = std::isnan(a[i]), nb = std::isnan(b[i]);
    if (na || nb) {
      if (na && nb) continue;
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs CPU " << b[i]
                                           << " (NaN in one only)";
    }
    if (std::isinf(a[i]) || std::isinf(b[i])) {
      if (a[i] == b[i]) continue;
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs CPU " << b[i]
                                           << " (infinite in one only, or of opposite sign)";
    }
    const double d = a[i] - b[i];
    diff2 += d * d;
    ref2 += b[i] * b[i];
    if (std::fabs(d) > worst) {
      worst = std::fabs(d);
      worst_at = i;
    }
  }
  const double err = std::sqrt(diff2), ref = std::sqrt(ref2);
  if (err <= t * ref) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "||cuda - cpu|| / ||cpu|| = " << err << " / " << ref << " = "
                                       << (ref > 0 ? err / ref : std::numeric_limits<double>::infinity())
                                       << " > " << t << "; worst element " << worst_at << ": " << a[worst_at]
                                       << " vs CPU " << b[worst_at];
}

// ---- inputs (CPU, contiguous, drawn from the case's generator) ----

inline TensorOptions f64_cpu() { return TensorOptions().dtype(kFloat64).device(cpu()); }

inline Tensor randn(Generator& g, IntArrayRef sizes, DType dtype = kFloat32) {
  return native::to(native::randn(sizes, f64_cpu(), &g), dtype);
}
inline Tensor uniform(Generator& g, IntArrayRef sizes, double lo, double hi, DType dtype = kFloat32) {
  Tensor u = native::rand(sizes, f64_cpu(), &g);
  return native::to(native::add(native::mul(u, Scalar(hi - lo)), Scalar(lo)), dtype);
}
// Integers in [lo, hi), in `dtype` (any dtype: small integers are exact in every float type).
inline Tensor randint(Generator& g, int64_t lo, int64_t hi, IntArrayRef sizes, DType dtype = kInt64) {
  return native::to(native::randint(lo, hi, sizes, TensorOptions().dtype(kInt64).device(cpu()), &g), dtype);
}
// Magnitudes in [lo, hi) with random signs: away from zero (divisors, reciprocals).
inline Tensor signed_away_from_zero(Generator& g, IntArrayRef sizes, double lo, double hi, DType dtype = kFloat32) {
  Tensor mag = native::rand(sizes, f64_cpu(), &g);
  mag = native::add(native::mul(mag, Scalar(hi - lo)), Scalar(lo));
  Tensor sign = native::add(native::mul(randint(g, 0, 2, sizes, kFloat64), Scalar(2.0)), Scalar(-1.0));
  return native::to(native::mul(mag, sign), dtype);
}
inline Tensor bools(Generator& g, IntArrayRef sizes, double p_true = 0.5) {
  return native::to(native::bernoulli(sizes, p_true, f64_cpu(), &g), kBool);
}
// x with each element replaced by `value` with probability p.
inline Tensor sprinkle(Generator& g, const Tensor& x, double p, double value) {
  Tensor mask = bools(g, x.sizes(), p);
  return native::where(mask, native::scalar_tensor(value, TensorOptions().dtype(x.dtype())), x);
}
// The IEEE corner cases every pointwise kernel must treat as the CPU does
// (16 values; halves for rounding, overflow/underflow edges for exp).
inline std::vector<double> special_values() {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  return {0.0, -0.0, 1.0, -1.0, inf, -inf, nan, 1e-30, 88.5, -100.0, 20.0, -20.0, 0.5, 2.5, -2.5, 1.5};
}
inline Tensor specials(DType dtype) {
  auto v = special_values();
  return make({static_cast<int64_t>(v.size())}, v, dtype);
}
// Every pair of special values: a [16, 16] grid for a and its transpose-order partner for b.
inline TensorList special_pairs(DType dtype) {
  auto v = special_values();
  const size_t n = v.size();
  std::vector<double> a, b;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      a.push_back(v[i]);
      b.push_back(v[j]);
    }
  }
  const int64_t s = static_cast<int64_t>(n);
  return {make({s, s}, a, dtype), make({s, s}, b, dtype)};
}

// ---- outputs for direct backend calls ----

inline Scalar poison_value(DType dtype, bool bool_value = true) {
  switch (dtype) {
    case kFloat64:
    case kFloat32:
    case kFloat16:
    case kBFloat16: return Scalar(std::numeric_limits<double>::quiet_NaN());
    case kInt64: return Scalar(int64_t{-0x5A5A5A5A5A5A5A5});
    case kInt32: return Scalar(int64_t{-0x5A5A5A5});
    case kUInt8: return Scalar(int64_t{0xA5});
    case kBool: return Scalar(bool_value);
  }
  return Scalar(0);
}
// A tensor on `device` full of a value no kernel should produce. Bools cannot
// be poisoned: cases with bool outputs run with both values (bool_value).
inline Tensor poisoned(IntArrayRef sizes, DType dtype, Device device, bool bool_value = true) {
  return native::full(sizes, poison_value(dtype, bool_value), TensorOptions().dtype(dtype).device(device));
}
inline Tensor poisoned_like(const Tensor& t, std::optional<DType> dtype = std::nullopt) {
  return poisoned(t.sizes(), dtype.value_or(t.dtype()), t.device());
}
// Runs kernel(out) on a poisoned output and returns it; a bool output is
// written twice, into an all-true and an all-false tensor, and both returned.
inline TensorList with_poisoned(IntArrayRef sizes, DType dtype, Device device,
                                const std::function<void(const Tensor&)>& kernel) {
  if (dtype != kBool) {
    Tensor out = poisoned(sizes, dtype, device);
    kernel(out);
    return {out};
  }
  Tensor all_true = poisoned(sizes, kBool, device, true), all_false = poisoned(sizes, kBool, device, false);
  kernel(all_true);
  kernel(all_false);
  return {all_true, all_false};
}
// As with_poisoned, for a strided output: kernel(view) writes every other
// column of a poisoned [rows, 2 * cols] base; the whole base is returned so
// the columns the kernel must not touch are compared too.
inline TensorList with_poisoned_strided(int64_t rows, int64_t cols, DType dtype, Device device,
                                        const std::function<void(const Tensor&)>& kernel) {
  TensorList bases;
  for (bool b : dtype == kBool ? std::vector<bool>{true, false} : std::vector<bool>{true}) {
    Tensor base = poisoned({rows, 2 * cols}, dtype, device, b);
    kernel(native::slice(base, 1, 1, std::nullopt, 2));
    bases.push_back(base);
  }
  return bases;
}
// Something to carry the device into run() for cases without real inputs (factories).
inline TensorList device_token() { return {native::zeros({1})}; }

// Sets TF32 for GPU float32 matmuls (cuBLASLt) and convolutions (cuDNN)
// for a scope; a no-op on the CPU run.
class Tf32Guard {
 public:
  Tf32Guard(Device device, bool allow) : active_(device.is_cuda()) {
#ifndef KILN_PARITY_CPU_SELFTEST
    if (!active_) return;
    previous_matmul_ = kiln::cuda::allow_tf32();
    previous_cudnn_ = kiln::cuda::cudnn_allow_tf32();
    kiln::cuda::set_allow_tf32(allow);
    kiln::cuda::set_cudnn_allow_tf32(allow);
#else
    (void)allow;
#endif
  }
  ~Tf32Guard() {
#ifndef KILN_PARITY_CPU_SELFTEST
    if (!active_) return;
    kiln::cuda::set_allow_tf32(previous_matmul_);
    kiln::cuda::set_cudnn_allow_tf32(previous_cudnn_);
#endif
  }
  Tf32Guard(const Tf32Guard&) = delete;
  Tf32Guard& operator=(const Tf32Guard&) = delete;

 private:
  bool active_;
  bool previous_matmul_ = false, previous_cudnn_ = false;
};

// ---- cases ----

struct Case {
  std::string name;
  // Base tensors on the CPU (contiguous; undefined entries allowed).
  std::function<TensorList(Generator&)> make;
  // The op on one device's copies of the bases; returns what to compare.
  std::function<TensorList(const TensorList&)> run;
  // Also compare the gradients of the floating inputs (leaves requiring
  // grad) for a random upstream gradient of each floating output.
  bool backward = false;
  std::optional<double> tol;          // default: by dtype
  std::vector<size_t> constant_inputs;  // floating inputs kept out of backward
};

inline void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// Test names from case names: [A-Za-z0-9_] only.
inline std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string s = info.param.name;
  for (char& ch : s) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    if (!ok) ch = '_';
  }
  return s;
}

// FNV-1a of the name: each case its own, stable seed.
inline uint64_t case_seed(const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : name) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

// A copy on the GPU (a fresh one even where gpu() is the CPU, in the self-test).
inline Tensor to_gpu(const Tensor& t) {
  if (!t.defined()) return Tensor();
  Tensor moved = native::to(t, gpu());
  return moved.is_same(t) ? native::clone(t) : moved;
}

inline void run_case(const Case& c) {
  SCOPED_TRACE("parity case " + c.name);
  const uint64_t seed = case_seed(c.name);
  Generator gen(seed);
  TensorList cpu_in = c.make(gen);
  // Copied before the CPU run: in-place cases modify their inputs.
  TensorList gpu_in;
  for (const Tensor& t : cpu_in) gpu_in.push_back(to_gpu(t));

  std::vector<bool> wants_grad(cpu_in.size(), false);
  if (c.backward) {
    for (size_t i = 0; i < cpu_in.size(); ++i) {
      bool constant = false;
      for (size_t k : c.constant_inputs) constant = constant || k == i;
      if (!constant && cpu_in[i].defined() && cpu_in[i].is_floating_point()) {
        wants_grad[i] = true;
        cpu_in[i].requires_grad_(true);
        gpu_in[i].requires_grad_(true);
      }
    }
  }

  // The default generator restarts from the same seed for both runs, so
  // random ops (dropout) draw the same numbers on both devices.
  kiln::manual_seed(seed);
  const TensorList cpu_out = c.run(cpu_in);
  kiln::manual_seed(seed);
  const TensorList gpu_out = c.run(gpu_in);
  ASSERT_EQ(gpu_out.size(), cpu_out.size());
  for (size_t i = 0; i < cpu_out.size(); ++i) {
    EXPECT_TRUE(parity_close(gpu_out[i], cpu_out[i], c.tol)) << "output " << i;
  }
  if (!c.backward) return;

  Generator up(seed ^ 0x9E3779B97F4A7C15ull);
  TensorList cpu_roots, cpu_grads, gpu_roots, gpu_grads;
  for (size_t i = 0; i < cpu_out.size(); ++i) {
    if (!cpu_out[i].defined() || !cpu_out[i].requires_grad()) continue;
    ASSERT_TRUE(gpu_out[i].requires_grad()) << "output " << i << " has no history on CUDA";
    const Tensor g = randn(up, cpu_out[i].sizes(), cpu_out[i].dtype());
    cpu_roots.push_back(cpu_out[i]);
    cpu_grads.push_back(g);
    gpu_roots.push_back(gpu_out[i]);
    gpu_grads.push_back(to_gpu(g));
  }
  ASSERT_FALSE(cpu_roots.empty()) << "backward case without a differentiable output";
  autograd::backward(cpu_roots, cpu_grads);
  autograd::backward(gpu_roots, gpu_grads);
  for (size_t i = 0; i < cpu_in.size(); ++i) {
    if (!wants_grad[i]) continue;
    EXPECT_TRUE(parity_close(gpu_in[i].grad(), cpu_in[i].grad(), c.tol)) << "gradient of input " << i;
  }
}

}  // namespace kiln::testing::parity

// The first statement of every CUDA test.
#ifndef KILN_PARITY_CPU_SELFTEST
#define KILN_SKIP_WITHOUT_CUDA() \
  if (!::kiln::has_backend(::kiln::kCUDA)) GTEST_SKIP() << "no CUDA device"
#else
#define KILN_SKIP_WITHOUT_CUDA() (void)0
#endif

// One parameterised suite over a case table: every test skips without a GPU.
#define KILN_PARITY_SUITE(Suite, cases_fn)                                                          \
  class Suite : public ::testing::TestWithParam<::kiln::testing::parity::Case> {};                  \
  TEST_P(Suite, MatchesCpu) {                                                                       \
    KILN_SKIP_WITHOUT_CUDA();                                                                       \
    ::kiln::testing::parity::run_case(GetParam());                                                  \
  }                                                                                                 \
  INSTANTIATE_TEST_SUITE_P(Cuda, Suite, ::testing::ValuesIn(cases_fn()), ::kiln::testing::parity::case_name)
