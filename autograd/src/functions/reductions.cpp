// Differentiable reductions. The gradient of a reduction is broadcast back
// over the reduced dims (re-inserted first when keepdim was false).
#include "kiln/autograd/function.h"
#include "kiln/autograd/functions.h"
#include "kiln/core/native.h"

namespace kiln {

using autograd::FunctionNode;
using autograd::record;
using autograd::variable_list;

namespace {

// g reshaped to the keepdim shape of a reduction of `sizes` over `dims`
// (empty: all), then expanded to `sizes`.
Tensor expand_reduced(const Tensor& g, IntArrayRef sizes, const DimVector& dims, bool keepdim) {
  Tensor r = g;
  if (!keepdim) {
    const DimVector wrapped = native::wrap_dims(dims, static_cast<int64_t>(sizes.size()), "backward");
    for (int64_t d : wrapped) r = kiln::unsqueeze(r, d);  // ascending, so each lands at its own index
  }
  return kiln::expand(r, sizes);
}

int64_t reduced_count(IntArrayRef sizes, const DimVector& dims) {
  const DimVector wrapped = native::wrap_dims(dims, static_cast<int64_t>(sizes.size()), "mean");
  int64_t n = 1;
  for (int64_t d : wrapped) n *= sizes[d];
  return n;
}

}  // namespace

Tensor sum(const Tensor& t, std::optional<DType> dtype) {
  return record("SumBackward0", native::sum(t, {}, false, dtype), {t}, {},
                [](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {c.reduce(0, kiln::expand(g, c.input_sizes(0)))};
                });
}

Tensor sum(const Tensor& t, IntArrayRef dims, bool keepdim, std::optional<DType> dtype) {
  return record("SumBackward1", native::sum(t, dims, keepdim, dtype), {t}, {},
                [dims = dims.dims(), keepdim](FunctionNode& c, const Tensor& g) -> variable_list {
                  return {c.reduce(0, expand_reduced(g, c.input_sizes(0), dims, keepdim))};
                });
}

Tensor mean(const Tensor& t, std::optional<DType> dtype) {
  return record("MeanBackward0", native::mean(t, {}, false, dtype), {t}, {},
                [](FunctionNode& c, const Tensor& g) -> variable_list {
                  const int64_t n = numel_of(c.input_sizes(0));
                  return {c.reduce(0, kiln::expand(g / static_cast<double>(n), c.input_sizes(0)))};
                });
}

Tensor mean(const Tensor& t, IntArrayRef dims, bool keepdim, std::optional<DType> dtype) {
  return record("MeanBackward1", native::mean(t, dims, keepdim, dtype), {t}, {},
                [dims = dims.dims(), keepdim](FunctionNode& c, const Tensor& g) -> variable_list {
                  const double n = static_cast<double>(reduced_count(c.input_sizes(0), dims));
                  return {c.reduce(0, expand_reduced(g / n, c.input_sizes(0), dims, keepdim))};
                });
}

}  // namespace kiln
