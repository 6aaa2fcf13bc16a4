#pragma once
// cuBLASLt and cuDNN handles: one per (thread, device), as torch keeps them,
// because neither library lets two host threads share a handle safely
// while they change its stream. Handles are created on first use and,
// when a thread ends, go back to a pool for the next thread instead of
// being destroyed (destroying them at process exit can race the CUDA
// runtime's own teardown).
#include <cublasLt.h>
#include <cudnn.h>

#include <cstddef>

#include "kiln/cuda/stream.h"

namespace kiln::cuda {

// Bytes of workspace every cuBLASLt matmul may use (torch's default on
// Hopper-class GPUs); the heuristic is told this limit.
inline constexpr size_t kLtWorkspaceBytes = size_t{32} << 20;

// This thread's cuBLASLt handle for the stream's device. cuBLASLt takes the
// stream per call, so the handle itself is stream-free.
cublasLtHandle_t cublaslt_handle(const Stream& stream);

// kLtWorkspaceBytes of device memory for matmuls queued on `stream`, from
// the caching allocator and kept for the life of the handle. One buffer
// per stream: two streams must never share scratch memory, since their
// kernels may run at the same time.
void* cublaslt_workspace(const Stream& stream);

// This thread's cuDNN handle for the stream's device, bound to `stream`
// (cudnnSetStream on every call, so a change of current stream is seen).
cudnnHandle_t cudnn_handle(const Stream& stream);

}  // namespace kiln::cuda
