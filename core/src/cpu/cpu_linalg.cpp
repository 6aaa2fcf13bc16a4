// Batched matmul on OpenBLAS. Strided operands are described to BLAS (a
// leading dimension plus a transpose flag) instead of being copied; only an
// operand whose last two strides fit neither row- nor column-major layout is
// made contiguous first.
#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "cpu/cpu_backend.h"
#include "cpu/strided_loop.h"
#include "kiln/core/native/factory.h"

namespace kiln::cpu {

namespace {

// OpenBLAS runs a gemm on one thread when m*n*k is at most this (its
// multithreading threshold), so batches below it are spread across our own
// threads instead, each calling a single-threaded BLAS.
constexpr double kBlasSingleThreadWork = 65536.0 * 4.0;

// An R x C matrix at `base` with element (i, j) at base + i*sr + j*sc.
struct Mat {
  int64_t rows, cols, sr, sc;
};

// How BLAS (in row-major mode) should read a matrix: as stored (NoTrans, ld
// the row stride) or as the transpose of a row-major matrix (Trans, ld the
// column stride). A size-1 dim's stride never matters, so it is ignored.
struct BlasLayout {
  bool ok = false;
  bool trans = false;
  int64_t ld = 1;
};

BlasLayout blas_layout(const Mat& m) {
  const bool one_row = m.rows <= 1, one_col = m.cols <= 1;
  if ((one_col || m.sc == 1) && (one_row || m.sr >= std::max<int64_t>(1, m.cols))) {
    return {true, false, one_row ? std::max<int64_t>(1, m.cols) : m.sr};
  }
  if ((one_row || m.sr == 1) && (one_col || m.sc >= std::max<int64_t>(1, m.rows))) {
    return {true, true, one_col ? std::max<int64_t>(1, m.rows) : m.sc};
  }
  return {};
}

Mat transposed(const Mat& m) { return {m.cols, m.rows, m.sc, m.sr}; }

inline void gemm_call(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const float* a, int64_t lda,
                      const float* b, int64_t ldb, double beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), static_cast<float>(alpha), a, static_cast<int>(lda), b,
              static_cast<int>(ldb), static_cast<float>(beta), c, static_cast<int>(ldc));
}
inline void gemm_call(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
                      const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

// out = beta * out + alpha * out, without reading out when beta == 0 (so NaN
// or garbage there never leaks into the result). Used when K == 0.
template <typename T>
void scale_matrix(T* c, const Mat& cm, double beta) {
  for (int64_t i = 0; i < cm.rows; ++i) {
    for (int64_t j = 0; j < cm.cols; ++j) {
      T& v = c[i * cm.sr + j * cm.sc];
      v = beta == 0.0 ? T(0) : static_cast<T>(beta * v);
    }
  }
}

// All three matrices are BLAS-compatible (checked by the caller).
template <typename T>
void gemm_one(const T* a, const Mat& am, const T* b, const Mat& bm, T* c, const Mat& cm, double beta, double alpha) {
  const int64_t m = cm.rows, n = cm.cols, k = am.cols;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    scale_matrix(c, cm, beta);
    return;
  }
  const BlasLayout lc = blas_layout(cm);
  if (!lc.trans) {
    const BlasLayout la = blas_layout(am), lb = blas_layout(bm);
    gemm_call(la.trans, lb.trans, m, n, k, alpha, a, la.ld, b, lb.ld, beta, c, lc.ld);
  } else {
    // A column-major out is a row-major out^T = b^T a^T.
    const BlasLayout la = blas_layout(transposed(am)), lb = blas_layout(transposed(bm));
    gemm_call(lb.trans, la.trans, n, m, k, alpha, b, lb.ld, a, la.ld, beta, c, lc.ld);
  }
}

Mat matrix_of(const Tensor& t) { return {t.size(1), t.size(2), t.stride(1), t.stride(2)}; }

}  // namespace

void CpuBackend::bmm(const Tensor& a_in, const Tensor& b_in, const Tensor& out, const Scalar& beta_s,
                     const Scalar& alpha_s) {
  KILN_CHECK(a_in.dim() == 3 && b_in.dim() == 3 && out.dim() == 3, "bmm (CPU kernel): expected 3-D tensors, got ",
             a_in.sizes(), ", ", b_in.sizes(), " and out ", out.sizes());
  const int64_t B = out.size(0), M = out.size(1), N = out.size(2), K = a_in.size(2);
  KILN_CHECK(a_in.size(0) == B && b_in.size(0) == B && a_in.size(1) == M && b_in.size(1) == K && b_in.size(2) == N,
             "bmm (CPU kernel): shapes ", a_in.sizes(), " @ ", b_in.sizes(), " do not give out ", out.sizes());
  KILN_CHECK(a_in.dtype() == out.dtype() && b_in.dtype() == out.dtype(), "bmm (CPU kernel): dtypes differ (",
             dtype_name(a_in.dtype()), ", ", dtype_name(b_in.dtype()), ", out ", dtype_name(out.dtype()), ")");
  KILN_CHECK(out.dtype() == kFloat32 || out.dtype() == kFloat64,
             "bmm (CPU kernel): only float32 and float64 are supported, got ", dtype_name(out.dtype()));
  if (out.numel() == 0) return;
  const double beta = beta_s.toDouble(), alpha = alpha_s.toDouble();

  // Operands BLAS cannot read in place are copied once, whole.
  auto readable = [this](const Tensor& t) {
    if (blas_layout(matrix_of(t)).ok) return t;
    Tensor c = native::empty(t.sizes(), t.options());
    copy(t, c, false);
    return c;
  };
  const Tensor a = readable(a_in), b = readable(b_in);
  const bool out_ok = blas_layout(matrix_of(out)).ok;
  Tensor c = out;
  if (!out_ok) {
    c = native::empty(out.sizes(), out.options());
    if (beta != 0.0) copy(out, c, false);
  }

  const Mat am = matrix_of(a), bm = matrix_of(b), cm = matrix_of(c);
  const double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  dispatch_floating(out.dtype(), "bmm", [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      const T* pa = static_cast<const T*>(a.data_ptr());
      const T* pb = static_cast<const T*>(b.data_ptr());
      T* pc = static_cast<T*>(c.data_ptr());
      const int64_t sa = a.stride(0), sb = b.stride(0), sc = c.stride(0);
      auto run = [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) gemm_one(pa + i * sa, am, pb + i * sb, bm, pc + i * sc, cm, beta, alpha);
      };
      if (B > 1 && work <= kBlasSingleThreadWork) {
        // One small gemm per item: our threads take whole items.
        parallel_for(B, std::max<int64_t>(1, static_cast<int64_t>(kParallelGrain / std::max(1.0, work))), run);
      } else {
        run(0, B);
      }
    }
  });
  if (!out_ok) copy(c, out, false);
}

}  // namespace kiln::cpu
