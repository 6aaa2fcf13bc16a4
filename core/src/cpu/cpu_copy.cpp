// Copies with dtype conversion, fills, and the counting factories.
#include <cstring>

#include "cpu/cpu_backend.h"
#include "cpu/strided_loop.h"

// arange and linspace give torch's values bit for bit because the build
// turns off FMA contraction (-ffp-contract=off in the top-level CMakeLists).

namespace kiln::cpu {

namespace {
template <typename To, typename From>
inline To convert(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return static_cast<compute_t<From>>(v) != compute_t<From>(0);
  } else if constexpr (std::is_same_v<To, Half> || std::is_same_v<To, BFloat16>) {
    return To(static_cast<float>(static_cast<compute_t<From>>(v)));
  } else {
    return static_cast<To>(static_cast<compute_t<From>>(v));
  }
}
}  // namespace

void CpuBackend::copy(const Tensor& src, const Tensor& dst, bool) {
  KILN_CHECK(src.is_cpu() && dst.is_cpu(), "CPU copy: both tensors must be on the CPU (got ", src.device(), " and ",
             dst.device(), ")");
  if (src.dtype() == dst.dtype() && src.is_contiguous() && dst.is_contiguous()) {
    if (src.data_ptr() == dst.data_ptr()) return;
    size_t bytes = dst.nbytes();
    char* d = static_cast<char*>(dst.data_ptr());
    const char* s = static_cast<const char*>(src.data_ptr());
    parallel_for(static_cast<int64_t>(bytes), 1 << 20, [&](int64_t b, int64_t e) { std::memcpy(d + b, s + b, e - b); });
    return;
  }
  StridedLoop<2> loop({&dst, &src});
  dispatch_all(dst.dtype(), "copy", [&]<typename To>() {
    dispatch_all(src.dtype(), "copy", [&]<typename From>() {
      loop.run([](char* const* p, const int64_t* s, int64_t n) {
        To* o = reinterpret_cast<To*>(p[0]);
        const char* in = p[1];
        if (s[0] == sizeof(To) && s[1] == sizeof(From)) {
          const From* x = reinterpret_cast<const From*>(in);
          for (int64_t i = 0; i < n; ++i) o[i] = convert<To>(x[i]);
        } else {
          char* out = p[0];
          for (int64_t i = 0; i < n; ++i)
            *reinterpret_cast<To*>(out + i * s[0]) = convert<To>(*reinterpret_cast<const From*>(in + i * s[1]));
        }
      });
    });
  });
}

void CpuBackend::fill(const Tensor& out, const Scalar& value) {
  StridedLoop<1> loop({&out});
  dispatch_all(out.dtype(), "fill", [&]<typename T>() {
    const T v = value.to<T>();
    loop.run([v](char* const* p, const int64_t* s, int64_t n) {
      if (s[0] == sizeof(T)) {
        T* o = reinterpret_cast<T*>(p[0]);
        for (int64_t i = 0; i < n; ++i) o[i] = v;
      } else {
        for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p[0] + i * s[0]) = v;
      }
    });
  });
}

void CpuBackend::arange(const Tensor& out, const Scalar& start, const Scalar& step) {
  KILN_CHECK(out.is_contiguous(), "arange: output must be contiguous");
  dispatch_all(out.dtype(), "arange", [&]<typename T>() {
    T* o = out.data_ptr<T>();
    if constexpr (std::is_integral_v<T>) {
      const int64_t a = start.toLong(), d = step.toLong();
      for (int64_t i = 0; i < out.numel(); ++i) o[i] = static_cast<T>(a + i * d);
    } else {
      const double a = start.toDouble(), d = step.toDouble();
      for (int64_t i = 0; i < out.numel(); ++i) o[i] = static_cast<T>(a + static_cast<double>(i) * d);
    }
  });
}

void CpuBackend::linspace(const Tensor& out, const Scalar& start, const Scalar& end) {
  KILN_CHECK(out.is_contiguous(), "linspace: output must be contiguous");
  const int64_t steps = out.numel();
  dispatch_all(out.dtype(), "linspace", [&]<typename T>() {
    T* o = out.data_ptr<T>();
    if (steps == 1) {
      o[0] = start.to<T>();
      return;
    }
    // torch's formula, in its arithmetic: start and end are first converted
    // to the output dtype (integers truncate), the step is computed in double
    // for integers and in the output dtype otherwise, and the first half
    // counts up from start while the second counts down from end. 16-bit
    // floats round after every operation, as c10::Half arithmetic does.
    if constexpr (std::is_integral_v<T>) {
      const auto a = static_cast<double>(start.to<T>()), b = static_cast<double>(end.to<T>());
      const double step = (b - a) / static_cast<double>(steps - 1);
      const int64_t half = steps / 2;
      for (int64_t i = 0; i < steps; ++i)
        o[i] = static_cast<T>(i < half ? a + step * static_cast<double>(i)
                                       : b - step * static_cast<double>(steps - 1 - i));
    } else {
      using C = compute_t<T>;
      const T a = start.to<T>(), b = end.to<T>();
      const T step = T((static_cast<C>(b) - static_cast<C>(a)) / static_cast<C>(steps - 1));
      const int64_t half = steps / 2;
      for (int64_t i = 0; i < steps; ++i) {
        const T k = T(static_cast<C>(i < half ? i : steps - 1 - i));
        const T delta = T(static_cast<C>(step) * static_cast<C>(k));
        o[i] = T(i < half ? static_cast<C>(a) + static_cast<C>(delta) : static_cast<C>(b) - static_cast<C>(delta));
      }
    }
  });
}

}  // namespace kiln::cpu
