#pragma once
// Joining, splitting and index-driven ops.
#include <vector>

#include "kiln/core/backend.h"
#include "kiln/core/tensor.h"

namespace kiln::native {

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> split_with_sizes(const Tensor& t, IntArrayRef sizes, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t dim = 0);
Tensor index_select(const Tensor& t, int64_t dim, const Tensor& index);
Tensor gather(const Tensor& t, int64_t dim, const Tensor& index);
Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Scalar& value);
Tensor scatter_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
void scatter_add_(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
Tensor index_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& source, const Scalar& alpha = 1);
void index_add_(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& source, const Scalar& alpha = 1);
Tensor one_hot(const Tensor& index, int64_t num_classes = -1);
// pad: (left, right) pairs starting from the last dim, as torch.nn.functional.pad; negative trims.
Tensor pad(const Tensor& t, IntArrayRef pad, const Scalar& value = 0);
Tensor flip(const Tensor& t, IntArrayRef dims);
Tensor repeat(const Tensor& t, IntArrayRef repeats);
Tensor roll(const Tensor& t, IntArrayRef shifts, IntArrayRef dims = {});
Tensor tril(const Tensor& t, int64_t diagonal = 0);
Tensor triu(const Tensor& t, int64_t diagonal = 0);

}  // namespace kiln::native
