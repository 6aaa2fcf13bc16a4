#pragma once
// kiln::nn::functional: stateless layer functions, the counterpart of
// torch::nn::functional. Usually used as
//   namespace F = kiln::nn::functional;
#include "kiln/nn/functional/activation.h"
#include "kiln/nn/functional/conv.h"
#include "kiln/nn/functional/dropout.h"
#include "kiln/nn/functional/embedding.h"
#include "kiln/nn/functional/interpolate.h"
#include "kiln/nn/functional/loss.h"
#include "kiln/nn/functional/normalization.h"
#include "kiln/nn/functional/padding.h"
#include "kiln/nn/functional/pooling.h"
