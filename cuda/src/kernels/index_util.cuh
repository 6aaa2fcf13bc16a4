#pragma once
// Shared by the CUDA index kernels (index.cu, index_accumulate.cu); the
// restriding helpers are core's, shared with the CPU (kiln/core/index_views.h).
#include <cstdint>
#include <memory>

#include "kernels/common.cuh"
#include "kiln/core/index_views.h"

namespace kiln::cuda {

using index_views::along;
using index_views::dispatch_bits;
using index_views::restride;
using index_views::with;

void check_device(const char* op, const Tensor& a, const Tensor& b);

// Throws the CPU's message for the first index outside [0, size). Only the
// host can throw, so this reads one word back: it synchronises with stream.
void check_indices(const char* op, const Tensor& index, int64_t dim, int64_t size, cudaStream_t stream);

// scatter(.., Add): deterministic, bit-identical to the CPU (index_accumulate.cu).
void scatter_add_deterministic(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
                               cudaStream_t stream);

// max_pool2d_backward: grad_in (contiguous [planes, plane]) = 0, then each
// grad_out[p, j] added at indices[p, j] of plane p, summed per element in the
// compute type in increasing j and rounded once, as the CPU does.
void plane_scatter_add_deterministic(const Tensor& grad_out, const Tensor& indices, const Tensor& grad_in,
                                     int64_t plane, int64_t out_plane, cudaStream_t stream);

}  // namespace kiln::cuda
