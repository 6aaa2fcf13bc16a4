#pragma once
// Inner loops shared by the pointwise CPU kernels. Each takes a functor on
// compute_t values and specialises the runs StridedLoop hands it: all
// operands contiguous, and one input broadcast (byte stride 0) with the rest
// contiguous. Those are the runs that vectorise; anything else walks strides.
#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <type_traits>

#include "cpu/strided_loop.h"
#include "kiln/core/dtype.h"

namespace kiln::cpu {

// With F16C, half <-> float is one instruction (eight at a time for blocks)
// instead of Half's portable bit manipulation; same results: round to
// nearest even, subnormals kept.
#if defined(__F16C__) && defined(__FLT16_MAX__)
#define KILN_HARDWARE_HALF 1
#include <immintrin.h>
#endif

template <typename T>
inline compute_t<T> load(T v) {
#ifdef KILN_HARDWARE_HALF
  if constexpr (std::is_same_v<T, Half>) return static_cast<float>(std::bit_cast<_Float16>(v.x));
#endif
  return static_cast<compute_t<T>>(v);
}

// Converts a computed value to the stored type (16-bit floats round from float).
template <typename T, typename V>
inline T store(V v) {
  if constexpr (std::is_same_v<T, Half>) {
#ifdef KILN_HARDWARE_HALF
    Half h;
    h.x = std::bit_cast<uint16_t>(static_cast<_Float16>(static_cast<float>(v)));
    return h;
#else
    return Half(static_cast<float>(v));
#endif
  } else if constexpr (std::is_same_v<T, BFloat16>) {
    return T(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

template <typename C>
inline bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>) {
    return v != v;
  } else {
    return false;
  }
}

// Half runs are converted a block at a time through a float buffer:
// independent conversions pipeline, and the arithmetic then runs as a plain
// float loop that vectorises (a dependent convert-compute chain does not).
inline constexpr int64_t kStage = 256;
template <typename T>
inline constexpr bool kStaged = std::is_same_v<T, Half>;

// y[i] = x[i] converted to compute_t, for a block of m elements.
template <typename T>
inline void load_block(const T* x, compute_t<T>* y, int64_t m) {
  int64_t i = 0;
#ifdef KILN_HARDWARE_HALF
  if constexpr (std::is_same_v<T, Half>) {
    for (; i + 8 <= m; i += 8)
      _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  }
#endif
  for (; i < m; ++i) y[i] = load(x[i]);
}

// o[i] = y[i] stored as Out, for a block of m elements.
template <typename Out, typename R>
inline void store_block(const R* y, Out* o, int64_t m) {
  int64_t i = 0;
#ifdef KILN_HARDWARE_HALF
  if constexpr (std::is_same_v<Out, Half> && std::is_same_v<R, float>) {
    for (; i + 8 <= m; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + i),
                       _mm256_cvtps_ph(_mm256_loadu_ps(y + i), _MM_FROUND_TO_NEAREST_INT));
  }
#endif
  for (; i < m; ++i) o[i] = store<Out>(y[i]);
}

// The contiguous maps are flattened: f and everything it calls is inlined
// into the loop, which can then vectorise whatever f's size.
// With AVX-512 GCC still vectorises 256 bits wide unless told otherwise; the
// compute-heavy maps (erf, exp, GELU) run ~1.8x faster on full-width
// vectors, and the memory-bound ones are indifferent. The preference only
// holds in a function compiled on its own, hence noinline (one call per run).
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#define KILN_FLATTEN __attribute__((flatten, noinline, target("prefer-vector-width=512")))
#else
#define KILN_FLATTEN __attribute__((flatten))
#endif

// o[i] = f(x[i]) over contiguous elements.
template <typename In, typename Out, typename F>
KILN_FLATTEN void map1(Out* o, const In* x, int64_t n, const F& f) {
  if constexpr (kStaged<In> || kStaged<Out>) {
    using CI = compute_t<In>;
    using R = std::decay_t<decltype(f(CI()))>;
    CI xs[kStage];
    R ys[kStage];
    for (int64_t b = 0; b < n; b += kStage) {
      const int64_t m = std::min(kStage, n - b);
      load_block(x + b, xs, m);
      for (int64_t i = 0; i < m; ++i) ys[i] = f(xs[i]);
      store_block(ys, o + b, m);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = store<Out>(f(load(x[i])));
  }
}

// o[i] = f(a[i], b[i]) over contiguous elements; an operand marked constant
// is one value for the whole run.
template <typename T, typename Out, bool AConst, bool BConst, typename F>
KILN_FLATTEN void map2(Out* o, const T* a, const T* b, int64_t n, const F& f) {
  using C = compute_t<T>;
  const C av = load(*a), bv = load(*b);
  if constexpr (kStaged<T> || kStaged<Out>) {
    using R = std::decay_t<decltype(f(C(), C()))>;
    C as[kStage], bs[kStage];
    R ys[kStage];
    for (int64_t k = 0; k < n; k += kStage) {
      const int64_t m = std::min(kStage, n - k);
      if constexpr (!AConst) load_block(a + k, as, m);
      if constexpr (!BConst) load_block(b + k, bs, m);
      for (int64_t i = 0; i < m; ++i) ys[i] = f(AConst ? av : as[i], BConst ? bv : bs[i]);
      store_block(ys, o + k, m);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = store<Out>(f(AConst ? av : load(a[i]), BConst ? bv : load(b[i])));
  }
}

// out = f(in); operands {out, in}.
template <typename In, typename Out, typename F>
void unary_loop(const StridedLoop<2>& loop, const F& f) {
  loop.run([&f](char* const* p, const int64_t* s, int64_t n) {
    constexpr int64_t so = sizeof(Out), si = sizeof(In);
    if (s[0] == so && s[1] == si) {
      map1(reinterpret_cast<Out*>(p[0]), reinterpret_cast<const In*>(p[1]), n, f);
      return;
    }
    if (s[1] == 0) {  // one input value for the whole run
      const Out v = store<Out>(f(load(*reinterpret_cast<const In*>(p[1]))));
      for (int64_t i = 0; i < n; ++i) *reinterpret_cast<Out*>(p[0] + i * s[0]) = v;
      return;
    }
    for (int64_t i = 0; i < n; ++i)
      *reinterpret_cast<Out*>(p[0] + i * s[0]) = store<Out>(f(load(*reinterpret_cast<const In*>(p[1] + i * s[1]))));
  });
}

// Never takes over a run; the default for binary_loop's `special` hook.
struct NoSpecialRun {
  bool operator()(char* const*, const int64_t*, int64_t) const { return false; }
};

// out = f(a, b); operands {out, a, b}. `special(p, s, n)` may handle a run
// itself (returning true), e.g. pow with a constant exponent.
template <typename T, typename Out, typename F, typename Special = NoSpecialRun>
void binary_loop(const StridedLoop<3>& loop, const F& f, const Special& special = {}) {
  loop.run([&f, &special](char* const* p, const int64_t* s, int64_t n) {
    if (special(p, s, n)) return;
    constexpr int64_t so = sizeof(Out), st = sizeof(T);
    if (s[0] == so) {
      Out* o = reinterpret_cast<Out*>(p[0]);
      const T* a = reinterpret_cast<const T*>(p[1]);
      const T* b = reinterpret_cast<const T*>(p[2]);
      if (s[1] == st && s[2] == st) return map2<T, Out, false, false>(o, a, b, n, f);
      if (s[1] == st && s[2] == 0) return map2<T, Out, false, true>(o, a, b, n, f);
      if (s[1] == 0 && s[2] == st) return map2<T, Out, true, false>(o, a, b, n, f);
    }
    for (int64_t i = 0; i < n; ++i) {
      const T a = *reinterpret_cast<const T*>(p[1] + i * s[1]);
      const T b = *reinterpret_cast<const T*>(p[2] + i * s[2]);
      *reinterpret_cast<Out*>(p[0] + i * s[0]) = store<Out>(f(load(a), load(b)));
    }
  });
}

// Row-major walk over a few dims keeping N byte offsets (one per stride
// set) in step; for kernels that handle one dim themselves (reductions,
// softmax) and iterate the others.
template <size_t N>
struct DimWalker {
  const DimVector& size;
  std::array<const DimVector*, N> strides;
  DimVector idx;
  std::array<int64_t, N> off{};

  DimWalker(const DimVector& sizes, std::array<const DimVector*, N> st)
      : size(sizes), strides(st), idx(sizes.size()) {}
  void seek(int64_t linear) {
    off.fill(0);
    for (int64_t d = static_cast<int64_t>(size.size()) - 1; d >= 0; --d) {
      idx[d] = linear % size[d];
      linear /= size[d];
      for (size_t k = 0; k < N; ++k) off[k] += idx[d] * (*strides[k])[d];
    }
  }
  void next() {
    for (int64_t d = static_cast<int64_t>(size.size()) - 1; d >= 0; --d) {
      for (size_t k = 0; k < N; ++k) off[k] += (*strides[k])[d];
      if (++idx[d] < size[d]) return;
      for (size_t k = 0; k < N; ++k) off[k] -= size[d] * (*strides[k])[d];
      idx[d] = 0;
    }
  }
};

}  // namespace kiln::cpu
