#pragma once
// Shared by the index kernels (index.cu, index_accumulate.cu).
//
// As on the CPU, the indexed tensor is "restrided": its stride along `dim`
// becomes 0, so a StridedIndexer walk gives the start of the indexed line,
// to which a kernel adds index * stride.
#include <cstdint>
#include <memory>

#include "kernels/common.cuh"
#include "kiln/core/tensor_impl.h"

namespace kiln::cuda {

// A view of t's storage with other sizes/strides (zero or negative strides
// allowed), only for building indexers and base pointers.
inline Tensor restride(const Tensor& t, IntArrayRef sizes, IntArrayRef strides, int64_t offset) {
  return Tensor(std::make_shared<TensorImpl>(t.storage(), t.dtype(), sizes.dims(), strides.dims(), offset));
}
inline Tensor restride(const Tensor& t, IntArrayRef sizes, IntArrayRef strides) {
  return restride(t, sizes, strides, t.storage_offset());
}

inline DimVector with(IntArrayRef v, int64_t dim, int64_t value) {
  DimVector out = v.dims();
  out[dim] = value;
  return out;
}

// Strides that walk a 1-D index along `dim` of a rank-`rank` shape.
inline DimVector along(int64_t rank, int64_t dim, int64_t stride) {
  DimVector s(static_cast<size_t>(rank), 0);
  s[dim] = stride;
  return s;
}

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
