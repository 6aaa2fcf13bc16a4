#pragma once
// Dropout and stochastic depth, drawing from Kiln's counter-based generator
// (default_generator() unless one is given), so masks are reproducible.
#include "kiln/autograd/functions.h"

namespace kiln::nn::functional {

// Zeroes each element with probability p and scales the rest by 1/(1-p) when
// training; the identity otherwise. p in [0, 1].
Tensor dropout(const Tensor& input, double p = 0.5, bool training = true, Generator* gen = nullptr);

// Stochastic depth as timm's drop_path: one keep/drop draw per sample (dim 0),
// kept samples scaled by 1/(1-p) when scale_by_keep. Identity when p == 0 or
// not training.
Tensor drop_path(const Tensor& input, double p = 0.0, bool training = false, bool scale_by_keep = true,
                 Generator* gen = nullptr);

}  // namespace kiln::nn::functional
