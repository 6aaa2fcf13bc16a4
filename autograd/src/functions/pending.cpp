// Differentiable functions not written yet: each throws until its family's
// file defines it. Delete a line here when implementing the function.
#include "kiln/autograd/functions.h"

namespace kiln {
#define KILN_AUTOGRAD_PENDING(name) KILN_ERROR(name, " is not implemented yet (autograd)")
// ---- reductions.cpp ----
Tensor prod(const Tensor& t, std::optional<DType> dtype) { KILN_AUTOGRAD_PENDING("prod"); }
Tensor prod(const Tensor& t, int64_t dim, bool keepdim, std::optional<DType> dtype) { KILN_AUTOGRAD_PENDING("prod"); }
Tensor max(const Tensor& t) { KILN_AUTOGRAD_PENDING("max"); }
std::tuple<Tensor, Tensor> max(const Tensor& t, int64_t dim, bool keepdim) { KILN_AUTOGRAD_PENDING("max"); }
Tensor min(const Tensor& t) { KILN_AUTOGRAD_PENDING("min"); }
std::tuple<Tensor, Tensor> min(const Tensor& t, int64_t dim, bool keepdim) { KILN_AUTOGRAD_PENDING("min"); }
Tensor amax(const Tensor& t, IntArrayRef dims, bool keepdim) { KILN_AUTOGRAD_PENDING("amax"); }
Tensor amin(const Tensor& t, IntArrayRef dims, bool keepdim) { KILN_AUTOGRAD_PENDING("amin"); }
Tensor argmax(const Tensor& t, std::optional<int64_t> dim, bool keepdim) { KILN_AUTOGRAD_PENDING("argmax"); }
Tensor argmin(const Tensor& t, std::optional<int64_t> dim, bool keepdim) { KILN_AUTOGRAD_PENDING("argmin"); }
Tensor var(const Tensor& t, bool unbiased) { KILN_AUTOGRAD_PENDING("var"); }
Tensor var(const Tensor& t, IntArrayRef dims, bool unbiased, bool keepdim) { KILN_AUTOGRAD_PENDING("var"); }
Tensor std(const Tensor& t, bool unbiased) { KILN_AUTOGRAD_PENDING("std"); }
Tensor std(const Tensor& t, IntArrayRef dims, bool unbiased, bool keepdim) { KILN_AUTOGRAD_PENDING("std"); }
Tensor norm(const Tensor& t, const Scalar& p) { KILN_AUTOGRAD_PENDING("norm"); }
Tensor norm(const Tensor& t, const Scalar& p, IntArrayRef dims, bool keepdim) { KILN_AUTOGRAD_PENDING("norm"); }
Tensor logsumexp(const Tensor& t, IntArrayRef dims, bool keepdim) { KILN_AUTOGRAD_PENDING("logsumexp"); }
Tensor all(const Tensor& t) { KILN_AUTOGRAD_PENDING("all"); }
Tensor all(const Tensor& t, int64_t dim, bool keepdim) { KILN_AUTOGRAD_PENDING("all"); }
Tensor any(const Tensor& t) { KILN_AUTOGRAD_PENDING("any"); }
Tensor any(const Tensor& t, int64_t dim, bool keepdim) { KILN_AUTOGRAD_PENDING("any"); }
// ---- softmax.cpp ----
Tensor softmax(const Tensor& t, int64_t dim, std::optional<DType> dtype) { KILN_AUTOGRAD_PENDING("softmax"); }
Tensor log_softmax(const Tensor& t, int64_t dim, std::optional<DType> dtype) { KILN_AUTOGRAD_PENDING("log_softmax"); }
// ---- linalg.cpp ----
Tensor mm(const Tensor& a, const Tensor& b) { KILN_AUTOGRAD_PENDING("mm"); }
Tensor bmm(const Tensor& a, const Tensor& b) { KILN_AUTOGRAD_PENDING("bmm"); }
Tensor matmul(const Tensor& a, const Tensor& b) { KILN_AUTOGRAD_PENDING("matmul"); }
Tensor addmm(const Tensor& input, const Tensor& mat1, const Tensor& mat2, const Scalar& beta, const Scalar& alpha) { KILN_AUTOGRAD_PENDING("addmm"); }
Tensor baddbmm(const Tensor& input, const Tensor& batch1, const Tensor& batch2, const Scalar& beta, const Scalar& alpha) { KILN_AUTOGRAD_PENDING("baddbmm"); }
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) { KILN_AUTOGRAD_PENDING("linear"); }
// ---- indexing.cpp ----
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) { KILN_AUTOGRAD_PENDING("cat"); }
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) { KILN_AUTOGRAD_PENDING("stack"); }
std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t dim) { KILN_AUTOGRAD_PENDING("split"); }
std::vector<Tensor> split(const Tensor& t, IntArrayRef split_sizes, int64_t dim) { KILN_AUTOGRAD_PENDING("split"); }
std::vector<Tensor> split_with_sizes(const Tensor& t, IntArrayRef split_sizes, int64_t dim) { KILN_AUTOGRAD_PENDING("split_with_sizes"); }
std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t dim) { KILN_AUTOGRAD_PENDING("chunk"); }
Tensor index_select(const Tensor& t, int64_t dim, const Tensor& index) { KILN_AUTOGRAD_PENDING("index_select"); }
Tensor gather(const Tensor& t, int64_t dim, const Tensor& index) { KILN_AUTOGRAD_PENDING("gather"); }
Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) { KILN_AUTOGRAD_PENDING("scatter"); }
Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Scalar& value) { KILN_AUTOGRAD_PENDING("scatter"); }
Tensor scatter_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) { KILN_AUTOGRAD_PENDING("scatter_add"); }
Tensor index_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& source, const Scalar& alpha) { KILN_AUTOGRAD_PENDING("index_add"); }
Tensor one_hot(const Tensor& index, int64_t num_classes) { KILN_AUTOGRAD_PENDING("one_hot"); }
Tensor pad(const Tensor& t, IntArrayRef pad, const Scalar& value) { KILN_AUTOGRAD_PENDING("pad"); }
Tensor flip(const Tensor& t, IntArrayRef dims) { KILN_AUTOGRAD_PENDING("flip"); }
Tensor repeat(const Tensor& t, IntArrayRef repeats) { KILN_AUTOGRAD_PENDING("repeat"); }
Tensor roll(const Tensor& t, IntArrayRef shifts, IntArrayRef dims) { KILN_AUTOGRAD_PENDING("roll"); }
Tensor tril(const Tensor& t, int64_t diagonal) { KILN_AUTOGRAD_PENDING("tril"); }
Tensor triu(const Tensor& t, int64_t diagonal) { KILN_AUTOGRAD_PENDING("triu"); }
}  // namespace kiln
