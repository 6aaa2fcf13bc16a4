// Factories: the raw ones from kiln::native, then requires_grad from the options.
#include "kiln/autograd/functions.h"
#include "kiln/core/native.h"

namespace kiln {

namespace {
Tensor finish(Tensor t, const TensorOptions& options) {
  if (options.requires_grad()) t.requires_grad_(true);
  return t;
}
// t's dtype and device, overridden by whatever `options` sets.
TensorOptions like(const Tensor& t, const TensorOptions& options) {
  TensorOptions o = t.options();
  if (options.has_dtype()) o = o.dtype(options.dtype());
  if (options.has_device()) o = o.device(options.device());
  return o.requires_grad(options.requires_grad());
}
}  // namespace

Tensor empty(IntArrayRef sizes, const TensorOptions& o) { return finish(native::empty(sizes, o), o); }
Tensor empty_strided(IntArrayRef sizes, IntArrayRef strides, const TensorOptions& o) {
  return finish(native::empty_strided(sizes, strides, o), o);
}
Tensor zeros(IntArrayRef sizes, const TensorOptions& o) { return finish(native::zeros(sizes, o), o); }
Tensor ones(IntArrayRef sizes, const TensorOptions& o) { return finish(native::ones(sizes, o), o); }
Tensor full(IntArrayRef sizes, const Scalar& value, const TensorOptions& o) {
  return finish(native::full(sizes, value, o), o);
}

Tensor empty_like(const Tensor& t) { return native::empty_like(t); }
Tensor empty_like(const Tensor& t, const TensorOptions& o) { return kiln::empty(t.sizes(), like(t, o)); }
Tensor zeros_like(const Tensor& t) { return native::zeros_like(t); }
Tensor zeros_like(const Tensor& t, const TensorOptions& o) { return kiln::zeros(t.sizes(), like(t, o)); }
Tensor ones_like(const Tensor& t) { return native::ones_like(t); }
Tensor ones_like(const Tensor& t, const TensorOptions& o) { return kiln::ones(t.sizes(), like(t, o)); }
Tensor full_like(const Tensor& t, const Scalar& value) { return native::full_like(t, value); }
Tensor full_like(const Tensor& t, const Scalar& value, const TensorOptions& o) {
  return kiln::full(t.sizes(), value, like(t, o));
}
Tensor rand_like(const Tensor& t, Generator* gen) { return native::rand(t.sizes(), t.options(), gen); }
Tensor randn_like(const Tensor& t, Generator* gen) { return native::randn(t.sizes(), t.options(), gen); }

Tensor arange(const Scalar& end, const TensorOptions& o) { return finish(native::arange(end, o), o); }
Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step, const TensorOptions& o) {
  return finish(native::arange(start, end, step, o), o);
}
Tensor linspace(const Scalar& start, const Scalar& end, int64_t steps, const TensorOptions& o) {
  return finish(native::linspace(start, end, steps, o), o);
}
Tensor rand(IntArrayRef sizes, const TensorOptions& o, Generator* gen) { return finish(native::rand(sizes, o, gen), o); }
Tensor randn(IntArrayRef sizes, const TensorOptions& o, Generator* gen) {
  return finish(native::randn(sizes, o, gen), o);
}
Tensor randint(int64_t low, int64_t high, IntArrayRef sizes, const TensorOptions& o, Generator* gen) {
  return finish(native::randint(low, high, sizes, o, gen), o);
}
Tensor bernoulli(const Tensor& p, Generator* gen) { return native::bernoulli(p, gen); }
Tensor bernoulli(IntArrayRef sizes, double p, const TensorOptions& o, Generator* gen) {
  return finish(native::bernoulli(sizes, p, o, gen), o);
}

Tensor from_blob(void* data, IntArrayRef sizes, const TensorOptions& o) {
  return finish(native::from_blob(data, sizes, o), o);
}
Tensor from_blob(void* data, IntArrayRef sizes, IntArrayRef strides, const TensorOptions& o) {
  return finish(native::from_blob(data, sizes, strides, o), o);
}
Tensor from_blob(void* data, IntArrayRef sizes, Deleter deleter, const TensorOptions& o) {
  return finish(native::from_blob(data, sizes, std::move(deleter), o), o);
}

template <typename T>
Tensor tensor(const std::vector<T>& values, const TensorOptions& o) {
  return finish(native::tensor(values, o), o);
}
template Tensor tensor<double>(const std::vector<double>&, const TensorOptions&);
template Tensor tensor<float>(const std::vector<float>&, const TensorOptions&);
template Tensor tensor<int64_t>(const std::vector<int64_t>&, const TensorOptions&);
template Tensor tensor<int32_t>(const std::vector<int32_t>&, const TensorOptions&);
template Tensor tensor<uint8_t>(const std::vector<uint8_t>&, const TensorOptions&);
template Tensor tensor<bool>(const std::vector<bool>&, const TensorOptions&);
template Tensor tensor<Half>(const std::vector<Half>&, const TensorOptions&);
template Tensor tensor<BFloat16>(const std::vector<BFloat16>&, const TensorOptions&);

Tensor scalar_tensor(const Scalar& value, const TensorOptions& o) {
  return finish(native::scalar_tensor(value, o), o);
}

}  // namespace kiln
