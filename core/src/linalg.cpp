// mm, bmm, matmul, addmm, baddbmm, linear: argument checks and shape logic,
// all funnelled into the backend's one strided bmm kernel. Batch dims are
// folded into M or expanded with stride 0 rather than copied.
#include "kiln/core/native/linalg.h"

#include <sstream>

#include "kiln/core/backend.h"
#include "kiln/core/native/factory.h"
#include "kiln/core/native/shape_util.h"
#include "kiln/core/native/view.h"

namespace kiln::native {

namespace {

// "2x3", the way torch names matrix shapes in matmul errors.
std::string shape_x(IntArrayRef s) {
  std::ostringstream os;
  for (size_t i = 0; i < s.size(); ++i) os << (i ? "x" : "") << s[i];
  return os.str();
}

void check_operands(const char* op, const Tensor& a, const Tensor& b) {
  KILN_CHECK(a.defined() && b.defined(), op, ": undefined tensor argument");
  KILN_CHECK(a.device() == b.device(), op, ": expected both tensors on the same device, got ", a.device(), " and ",
             b.device());
  KILN_CHECK(a.dtype() == b.dtype(), op, ": expected both tensors to have the same dtype, but got ",
             dtype_name(a.dtype()), " != ", dtype_name(b.dtype()));
  KILN_CHECK(is_floating_point(a.dtype()), op, ": expected floating point tensors (Kiln's matmuls are float-only), got ",
             dtype_name(a.dtype()));
}

// out (3-D) = beta * out + alpha * a @ b. On the CPU, 16-bit floats run as
// float32 and are rounded back once at the end; CUDA takes them natively
// (f32 accumulation in cuBLASLt).
void gemm_into(const Tensor& a, const Tensor& b, const Tensor& out, const Scalar& beta, const Scalar& alpha) {
  Backend& be = backend_of(out);
  if (!is_reduced_float(out.dtype()) || !out.is_cpu()) {
    be.bmm(a, b, out, beta, alpha);
    return;
  }
  const bool keep = beta.toDouble() != 0.0;
  Tensor acc = keep ? to(out, kFloat32) : empty(out.sizes(), out.options().dtype(kFloat32));
  be.bmm(to(a, kFloat32), to(b, kFloat32), acc, beta, alpha);
  be.copy(acc, out, false);
}

// input, the beta * input part of addmm/baddbmm/linear, shares out's device and dtype.
void check_input(const Tensor& out, const Tensor& input, const char* op) {
  KILN_CHECK(input.device() == out.device(), op, ": input is on ", input.device(), " but the matrices are on ",
             out.device());
  KILN_CHECK(input.dtype() == out.dtype(), op, ": expected input of dtype ", dtype_name(out.dtype()), " but got ",
             dtype_name(input.dtype()));
}

// out = input broadcast to out's shape.
void fill_with_input(const Tensor& out, const Tensor& input, const char* op) {
  check_input(out, input, op);
  DimVector shape = broadcast_shapes(out.sizes(), input.sizes(), op);
  KILN_CHECK(shape == out.sizes().dims(), op, ": input of shape ", input.sizes(),
             " cannot be broadcast to the result's shape ", out.sizes());
  backend_of(out).copy(expand(input, out.sizes()), out, false);
}

Tensor as_batch(const Tensor& m) { return unsqueeze(m, 0); }

void check_mm_shapes(const Tensor& a, const Tensor& b) {
  KILN_CHECK(a.dim() == 2, "mm: mat1 must be a matrix, got ", a.dim(), "-D tensor of shape ", a.sizes());
  KILN_CHECK(b.dim() == 2, "mm: mat2 must be a matrix, got ", b.dim(), "-D tensor of shape ", b.sizes());
  KILN_CHECK(a.size(1) == b.size(0), "mm: mat1 and mat2 shapes cannot be multiplied (", shape_x(a.sizes()), " and ",
             shape_x(b.sizes()), ")");
}

void check_bmm_shapes(const char* op, const Tensor& a, const Tensor& b) {
  KILN_CHECK(a.dim() == 3, op, ": batch1 must be a 3D tensor, got shape ", a.sizes());
  KILN_CHECK(b.dim() == 3, op, ": batch2 must be a 3D tensor, got shape ", b.sizes());
  KILN_CHECK(b.size(0) == a.size(0) && b.size(1) == a.size(2), op,
             ": expected size for first two dimensions of batch2 tensor to be: [", a.size(0), ", ", a.size(2),
             "] but got: [", b.size(0), ", ", b.size(1), "] (shapes ", a.sizes(), " and ", b.sizes(), ")");
}

// [..., M, K] @ [..., K, N] with equal (already broadcast) batch dims into a
// contiguous out [..., M, N] (out = beta * out + a @ b). One bmm when each operand's batch dims
// merge into one without copying; otherwise one bmm per leading index.
void batched_into(const Tensor& a, const Tensor& b, const Tensor& out, const Scalar& beta) {
  const int64_t nb = out.dim() - 2;
  DimVector shape_a{-1, a.size(-2), a.size(-1)}, shape_b{-1, b.size(-2), b.size(-1)};
  int64_t batch = 1;
  for (int64_t d = 0; d < nb; ++d) batch *= out.size(d);
  shape_a[0] = shape_b[0] = batch;
  auto sa = view_strides(a, shape_a), sb = view_strides(b, shape_b);
  if (sa && sb) {
    gemm_into(as_strided(a, shape_a, *sa), as_strided(b, shape_b, *sb),
              view(out, {batch, out.size(-2), out.size(-1)}), beta, 1);
    return;
  }
  if (nb == 1) {  // a single batch dim is always a valid 3-D view
    gemm_into(a, b, out, beta, 1);
    return;
  }
  for (int64_t i = 0; i < out.size(0); ++i) batched_into(select(a, 0, i), select(b, 0, i), select(out, 0, i), beta);
}

}  // namespace

Tensor mm(const Tensor& a, const Tensor& b) {
  check_operands("mm", a, b);
  check_mm_shapes(a, b);
  Tensor out = empty({a.size(0), b.size(1)}, a.options());
  gemm_into(as_batch(a), as_batch(b), as_batch(out), 0, 1);
  return out;
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  check_operands("bmm", a, b);
  check_bmm_shapes("bmm", a, b);
  Tensor out = empty({a.size(0), a.size(1), b.size(2)}, a.options());
  gemm_into(a, b, out, 0, 1);
  return out;
}

Tensor addmm(const Tensor& input, const Tensor& mat1, const Tensor& mat2, const Scalar& beta, const Scalar& alpha) {
  check_operands("addmm", mat1, mat2);
  check_mm_shapes(mat1, mat2);
  Tensor out = empty({mat1.size(0), mat2.size(1)}, mat1.options());
  // beta == 0 ignores input entirely (NaN there does not propagate), as torch.
  const bool use_input = beta.toDouble() != 0.0;
  if (use_input) fill_with_input(out, input, "addmm");
  gemm_into(as_batch(mat1), as_batch(mat2), as_batch(out), use_input ? beta : Scalar(0), alpha);
  return out;
}

Tensor baddbmm(const Tensor& input, const Tensor& batch1, const Tensor& batch2, const Scalar& beta,
               const Scalar& alpha) {
  check_operands("baddbmm", batch1, batch2);
  check_bmm_shapes("baddbmm", batch1, batch2);
  Tensor out = empty({batch1.size(0), batch1.size(1), batch2.size(2)}, batch1.options());
  const bool use_input = beta.toDouble() != 0.0;
  if (use_input) fill_with_input(out, input, "baddbmm");
  gemm_into(batch1, batch2, out, use_input ? beta : Scalar(0), alpha);
  return out;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  KILN_CHECK(a.defined() && b.defined(), "matmul: undefined tensor argument");
  KILN_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both arguments need to be at least 1D, but they are ", a.dim(),
             "D and ", b.dim(), "D");
  check_operands("matmul", a, b);
  const int64_t da = a.dim(), db = b.dim();
  if (da == 1 && db == 1) {
    KILN_CHECK(a.size(0) == b.size(0), "matmul: 1D tensors expected to have the same number of elements, got ",
               a.sizes(), " and ", b.sizes());
    return reshape(mm(unsqueeze(a, 0), unsqueeze(b, 1)), {});
  }
  if (da == 2 && db == 1) {
    KILN_CHECK(a.size(1) == b.size(0), "matmul: size mismatch, got input (", shape_x(a.sizes()), ") and vec (",
               b.size(0), ")");
    return squeeze(mm(a, unsqueeze(b, 1)), 1);
  }
  if (da == 1 && db == 2) {
    KILN_CHECK(a.size(0) == b.size(0), "matmul: mat1 and mat2 shapes cannot be multiplied (1x", a.size(0), " and ",
               shape_x(b.sizes()), ")");
    return squeeze(mm(unsqueeze(a, 0), b), 0);
  }
  if (da == 2 && db == 2) return mm(a, b);

  // Batched: a 1-D left operand is a row vector, a 1-D right one a column;
  // the added dim is removed from the result.
  const Tensor a2 = da == 1 ? unsqueeze(a, 0) : a;
  const Tensor b2 = db == 1 ? unsqueeze(b, 1) : b;
  const int64_t M = a2.size(-2), K = a2.size(-1), N = b2.size(-1);
  KILN_CHECK(b2.size(-2) == K, "matmul: mat1 and mat2 shapes cannot be multiplied (", shape_x(a.sizes()), " and ",
             shape_x(b.sizes()), ")");
  DimVector batch_a(a2.sizes().begin(), a2.dim() - 2), batch_b(b2.sizes().begin(), b2.dim() - 2);
  DimVector batch = broadcast_shapes(batch_a, batch_b, "matmul");
  DimVector out_shape = batch;
  if (da > 1) out_shape.push_back(M);
  if (db > 1) out_shape.push_back(N);

  if (db <= 2) {
    // [..., M, K] @ [K, N]: fold the batch dims into M when that needs no
    // copy, giving one [B*M, K] @ [K, N] gemm.
    int64_t rows = M;
    for (int64_t s : batch) rows *= s;
    const DimVector folded{rows, K};
    if (auto strides = view_strides(a2, folded)) {
      Tensor out = mm(as_strided(a2, folded, *strides), b2);
      return view(out, out_shape);
    }
  }
  DimVector full_a = batch, full_b = batch, full_out = batch;
  full_a.push_back(M);
  full_a.push_back(K);
  full_b.push_back(K);
  full_b.push_back(N);
  full_out.push_back(M);
  full_out.push_back(N);
  Tensor out = empty(full_out, a.options());
  if (out.numel() > 0) batched_into(expand(a2, full_a), expand(b2, full_b), out, 0);
  return view(out, out_shape);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  KILN_CHECK(x.defined() && weight.defined(), "linear: undefined input or weight");
  KILN_CHECK(weight.dim() == 2, "linear: weight must be 2-D [out_features, in_features], got shape ",
             weight.sizes());
  KILN_CHECK(x.dim() >= 1, "linear: input must have at least 1 dim, got a 0-dim tensor");
  check_operands("linear", x, weight);
  const int64_t in = weight.size(1), out_features = weight.size(0);
  int64_t lead = 1;
  for (int64_t d = 0; d + 1 < x.dim(); ++d) lead *= x.size(d);
  KILN_CHECK(x.size(-1) == in, "linear: mat1 and mat2 shapes cannot be multiplied (", lead, "x", x.size(-1), " and ",
             in, "x", out_features, ")");
  // W^T as a view: BLAS reads it column-major with a transpose flag, no copy.
  const Tensor wt = transpose(weight, 0, 1);
  DimVector out_shape(x.sizes().begin(), x.dim() - 1);
  out_shape.push_back(out_features);
  Tensor out = empty(out_shape, x.options());
  const DimVector folded{lead, in};
  const auto strides = view_strides(x, folded);
  // Off the CPU a 1-D bias on the folded gemm goes to the backend with the
  // matmul (CUDA adds it in cuBLASLt's epilogue); otherwise it is written
  // into out first and the gemm accumulates onto it.
  const bool bias_with_gemm =
      bias.defined() && bias.dim() == 1 && bias.size(0) == out_features && strides && !out.is_cpu();
  if (bias_with_gemm) {
    check_input(out, bias, "linear");
  } else if (bias.defined()) {
    fill_with_input(out, bias, "linear");
  }
  const Scalar beta = bias.defined() && !bias_with_gemm ? 1 : 0;
  if (out.numel() == 0) return out;
  if (strides) {
    // All leading dims fold into M: one [lead, in] @ [in, out] gemm.
    const Tensor a = as_batch(as_strided(x, folded, *strides)), o = as_batch(view(out, {lead, out_features}));
    if (bias_with_gemm) {
      backend_of(out).bmm_bias(a, as_batch(wt), contiguous(bias), o);
    } else {
      gemm_into(a, as_batch(wt), o, beta, 1);
    }
    return out;
  }
  // Leading dims that do not merge (x is >= 3-D here): batched over them, W
  // expanded with stride 0.
  DimVector wshape(x.sizes().begin(), x.dim() - 2);
  wshape.push_back(in);
  wshape.push_back(out_features);
  batched_into(x, expand(wt, wshape), out, beta);
  return out;
}

}  // namespace kiln::native
