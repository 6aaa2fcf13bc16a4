// Dropout and stochastic depth as a product with a scaled 0/1 mask drawn
// from Kiln's Philox generator, so the gradient is the same mask
// (MulBackward0, as torch records dropout) and double backward comes free.
#include "kiln/nn/functional/dropout.h"

#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/native.h"

namespace kiln::nn::functional {

Tensor dropout(const Tensor& input, double p, bool training, Generator* gen) {
  KILN_CHECK(p >= 0.0 && p <= 1.0, "dropout: dropout probability has to be between 0 and 1, but got ", p);
  if (!training || p == 0.0 || input.numel() == 0) return input;
  KILN_CHECK(input.is_floating_point(), "dropout: expected a floating-point input, got dtype ", input.dtype());
  // p == 1 multiplies by zeros (inf and NaN inputs give NaN, as torch).
  if (p == 1.0) return kiln::mul(input, native::zeros(input.sizes(), input.options()));
  Tensor mask = native::bernoulli(input.sizes(), 1.0 - p, input.options(), gen);
  native::binary_(BinaryOp::Mul, mask, Scalar(1.0 / (1.0 - p)));
  return kiln::mul(input, mask);
}

Tensor drop_path(const Tensor& input, double p, bool training, bool scale_by_keep, Generator* gen) {
  KILN_CHECK(p >= 0.0 && p <= 1.0, "drop_path: drop probability has to be between 0 and 1, but got ", p);
  if (!training || p == 0.0) return input;
  KILN_CHECK(input.dim() >= 1, "drop_path: expected an input with a batch dim (dim 0), got a 0-dim tensor");
  KILN_CHECK(input.is_floating_point(), "drop_path: expected a floating-point input, got dtype ", input.dtype());
  // One draw per sample, broadcast over the sample's other dims.
  std::vector<int64_t> shape(static_cast<size_t>(input.dim()), 1);
  shape[0] = input.size(0);
  const double keep = 1.0 - p;
  Tensor mask = native::bernoulli(shape, keep, input.options(), gen);
  if (scale_by_keep && keep > 0.0) native::binary_(BinaryOp::Mul, mask, Scalar(1.0 / keep));
  return kiln::mul(input, mask);
}

}  // namespace kiln::nn::functional
