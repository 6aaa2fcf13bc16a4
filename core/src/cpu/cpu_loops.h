#pragma once
// Inner loops shared by the pointwise CPU kernels. Each takes a functor on
// compute_t values and specialises the runs StridedLoop hands it: all
// operands contiguous, and one input broadcast (byte stride 0) with the rest
// contiguous. Those are the runs that vectorise; anything else walks strides.
#include <array>
#include <bit>
#include <cstdint>
#include <type_traits>

#include "cpu/strided_loop.h"
#include "kiln/core/dtype.h"

namespace kiln::cpu {

// With F16C, half <-> float is one instruction instead of Half's portable
// bit manipulation (same results: round to nearest even, subnormals kept).
#if defined(__F16C__) && defined(__FLT16_MAX__)
#define KILN_HARDWARE_HALF 1
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

// out = f(in); operands {out, in}.
template <typename In, typename Out, typename F>
void unary_loop(const StridedLoop<2>& loop, const F& f) {
  loop.run([&f](char* const* p, const int64_t* s, int64_t n) {
    constexpr int64_t so = sizeof(Out), si = sizeof(In);
    if (s[0] == so && s[1] == si) {
      Out* o = reinterpret_cast<Out*>(p[0]);
      const In* x = reinterpret_cast<const In*>(p[1]);
      for (int64_t i = 0; i < n; ++i) o[i] = store<Out>(f(load(x[i])));
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
      if (s[1] == st && s[2] == st) {
        for (int64_t i = 0; i < n; ++i) o[i] = store<Out>(f(load(a[i]), load(b[i])));
        return;
      }
      if (s[1] == st && s[2] == 0) {
        const auto bv = load(*b);
        for (int64_t i = 0; i < n; ++i) o[i] = store<Out>(f(load(a[i]), bv));
        return;
      }
      if (s[1] == 0 && s[2] == st) {
        const auto av = load(*a);
        for (int64_t i = 0; i < n; ++i) o[i] = store<Out>(f(av, load(b[i])));
        return;
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      const T a = *reinterpret_cast<const T*>(p[1] + i * s[1]);
      const T b = *reinterpret_cast<const T*>(p[2] + i * s[2]);
      *reinterpret_cast<Out*>(p[0] + i * s[0]) = store<Out>(f(load(a), load(b)));
    }
  });
}

// Contiguous map used by special-cased runs: o[i] = f(x[i]).
template <typename T, typename F>
inline void map_contiguous(T* o, const T* x, int64_t n, const F& f) {
  for (int64_t i = 0; i < n; ++i) o[i] = store<T>(f(load(x[i])));
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
