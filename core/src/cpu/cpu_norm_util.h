#pragma once
// Building blocks of the normalisation kernels (cpu_norm.cpp,
// cpu_batch_norm.cpp): sums over contiguous runs and per-run affine maps.
//
// Accuracy: sums are taken in the compute type over chunks of kChunk
// elements (many vector lanes of partial sums per chunk) and the chunk sums
// added in double; variances use the corrected two-pass formula
// (deviations from a first-pass mean, minus the square of their sum), so a
// large mean does not cancel the variance away. 16-bit floats are converted
// a chunk at a time into a float buffer and never accumulated in 16 bits.
//
// Results never depend on the thread count: every sum is reduced in one
// fixed order (column sums over rows go through row chunks chosen from the
// shape, combined in order).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "cpu/cpu_loops.h"
#include "kiln/core/error.h"

namespace kiln::cpu::norm {

inline constexpr int64_t kChunk = 1024;

// Calls body(const C* chunk, int64_t m, int64_t offset) over n contiguous
// values of T, seen as compute_t<T>.
template <typename T, typename Body>
inline void chunks(const T* x, int64_t n, Body&& body) {
  using C = compute_t<T>;
  if constexpr (std::is_same_v<T, C>) {
    for (int64_t o = 0; o < n; o += kChunk) body(x + o, std::min(kChunk, n - o), o);
  } else {
    alignas(64) C buf[kChunk];
    for (int64_t o = 0; o < n; o += kChunk) {
      const int64_t m = std::min(kChunk, n - o);
      load_block(x + o, buf, m);
      body(static_cast<const C*>(buf), m, o);
    }
  }
}

// As chunks() for two runs of the same length (b may alias a).
template <typename T, typename Body>
inline void chunks2(const T* a, const T* b, int64_t n, Body&& body) {
  using C = compute_t<T>;
  if constexpr (std::is_same_v<T, C>) {
    for (int64_t o = 0; o < n; o += kChunk) body(a + o, b + o, std::min(kChunk, n - o), o);
  } else {
    alignas(64) C ba[kChunk];
    alignas(64) C bb[kChunk];
    for (int64_t o = 0; o < n; o += kChunk) {
      const int64_t m = std::min(kChunk, n - o);
      load_block(a + o, ba, m);
      load_block(b + o, bb, m);
      body(static_cast<const C*>(ba), static_cast<const C*>(bb), m, o);
    }
  }
}

// Writes n values of T from a producer fill(C* dst, int64_t m, int64_t offset)
// that computes a chunk in the compute type.
template <typename T, typename Fill>
inline void emit(T* y, int64_t n, Fill&& fill) {
  using C = compute_t<T>;
  if constexpr (std::is_same_v<T, C>) {
    fill(y, n, int64_t{0});
  } else {
    alignas(64) C buf[kChunk];
    for (int64_t o = 0; o < n; o += kChunk) {
      const int64_t m = std::min(kChunk, n - o);
      fill(static_cast<C*>(buf), m, o);
      store_block(buf, y + o, m);
    }
  }
}

// Sums over m contiguous values, written with GCC vector types: four
// independent vector accumulators per sum let the adds pipeline (one would
// wait on each add's latency and cap a row held in L1/L2 at a fraction of the
// load bandwidth), and they are combined as vectors before a single
// horizontal sum. (`omp simd reduction` keeps one accumulator and sums each
// variable's lanes one by one.)
#if defined(__AVX512F__)
inline constexpr size_t kVecBytes = 64;
#else
inline constexpr size_t kVecBytes = 32;
#endif
template <typename C>
struct VecOf {
  typedef C type __attribute__((vector_size(kVecBytes)));
  static constexpr int64_t lanes = static_cast<int64_t>(kVecBytes / sizeof(C));
};

template <typename C>
inline typename VecOf<C>::type vload(const C* p) {
  typename VecOf<C>::type v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

template <typename C>
inline C hsum(typename VecOf<C>::type v) {
  C s = 0;
  for (int64_t j = 0; j < VecOf<C>::lanes; ++j) s += v[j];
  return s;
}

// Σ (a - as)
template <typename C>
inline C sum_centered(const C* a, C as, int64_t m) {
  using V = typename VecOf<C>::type;
  constexpr int64_t L = VecOf<C>::lanes;
  const V va = V{} + as;
  V s0{}, s1{}, s2{}, s3{};
  int64_t i = 0;
  for (; i + 4 * L <= m; i += 4 * L) {
    s0 += vload(a + i) - va;
    s1 += vload(a + i + L) - va;
    s2 += vload(a + i + 2 * L) - va;
    s3 += vload(a + i + 3 * L) - va;
  }
  for (; i + L <= m; i += L) s0 += vload(a + i) - va;
  C s = hsum<C>((s0 + s1) + (s2 + s3));
  for (; i < m; ++i) s += a[i] - as;
  return s;
}

// r0 = Σ (a - as), r1 = Σ (a - as)(b - bs)
template <typename C>
inline void sum_products(const C* a, C as, const C* b, C bs, int64_t m, C& r0, C& r1) {
  using V = typename VecOf<C>::type;
  constexpr int64_t L = VecOf<C>::lanes;
  const V va = V{} + as, vb = V{} + bs;
  V s0{}, s1{}, t0{}, t1{};
  int64_t i = 0;
  for (; i + 2 * L <= m; i += 2 * L) {
    const V d0 = vload(a + i) - va, d1 = vload(a + i + L) - va;
    s0 += d0;
    s1 += d1;
    t0 += d0 * (vload(b + i) - vb);
    t1 += d1 * (vload(b + i + L) - vb);
  }
  for (; i + L <= m; i += L) {
    const V d = vload(a + i) - va;
    s0 += d;
    t0 += d * (vload(b + i) - vb);
  }
  C p = hsum<C>(s0 + s1), q = hsum<C>(t0 + t1);
  for (; i < m; ++i) {
    const C d = a[i] - as;
    p += d;
    q += d * (b[i] - bs);
  }
  r0 = p;
  r1 = q;
}

// r0 = Σ g w, r1 = Σ g w (x - xs)
template <typename C>
inline void sum_weighted(const C* g, const C* w, const C* x, C xs, int64_t m, C& r0, C& r1) {
  using V = typename VecOf<C>::type;
  constexpr int64_t L = VecOf<C>::lanes;
  const V vx = V{} + xs;
  V s0{}, s1{}, t0{}, t1{};
  int64_t i = 0;
  for (; i + 2 * L <= m; i += 2 * L) {
    const V e0 = vload(g + i) * vload(w + i), e1 = vload(g + i + L) * vload(w + i + L);
    s0 += e0;
    s1 += e1;
    t0 += e0 * (vload(x + i) - vx);
    t1 += e1 * (vload(x + i + L) - vx);
  }
  for (; i + L <= m; i += L) {
    const V e = vload(g + i) * vload(w + i);
    s0 += e;
    t0 += e * (vload(x + i) - vx);
  }
  C p = hsum<C>(s0 + s1), q = hsum<C>(t0 + t1);
  for (; i < m; ++i) {
    const C e = g[i] * w[i];
    p += e;
    q += e * (x[i] - xs);
  }
  r0 = p;
  r1 = q;
}

// Sums of one run: s0 += Σ (u - us); with S1 also s1 += Σ (u - us)(v - vs).
// (u = v, us = vs = mean gives the deviations and squared deviations; u =
// grad, us = 0, v = x, vs = mean the two sums of a norm's backward.)
template <bool S1, typename T>
inline void run_sums(const T* u, compute_t<T> us, const T* v, compute_t<T> vs, int64_t n, double& s0, double& s1) {
  using C = compute_t<T>;
  if constexpr (S1) {
    chunks2(u, v, n, [&](const C* a, const C* b, int64_t m, int64_t) {
      C p0, p1;
      sum_products(a, us, b, vs, m, p0, p1);
      s0 += static_cast<double>(p0);
      s1 += static_cast<double>(p1);
    });
  } else {
    chunks(u, n, [&](const C* a, int64_t m, int64_t) { s0 += static_cast<double>(sum_centered(a, us, m)); });
  }
}

struct Moments {
  double mean, var;  // biased variance
  // The first-pass mean in the compute type: x - center is exact for x near
  // it, and the rest, mean - center, is small. Outputs formed as
  // (x - center) - (mean - center) keep digits that x - float(mean) would
  // lose when |mean| is large against the spread.
  double center;
};

// The corrected two-pass moments from the first pass's sum and the second
// pass's Σd and Σd² around mu.
inline Moments finish_moments(double mu, double s1, double s2, double n) {
  return {mu + s1 / n, std::max(0.0, (s2 - s1 * s1 / n) / n), mu};
}

// Mean and biased variance of n contiguous values.
template <typename T>
inline Moments moments(const T* x, int64_t n) {
  using C = compute_t<T>;
  double s = 0, unused = 0;
  run_sums<false>(x, C(0), x, C(0), n, s, unused);
  const C mu = static_cast<C>(s / static_cast<double>(n));
  double s1 = 0, s2 = 0;
  run_sums<true>(x, mu, x, mu, n, s1, s2);
  return finish_moments(static_cast<double>(mu), s1, s2, static_cast<double>(n));
}

// y = (x - m) k2 + k3, or with G: y = g k1 + (x - m) k2 + k3, over n
// contiguous values. Centring before scaling keeps the precision that
// x k2 - m k2 would lose to cancellation when |m| is large against the spread.
template <bool G, typename T>
inline void run_affine(const T* g, const T* x, T* y, int64_t n, compute_t<T> k1, compute_t<T> m, compute_t<T> k2,
                       compute_t<T> k3) {
  using C = compute_t<T>;
  if constexpr (std::is_same_v<T, C>) {
    const C* __restrict px = x;
    C* __restrict py = y;
    if constexpr (G) {
      const C* __restrict pg = g;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) py[i] = pg[i] * k1 + (px[i] - m) * k2 + k3;
    } else {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) py[i] = (px[i] - m) * k2 + k3;
    }
  } else {
    alignas(64) C bx[kChunk];
    alignas(64) C bg[kChunk];
    for (int64_t o = 0; o < n; o += kChunk) {
      const int64_t len = std::min(kChunk, n - o);
      load_block(x + o, bx, len);
      if constexpr (G) {
        load_block(g + o, bg, len);
        for (int64_t i = 0; i < len; ++i) bx[i] = bg[i] * k1 + (bx[i] - m) * k2 + k3;
      } else {
        for (int64_t i = 0; i < len; ++i) bx[i] = (bx[i] - m) * k2 + k3;
      }
      store_block(bx, y + o, len);
    }
  }
}

// A per-channel parameter (weight, bias; any floating dtype) as compute-type
// values; empty when undefined.
template <typename C>
std::vector<C> param_values(const Tensor& p) {
  std::vector<C> v;
  if (!p.defined()) return v;
  v.resize(static_cast<size_t>(p.numel()));
  dispatch_floating(p.dtype(), "norm parameter", [&]<typename P>() {
    const P* src = p.data_ptr<P>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<C>(load(src[i]));
  });
  return v;
}

// Stores double values into a tensor of any floating dtype (parameter grads, statistics).
inline void store_values(const Tensor& t, const double* v) {
  dispatch_floating(t.dtype(), "norm output", [&]<typename P>() {
    P* dst = t.data_ptr<P>();
    for (int64_t i = 0; i < t.numel(); ++i) dst[i] = store<P>(v[i]);
  });
}

// Reads statistics (f32 or f64) as doubles.
inline std::vector<double> stat_values(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  dispatch_floating(t.dtype(), "norm statistics", [&]<typename P>() {
    const P* src = t.data_ptr<P>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(load(src[i]));
  });
  return v;
}

// Rows handled together when summing columns across rows: each chunk of
// rows gets its own partial sums, added up in chunk order afterwards. Up to
// 64 rows, and at least 16 chunks when there are 16 rows, so the threads
// have chunks to share; a function of the shape only, never of the threads.
inline int64_t row_chunk(int64_t rows) { return std::clamp<int64_t>((rows + 15) / 16, 1, 64); }

// The statistics dtype's C++ type for input type T.
template <typename T>
using stat_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

inline void check_stat(const char* op, const Tensor& s, DType in) {
  KILN_CHECK(s.dtype() == (in == kFloat64 ? kFloat64 : kFloat32) && s.is_contiguous(), op,
             ": statistics must be contiguous ", (in == kFloat64 ? "float64" : "float32"), " for a ", in,
             " input, got ", s.toString());
}

}  // namespace kiln::cpu::norm
