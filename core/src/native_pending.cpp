// Native ops not written yet: each throws until its file lands. Delete a
// definition here when implementing it in its own file.
#include "kiln/core/native.h"

namespace kiln::native {
// ---- elementwise.h ----
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) { KILN_ERROR("binary is not implemented yet"); }
Tensor binary(BinaryOp op, const Tensor& a, const Scalar& b) { KILN_ERROR("binary is not implemented yet"); }
Tensor binary(BinaryOp op, const Scalar& a, const Tensor& b) { KILN_ERROR("binary is not implemented yet"); }
void binary_(BinaryOp op, const Tensor& out, const Tensor& b) { KILN_ERROR("binary_ is not implemented yet"); }
void binary_(BinaryOp op, const Tensor& out, const Scalar& b) { KILN_ERROR("binary_ is not implemented yet"); }
Tensor unary(UnaryOp op, const Tensor& a) { KILN_ERROR("unary is not implemented yet"); }
void unary_(UnaryOp op, const Tensor& a) { KILN_ERROR("unary_ is not implemented yet"); }
Tensor add(const Tensor& a, const Tensor& b, const Scalar& alpha) { KILN_ERROR("add is not implemented yet"); }
Tensor sub(const Tensor& a, const Tensor& b, const Scalar& alpha) { KILN_ERROR("sub is not implemented yet"); }
Tensor mul(const Tensor& a, const Tensor& b) { KILN_ERROR("mul is not implemented yet"); }
Tensor div(const Tensor& a, const Tensor& b) { KILN_ERROR("div is not implemented yet"); }
Tensor mul(const Tensor& a, const Scalar& b) { KILN_ERROR("mul is not implemented yet"); }
Tensor add(const Tensor& a, const Scalar& b) { KILN_ERROR("add is not implemented yet"); }
Tensor pow(const Tensor& a, const Scalar& exponent) { KILN_ERROR("pow is not implemented yet"); }
Tensor pow(const Tensor& a, const Tensor& exponent) { KILN_ERROR("pow is not implemented yet"); }
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) { KILN_ERROR("where is not implemented yet"); }
Tensor where(const Tensor& cond, const Tensor& a, const Scalar& b) { KILN_ERROR("where is not implemented yet"); }
Tensor where(const Tensor& cond, const Scalar& a, const Tensor& b) { KILN_ERROR("where is not implemented yet"); }
Tensor masked_fill(const Tensor& t, const Tensor& mask, const Scalar& value) { KILN_ERROR("masked_fill is not implemented yet"); }
Tensor clamp(const Tensor& t, const std::optional<Scalar>& min, const std::optional<Scalar>& max) { KILN_ERROR("clamp is not implemented yet"); }
void clamp_(const Tensor& t, const std::optional<Scalar>& min, const std::optional<Scalar>& max) { KILN_ERROR("clamp_ is not implemented yet"); }
void fill_(const Tensor& t, const Scalar& value) { KILN_ERROR("fill_ is not implemented yet"); }
// ---- reduce.h ----
Tensor sum(const Tensor& t, IntArrayRef dims, bool keepdim, std::optional<DType> dtype) { KILN_ERROR("sum is not implemented yet"); }
Tensor mean(const Tensor& t, IntArrayRef dims, bool keepdim, std::optional<DType> dtype) { KILN_ERROR("mean is not implemented yet"); }
Tensor prod(const Tensor& t, IntArrayRef dims, bool keepdim, std::optional<DType> dtype) { KILN_ERROR("prod is not implemented yet"); }
Tensor amax(const Tensor& t, IntArrayRef dims, bool keepdim) { KILN_ERROR("amax is not implemented yet"); }
Tensor amin(const Tensor& t, IntArrayRef dims, bool keepdim) { KILN_ERROR("amin is not implemented yet"); }
std::tuple<Tensor, Tensor> max(const Tensor& t, int64_t dim, bool keepdim) { KILN_ERROR("max is not implemented yet"); }
std::tuple<Tensor, Tensor> min(const Tensor& t, int64_t dim, bool keepdim) { KILN_ERROR("min is not implemented yet"); }
Tensor argmax(const Tensor& t, std::optional<int64_t> dim, bool keepdim) { KILN_ERROR("argmax is not implemented yet"); }
Tensor argmin(const Tensor& t, std::optional<int64_t> dim, bool keepdim) { KILN_ERROR("argmin is not implemented yet"); }
Tensor var(const Tensor& t, IntArrayRef dims, bool unbiased, bool keepdim) { KILN_ERROR("var is not implemented yet"); }
Tensor std(const Tensor& t, IntArrayRef dims, bool unbiased, bool keepdim) { KILN_ERROR("std is not implemented yet"); }
Tensor norm(const Tensor& t, const Scalar& p, IntArrayRef dims, bool keepdim) { KILN_ERROR("norm is not implemented yet"); }
Tensor logsumexp(const Tensor& t, IntArrayRef dims, bool keepdim) { KILN_ERROR("logsumexp is not implemented yet"); }
Tensor all(const Tensor& t, IntArrayRef dims, bool keepdim) { KILN_ERROR("all is not implemented yet"); }
Tensor any(const Tensor& t, IntArrayRef dims, bool keepdim) { KILN_ERROR("any is not implemented yet"); }
Tensor softmax(const Tensor& t, int64_t dim, std::optional<DType> dtype) { KILN_ERROR("softmax is not implemented yet"); }
Tensor log_softmax(const Tensor& t, int64_t dim, std::optional<DType> dtype) { KILN_ERROR("log_softmax is not implemented yet"); }
Tensor softmax_backward(const Tensor& grad_out, const Tensor& out, int64_t dim, bool log) { KILN_ERROR("softmax_backward is not implemented yet"); }
Tensor sum_to(const Tensor& t, IntArrayRef shape) { KILN_ERROR("sum_to is not implemented yet"); }
// ---- linalg.h ----
Tensor mm(const Tensor& a, const Tensor& b) { KILN_ERROR("mm is not implemented yet"); }
Tensor bmm(const Tensor& a, const Tensor& b) { KILN_ERROR("bmm is not implemented yet"); }
Tensor matmul(const Tensor& a, const Tensor& b) { KILN_ERROR("matmul is not implemented yet"); }
Tensor addmm(const Tensor& input, const Tensor& mat1, const Tensor& mat2, const Scalar& beta, const Scalar& alpha) { KILN_ERROR("addmm is not implemented yet"); }
Tensor baddbmm(const Tensor& input, const Tensor& batch1, const Tensor& batch2, const Scalar& beta, const Scalar& alpha) { KILN_ERROR("baddbmm is not implemented yet"); }
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) { KILN_ERROR("linear is not implemented yet"); }
// ---- indexing.h ----
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) { KILN_ERROR("cat is not implemented yet"); }
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) { KILN_ERROR("stack is not implemented yet"); }
std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t dim) { KILN_ERROR("split is not implemented yet"); }
std::vector<Tensor> split_with_sizes(const Tensor& t, IntArrayRef sizes, int64_t dim) { KILN_ERROR("split_with_sizes is not implemented yet"); }
std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t dim) { KILN_ERROR("chunk is not implemented yet"); }
Tensor index_select(const Tensor& t, int64_t dim, const Tensor& index) { KILN_ERROR("index_select is not implemented yet"); }
Tensor gather(const Tensor& t, int64_t dim, const Tensor& index) { KILN_ERROR("gather is not implemented yet"); }
Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) { KILN_ERROR("scatter is not implemented yet"); }
Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Scalar& value) { KILN_ERROR("scatter is not implemented yet"); }
Tensor scatter_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) { KILN_ERROR("scatter_add is not implemented yet"); }
void scatter_add_(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src) { KILN_ERROR("scatter_add_ is not implemented yet"); }
Tensor index_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& source, const Scalar& alpha) { KILN_ERROR("index_add is not implemented yet"); }
void index_add_(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& source, const Scalar& alpha) { KILN_ERROR("index_add_ is not implemented yet"); }
Tensor one_hot(const Tensor& index, int64_t num_classes) { KILN_ERROR("one_hot is not implemented yet"); }
Tensor pad(const Tensor& t, IntArrayRef pad, const Scalar& value) { KILN_ERROR("pad is not implemented yet"); }
Tensor flip(const Tensor& t, IntArrayRef dims) { KILN_ERROR("flip is not implemented yet"); }
Tensor repeat(const Tensor& t, IntArrayRef repeats) { KILN_ERROR("repeat is not implemented yet"); }
Tensor roll(const Tensor& t, IntArrayRef shifts, IntArrayRef dims) { KILN_ERROR("roll is not implemented yet"); }
Tensor tril(const Tensor& t, int64_t diagonal) { KILN_ERROR("tril is not implemented yet"); }
Tensor triu(const Tensor& t, int64_t diagonal) { KILN_ERROR("triu is not implemented yet"); }
}  // namespace kiln::native
