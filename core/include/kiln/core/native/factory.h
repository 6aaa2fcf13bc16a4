#pragma once
// Raw factories: no autograd (kiln:: versions in the autograd layer honour
// TensorOptions::requires_grad).
#include <vector>

#include "kiln/core/backend.h"
#include "kiln/core/generator.h"
#include "kiln/core/tensor.h"

namespace kiln::native {

Tensor empty(IntArrayRef sizes, const TensorOptions& options = {});
Tensor empty_strided(IntArrayRef sizes, IntArrayRef strides, const TensorOptions& options = {});
Tensor zeros(IntArrayRef sizes, const TensorOptions& options = {});
Tensor ones(IntArrayRef sizes, const TensorOptions& options = {});
Tensor full(IntArrayRef sizes, const Scalar& value, const TensorOptions& options = {});
Tensor empty_like(const Tensor& t);
Tensor empty_like(const Tensor& t, const TensorOptions& options);  // unset fields taken from t
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, const Scalar& value);
// torch.arange: dtype int64 when all of start/end/step are integers, else the default dtype.
Tensor arange(const Scalar& end, const TensorOptions& options = {});
Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step = 1, const TensorOptions& options = {});
Tensor linspace(const Scalar& start, const Scalar& end, int64_t steps, const TensorOptions& options = {});
Tensor rand(IntArrayRef sizes, const TensorOptions& options = {}, Generator* gen = nullptr);
Tensor randn(IntArrayRef sizes, const TensorOptions& options = {}, Generator* gen = nullptr);
// Integers uniform in [low, high); dtype int64 unless given.
Tensor randint(int64_t low, int64_t high, IntArrayRef sizes, const TensorOptions& options = {},
               Generator* gen = nullptr);
// 0/1 draws with per-element probabilities p (float); result has p's dtype.
Tensor bernoulli(const Tensor& p, Generator* gen = nullptr);
Tensor bernoulli(IntArrayRef sizes, double p, const TensorOptions& options = {}, Generator* gen = nullptr);
// In place fills from a generator (default generator when null).
void random_(const Tensor& out, const RandomSpec& spec, Generator* gen = nullptr);

// Wraps memory the caller owns (CPU pointers; CUDA device pointers once that backend exists).
Tensor from_blob(void* data, IntArrayRef sizes, const TensorOptions& options = {});
Tensor from_blob(void* data, IntArrayRef sizes, IntArrayRef strides, const TensorOptions& options = {});
Tensor from_blob(void* data, IntArrayRef sizes, Deleter deleter, const TensorOptions& options = {});
// Copies host values into a new 1-D tensor (dtype from T unless given).
template <typename T>
Tensor tensor(const std::vector<T>& values, const TensorOptions& options = {});
// A 0-dim tensor holding a number: the dtype the number alone implies unless given.
Tensor scalar_tensor(const Scalar& value, const TensorOptions& options = {});

}  // namespace kiln::native
