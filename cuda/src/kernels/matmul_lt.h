#pragma once
// Batched matmuls on cuBLASLt, with the fused epilogues a later fused
// linear layer needs. CudaBackend::bmm is matmul_lt with the default
// epilogue; benchmarks may call matmul_lt directly.
#include <cublasLt.h>

#include "kiln/core/tensor.h"

namespace kiln::cuda {

// out[i] = epilogue(alpha * a[i] @ b[i] + beta * out[i]) for a [B, M, K],
// b [B, K, N], out [B, M, N], all on one CUDA device with one floating
// dtype (float64, float32, float16 or bfloat16; 16-bit floats accumulate in
// float32, float32 in TF32 only when allow_tf32()). Strides are free:
// operands whose last two dims are row- or column-major (any leading
// dimension, batch stride 0 for broadcasts) are read in place; others are
// made contiguous first. beta == 0 never reads out (NaN there does not
// leak).
//
// epilogue: CUBLASLT_EPILOGUE_DEFAULT, CUBLASLT_EPILOGUE_BIAS (+ bias[n]
// on every row) or CUBLASLT_EPILOGUE_GELU_BIAS (then cuBLASLt's GELU, the
// tanh approximation: torch's gelu(approximate='tanh')). bias: contiguous
// 1-D [N] of out's dtype, undefined for the default epilogue.
//
// Throws kiln::Error when cuBLASLt has no algorithm for the request (some
// epilogue/dtype pairs); try_matmul_lt returns false instead, so a caller
// can fall back to bmm plus separate kernels.
void matmul_lt(const Tensor& a, const Tensor& b, const Tensor& out, double alpha, double beta,
               cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT, const Tensor& bias = Tensor());
bool try_matmul_lt(const Tensor& a, const Tensor& b, const Tensor& out, double alpha, double beta,
                   cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT, const Tensor& bias = Tensor());

}  // namespace kiln::cuda
