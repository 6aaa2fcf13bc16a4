#pragma once
// Views share storage and never copy; contiguous/clone/copy_/to do.
#include <optional>

#include "kiln/core/tensor.h"

namespace kiln::native {

Tensor as_strided(const Tensor& t, IntArrayRef sizes, IntArrayRef strides, std::optional<int64_t> offset = std::nullopt);
Tensor view(const Tensor& t, IntArrayRef sizes);  // errors when the strides make a view impossible
Tensor reshape(const Tensor& t, IntArrayRef sizes);  // a view when possible, else a copy
Tensor permute(const Tensor& t, IntArrayRef dims);
Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1);
Tensor t(const Tensor& t);  // 0-D, 1-D unchanged; 2-D transposed; else an error
Tensor squeeze(const Tensor& t);
Tensor squeeze(const Tensor& t, int64_t dim);
Tensor unsqueeze(const Tensor& t, int64_t dim);
Tensor expand(const Tensor& t, IntArrayRef sizes);  // -1 keeps a size
Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length);
// Python slicing t[start:end:step] along dim, with clamping as Python does.
Tensor slice(const Tensor& t, int64_t dim, std::optional<int64_t> start, std::optional<int64_t> end, int64_t step = 1);
Tensor select(const Tensor& t, int64_t dim, int64_t index);
Tensor flatten(const Tensor& t, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor unflatten(const Tensor& t, int64_t dim, IntArrayRef sizes);
// The strides `sizes` would have as a view of t, or nullopt when impossible.
std::optional<DimVector> view_strides(const Tensor& t, IntArrayRef sizes);

Tensor contiguous(const Tensor& t);  // t itself when already contiguous
Tensor clone(const Tensor& t);       // always a fresh contiguous copy
void copy_(const Tensor& dst, const Tensor& src, bool non_blocking = false);  // src broadcast to dst
Tensor to(const Tensor& t, DType dtype);    // t itself when the dtype matches
Tensor to(const Tensor& t, Device device, bool non_blocking = false);
// Marks an in-place write for autograd's saved-tensor checks.
inline void bump_version(const Tensor& t) { t.storage()->bump_version(); }

}  // namespace kiln::native
