#pragma once
// The maximum of a row as softmax-like kernels need it: NaN when the row
// holds a NaN (so the NaN reaches every output, as torch's), computed in
// one vectorised pass.
#include <cstdint>
#include <limits>

namespace kiln::cpu {

template <typename C>
inline C row_max_nan(const C* x, int64_t n) {
  C m = -std::numeric_limits<C>::infinity();
  int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
  for (int64_t i = 0; i < n; ++i) {
    m = x[i] > m ? x[i] : m;
    nan |= x[i] != x[i];
  }
  return nan ? std::numeric_limits<C>::quiet_NaN() : m;
}

}  // namespace kiln::cpu
