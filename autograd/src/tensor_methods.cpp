// Tensor's computing methods (declared in core's tensor.h): each forwards to
// the differentiable kiln:: function of the same name. In-place methods live
// beside their formulas in functions/*.cpp; the autograd section is in
// tensor_autograd.cpp.
#include "kiln/autograd/functions.h"

namespace kiln {

// ---- views and copies ----
Tensor Tensor::view(IntArrayRef sizes) const { return kiln::view(*this, sizes); }
Tensor Tensor::view_as(const Tensor& other) const { return kiln::view_as(*this, other); }
Tensor Tensor::reshape(IntArrayRef sizes) const { return kiln::reshape(*this, sizes); }
Tensor Tensor::reshape_as(const Tensor& other) const { return kiln::reshape_as(*this, other); }
Tensor Tensor::as_strided(IntArrayRef sizes, IntArrayRef strides, std::optional<int64_t> storage_offset) const {
  return kiln::as_strided(*this, sizes, strides, storage_offset);
}
Tensor Tensor::permute(IntArrayRef dims) const { return kiln::permute(*this, dims); }
Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const { return kiln::transpose(*this, dim0, dim1); }
Tensor Tensor::t() const { return kiln::t(*this); }
Tensor Tensor::squeeze() const { return kiln::squeeze(*this); }
Tensor Tensor::squeeze(int64_t dim) const { return kiln::squeeze(*this, dim); }
Tensor Tensor::unsqueeze(int64_t dim) const { return kiln::unsqueeze(*this, dim); }
Tensor Tensor::expand(IntArrayRef sizes) const { return kiln::expand(*this, sizes); }
Tensor Tensor::expand_as(const Tensor& other) const { return kiln::expand_as(*this, other); }
Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const {
  return kiln::narrow(*this, dim, start, length);
}
Tensor Tensor::slice(int64_t dim, std::optional<int64_t> start, std::optional<int64_t> end, int64_t step) const {
  return kiln::slice(*this, dim, start, end, step);
}
Tensor Tensor::select(int64_t dim, int64_t index) const { return kiln::select(*this, dim, index); }
Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const { return kiln::flatten(*this, start_dim, end_dim); }
Tensor Tensor::unflatten(int64_t dim, IntArrayRef sizes) const { return kiln::unflatten(*this, dim, sizes); }
Tensor Tensor::contiguous() const { return kiln::contiguous(*this); }
Tensor Tensor::clone() const { return kiln::clone(*this); }
Tensor Tensor::to(DType dtype) const { return kiln::to(*this, dtype); }
Tensor Tensor::to(Device device, bool non_blocking) const { return kiln::to(*this, device, non_blocking); }
Tensor Tensor::to(Device device, DType dtype, bool non_blocking) const {
  return kiln::to(*this, device, dtype, non_blocking);
}
Tensor Tensor::to(const TensorOptions& options) const {
  Tensor r = *this;
  if (options.has_device()) r = kiln::to(r, options.device());
  if (options.has_dtype()) r = kiln::to(r, options.dtype());
  return r;
}

// ---- elementwise ----
Tensor Tensor::add(const Tensor& other, const Scalar& alpha) const { return kiln::add(*this, other, alpha); }
Tensor Tensor::add(const Scalar& other, const Scalar& alpha) const { return kiln::add(*this, other, alpha); }
Tensor Tensor::sub(const Tensor& other, const Scalar& alpha) const { return kiln::sub(*this, other, alpha); }
Tensor Tensor::sub(const Scalar& other, const Scalar& alpha) const { return kiln::sub(*this, other, alpha); }
Tensor Tensor::mul(const Tensor& other) const { return kiln::mul(*this, other); }
Tensor Tensor::mul(const Scalar& other) const { return kiln::mul(*this, other); }
Tensor Tensor::div(const Tensor& other) const { return kiln::div(*this, other); }
Tensor Tensor::div(const Scalar& other) const { return kiln::div(*this, other); }
Tensor Tensor::pow(const Tensor& exponent) const { return kiln::pow(*this, exponent); }
Tensor Tensor::pow(const Scalar& exponent) const { return kiln::pow(*this, exponent); }
Tensor Tensor::minimum(const Tensor& other) const { return kiln::minimum(*this, other); }
Tensor Tensor::maximum(const Tensor& other) const { return kiln::maximum(*this, other); }
Tensor Tensor::neg() const { return kiln::neg(*this); }
Tensor Tensor::exp() const { return kiln::exp(*this); }
Tensor Tensor::log() const { return kiln::log(*this); }
Tensor Tensor::log1p() const { return kiln::log1p(*this); }
Tensor Tensor::expm1() const { return kiln::expm1(*this); }
Tensor Tensor::sqrt() const { return kiln::sqrt(*this); }
Tensor Tensor::rsqrt() const { return kiln::rsqrt(*this); }
Tensor Tensor::abs() const { return kiln::abs(*this); }
Tensor Tensor::sign() const { return kiln::sign(*this); }
Tensor Tensor::tanh() const { return kiln::tanh(*this); }
Tensor Tensor::sigmoid() const { return kiln::sigmoid(*this); }
Tensor Tensor::relu() const { return kiln::relu(*this); }
Tensor Tensor::gelu(const std::string& approximate) const { return kiln::gelu(*this, approximate); }
Tensor Tensor::silu() const { return kiln::silu(*this); }
Tensor Tensor::sin() const { return kiln::sin(*this); }
Tensor Tensor::cos() const { return kiln::cos(*this); }
Tensor Tensor::acos() const { return kiln::acos(*this); }
Tensor Tensor::erf() const { return kiln::erf(*this); }
Tensor Tensor::reciprocal() const { return kiln::reciprocal(*this); }
Tensor Tensor::square() const { return kiln::square(*this); }
Tensor Tensor::floor() const { return kiln::floor(*this); }
Tensor Tensor::ceil() const { return kiln::ceil(*this); }
Tensor Tensor::round() const { return kiln::round(*this); }
Tensor Tensor::clamp(std::optional<Scalar> min, std::optional<Scalar> max) const { return kiln::clamp(*this, min, max); }
Tensor Tensor::clamp_min(const Scalar& min) const { return kiln::clamp_min(*this, min); }
Tensor Tensor::clamp_max(const Scalar& max) const { return kiln::clamp_max(*this, max); }
Tensor Tensor::eq(const Tensor& other) const { return kiln::eq(*this, other); }
Tensor Tensor::eq(const Scalar& other) const { return kiln::eq(*this, other); }
Tensor Tensor::ne(const Tensor& other) const { return kiln::ne(*this, other); }
Tensor Tensor::ne(const Scalar& other) const { return kiln::ne(*this, other); }
Tensor Tensor::lt(const Tensor& other) const { return kiln::lt(*this, other); }
Tensor Tensor::lt(const Scalar& other) const { return kiln::lt(*this, other); }
Tensor Tensor::le(const Tensor& other) const { return kiln::le(*this, other); }
Tensor Tensor::le(const Scalar& other) const { return kiln::le(*this, other); }
Tensor Tensor::gt(const Tensor& other) const { return kiln::gt(*this, other); }
Tensor Tensor::gt(const Scalar& other) const { return kiln::gt(*this, other); }
Tensor Tensor::ge(const Tensor& other) const { return kiln::ge(*this, other); }
Tensor Tensor::ge(const Scalar& other) const { return kiln::ge(*this, other); }
Tensor Tensor::logical_and(const Tensor& other) const { return kiln::logical_and(*this, other); }
Tensor Tensor::logical_or(const Tensor& other) const { return kiln::logical_or(*this, other); }
Tensor Tensor::logical_xor(const Tensor& other) const { return kiln::logical_xor(*this, other); }
Tensor Tensor::logical_not() const { return kiln::logical_not(*this); }
// torch's x.where(condition, y): x where condition holds, y elsewhere.
Tensor Tensor::where(const Tensor& condition, const Tensor& other) const { return kiln::where(condition, *this, other); }
Tensor Tensor::masked_fill(const Tensor& mask, const Scalar& value) const { return kiln::masked_fill(*this, mask, value); }
Tensor Tensor::masked_fill(const Tensor& mask, const Tensor& value) const { return kiln::masked_fill(*this, mask, value); }

// ---- reductions ----
Tensor Tensor::sum(std::optional<DType> dtype) const { return kiln::sum(*this, dtype); }
Tensor Tensor::sum(IntArrayRef dims, bool keepdim, std::optional<DType> dtype) const {
  return kiln::sum(*this, dims, keepdim, dtype);
}
Tensor Tensor::mean(std::optional<DType> dtype) const { return kiln::mean(*this, dtype); }
Tensor Tensor::mean(IntArrayRef dims, bool keepdim, std::optional<DType> dtype) const {
  return kiln::mean(*this, dims, keepdim, dtype);
}
Tensor Tensor::prod(std::optional<DType> dtype) const { return kiln::prod(*this, dtype); }
Tensor Tensor::prod(int64_t dim, bool keepdim, std::optional<DType> dtype) const {
  return kiln::prod(*this, dim, keepdim, dtype);
}
Tensor Tensor::max() const { return kiln::max(*this); }
std::tuple<Tensor, Tensor> Tensor::max(int64_t dim, bool keepdim) const { return kiln::max(*this, dim, keepdim); }
Tensor Tensor::min() const { return kiln::min(*this); }
std::tuple<Tensor, Tensor> Tensor::min(int64_t dim, bool keepdim) const { return kiln::min(*this, dim, keepdim); }
Tensor Tensor::amax(IntArrayRef dims, bool keepdim) const { return kiln::amax(*this, dims, keepdim); }
Tensor Tensor::amin(IntArrayRef dims, bool keepdim) const { return kiln::amin(*this, dims, keepdim); }
Tensor Tensor::argmax(std::optional<int64_t> dim, bool keepdim) const { return kiln::argmax(*this, dim, keepdim); }
Tensor Tensor::argmin(std::optional<int64_t> dim, bool keepdim) const { return kiln::argmin(*this, dim, keepdim); }
Tensor Tensor::var(bool unbiased) const { return kiln::var(*this, unbiased); }
Tensor Tensor::var(IntArrayRef dims, bool unbiased, bool keepdim) const {
  return kiln::var(*this, dims, unbiased, keepdim);
}
Tensor Tensor::std(bool unbiased) const { return kiln::std(*this, unbiased); }
Tensor Tensor::std(IntArrayRef dims, bool unbiased, bool keepdim) const {
  return kiln::std(*this, dims, unbiased, keepdim);
}
Tensor Tensor::norm(const Scalar& p) const { return kiln::norm(*this, p); }
Tensor Tensor::norm(const Scalar& p, IntArrayRef dims, bool keepdim) const { return kiln::norm(*this, p, dims, keepdim); }
Tensor Tensor::logsumexp(IntArrayRef dims, bool keepdim) const { return kiln::logsumexp(*this, dims, keepdim); }
Tensor Tensor::all() const { return kiln::all(*this); }
Tensor Tensor::all(int64_t dim, bool keepdim) const { return kiln::all(*this, dim, keepdim); }
Tensor Tensor::any() const { return kiln::any(*this); }
Tensor Tensor::any(int64_t dim, bool keepdim) const { return kiln::any(*this, dim, keepdim); }

// ---- linear algebra ----
Tensor Tensor::mm(const Tensor& other) const { return kiln::mm(*this, other); }
Tensor Tensor::bmm(const Tensor& other) const { return kiln::bmm(*this, other); }
Tensor Tensor::matmul(const Tensor& other) const { return kiln::matmul(*this, other); }

// ---- shape and indexing ----
std::vector<Tensor> Tensor::split(int64_t split_size, int64_t dim) const { return kiln::split(*this, split_size, dim); }
std::vector<Tensor> Tensor::split(IntArrayRef split_sizes, int64_t dim) const {
  return kiln::split(*this, split_sizes, dim);
}
std::vector<Tensor> Tensor::chunk(int64_t chunks, int64_t dim) const { return kiln::chunk(*this, chunks, dim); }
Tensor Tensor::index_select(int64_t dim, const Tensor& index) const { return kiln::index_select(*this, dim, index); }
Tensor Tensor::gather(int64_t dim, const Tensor& index) const { return kiln::gather(*this, dim, index); }
Tensor Tensor::scatter(int64_t dim, const Tensor& index, const Tensor& src) const {
  return kiln::scatter(*this, dim, index, src);
}
Tensor Tensor::scatter(int64_t dim, const Tensor& index, const Scalar& value) const {
  return kiln::scatter(*this, dim, index, value);
}
Tensor Tensor::scatter_add(int64_t dim, const Tensor& index, const Tensor& src) const {
  return kiln::scatter_add(*this, dim, index, src);
}
Tensor Tensor::index_add(int64_t dim, const Tensor& index, const Tensor& source, const Scalar& alpha) const {
  return kiln::index_add(*this, dim, index, source, alpha);
}
Tensor Tensor::flip(IntArrayRef dims) const { return kiln::flip(*this, dims); }
Tensor Tensor::repeat(IntArrayRef repeats) const { return kiln::repeat(*this, repeats); }
Tensor Tensor::roll(IntArrayRef shifts, IntArrayRef dims) const { return kiln::roll(*this, shifts, dims); }
Tensor Tensor::tril(int64_t diagonal) const { return kiln::tril(*this, diagonal); }
Tensor Tensor::triu(int64_t diagonal) const { return kiln::triu(*this, diagonal); }
Tensor Tensor::softmax(int64_t dim, std::optional<DType> dtype) const { return kiln::softmax(*this, dim, dtype); }
Tensor Tensor::log_softmax(int64_t dim, std::optional<DType> dtype) const {
  return kiln::log_softmax(*this, dim, dtype);
}

}  // namespace kiln
