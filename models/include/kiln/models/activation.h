#pragma once
// HF's ACT2FN: activation functions by the names configs use ("relu",
// "gelu", "gelu_new", "quick_gelu", ...). Unknown names are an error listing
// the known ones.
#include <functional>
#include <string>

#include "kiln/autograd/functions.h"

namespace kiln::models {

using Activation = std::function<Tensor(const Tensor&)>;

Activation get_activation(const std::string& name);

}  // namespace kiln::models
