// Batched matmuls on cuBLASLt. Kiln is row-major and cuBLASLt column-major,
// so a row-major out = a @ b is computed as the column-major
// out^T = b^T a^T: the bytes of a row-major matrix already are its
// transpose in column-major order, and no operand moves. Each operand whose
// last two dims are row- or column-major is described by a leading
// dimension and a transpose flag; the batch is a strided batch (stride 0
// broadcasts an operand). Only operands with neither layout are copied.
//
// cuBLASLt's heuristic is asked once per problem (shapes, layouts, dtype,
// epilogue, pointer alignments, device) and its answer is kept: the same
// problem then always runs the same algorithm, so results are bitwise
// repeatable, and the per-call cost is a map lookup.
#include "kernels/matmul_lt.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "cuda_backend.h"
#include "handles.h"
#include "kiln/core/math_mode.h"
#include "kiln/core/native/elementwise.h"
#include "kiln/core/native/factory.h"
#include "kiln/core/native/view.h"
#include "kiln/cuda/check.h"
#include "kiln/cuda/matmul.h"
#include "kiln/cuda/runtime.h"
#include "kiln/cuda/stream.h"

namespace kiln::cuda {

namespace {


// (common.cuh's helpers, for a host-only file.)
int device_index(const Tensor& t) { return t.device().has_index() ? t.device().index() : 0; }
Stream stream_of(const Tensor& t) { return getCurrentCUDAStream(device_index(t)); }

// cuBLASLt takes rows, columns and batch counts that fit in int32.
constexpr int64_t kMaxLtDim = INT32_MAX;

// An R x C matrix with element (i, j) at i*sr + j*sc (elements).
struct Mat {
  int64_t rows, cols, sr, sc;
};

Mat transposed(const Mat& m) { return {m.cols, m.rows, m.sc, m.sr}; }
Mat matrix_of(const Tensor& t) { return {t.size(1), t.size(2), t.stride(1), t.stride(2)}; }

// How BLAS, thinking row-major, reads a matrix: as stored (trans = false,
// ld = row stride) or as the transpose of a row-major matrix (trans =
// true, ld = column stride). The stride of a size-1 dim is meaningless and
// is replaced by the smallest legal leading dimension.
struct BlasLayout {
  bool ok = false;
  bool trans = false;
  int64_t ld = 1;
};

BlasLayout blas_layout(const Mat& m) {
  const bool single_row = m.rows <= 1, single_col = m.cols <= 1;
  const int64_t min_row_ld = std::max<int64_t>(1, m.cols), min_col_ld = std::max<int64_t>(1, m.rows);
  if ((single_col || m.sc == 1) && (single_row || m.sr >= min_row_ld)) {
    return {true, false, single_row ? min_row_ld : m.sr};
  }
  if ((single_row || m.sr == 1) && (single_col || m.sc >= min_col_ld)) {
    return {true, true, single_col ? min_col_ld : m.sc};
  }
  return {};
}

struct LtTypes {
  cudaDataType_t data;
  cublasComputeType_t compute;
  cudaDataType_t scale;
};

LtTypes lt_types(DType dt, bool tf32) {
  switch (dt) {
    case kFloat64: return {CUDA_R_64F, CUBLAS_COMPUTE_64F, CUDA_R_64F};
    case kFloat32: return {CUDA_R_32F, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F};
    case kFloat16: return {CUDA_R_16F, CUBLAS_COMPUTE_32F, CUDA_R_32F};
    case kBFloat16: return {CUDA_R_16BF, CUBLAS_COMPUTE_32F, CUDA_R_32F};
    default: break;
  }
  KILN_ERROR("matmul (CUDA): no cuBLASLt types for dtype ", dtype_name(dt));
}

// Largest power of two (at most 256, cuBLASLt's default assumption) that
// divides the address: the heuristic must not pick kernels that need more.
uint32_t alignment_of(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 1;
  while (align < 256 && a % (2 * align) == 0) align *= 2;
  return align;
}

// ---- RAII for the descriptors (host objects, cheap to build per call) ----
struct MatmulDesc {
  cublasLtMatmulDesc_t d = nullptr;
  MatmulDesc(cublasComputeType_t compute, cudaDataType_t scale) {
    KILN_CUBLAS_CHECK(cublasLtMatmulDescCreate(&d, compute, scale));
  }
  ~MatmulDesc() { cublasLtMatmulDescDestroy(d); }
  MatmulDesc(const MatmulDesc&) = delete;
  MatmulDesc& operator=(const MatmulDesc&) = delete;
  template <typename T>
  void set(cublasLtMatmulDescAttributes_t attr, const T& value) {
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, attr, &value, sizeof(value)));
  }
};

struct Layout {
  cublasLtMatrixLayout_t l = nullptr;
  // A column-major rows x cols matrix, `batch` of them `batch_stride` apart.
  Layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t batch_stride) {
    KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld));
    if (batch > 1) {
      const auto count = static_cast<int32_t>(batch);
      KILN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
      KILN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &batch_stride,
                                                         sizeof(batch_stride)));
    }
  }
  ~Layout() { cublasLtMatrixLayoutDestroy(l); }
  Layout(const Layout&) = delete;
  Layout& operator=(const Layout&) = delete;
};

struct Preference {
  cublasLtMatmulPreference_t p = nullptr;
  Preference() { KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&p)); }
  ~Preference() { cublasLtMatmulPreferenceDestroy(p); }
  Preference(const Preference&) = delete;
  Preference& operator=(const Preference&) = delete;
  template <typename T>
  void set(cublasLtMatmulPreferenceAttributes_t attr, const T& value) {
    KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(p, attr, &value, sizeof(value)));
  }
};

// ---- the heuristic's answers ----
using AlgoKey = std::array<int64_t, 20>;
struct CachedAlgo {
  bool found = false;  // false: cuBLASLt has no algorithm for this problem
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
};

std::mutex g_algo_mutex;
std::map<AlgoKey, CachedAlgo> g_algos;
// Models meet few distinct problems; a run that keeps inventing new ones
// (varying sequence lengths) starts the cache over rather than grow it.
constexpr size_t kMaxCachedAlgos = 4096;

bool has_bias(cublasLtEpilogue_t e) { return e == CUBLASLT_EPILOGUE_BIAS || e == CUBLASLT_EPILOGUE_GELU_BIAS; }

const char* op_name_of(cublasLtEpilogue_t e) { return e == CUBLASLT_EPILOGUE_DEFAULT ? "bmm" : "matmul_lt"; }

// One cuBLASLt call: all dims within int32, a and b BLAS-readable, out
// BLAS-writable (row-major whenever there is a bias), K > 0.
bool run_lt(const Tensor& a, const Tensor& b, const Tensor& out, double alpha, double beta, cublasLtEpilogue_t epilogue,
            const Tensor& bias, bool must) {
  const int64_t B = out.size(0);
  int64_t m = out.size(1), n = out.size(2);
  const int64_t k = a.size(2);
  Mat am = matrix_of(a), bm = matrix_of(b), cm = matrix_of(out);
  const void* pa = a.data_ptr();
  const void* pb = b.data_ptr();
  void* pc = out.data_ptr();
  // A batch of one has no batch stride to speak of.
  int64_t sa = B > 1 ? a.stride(0) : 0, sb = B > 1 ? b.stride(0) : 0;
  const int64_t sc = B > 1 ? out.stride(0) : 0;
  if (blas_layout(cm).trans) {
    // A column-major out: compute the row-major out^T = b^T a^T instead.
    const Mat at = transposed(am);
    am = transposed(bm);
    bm = at;
    cm = transposed(cm);
    std::swap(pa, pb);
    std::swap(sa, sb);
    std::swap(m, n);
  }
  const BlasLayout la = blas_layout(am), lb = blas_layout(bm), lc = blas_layout(cm);
  KILN_CHECK(la.ok && lb.ok && lc.ok && !lc.trans, "matmul (CUDA): internal error: operand layouts not prepared");

  const DType dt = out.dtype();
  const bool tf32 = dt == kFloat32 && allow_tf32();
  const LtTypes types = lt_types(dt, tf32);
  const Stream stream = stream_of(out);
  const int device = stream.device_index();

  // Column-major problem: D (n x m) = op(A) (n x k) @ op(B) (k x m), with
  // A the bytes of b and B the bytes of a.
  const cublasOperation_t op_a = lb.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = la.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  const void* pbias = has_bias(epilogue) ? bias.data_ptr() : nullptr;

  const AlgoKey key{device, static_cast<int64_t>(dt), types.compute, op_a, op_b, n, m, k, lb.ld, la.ld, lc.ld, B,
                    sb, sa, sc, static_cast<int64_t>(epilogue), alignment_of(pb), alignment_of(pa), alignment_of(pc),
                    pbias != nullptr ? alignment_of(pbias) : 0};

  MatmulDesc desc(types.compute, types.scale);
  desc.set(CUBLASLT_MATMUL_DESC_TRANSA, static_cast<int32_t>(op_a));
  desc.set(CUBLASLT_MATMUL_DESC_TRANSB, static_cast<int32_t>(op_b));
  desc.set(CUBLASLT_MATMUL_DESC_EPILOGUE, static_cast<uint32_t>(epilogue));
  if (pbias != nullptr) {
    desc.set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, pbias);
    desc.set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, static_cast<int32_t>(types.data));
    // One bias for every matrix of the batch (cuBLASLt's default, said aloud).
    desc.set(CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, int64_t{0});
  }
  const Layout layout_a(types.data, lb.trans ? k : n, lb.trans ? n : k, lb.ld, B, sb);
  const Layout layout_b(types.data, la.trans ? m : k, la.trans ? k : m, la.ld, B, sa);
  const Layout layout_d(types.data, n, m, lc.ld, B, sc);

  cublasLtHandle_t handle = cublaslt_handle(stream);
  CachedAlgo chosen;
  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(g_algo_mutex);
    auto it = g_algos.find(key);
    if (it != g_algos.end()) {
      chosen = it->second;
      cached = true;
    }
  }
  if (!cached) {
    Preference pref;
    pref.set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, static_cast<uint64_t>(kLtWorkspaceBytes));
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, alignment_of(pb));
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, alignment_of(pa));
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, alignment_of(pc));
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, alignment_of(pc));
    cublasLtMatmulHeuristicResult_t result{};
    int returned = 0;
    const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(handle, desc.d, layout_a.l, layout_b.l, layout_d.l,
                                                                 layout_d.l, pref.p, 1, &result, &returned);
    if (status == CUBLAS_STATUS_SUCCESS && returned > 0 && result.state == CUBLAS_STATUS_SUCCESS) {
      chosen.found = true;
      chosen.algo = result.algo;
      chosen.workspace = result.workspaceSize;
    } else if (status != CUBLAS_STATUS_NOT_SUPPORTED && status != CUBLAS_STATUS_SUCCESS) {
      KILN_CUBLAS_CHECK(status);
    }
    std::lock_guard<std::mutex> lock(g_algo_mutex);
    if (g_algos.size() >= kMaxCachedAlgos) g_algos.clear();
    g_algos.emplace(key, chosen);
  }
  if (!chosen.found) {
    KILN_CHECK(!must, op_name_of(epilogue), " (CUDA): cuBLASLt has no algorithm for ", dtype_name(dt), " ",
               a.sizes(), " @ ", b.sizes(), " (strides ", a.strides(), " and ", b.strides(), ", out strides ",
               out.strides(), ", epilogue ", static_cast<int>(epilogue), ")");
    return false;
  }

  void* workspace = chosen.workspace > 0 ? cublaslt_workspace(stream) : nullptr;
  const size_t workspace_bytes = chosen.workspace > 0 ? kLtWorkspaceBytes : 0;
  // alpha and beta in the scale type, read from the host.
  const float alpha_f = static_cast<float>(alpha), beta_f = static_cast<float>(beta);
  const bool f64 = types.scale == CUDA_R_64F;
  const void* alpha_p = f64 ? static_cast<const void*>(&alpha) : static_cast<const void*>(&alpha_f);
  const void* beta_p = f64 ? static_cast<const void*>(&beta) : static_cast<const void*>(&beta_f);
  // C is D (in place); with beta == 0 cuBLASLt does not read it.
  KILN_CUBLAS_CHECK(cublasLtMatmul(handle, desc.d, alpha_p, pb, layout_a.l, pa, layout_b.l, beta_p, pc, layout_d.l, pc,
                                   layout_d.l, &chosen.algo, workspace, workspace_bytes, stream.stream()));
  return true;
}

// out = beta * out (+ bias, GELU) when K == 0: no product to take.
void empty_product(const Tensor& out, double beta, cublasLtEpilogue_t epilogue, const Tensor& bias) {
  if (beta == 0.0) {
    native::fill_(out, 0);
  } else if (beta != 1.0) {
    native::binary_(BinaryOp::Mul, out, Scalar(beta));
  }
  if (has_bias(epilogue)) native::binary_(BinaryOp::Add, out, bias);
  if (epilogue == CUBLASLT_EPILOGUE_GELU_BIAS) native::unary_(UnaryOp::GeluTanh, out);
}

bool gemm(const Tensor& a, const Tensor& b, const Tensor& out, double alpha, double beta, cublasLtEpilogue_t epilogue,
          const Tensor& bias, bool must);

// Problems with a dim beyond int32 run as several calls along that dim.
// Not with an epilogue: a failure after the first part would leave out
// half-written for a caller that falls back.
bool gemm_split(const Tensor& a, const Tensor& b, const Tensor& out, double alpha, double beta,
                cublasLtEpilogue_t epilogue, const Tensor& bias, bool must) {
  const char* op = op_name_of(epilogue);
  if (epilogue != CUBLASLT_EPILOGUE_DEFAULT) {
    KILN_CHECK(!must, op, " (CUDA): sizes beyond 2^31-1 are not supported with an epilogue (", a.sizes(), " @ ",
               b.sizes(), ")");
    return false;
  }
  const int64_t B = out.size(0), M = out.size(1), N = out.size(2), K = a.size(2);
  // The parts must all succeed: a part failing after others wrote (and
  // applied beta to) out would leave nothing a caller could fall back from,
  // so a part without an algorithm throws even for try_matmul_lt.
  auto parts = [](int64_t total, auto&& fn) {
    for (int64_t s = 0; s < total; s += kMaxLtDim) fn(s, std::min(kMaxLtDim, total - s));
  };
  if (B > kMaxLtDim) {
    parts(B, [&](int64_t s, int64_t len) {
      gemm(native::narrow(a, 0, s, len), native::narrow(b, 0, s, len), native::narrow(out, 0, s, len), alpha, beta,
           epilogue, bias, /*must=*/true);
    });
  } else if (M > kMaxLtDim) {
    parts(M, [&](int64_t s, int64_t len) {
      gemm(native::narrow(a, 1, s, len), b, native::narrow(out, 1, s, len), alpha, beta, epilogue, bias, /*must=*/true);
    });
  } else if (N > kMaxLtDim) {
    parts(N, [&](int64_t s, int64_t len) {
      gemm(a, native::narrow(b, 2, s, len), native::narrow(out, 2, s, len), alpha, beta, epilogue, bias, /*must=*/true);
    });
  } else {
    // Split K: the first part scales out by beta, the rest accumulate.
    parts(K, [&](int64_t s, int64_t len) {
      gemm(native::narrow(a, 2, s, len), native::narrow(b, 1, s, len), out, alpha, s == 0 ? beta : 1.0, epilogue,
           bias, /*must=*/true);
    });
  }
  return true;
}

bool gemm(const Tensor& a, const Tensor& b, const Tensor& out, double alpha, double beta, cublasLtEpilogue_t epilogue,
          const Tensor& bias, bool must) {
  const char* op = op_name_of(epilogue);
  KILN_CHECK(a.defined() && b.defined() && out.defined(), op, " (CUDA): undefined tensor argument");
  KILN_CHECK(a.dim() == 3 && b.dim() == 3 && out.dim() == 3, op, " (CUDA): expected 3-D tensors, got ", a.sizes(),
             ", ", b.sizes(), " and out ", out.sizes());
  const int64_t B = out.size(0), M = out.size(1), N = out.size(2), K = a.size(2);
  KILN_CHECK(a.size(0) == B && b.size(0) == B && a.size(1) == M && b.size(1) == K && b.size(2) == N, op,
             " (CUDA): shapes ", a.sizes(), " @ ", b.sizes(), " do not give out ", out.sizes());
  KILN_CHECK(a.dtype() == out.dtype() && b.dtype() == out.dtype(), op, " (CUDA): dtypes differ (",
             dtype_name(a.dtype()), ", ", dtype_name(b.dtype()), ", out ", dtype_name(out.dtype()), ")");
  KILN_CHECK(is_floating_point(out.dtype()), op, " (CUDA): \"", op, "_cuda\" not implemented for '",
             dtype_name(out.dtype()), "'");
  KILN_CHECK(a.device().is_cuda() && a.device() == out.device() && b.device() == out.device(), op,
             " (CUDA): expected all tensors on one CUDA device, got ", a.device(), ", ", b.device(), " and out ",
             out.device());
  const bool with_bias = has_bias(epilogue);
  KILN_CHECK(epilogue == CUBLASLT_EPILOGUE_DEFAULT || with_bias, op, " (CUDA): unsupported epilogue ",
             static_cast<int>(epilogue), " (DEFAULT, BIAS and GELU_BIAS are)");
  if (with_bias) {
    KILN_CHECK(bias.defined() && bias.dim() == 1 && bias.size(0) == N && bias.is_contiguous() &&
                   bias.dtype() == out.dtype() && bias.device() == out.device(),
               op, " (CUDA): expected a contiguous 1-D ", dtype_name(out.dtype()), " bias of ", N,
               " elements on the output's device, got ", bias.defined() ? bias.sizes() : IntArrayRef{});
  }
  if (out.numel() == 0) return true;
  DeviceGuard guard(device_index(out));
  if (K == 0) {
    empty_product(out, beta, epilogue, bias);
    return true;
  }
  if (B > kMaxLtDim || M > kMaxLtDim || N > kMaxLtDim || K > kMaxLtDim) {
    return gemm_split(a, b, out, alpha, beta, epilogue, bias, must);
  }

  // Operands neither row- nor column-major are copied once, whole.
  const Tensor ra = blas_layout(matrix_of(a)).ok ? a : native::contiguous(a);
  const Tensor rb = blas_layout(matrix_of(b)).ok ? b : native::contiguous(b);
  // out is written in place when cuBLASLt can describe it: a BLAS layout,
  // batches that do not alias, and row-major when the bias runs along rows.
  const BlasLayout lc = blas_layout(matrix_of(out));
  const bool direct = lc.ok && !(B > 1 && out.stride(0) == 0) && !(with_bias && lc.trans);
  if (direct) return run_lt(ra, rb, out, alpha, beta, epilogue, bias, must);
  Tensor tmp = native::empty(out.sizes(), out.options());
  if (beta != 0.0) native::copy_(tmp, out);
  if (!run_lt(ra, rb, tmp, alpha, beta, epilogue, bias, must)) return false;
  native::copy_(out, tmp);
  return true;
}

}  // namespace

// The same switch as kiln::set_float32_matmul_precision("high"), which the trainer sets.
void set_allow_tf32(bool allow) { set_float32_matmul_precision(allow ? "high" : "highest"); }
bool allow_tf32() { return float32_matmul_allows_tf32(); }

void matmul_lt(const Tensor& a, const Tensor& b, const Tensor& out, double alpha, double beta,
               cublasLtEpilogue_t epilogue, const Tensor& bias) {
  gemm(a, b, out, alpha, beta, epilogue, bias, /*must=*/true);
}

bool try_matmul_lt(const Tensor& a, const Tensor& b, const Tensor& out, double alpha, double beta,
                   cublasLtEpilogue_t epilogue, const Tensor& bias) {
  return gemm(a, b, out, alpha, beta, epilogue, bias, /*must=*/false);
}

void CudaBackend::bmm(const Tensor& a, const Tensor& b, const Tensor& out, const Scalar& beta, const Scalar& alpha) {
  gemm(a, b, out, alpha.toDouble(), beta.toDouble(), CUBLASLT_EPILOGUE_DEFAULT, Tensor(), /*must=*/true);
}

// The bias rides in cuBLASLt's epilogue: no pass writing it into out, and
// out is never read. Where cuBLASLt has no algorithm for that, the default
// (bias copied in, then beta 1).
void CudaBackend::bmm_bias(const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& out) {
  if (gemm(a, b, out, 1.0, 0.0, CUBLASLT_EPILOGUE_BIAS, bias, /*must=*/false)) return;
  Backend::bmm_bias(a, b, bias, out);
}

}  // namespace kiln::cuda
