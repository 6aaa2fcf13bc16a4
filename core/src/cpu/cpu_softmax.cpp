// softmax / log_softmax along one dim, and their backward. Each line along
// the dim is max-shifted for stability, with sums gathered in double. Three
// layouts: lines contiguous in T == compute_t<T> are processed where they
// lie; lines along an outer dim are processed kTile at a time across a
// contiguous neighbouring dim (sequential loads, vector math across lines);
// anything else goes through a per-thread buffer in compute_t<T>, so 16-bit
// floats are rounded once, at the end.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/cpu_loops.h"
#include "cpu/cpu_math.h"
#include "cpu/cpu_row_max.h"

namespace kiln::cpu {

namespace {

// Sums of exp are taken in C over blocks of this many elements (which GCC
// vectorises) and the block sums added in double.
constexpr int64_t kSumBlock = 512;

template <typename C>
void softmax_line(const C* x, C* y, int64_t n, bool log) {
  const C m = row_max_nan(x, n);
  double sum = 0;
  for (int64_t b = 0; b < n; b += kSumBlock) {
    const int64_t e = std::min(n, b + kSumBlock);
    C s = 0;
    if (log) {
#pragma omp simd reduction(+ : s)
      for (int64_t i = b; i < e; ++i) s += fast_exp(x[i] - m);
    } else {
#pragma omp simd reduction(+ : s)
      for (int64_t i = b; i < e; ++i) {
        const C v = fast_exp(x[i] - m);
        y[i] = v;
        s += v;
      }
    }
    sum += static_cast<double>(s);
  }
  if (log) {
    const C shift = m + static_cast<C>(std::log(sum));
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] - shift;
  } else {
    const C scale = static_cast<C>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) y[i] *= scale;
  }
}

// softmax: gi = y (g - sum(g y));  log_softmax: gi = g - exp(y) sum(g).
template <typename C>
void softmax_backward_line(const C* g, const C* y, C* gi, int64_t n, bool log) {
  double dot = 0;
  if (log) {
#pragma omp simd reduction(+ : dot)
    for (int64_t i = 0; i < n; ++i) dot += static_cast<double>(g[i]);
    const C s = static_cast<C>(dot);
    for (int64_t i = 0; i < n; ++i) gi[i] = g[i] - fast_exp(y[i]) * s;
  } else {
#pragma omp simd reduction(+ : dot)
    for (int64_t i = 0; i < n; ++i) dot += static_cast<double>(g[i]) * static_cast<double>(y[i]);
    const C s = static_cast<C>(dot);
    for (int64_t i = 0; i < n; ++i) gi[i] = y[i] * (g[i] - s);
  }
}

// Lines along `dim` of same-shaped tensors: the other dims (size-1 dropped)
// with each tensor's byte strides, plus each tensor's byte step along dim.
template <size_t N>
struct Lines {
  int64_t len = 1, count = 1;
  std::array<int64_t, N> step{};
  DimVector size;
  std::array<DimVector, N> strides;

  Lines(const std::array<const Tensor*, N>& ts, int64_t dim) {
    const Tensor& t0 = *ts[0];
    if (t0.dim() > 0) len = t0.size(dim);
    for (size_t k = 0; k < N; ++k)
      step[k] = t0.dim() > 0 ? ts[k]->stride(dim) * static_cast<int64_t>(ts[k]->element_size()) : 0;
    for (int64_t d = 0; d < t0.dim(); ++d) {
      if (d == dim || t0.size(d) == 1) continue;
      size.push_back(t0.size(d));
      count *= t0.size(d);
      for (size_t k = 0; k < N; ++k)
        strides[k].push_back(ts[k]->stride(d) * static_cast<int64_t>(ts[k]->element_size()));
    }
  }
  std::array<const DimVector*, N> stride_ptrs() const {
    std::array<const DimVector*, N> p;
    for (size_t k = 0; k < N; ++k) p[k] = &strides[k];
    return p;
  }
  // Calls f(line_index_begin, line_index_end, walker) over threads.
  template <typename F>
  void run(F&& f) const {
    parallel_for(count, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(len, 1)), [&](int64_t b, int64_t e) {
      DimWalker<N> w(size, stride_ptrs());
      w.seek(b);
      f(b, e, w);
    });
  }
};

template <typename T>
void load_line(const char* p, int64_t step, int64_t n, compute_t<T>* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = load(*reinterpret_cast<const T*>(p + i * step));
}

template <typename T>
void store_line(const compute_t<T>* src, int64_t n, char* p, int64_t step) {
  for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p + i * step) = store<T>(src[i]);
}

// Lines along a dim that is not the innermost: kTile neighbouring lines
// (adjacent along a contiguous dim) form a tile whose rows are contiguous in
// memory, so loads stay sequential and the arithmetic runs across lines.
constexpr int64_t kTile = 16;

template <typename T>
void softmax_tiles(const Lines<2>& lines, const char* src, char* dst, bool log) {
  using C = compute_t<T>;
  const int64_t n = lines.len, nk = static_cast<int64_t>(lines.size.size());
  const int64_t inner = lines.size[nk - 1], blocks = (inner + kTile - 1) / kTile;
  const DimVector os(lines.size.data(), nk - 1), oi(lines.strides[0].data(), nk - 1),
      oo(lines.strides[1].data(), nk - 1);
  const int64_t items = (lines.count / inner) * blocks;
  parallel_for(items, std::max<int64_t>(1, kParallelGrain / (n * kTile)), [&](int64_t i0, int64_t i1) {
    std::vector<C> tile(n * kTile);
    DimWalker<2> w(os, {&oi, &oo});
    for (int64_t item = i0; item < i1; ++item) {
      w.seek(item / blocks);
      const int64_t c0 = (item % blocks) * kTile, nc = std::min(kTile, inner - c0);
      const char* x = src + w.off[0] + c0 * static_cast<int64_t>(sizeof(T));
      char* y = dst + w.off[1] + c0 * static_cast<int64_t>(sizeof(T));
      C m[kTile], part[kTile], shift[kTile];
      double sum[kTile];
      int nan[kTile];
      for (int64_t c = 0; c < kTile; ++c) {
        m[c] = -std::numeric_limits<C>::infinity();
        nan[c] = 0;
        sum[c] = 0;
        part[c] = 0;
      }
      for (int64_t r = 0; r < n; ++r) {
        const T* xr = reinterpret_cast<const T*>(x + r * lines.step[0]);
        C* t = tile.data() + r * kTile;
        for (int64_t c = 0; c < nc; ++c) {
          t[c] = load(xr[c]);
          m[c] = t[c] > m[c] ? t[c] : m[c];
          nan[c] |= t[c] != t[c];
        }
      }
      for (int64_t c = 0; c < nc; ++c)
        if (nan[c]) m[c] = std::numeric_limits<C>::quiet_NaN();
      for (int64_t r = 0; r < n; ++r) {
        C* t = tile.data() + r * kTile;
        for (int64_t c = 0; c < nc; ++c) {
          const C e = fast_exp(t[c] - m[c]);
          if (!log) t[c] = e;
          part[c] += e;
        }
        if ((r + 1) % kSumBlock == 0 || r + 1 == n) {  // flush the partial sums into double
          for (int64_t c = 0; c < nc; ++c) {
            sum[c] += static_cast<double>(part[c]);
            part[c] = 0;
          }
        }
      }
      for (int64_t c = 0; c < nc; ++c)
        shift[c] = log ? m[c] + static_cast<C>(std::log(sum[c])) : static_cast<C>(1.0 / sum[c]);
      for (int64_t r = 0; r < n; ++r) {
        T* yr = reinterpret_cast<T*>(y + r * lines.step[1]);
        const C* t = tile.data() + r * kTile;
        for (int64_t c = 0; c < nc; ++c) yr[c] = store<T>(log ? t[c] - shift[c] : t[c] * shift[c]);
      }
    }
  });
}

}  // namespace

void CpuBackend::softmax(const Tensor& in, int64_t dim, bool log, const Tensor& out) {
  const char* name = log ? "log_softmax" : "softmax";
  KILN_CHECK(in.sizes().equals(out.sizes()) && in.dtype() == out.dtype(), name, ": input ", in.toString(),
             " and output ", out.toString(), " must match");
  dispatch_floating(in.dtype(), name, [&]<typename T>() {
    using C = compute_t<T>;
    const Lines<2> lines({&in, &out}, dim);
    const int64_t n = lines.len;
    const char* src = static_cast<const char*>(in.data_ptr());
    char* dst = static_cast<char*>(out.data_ptr());
    const bool direct = std::is_same_v<T, C> && lines.step[0] == sizeof(T) && lines.step[1] == sizeof(T);
    const int64_t nk = static_cast<int64_t>(lines.size.size());
    if (!direct && nk > 0 && lines.strides[0][nk - 1] == sizeof(T) && lines.strides[1][nk - 1] == sizeof(T)) {
      softmax_tiles<T>(lines, src, dst, log);
      return;
    }
    lines.run([&](int64_t b, int64_t e, DimWalker<2>& w) {
      std::vector<C> buf(direct ? 0 : n);
      for (int64_t l = b; l < e; ++l, w.next()) {
        const char* x = src + w.off[0];
        char* y = dst + w.off[1];
        if (direct) {
          softmax_line<C>(reinterpret_cast<const C*>(x), reinterpret_cast<C*>(y), n, log);
        } else {
          load_line<T>(x, lines.step[0], n, buf.data());
          softmax_line<C>(buf.data(), buf.data(), n, log);
          store_line<T>(buf.data(), n, y, lines.step[1]);
        }
      }
    });
  });
}

void CpuBackend::softmax_backward(const Tensor& grad_out, const Tensor& out, int64_t dim, bool log,
                                  const Tensor& grad_in) {
  const char* name = log ? "log_softmax_backward" : "softmax_backward";
  KILN_CHECK(grad_out.sizes().equals(out.sizes()) && grad_in.sizes().equals(out.sizes()) &&
                 grad_out.dtype() == out.dtype() && grad_in.dtype() == out.dtype(),
             name, ": grad ", grad_out.toString(), ", output ", out.toString(), " and grad_in ", grad_in.toString(),
             " must match");
  dispatch_floating(out.dtype(), name, [&]<typename T>() {
    using C = compute_t<T>;
    const Lines<3> lines({&grad_out, &out, &grad_in}, dim);
    const int64_t n = lines.len;
    const char* g = static_cast<const char*>(grad_out.data_ptr());
    const char* y = static_cast<const char*>(out.data_ptr());
    char* gi = static_cast<char*>(grad_in.data_ptr());
    const bool direct = std::is_same_v<T, C> && lines.step[0] == sizeof(T) && lines.step[1] == sizeof(T) &&
                        lines.step[2] == sizeof(T);
    lines.run([&](int64_t b, int64_t e, DimWalker<3>& w) {
      std::vector<C> buf(direct ? 0 : 3 * n);
      for (int64_t l = b; l < e; ++l, w.next()) {
        if (direct) {
          softmax_backward_line<C>(reinterpret_cast<const C*>(g + w.off[0]), reinterpret_cast<const C*>(y + w.off[1]),
                                   reinterpret_cast<C*>(gi + w.off[2]), n, log);
        } else {
          C* bg = buf.data();
          C* by = bg + n;
          C* bo = by + n;
          load_line<T>(g + w.off[0], lines.step[0], n, bg);
          load_line<T>(y + w.off[1], lines.step[1], n, by);
          softmax_backward_line<C>(bg, by, bo, n, log);
          store_line<T>(bo, n, gi + w.off[2], lines.step[2]);
        }
      }
    });
  });
}

}  // namespace kiln::cpu
