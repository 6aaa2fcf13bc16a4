#pragma once
// Constant padding with per-side amounts, as torch.nn.functional.pad(mode="constant").
#include "kiln/autograd/functions.h"

namespace kiln::nn::functional {

// pad: (left, right) pairs starting from the last dim: {left, right, top, bottom}
// pads W then H. Negative amounts trim. Differentiable.
inline Tensor pad(const Tensor& input, IntArrayRef pad, const Scalar& value = 0) {
  return kiln::pad(input, pad, value);
}

}  // namespace kiln::nn::functional
