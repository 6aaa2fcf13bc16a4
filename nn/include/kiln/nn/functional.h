#pragma once
// kiln::nn::functional: stateless layer functions (losses, activations), the
// counterpart of torch::nn::functional. Usually used as
//   namespace F = kiln::nn::functional;
#include "kiln/nn/functional/activation.h"
#include "kiln/nn/functional/loss.h"
