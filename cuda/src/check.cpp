#include "kiln/cuda/check.h"

#include <cublas_api.h>
#include <cudnn.h>

namespace kiln::cuda::detail {

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  // Clear a sticky launch error so the next check does not report it again.
  (void)cudaGetLastError();
  KILN_ERROR("CUDA error: ", call, " failed with ", cudaGetErrorName(status), " (", cudaGetErrorString(status),
             ") at ", file, ":", line);
}

void throw_cublas_error(int status, const char* call, const char* file, int line) {
  KILN_ERROR("cuBLAS error: ", call, " failed with ", cublasGetStatusName(static_cast<cublasStatus_t>(status)), " (",
             cublasGetStatusString(static_cast<cublasStatus_t>(status)), ") at ", file, ":", line);
}

void throw_cudnn_error(int status, const char* call, const char* file, int line) {
  KILN_ERROR("cuDNN error: ", call, " failed with ", cudnnGetErrorString(static_cast<cudnnStatus_t>(status)), " at ",
             file, ":", line);
}

}  // namespace kiln::cuda::detail
