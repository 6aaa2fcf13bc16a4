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

// Square tiles for transposing copies: two 32x32 float tiles fit in L1.
constexpr int64_t kTile = 32;

// dst (contiguous) = src whose last two dims are column-major, e.g.
// x.t().contiguous(). Walking dst row by row would read src 4 KiB apart for
// every element; tiles keep both sides in cache. Returns false when the
// layout is not that one (or too small to pay).
bool copy_transposed(const Tensor& src, const Tensor& dst) {
  const int64_t nd = dst.dim();
  if (nd < 2 || !dst.is_contiguous()) return false;
  const int64_t rows = dst.size(nd - 2), cols = dst.size(nd - 1);
  if (rows < kTile || cols < kTile || src.stride(nd - 2) != 1 || src.stride(nd - 1) < rows) return false;
  const int64_t ld = src.stride(nd - 1);
  const int64_t batches = dst.numel() / (rows * cols);
  const int64_t row_tiles = (rows + kTile - 1) / kTile;
  // Offset of batch b's matrix in src, from its leading-dim strides.
  auto src_offset = [&](int64_t b) {
    int64_t off = 0;
    for (int64_t d = nd - 3; d >= 0; --d) {
      off += (b % src.size(d)) * src.stride(d);
      b /= src.size(d);
    }
    return off;
  };
  dispatch_all(dst.dtype(), "copy", [&]<typename To>() {
    dispatch_all(src.dtype(), "copy", [&]<typename From>() {
      const From* in = static_cast<const From*>(src.data_ptr());
      To* out = static_cast<To*>(dst.data_ptr());
      parallel_for(batches * row_tiles, std::max<int64_t>(1, kParallelGrain / (kTile * cols)), [&](int64_t begin, int64_t end) {
        for (int64_t task = begin; task < end; ++task) {
          const int64_t b = task / row_tiles, i0 = (task % row_tiles) * kTile, i1 = std::min(rows, i0 + kTile);
          const From* s = in + src_offset(b);
          To* d = out + b * rows * cols;
          for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
            const int64_t j1 = std::min(cols, j0 + kTile);
            for (int64_t i = i0; i < i1; ++i)
              for (int64_t j = j0; j < j1; ++j) d[i * cols + j] = convert<To>(s[i + j * ld]);
          }
        }
      });
    });
  });
  return true;
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
  if (copy_transposed(src, dst)) return;
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
