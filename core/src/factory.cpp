#include "kiln/core/native/factory.h"

#include <cmath>
#include <cstring>

#include "kiln/core/backend.h"
#include "kiln/core/native/view.h"

namespace kiln::native {

namespace {
void check_sizes(IntArrayRef sizes, const char* op) {
  for (int64_t s : sizes) KILN_CHECK(s >= 0, op, ": negative dimension ", s, " in size ", sizes);
}
}  // namespace

Tensor empty(IntArrayRef sizes, const TensorOptions& options) {
  check_sizes(sizes, "empty");
  const DType dt = options.dtype();
  const Device dev = options.device();
  Storage storage = backend(dev).allocate(static_cast<size_t>(numel_of(sizes)) * element_size(dt), dev);
  return Tensor(std::make_shared<TensorImpl>(std::move(storage), dt, sizes.dims(), contiguous_strides(sizes), 0));
}

Tensor empty_strided(IntArrayRef sizes, IntArrayRef strides, const TensorOptions& options) {
  check_sizes(sizes, "empty_strided");
  KILN_CHECK(sizes.size() == strides.size(), "empty_strided: ", sizes.size(), " sizes but ", strides.size(),
             " strides");
  int64_t extent = 1;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == 0) extent = 0;
  }
  if (extent != 0)
    for (size_t i = 0; i < sizes.size(); ++i) extent += (sizes[i] - 1) * strides[i];
  const DType dt = options.dtype();
  const Device dev = options.device();
  Storage storage = backend(dev).allocate(static_cast<size_t>(extent) * element_size(dt), dev);
  return Tensor(std::make_shared<TensorImpl>(std::move(storage), dt, sizes.dims(), strides.dims(), 0));
}

Tensor full(IntArrayRef sizes, const Scalar& value, const TensorOptions& options) {
  TensorOptions o = options;
  if (!o.has_dtype()) o = o.dtype(value.dtype());
  Tensor t = empty(sizes, o);
  backend_of(t).fill(t, value);
  return t;
}
Tensor zeros(IntArrayRef sizes, const TensorOptions& options) { return full(sizes, 0.0, options.dtype(options.dtype())); }
Tensor ones(IntArrayRef sizes, const TensorOptions& options) { return full(sizes, 1.0, options.dtype(options.dtype())); }

Tensor empty_like(const Tensor& t) { return empty(t.sizes(), t.options()); }
Tensor empty_like(const Tensor& t, const TensorOptions& options) {
  TensorOptions o = t.options();
  if (options.has_dtype()) o = o.dtype(options.dtype());
  if (options.has_device()) o = o.device(options.device());
  return empty(t.sizes(), o);
}
Tensor zeros_like(const Tensor& t) { return zeros(t.sizes(), t.options()); }
Tensor ones_like(const Tensor& t) { return ones(t.sizes(), t.options()); }
Tensor full_like(const Tensor& t, const Scalar& value) { return full(t.sizes(), value, t.options()); }

Tensor arange(const Scalar& end, const TensorOptions& options) { return arange(0, end, 1, options); }

Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step, const TensorOptions& options) {
  const bool all_int = !start.is_floating_point() && !end.is_floating_point() && !step.is_floating_point();
  TensorOptions o = options.has_dtype() ? options : options.dtype(all_int ? kInt64 : default_dtype());
  const double a = start.toDouble(), b = end.toDouble(), d = step.toDouble();
  KILN_CHECK(d != 0.0, "arange: step must be nonzero");
  KILN_CHECK(std::isfinite(a) && std::isfinite(b), "arange: unsupported range: ", start, " -> ", end);
  KILN_CHECK((d > 0 && b >= a) || (d < 0 && b <= a), "arange: upper bound and larger bound inconsistent with step sign (",
             start, ", ", end, ", ", step, ")");
  const auto n = static_cast<int64_t>(std::ceil((b - a) / d));
  Tensor t = empty({n}, o);
  if (n > 0) backend_of(t).arange(t, start, step);
  return t;
}

Tensor linspace(const Scalar& start, const Scalar& end, int64_t steps, const TensorOptions& options) {
  KILN_CHECK(steps >= 0, "linspace: number of steps must be non-negative, got ", steps);
  Tensor t = empty({steps}, options);
  if (steps > 0) backend_of(t).linspace(t, start, end);
  return t;
}

void random_(const Tensor& out, const RandomSpec& spec, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  // Kernels write a contiguous row-major buffer so element i is element i of the stream.
  Tensor target = out.is_contiguous() ? out : empty(out.sizes(), out.options());
  RandomSpec s = spec;
  if (s.probabilities.defined()) s.probabilities = contiguous(to(to(s.probabilities, out.device()), kFloat64));
  const uint64_t offset = g.advance(random_blocks(spec.kind, out.dtype(), out.numel()));
  if (out.numel() > 0) backend_of(out).random(target, s, g.seed(), offset);
  if (!target.is_same(out)) backend_of(out).copy(target, out, false);
  bump_version(out);
}

Tensor rand(IntArrayRef sizes, const TensorOptions& options, Generator* gen) {
  KILN_CHECK(is_floating_point(options.dtype()), "rand: expected a floating-point dtype, got ",
             dtype_name(options.dtype()));
  Tensor t = empty(sizes, options);
  random_(t, RandomSpec{RandomKind::Uniform, 0.0, 1.0, {}}, gen);
  return t;
}

Tensor randn(IntArrayRef sizes, const TensorOptions& options, Generator* gen) {
  KILN_CHECK(is_floating_point(options.dtype()), "randn: expected a floating-point dtype, got ",
             dtype_name(options.dtype()));
  Tensor t = empty(sizes, options);
  random_(t, RandomSpec{RandomKind::Normal, 0.0, 1.0, {}}, gen);
  return t;
}

Tensor randint(int64_t low, int64_t high, IntArrayRef sizes, const TensorOptions& options, Generator* gen) {
  KILN_CHECK(low < high, "randint: expects low < high, got low=", low, " high=", high);
  Tensor t = empty(sizes, options.has_dtype() ? options : options.dtype(kInt64));
  random_(t, RandomSpec{RandomKind::RandInt, static_cast<double>(low), static_cast<double>(high), {}}, gen);
  return t;
}

Tensor bernoulli(const Tensor& p, Generator* gen) {
  KILN_CHECK(p.is_floating_point(), "bernoulli: probabilities must be floating point, got ", dtype_name(p.dtype()));
  Tensor t = empty(p.sizes(), p.options());
  random_(t, RandomSpec{RandomKind::Bernoulli, 0.0, 0.0, p}, gen);
  return t;
}

Tensor bernoulli(IntArrayRef sizes, double p, const TensorOptions& options, Generator* gen) {
  KILN_CHECK(p >= 0.0 && p <= 1.0, "bernoulli: p must be in [0, 1], got ", p);
  Tensor t = empty(sizes, options);
  random_(t, RandomSpec{RandomKind::Bernoulli, p, 0.0, {}}, gen);
  return t;
}

Tensor from_blob(void* data, IntArrayRef sizes, const TensorOptions& options) {
  return from_blob(data, sizes, contiguous_strides(sizes), options);
}

Tensor from_blob(void* data, IntArrayRef sizes, IntArrayRef strides, const TensorOptions& options) {
  check_sizes(sizes, "from_blob");
  KILN_CHECK(sizes.size() == strides.size(), "from_blob: ", sizes.size(), " sizes but ", strides.size(), " strides");
  int64_t extent = numel_of(sizes) == 0 ? 0 : 1;
  if (extent)
    for (size_t i = 0; i < sizes.size(); ++i) extent += (sizes[i] - 1) * strides[i];
  auto storage = std::make_shared<StorageImpl>(data, static_cast<size_t>(extent) * element_size(options.dtype()),
                                               options.device(), nullptr);
  return Tensor(std::make_shared<TensorImpl>(std::move(storage), options.dtype(), sizes.dims(), strides.dims(), 0));
}

Tensor from_blob(void* data, IntArrayRef sizes, Deleter deleter, const TensorOptions& options) {
  check_sizes(sizes, "from_blob");
  auto storage = std::make_shared<StorageImpl>(data, static_cast<size_t>(numel_of(sizes)) * element_size(options.dtype()),
                                               options.device(), std::move(deleter));
  return Tensor(std::make_shared<TensorImpl>(std::move(storage), options.dtype(), sizes.dims(), contiguous_strides(sizes), 0));
}

template <typename T>
Tensor tensor(const std::vector<T>& values, const TensorOptions& options) {
  const int64_t n = static_cast<int64_t>(values.size());
  Tensor host = empty({n}, TensorOptions().dtype(dtype_v<T>));
  if constexpr (std::is_same_v<T, bool>) {  // std::vector<bool> has no data()
    bool* dst = host.data_ptr<bool>();
    for (int64_t i = 0; i < n; ++i) dst[i] = values[i];
  } else {
    std::memcpy(host.data_ptr(), values.data(), n * sizeof(T));
  }
  Tensor out = options.has_dtype() ? to(host, options.dtype()) : host;
  return options.has_device() ? to(out, options.device()) : out;
}

template Tensor tensor<double>(const std::vector<double>&, const TensorOptions&);
template Tensor tensor<float>(const std::vector<float>&, const TensorOptions&);
template Tensor tensor<int64_t>(const std::vector<int64_t>&, const TensorOptions&);
template Tensor tensor<int32_t>(const std::vector<int32_t>&, const TensorOptions&);
template Tensor tensor<uint8_t>(const std::vector<uint8_t>&, const TensorOptions&);
template Tensor tensor<bool>(const std::vector<bool>&, const TensorOptions&);
template Tensor tensor<Half>(const std::vector<Half>&, const TensorOptions&);
template Tensor tensor<BFloat16>(const std::vector<BFloat16>&, const TensorOptions&);

Tensor scalar_tensor(const Scalar& value, const TensorOptions& options) {
  TensorOptions o = options.has_dtype() ? options : options.dtype(value.dtype());
  return full({}, value, o);
}

}  // namespace kiln::native
