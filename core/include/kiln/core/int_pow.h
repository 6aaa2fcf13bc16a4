#pragma once
// Integer power by squaring, as torch's integer pow: negative exponents give
// 0 except for bases 1 and -1; overflow wraps. One definition for the CPU
// and CUDA backends.
#include <type_traits>

#include "kiln/core/host_device.h"

namespace kiln {

template <typename C>
KILN_HOST_DEVICE inline C int_pow(C base, C exp) {
  if constexpr (std::is_same_v<C, bool>) {
    return exp ? base : true;
  } else {
    if constexpr (std::is_signed_v<C>) {
      if (exp < 0) {
        if (base == 1) return 1;
        if (base == -1) return (exp & 1) ? C(-1) : C(1);
        return 0;
      }
    }
    using U = std::make_unsigned_t<C>;
    U result = 1, b = static_cast<U>(base);
    auto e = static_cast<U>(exp);
    while (e) {
      if (e & 1u) result = static_cast<U>(result * b);
      e >>= 1;
      b = static_cast<U>(b * b);
    }
    return static_cast<C>(result);
  }
}

}  // namespace kiln
