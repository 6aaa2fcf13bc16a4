#pragma once
// The one header a Kiln user includes: tensors, dtypes, devices, the
// differentiable kiln:: functions and the autograd API.
#include "kiln/core/device.h"
#include "kiln/core/dtype.h"
#include "kiln/core/error.h"
#include "kiln/core/generator.h"
#include "kiln/core/math_mode.h"
#include "kiln/core/native.h"
#include "kiln/core/parallel.h"
#include "kiln/core/scalar.h"
#include "kiln/core/tensor.h"
#include "kiln/core/tensor_options.h"

#include "kiln/autograd/autograd.h"
#include "kiln/nn/functional.h"
#include "kiln/nn/nn.h"
#include "kiln/models/models.h"
#include "kiln/data/data.h"
#include "kiln/train/optim/optim.h"

#if defined(KILN_WITH_CUDA)
// Devices, streams, events, the caching allocator and the TF32/cuDNN switches.
#include "kiln/cuda/caching_allocator.h"
#include "kiln/cuda/matmul.h"
#include "kiln/cuda/runtime.h"
#include "kiln/cuda/stream.h"
#endif
