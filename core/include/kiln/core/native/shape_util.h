#pragma once
// Shape arithmetic every op shares: wrapping negative dims, broadcasting,
// inferring -1 in a view, PyTorch's type promotion.
#include <initializer_list>
#include <vector>

#include "kiln/core/tensor.h"

namespace kiln::native {

// dim in [-ndim, ndim) -> [0, ndim); error names the op and the tensor's rank.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
// Sorted, unique dims; empty `dims` means all of them when `empty_means_all`.
DimVector wrap_dims(IntArrayRef dims, int64_t ndim, const char* op, bool empty_means_all = true);
// torch.broadcast_shapes; error names the op and both shapes.
DimVector broadcast_shapes(IntArrayRef a, IntArrayRef b, const char* op);
// Resolves a single -1 in a view/reshape target.
DimVector infer_size(IntArrayRef shape, int64_t numel, const char* op);

// Type promotion as torch.result_type: dimensioned tensors outrank 0-dim
// tensors, which outrank plain numbers, within a category (bool < int < float).
DType result_type(const Tensor& a, const Tensor& b);
DType result_type(const Tensor& a, const Scalar& b);
DType result_type(std::initializer_list<Tensor> tensors);

}  // namespace kiln::native
