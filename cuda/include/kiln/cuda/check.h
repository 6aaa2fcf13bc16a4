#pragma once
// Every CUDA, cuBLAS and cuDNN call goes through one of these macros: a
// failure becomes a kiln::Error naming the call as written, where it was
// made, and the library's own description of the error.
#include <cuda_runtime_api.h>

#include "kiln/core/error.h"

namespace kiln::cuda::detail {
[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line);
// Status codes are passed as int so this header needs neither cublas nor cudnn headers.
[[noreturn]] void throw_cublas_error(int status, const char* call, const char* file, int line);
[[noreturn]] void throw_cudnn_error(int status, const char* call, const char* file, int line);
}  // namespace kiln::cuda::detail

#define KILN_CUDA_CHECK(call)                                                            \
  do {                                                                                   \
    const cudaError_t kiln_status_ = (call);                                             \
    if (kiln_status_ != cudaSuccess) {                                                   \
      ::kiln::cuda::detail::throw_cuda_error(kiln_status_, #call, __FILE__, __LINE__);   \
    }                                                                                    \
  } while (0)

// After a kernel launch: launch-configuration errors surface here, at the launch.
#define KILN_CUDA_CHECK_LAUNCH() KILN_CUDA_CHECK(cudaGetLastError())

#define KILN_CUBLAS_CHECK(call)                                                                        \
  do {                                                                                                 \
    const int kiln_status_ = static_cast<int>(call);                                                   \
    if (kiln_status_ != 0) ::kiln::cuda::detail::throw_cublas_error(kiln_status_, #call, __FILE__, __LINE__); \
  } while (0)

#define KILN_CUDNN_CHECK(call)                                                                        \
  do {                                                                                                \
    const int kiln_status_ = static_cast<int>(call);                                                  \
    if (kiln_status_ != 0) ::kiln::cuda::detail::throw_cudnn_error(kiln_status_, #call, __FILE__, __LINE__); \
  } while (0)
